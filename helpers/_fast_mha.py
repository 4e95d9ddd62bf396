r"""The fast path of multi-head attention (used by ``multi_head_attention`` and the class).

It computes exactly what the readable version in :mod:`helpers.attention` computes --
project, split heads, scaled dot-product attention per head, combine, project --
and returns the same output and per-head weights (equal within float rounding).
What differs is *how* the work is laid out, so that NumPy spends its time in
matrix products instead of in memory traffic and Python:

1. **One fused projection.** For self-attention ``x @ [W_q | W_k | W_v]`` is one
   ``(B·L, d) @ (d, 3d)`` product instead of three. The concatenation is made
   afresh on every call (``O(d²)``, negligible next to the ``O(B·L·d²)`` product),
   so a weight changed between calls can never be served stale.
2. **The scale folded into** ``W_q``. ``(x W_q / \sqrt{d_k}) K^T`` equals
   ``(QK^T)/\sqrt{d_k}``, but scaling the ``d × d`` matrix costs ``d²`` operations
   where scaling the scores costs ``B·h·L²``.
3. **Heads as strided views.** The projection's ``(B, L, 3, h, d_k)`` result is
   viewed as ``Q``, ``K``, ``V`` of shape ``(B, h, L, d_k)`` by transposing
   strides; each tile copies just the rows it multiplies into contiguous memory
   (``O(L·d_k)`` next to the tile's ``O(L²·d_k)`` work). The heads' outputs
   are written straight into a ``(B, L, h, d_k)`` buffer, which *is* the
   combined ``(B, L, d)`` matrix: combining heads costs nothing.
4. **Cache-sized tiles, softmax in place.** The scores of a tile of
   ``(heads, rows)`` -- about 1 MiB -- are written by the product directly
   into the weights array that is returned, and normalised there while they are
   still in the CPU cache: subtract the tile's maximum, ``exp`` in place,
   multiply by the reciprocal of the row sum. (Softmax does not change when a
   row is shifted by any constant; one shift for the whole tile saves a pass
   computing each row's maximum. A row so far below the tile's maximum that
   its exponentials would underflow -- rare, but possible -- sends the tile
   back through per-row maxima.) The tile then multiplies ``V`` at once. No
   ``(B, h, L, L)`` temporary is allocated besides the returned weights.
5. **Threads over independent tiles.** Tiles of different (batch, head, rows)
   share nothing, and NumPy releases the GIL inside products and ufuncs, so the
   tiles are split between one thread per core (see :mod:`helpers._parallel`),
   with the BLAS library kept to one thread meanwhile.
6. **Work arrays reused.** The projections and the heads' outputs live in
   per-thread arrays kept from the previous call of the same shape: fresh large
   arrays cost a page fault per 4 KiB on every call. What a call returns is
   always new memory.
7. **Cheap validation.** NaN or ``+inf`` anywhere in a tile of scores shows in
   the tile's maximum, which the softmax computes anyway: checking that one
   number replaces a pass over the scores.

Every array stays in the input dtype: float32 in, float32 throughout.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numpy.typing import ArrayLike

from helpers._parallel import num_workers, run_blocks

FloatArray = np.ndarray

TILE_ELEMENTS = 1 << 18
"""Target number of scores per tile: 256 Ki floats = 1 MiB in float32, about
half a core's L2 cache, large enough that Python's per-tile cost is small and
the matrix products run near full speed."""


def fast_path_applies(
    q: FloatArray, k: FloatArray, v: FloatArray, params: dict[str, FloatArray | None]
) -> bool:
    """Whether :func:`project_and_attend_fast` handles these (already validated) inputs.

    It needs one common float32/float64 dtype for the tokens and every
    parameter (mixed dtypes follow NumPy's promotion in the readable version),
    and ``(L, d)`` or ``(B, L, d)`` tokens with the same batch.
    """
    arrays = [q, k, v, *(p for p in params.values() if p is not None)]
    dtype = q.dtype
    if dtype not in (np.float32, np.float64) or any(a.dtype != dtype for a in arrays):
        return False
    if q.ndim not in (2, 3) or k.ndim != q.ndim or v.shape != k.shape:
        return False
    return q.ndim == 2 or q.shape[0] == k.shape[0]


_scratch = threading.local()


def _scratch_array(name: str, shape: tuple[int, ...], dtype: np.dtype) -> FloatArray:
    """A work array of this thread, reused by the next call with the same shape.

    The projections and the heads' outputs are internal, so they need not be
    fresh memory. Allocating them anew on every call costs more than it seems:
    once freed, large blocks go back to the operating system, and the next call
    pays a page fault per 4 KiB touched (35 % of the time at B=8, L=128,
    d=256). Each calling thread keeps its own arrays (calls from different
    threads never share one), and only the latest shape per name, so what stays
    allocated is at most ``O(B·L·d)`` -- small beside the ``(B, h, L, L)``
    weights every call returns.
    """
    arrays = _scratch.__dict__.setdefault("arrays", {})
    array = arrays.get(name)
    if array is None or array.shape != shape or array.dtype != dtype:
        array = arrays[name] = np.empty(shape, dtype=dtype)
    return array


def _row_chunks(rows: int, parts: int) -> list[tuple[int, int]]:
    """Split ``range(rows)`` into ``parts`` nearly equal ``(start, stop)`` chunks."""
    parts = max(1, min(parts, rows))
    return [(rows * i // parts, rows * (i + 1) // parts) for i in range(parts)]


def project_and_attend_fast(
    q: FloatArray,
    k: FloatArray,
    v: FloatArray,
    params: dict[str, FloatArray | None],
    num_heads: int,
    mask: ArrayLike | None,
) -> tuple[FloatArray, FloatArray]:
    """Same contract as :func:`helpers.attention.project_and_attend`, laid out for speed.

    ``q (B, L_q, d)`` or ``(L_q, d)``; ``k``, ``v`` ``(B, L_k, d)`` or ``(L_k, d)``;
    returns the output ``(B, L_q, d)`` and weights ``(B, h, L_q, L_k)`` (without
    the ``B`` axis for 2-D tokens). Call only when :func:`fast_path_applies`.
    """
    from helpers.attention import _check_mask  # here: helpers.attention imports this module

    self_attention = q is k and k is v
    shared_kv = k is v
    batched = q.ndim == 3
    if not batched:  # work on (1, L, d); the axis is dropped again at the end
        q, k, v = q[np.newaxis], k[np.newaxis], v[np.newaxis]
    B, L_q, d = q.shape
    L_k = k.shape[1]
    h = num_heads
    d_k = d // h
    dtype = q.dtype
    lead = (B,) if batched else ()

    # ---- mask: validated against the scores' shape, then a broadcast view (no copy)
    hide = add = None
    if mask is not None:
        m = _check_mask(mask, (*lead, h, L_q, L_k))
        if m.dtype.kind == "b":
            hide = np.broadcast_to(~m, (B, h, L_q, L_k))  # True = must not attend
        else:  # additive; cast once so float32 scores stay float32
            add = np.broadcast_to(m.astype(dtype, copy=False), (B, h, L_q, L_k))

    # ---- projection weights; 1/sqrt(d_k) folded into W_q and b_q (a Python float keeps dtype)
    scale = 1.0 / math.sqrt(d_k)
    W = {"q": params["W_q"] * scale, "k": params["W_k"], "v": params["W_v"]}
    b = {"q": None if params["b_q"] is None else params["b_q"] * scale,
         "k": params["b_k"], "v": params["b_v"]}

    def fused(names: str) -> tuple[FloatArray, FloatArray | None]:
        """``[W_a | W_b ...]`` (d, n·d) and the matching bias (n·d,) or None."""
        W_cat = np.concatenate([W[n] for n in names], axis=1)
        if all(b[n] is None for n in names):
            return W_cat, None
        zeros = np.zeros(d, dtype=dtype)
        return W_cat, np.concatenate([zeros if b[n] is None else b[n] for n in names])

    # Each job: (input rows (N, d), weight (d, n·d), bias or None, output rows (N, n·d)).
    jobs: list[tuple[FloatArray, FloatArray, FloatArray | None, FloatArray]] = []

    def project(x: FloatArray, names: str) -> FloatArray:
        """Queue ``x @ [W ...] + b``; return its (B, L, len(names), h, d_k) result view."""
        W_cat, b_cat = fused(names)
        out = _scratch_array(f"projection {names}", (x.shape[0] * x.shape[1], W_cat.shape[1]),
                             dtype)
        jobs.append((x.reshape(-1, d), W_cat, b_cat, out))
        return out.reshape(x.shape[0], x.shape[1], len(names), h, d_k)

    if self_attention:
        P_q = P_k = P_v = project(q, "qkv")  # one (B·L, d) @ (d, 3d) product
        i_q, i_k, i_v = 0, 1, 2
    elif shared_kv:  # cross-attention: K and V come from the same sequence
        P_q = project(q, "q")
        P_k = P_v = project(k, "kv")
        i_q, i_k, i_v = 0, 0, 1
    else:
        P_q, P_k, P_v = project(q, "q"), project(k, "k"), project(v, "v")
        i_q = i_k = i_v = 0
    # Heads as strided views of the projections (no copies):
    Q = P_q[:, :, i_q].transpose(0, 2, 1, 3)  # (B, h, L_q, d_k), already scaled
    K = P_k[:, :, i_k].transpose(0, 2, 1, 3)  # (B, h, L_k, d_k)
    V = P_v[:, :, i_v].transpose(0, 2, 1, 3)  # (B, h, L_k, d_k)

    weights = np.empty((B, h, L_q, L_k), dtype=dtype)  # returned; also the tiles' workspace
    heads = _scratch_array("heads", (B, L_q, h, d_k), dtype)  # = concat(heads) as (B, L_q, d)
    out = np.empty((B * L_q, d), dtype=dtype)

    # ---- work lists: projection row chunks, attention tiles, output row chunks
    workers = num_workers()
    proj_items = [(job, r0, r1) for job in jobs for r0, r1 in _row_chunks(len(job[0]), workers)]
    rows = max(1, min(L_q, TILE_ELEMENTS // L_k))  # query rows per tile
    group = max(1, min(h, TILE_ELEMENTS // (rows * L_k)))  # heads per tile (small L)
    tiles = [(bi, h0, min(h0 + group, h), r0, min(r0 + rows, L_q))
             for bi in range(B) for h0 in range(0, h, group) for r0 in range(0, L_q, rows)]
    out_items = _row_chunks(B * L_q, workers)

    def project_rows(start: int, stop: int) -> None:
        for (x2, W_cat, b_cat, P), r0, r1 in proj_items[start:stop]:
            np.matmul(x2[r0:r1], W_cat, out=P[r0:r1])  # (rows, d) @ (d, n·d)
            if b_cat is not None:
                P[r0:r1] += b_cat

    # A row whose sum exp(s - top) is at least floor has its own maximum within 60 (float32)
    # or 600 (float64) of the tile's top: its exponentials stay normal numbers down to
    # e^-27 (e^-108) of its largest one, so nothing that matters underflows.
    floor = L_k * math.exp(-60.0 if dtype == np.float32 else -600.0)

    def scores_into(s: FloatArray, Q_t: FloatArray, K_g: FloatArray,
                    bi: int, h0: int, h1: int, r0: int, r1: int) -> None:
        """Write the tile's scaled, masked scores (g, R, L_k) into ``s``."""
        np.matmul(Q_t, K_g.transpose(0, 2, 1), out=s)  # BLAS reads K^T as is
        if hide is not None:
            np.copyto(s, -np.inf, where=hide[bi, h0:h1, r0:r1])
        elif add is not None:
            s += add[bi, h0:h1, r0:r1]

    def attend_tiles(start: int, stop: int) -> None:
        group_of = None  # (batch, first head) whose K and V this thread holds
        for bi, h0, h1, r0, r1 in tiles[start:stop]:
            if group_of != (bi, h0):
                # Contiguous copies of the head group's keys and values (O(L_k d_k) each, reused
                # by every row tile of the group): BLAS multiplies them faster than strided views.
                K_g = np.ascontiguousarray(K[bi, h0:h1])  # (g, L_k, d_k)
                V_g = np.ascontiguousarray(V[bi, h0:h1])  # (g, L_k, d_k)
                group_of = (bi, h0)
            Q_t = np.ascontiguousarray(Q[bi, h0:h1, r0:r1])  # (g, R, d_k)
            s = weights[bi, h0:h1, r0:r1]  # (g, R, L_k): scores, then weights, in place
            scores_into(s, Q_t, K_g, bi, h0, h1, r0, r1)
            # Softmax is unchanged by subtracting any constant from a row. One constant for
            # the whole tile, its largest score, saves a pass finding every row's maximum.
            top = float(s.max())  # NaN if any score is NaN
            if not top < np.inf:
                raise ValueError("softmax input contains NaN or +inf")
            s -= top if top > -np.inf else 0.0  # -inf: every score of the tile is masked
            np.exp(s, out=s)  # (g, R, L_k), each <= 1
            total = s.sum(axis=-1, keepdims=True)  # (g, R, 1)
            if (total >= floor).all():
                s *= 1.0 / total  # rows sum to 1
            else:
                # A row far below the tile's maximum would lose precision to underflow (and
                # a fully masked row sums to 0): redo this tile with each row's own maximum.
                scores_into(s, Q_t, K_g, bi, h0, h1, r0, r1)
                peak = s.max(axis=-1, keepdims=True)  # (g, R, 1)
                peak[peak == -np.inf] = 0.0  # fully masked row: exp(-inf - 0) = 0, not NaN
                s -= peak
                np.exp(s, out=s)
                total = s.sum(axis=-1, keepdims=True)
                s *= np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
            # (g, R, L_k) @ (g, L_k, d_k) written into heads[bi, r0:r1, h0:h1] viewed (g, R, d_k)
            np.matmul(s, V_g, out=heads[bi, r0:r1, h0:h1].transpose(1, 0, 2))

    heads_2d = heads.reshape(B * L_q, d)  # combining heads is this free reshape
    W_o, b_o = params["W_o"], params["b_o"]

    def output_rows(start: int, stop: int) -> None:
        for r0, r1 in out_items[start:stop]:
            np.matmul(heads_2d[r0:r1], W_o, out=out[r0:r1])
            if b_o is not None:
                out[r0:r1] += b_o

    run_blocks(
        [project_rows, attend_tiles, output_rows],
        [len(proj_items), len(tiles), len(out_items)],
    )
    out_3d = out.reshape(B, L_q, d)
    if not batched:
        return out_3d[0], weights[0]
    return out_3d, weights
