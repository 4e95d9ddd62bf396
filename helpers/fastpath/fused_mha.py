r"""The fast path of multi-head attention (used by ``multi_head_attention`` and the class).

It computes exactly what the readable version in :mod:`helpers.multihead` computes --
project, split heads, scaled dot-product attention per head, combine, project --
and returns the same output and per-head weights (equal within float rounding).
What differs is *how* the work is laid out, so that NumPy spends its time in
matrix products instead of in memory traffic and Python:

1. **One fused projection.** For self-attention ``x @ [W_q | W_k | W_v]`` is one
   ``(B·L, d) @ (d, 3d)`` product instead of three (``[W_k | W_v]`` when keys and
   values come from one array). The concatenation is made afresh on every call
   (``O(d²)``), so a weight changed between calls can never be served stale.
2. **The scale folded into** ``W_q``. ``(x W_q / \sqrt{d_k}) K^T`` equals
   ``(QK^T)/\sqrt{d_k}``, but scaling the ``d × d`` matrix costs ``d²`` operations
   where scaling the scores costs ``B·h·L²``.
3. **Heads as strided views.** The projection's ``(B, L, n, h, d_k)`` result is
   viewed as ``Q``, ``K``, ``V`` of shape ``(B, h, L, d_k)`` by transposing
   strides; each tile copies just the rows it multiplies into contiguous memory.
   The heads' outputs are written straight into a ``(B, L, h, d_k)`` buffer,
   which *is* the combined ``(B, L, d)`` matrix: combining heads costs nothing.
4. **Cache-sized tiles, softmax in place.** The scores of a tile of
   ``(heads, rows)`` -- about 1 MiB -- are written by the product directly
   into the weights array that is returned (or, with ``need_weights=False``,
   into one tile-sized buffer per thread), and normalised there while they are
   still in the CPU cache: subtract the tile's maximum, ``exp`` in place,
   multiply by the reciprocal of the row sum. (Softmax does not change when a
   row is shifted by any constant; one shift for the whole tile saves a pass
   computing each row's maximum. A row so far below the tile's maximum that
   its exponentials would underflow sends the tile back through per-row maxima.)
5. **Threads over independent tiles**, one per core, with the BLAS kept to one
   thread meanwhile without touching the user's limits (see :mod:`helpers.fastpath.threads`).
6. **Work arrays reused** within a byte budget (:mod:`helpers.fastpath.scratch`). What a
   call returns is always new memory.
7. **Cheap validation.** The inputs were checked by the caller. A tile's
   scores are checked for overflow only when the largest ``|Q|`` and ``|K|``
   entries allow it (``d_k·max|Q|·max|K|`` near the dtype's range); ``+inf``
   after an additive mask shows in the tile's maximum, which the softmax
   computes anyway; the output is checked once, ``O(B·L·d)``.

Every array stays in the input dtype: float32 in, float32 throughout.
"""

from __future__ import annotations

import math

import numpy as np

from helpers._validate import abs_max, products_may_overflow, scores_overflow_error
from helpers.fastpath import scratch as _scratch
from helpers.fastpath.threads import num_workers, run_blocks

FloatArray = np.ndarray

TILE_ELEMENTS = 1 << 18
"""Target number of scores per tile: 256 Ki floats = 1 MiB in float32, about
half a core's L2 cache, large enough that Python's per-tile cost is small and
the matrix products run near full speed."""


def _row_chunks(rows: int, parts: int) -> list[tuple[int, int]]:
    """Split ``range(rows)`` into ``parts`` nearly equal ``(start, stop)`` chunks."""
    parts = max(1, min(parts, rows))
    return [(rows * i // parts, rows * (i + 1) // parts) for i in range(parts)]


def _empty_result(B: int, h: int, L_q: int, L_k: int, d: int, b_o: FloatArray | None,
                  dtype: np.dtype, need_weights: bool) -> tuple[FloatArray, FloatArray | None]:
    """Batch 0, no queries or no keys: zero weights, zero heads, so the output is ``b_o``."""
    out = np.zeros((B, L_q, d), dtype=dtype)
    if b_o is not None:
        out += b_o
    return out, (np.zeros((B, h, L_q, L_k), dtype=dtype) if need_weights else None)


def project_and_attend_fast(
    q: FloatArray,
    k: FloatArray,
    v: FloatArray,
    params: dict[str, FloatArray | None],
    num_heads: int,
    mask: np.ndarray | None,
    *,
    need_weights: bool = True,
) -> tuple[FloatArray, FloatArray | None]:
    """Same contract as :func:`helpers.multihead.project_and_attend`, laid out for speed.

    Takes what ``project_and_attend`` validated: ``q (B, L_q, d)`` or ``(L_q, d)``;
    ``k (B, L_k, kdim)``, ``v (B, L_k, vdim)`` (or without ``B``); parameters and
    tokens of one float dtype, all finite; ``mask`` checked by
    :func:`helpers._mask_validation.check_multihead_mask` (float masks already
    cast) or None. Returns the output ``(B, L_q, d)`` and weights
    ``(B, h, L_q, L_k)`` or None (without the ``B`` axis for 2-D tokens).
    """
    self_attention = q is k and k is v
    shared_kv = k is v
    batched = q.ndim == 3
    if not batched:  # work on (1, L, d); the axis is dropped again at the end
        q, k, v = q[np.newaxis], k[np.newaxis], v[np.newaxis]
    B, L_q, d = q.shape
    L_k = k.shape[1]
    h = num_heads
    dtype = q.dtype

    if B == 0 or L_q == 0 or L_k == 0:
        out, weights = _empty_result(B, h, L_q, L_k, d, params["b_o"], dtype, need_weights)
    else:
        out, weights = _attend(q, k, v, params, h, mask, need_weights, self_attention, shared_kv)
    if not batched:
        return out[0], (None if weights is None else weights[0])
    return out, weights


def _attend(q: FloatArray, k: FloatArray, v: FloatArray, params: dict[str, FloatArray | None],
            h: int, mask: np.ndarray | None, need_weights: bool, self_attention: bool,
            shared_kv: bool) -> tuple[FloatArray, FloatArray | None]:
    """The tiled, threaded computation on ``(B, L, width)`` tokens with ``B, L_q, L_k >= 1``."""
    B, L_q, d = q.shape
    L_k = k.shape[1]
    d_k = d // h
    dtype = q.dtype

    # ---- mask: a broadcast view (no copy)
    hide = add = None
    if mask is not None:
        if mask.dtype.kind == "b":
            hide = np.broadcast_to(~mask, (B, h, L_q, L_k))  # True = must not attend
        else:  # additive, already in the scores' dtype
            add = np.broadcast_to(mask, (B, h, L_q, L_k))

    # ---- projection weights; 1/sqrt(d_k) folded into W_q and b_q (a Python float keeps dtype)
    scale = 1.0 / math.sqrt(d_k)
    W = {"q": params["W_q"] * scale, "k": params["W_k"], "v": params["W_v"]}
    b = {"q": None if params["b_q"] is None else params["b_q"] * scale,
         "k": params["b_k"], "v": params["b_v"]}

    def fused(names: str) -> tuple[FloatArray, FloatArray | None]:
        """``[W_a | W_b ...]`` (width, n·d) and the matching bias (n·d,) or None."""
        W_cat = np.concatenate([W[n] for n in names], axis=1)
        if all(b[n] is None for n in names):
            return W_cat, None
        zeros = np.zeros(d, dtype=dtype)
        return W_cat, np.concatenate([zeros if b[n] is None else b[n] for n in names])

    # Each job: (input rows (N, width), weight (width, n·d), bias or None, output rows (N, n·d)).
    jobs: list[tuple[FloatArray, FloatArray, FloatArray | None, FloatArray]] = []
    used = ["heads"]

    def project(x: FloatArray, names: str) -> FloatArray:
        """Queue ``x @ [W ...] + b``; return its (B, L, len(names), h, d_k) result view."""
        W_cat, b_cat = fused(names)
        used.append(f"projection {names}")
        out = _scratch.work_array(used[-1], (x.shape[0] * x.shape[1], W_cat.shape[1]), dtype)
        jobs.append((x.reshape(-1, x.shape[-1]), W_cat, b_cat, out))
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

    weights = np.empty((B, h, L_q, L_k), dtype=dtype) if need_weights else None
    heads = _scratch.work_array("heads", (B, L_q, h, d_k), dtype)  # = concat(heads), (B, L_q, d)
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
            np.matmul(x2[r0:r1], W_cat, out=P[r0:r1])  # (rows, width) @ (width, n·d)
            if b_cat is not None:
                P[r0:r1] += b_cat

    # A row whose sum exp(s - top) is at least floor has its own maximum within 60 (float32)
    # or 600 (float64) of the tile's top: its exponentials stay normal numbers down to
    # e^-27 (e^-108) of its largest one, so nothing that matters underflows.
    floor = L_k * math.exp(-60.0 if dtype == np.float32 else -600.0)

    def mask_into(s: FloatArray, bi: int, h0: int, h1: int, r0: int, r1: int) -> None:
        if hide is not None:
            np.copyto(s, -np.inf, where=hide[bi, h0:h1, r0:r1])
        elif add is not None:
            s += add[bi, h0:h1, r0:r1]

    def tile_buffer(g: int, R: int) -> FloatArray:
        """This thread's (g, R, L_k) scores buffer when the weights are not returned."""
        flat = _scratch.work_array("tile", (group * rows * L_k,), dtype)
        return flat[:g * R * L_k].reshape(g, R, L_k)

    def attend_tiles(start: int, stop: int) -> None:
        group_of = None  # (batch, first head) whose K and V this thread holds
        for bi, h0, h1, r0, r1 in tiles[start:stop]:
            if group_of != (bi, h0):
                # Contiguous copies of the head group's keys and values (O(L_k d_k) each, reused
                # by every row tile of the group): BLAS multiplies them faster than strided views.
                K_g = np.ascontiguousarray(K[bi, h0:h1])  # (g, L_k, d_k)
                V_g = np.ascontiguousarray(V[bi, h0:h1])  # (g, L_k, d_k)
                k_max = abs_max(K_g)
                q_max = abs_max(Q[bi, h0:h1])  # all rows of the group's queries, once
                check = products_may_overflow(q_max, k_max, d_k, 1.0, dtype)
                group_of = (bi, h0)
            Q_t = np.ascontiguousarray(Q[bi, h0:h1, r0:r1])  # (g, R, d_k)
            # (g, R, L_k): scores, then weights, in place
            s = weights[bi, h0:h1, r0:r1] if weights is not None else tile_buffer(h1 - h0, r1 - r0)
            np.matmul(Q_t, K_g.transpose(0, 2, 1), out=s)  # BLAS reads K^T as is
            if check and not np.isfinite(s).all():
                raise scores_overflow_error(dtype, "the projected queries and keys", q_max, k_max)
            mask_into(s, bi, h0, h1, r0, r1)
            # Softmax is unchanged by subtracting any constant from a row. One constant for
            # the whole tile, its largest score, saves a pass finding every row's maximum.
            top = float(s.max())  # +inf if adding a float mask overflowed
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
                np.matmul(Q_t, K_g.transpose(0, 2, 1), out=s)
                mask_into(s, bi, h0, h1, r0, r1)
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

    try:
        run_blocks(
            [project_rows, attend_tiles, output_rows],
            [len(proj_items), len(tiles), len(out_items)],
            workers,
        )
    finally:
        _scratch.keep_only([*used, "tile"])
    if not np.isfinite(out).all():
        raise ValueError(
            f"multi-head attention overflows {dtype}: the output is not finite (a value or "
            "output projection overflowed); scale the inputs down or compute in float64"
        )
    return out.reshape(B, L_q, d), weights
