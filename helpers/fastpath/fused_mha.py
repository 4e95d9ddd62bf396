r"""The fast path of multi-head attention: one forward pass behind ``multi_head_attention`` and
the layer (:class:`helpers.MultiHeadAttention`, which keeps what its backward pass needs).

It computes what :func:`helpers.multihead.project_and_attend_reference` computes -- project,
split heads, attend per head, combine, project -- equal within float rounding (the tests
compare them), laid out so that NumPy spends its time in matrix products:

1. **One fused projection per distinct input** (the same memory counts as the same input):
   ``x @ [s W_q | W_k | W_v]`` is one ``(B·L, d) @ (d, 3d)`` product for self-attention. The
   concatenation is made on every call (``O(d²)``): a weight changed in place is never stale.
2. **The scale** ``s = 1/\sqrt{d_k}`` **folded into** ``W_q``: ``d²`` products, not ``B·h·L²``.
3. **Heads as strided views** of the ``(B, L, n, h, d_k)`` projection, never copied; the heads'
   outputs go into a ``(B, L, h, d_k)`` buffer, which *is* the combined ``(B, L, d)``.
4. **Tiles of about a megabyte of scores** ``(heads, rows)``, written by the product into the
   weights (or a buffer of the thread's) and normalised there while in the CPU cache. Softmax
   does not change when a row is shifted by a constant, and needs no shift while no score
   exceeds 60 (600 in float64): the tile is exponentiated as it is, else shifted by its largest
   score -- one maximum per tile, not per row; rows whose sums show that their exponentials
   underflowed are redone with their own maxima. Row sums are a product with ones.
5. **Threads without waits**: when the batch divides among the threads, each projects, attends
   and projects back its own block of sequences; otherwise every stage is shared by the threads
   in turn. The BLAS is kept to one thread meanwhile (:mod:`.threads`).
6. **Work arrays reused** within a byte budget (:mod:`.scratch`); what a call returns is new.
7. **Cheap checks.** The caller validated the inputs. An overflowing score shows in the tile's
   minimum (before the mask) or maximum (after it); output rows are checked while in cache.
Every array stays in the input dtype: float32 in, float32 throughout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from helpers._validate import FloatArray
from helpers.fastpath import scratch as _scratch
from helpers.fastpath.threads import num_workers, run_blocks
from helpers.fastpath.tiled_matmul import chunks, tiles_of
from helpers.rope import apply_rope

TILE_ELEMENTS = 1 << 18
"""Scores per tile of the forward pass: 256 Ki floats = 1 MiB in float32, half of a recent
core's L2 cache, large enough that Python's cost per tile is small."""
EXP_SAFE = {np.dtype(np.float32): 60.0, np.dtype(np.float64): 600.0}
"""Largest score exponentiated without a shift: ``e^60`` (``e^600``) leaves room to sum many."""

Alloc = Callable[[str, tuple[int, ...], np.dtype], FloatArray]


def overflow_error(dtype: np.dtype, what: str) -> ValueError:
    return ValueError(f"multi-head attention overflows {dtype}: {what} are not finite although "
                      "the inputs are; scale the inputs or weights down, or compute in float64")


@dataclass
class Projection:
    """One distinct input and its fused projection ``x @ W + b`` for the names it feeds.

    ``x (B, L, d_in)``; ``W (d_in, n·d)`` holds ``[s W_q | W_k | W_v]`` for the ``n`` names
    (``"qkv"``, ``"kv"``, ``"q"``, ...), ``b`` their biases or None; ``out (B, L, n, h, d_k)``.
    """

    names: str
    x: FloatArray
    W: FloatArray
    b: FloatArray | None
    out: FloatArray

    def heads(self, name: str) -> FloatArray:
        """The ``(B, h, L, d_k)`` view of projection ``name`` (no copy)."""
        return self.out[:, :, self.names.index(name)].transpose(0, 2, 1, 3)


@dataclass
class Attention:
    """What one forward pass computed (3-D tokens, a batch axis)."""

    projections: list[Projection]
    Q: FloatArray  # (B, h, L_q, d_k), scaled by s (and rotated)
    K: FloatArray  # (B, h, L_k, d_k) (rotated)
    V: FloatArray  # (B, h, L_k, d_k)
    weights: FloatArray | None  # P (B, h, L_q, L_k) before dropout, None if not kept
    dropped: FloatArray | None  # P after dropout (P itself without dropout)
    heads: FloatArray  # (B, L_q, h, d_k): the combined heads
    out: FloatArray  # (B, L_q, d_model)


def same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` are the same numbers in the same place (the same object or views
    of the same memory with the same layout)."""
    return a is b or (a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
                      and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def input_groups(q: FloatArray, k: FloatArray, v: FloatArray) -> list[tuple[str, FloatArray]]:
    """The distinct inputs among ``q, k, v`` and the projections each feeds, in that order:
    ``[("qkv", x)]`` for self-attention, ``[("q", q), ("kv", kv)]``, ..."""
    groups: list[tuple[str, FloatArray]] = []
    for name, x in zip("qkv", (q, k, v), strict=True):
        i = next((i for i, (_, y) in enumerate(groups) if same_memory(x, y)), None)
        if i is None:
            groups.append((name, x))
        else:
            groups[i] = (groups[i][0] + name, groups[i][1])
    return groups


def project_and_attend_fast(
    q: FloatArray, k: FloatArray, v: FloatArray, params: dict[str, FloatArray | None],
    num_heads: int, mask: np.ndarray | None, *, need_weights: bool = True,
) -> tuple[FloatArray, FloatArray | None]:
    """Same contract as :func:`helpers.multihead.project_and_attend`, laid out for speed.

    Takes what ``project_and_attend`` validated: ``q (B, L_q, d)`` or ``(L_q, d)``;
    ``k (B, L_k, kdim)``, ``v (B, L_k, vdim)`` (or without ``B``); parameters and tokens of
    one float dtype, all finite; ``mask`` checked by
    :func:`helpers._mask_validation.check_multihead_mask` (a float mask cast) or None.
    Returns the output ``(B, L_q, d)`` and weights ``(B, h, L_q, L_k)`` or None (without the
    ``B`` axis for 2-D tokens).
    """
    batched = q.ndim == 3
    groups = input_groups(*(x if batched else x[np.newaxis] for x in (q, k, v)))
    try:
        run = attend(groups, params, num_heads, mask, _scratch.work_array,
                     weights="returned" if need_weights else "none")
    finally:
        _scratch.keep_only([*(f"projection {names}" for names, _ in groups), "heads", "tile"])
    if not batched:
        return run.out[0], (None if run.weights is None else run.weights[0])
    return run.out, run.weights


def attend(
    groups: list[tuple[str, FloatArray]], params: dict[str, FloatArray | None], h: int,
    mask: np.ndarray | None, alloc: Alloc, *, weights: str, copy_inputs: bool = False,
    dropout_p: float = 0.0, seed: int | None = None, rope_base: float | None = None,
) -> Attention:
    """The forward pass on 3-D tokens grouped by :func:`input_groups`.

    ``alloc(name, shape, dtype)`` gives the work arrays (projections, heads, kept weights);
    ``weights`` is ``"none"`` (only the output is needed), ``"kept"`` (``P`` and ``Pd`` for the
    backward pass) or ``"returned"`` (as kept, the returned one new memory). ``copy_inputs``
    projects copies of the inputs (the layer's record). With ``dropout_p > 0`` every tile draws
    its keep-mask from a generator seeded by ``(seed, batch, head, first row)``: the masks do not
    depend on which thread runs the tile. ``rope_base`` rotates queries and keys at positions
    ``0..L-1``.
    """
    by_name = {n: x for names, x in groups for n in names}
    B, L_q, L_k = by_name["q"].shape[0], by_name["q"].shape[1], by_name["k"].shape[1]
    d = params["W_q"].shape[1]
    d_k, dtype = d // h, by_name["q"].dtype
    scale = 1.0 / math.sqrt(d_k)  # a Python float keeps float32 float32
    W = {"q": params["W_q"] * scale, "k": params["W_k"], "v": params["W_v"]}
    b = {"q": None if params["b_q"] is None else params["b_q"] * scale,
         "k": params["b_k"], "v": params["b_v"]}
    projections, jobs = [], []
    for names, x in groups:
        W_cat = np.concatenate([W[n] for n in names], axis=1)  # (d_in, n·d)
        b_cat = None
        if any(b[n] is not None for n in names):
            b_cat = np.concatenate([np.zeros(d, dtype) if b[n] is None else b[n] for n in names])
        x2 = x.reshape(-1, x.shape[-1])  # (B·L, d_in)
        kept = alloc(f"tokens {names}", x.shape, dtype).reshape(x2.shape) if copy_inputs else x2
        P2 = alloc(f"projection {names}", (x2.shape[0], W_cat.shape[1]), dtype)
        projections.append(Projection(names, kept.reshape(x.shape), W_cat, b_cat,
                                      P2.reshape(*x.shape[:2], len(names), h, d_k)))
        jobs.append((x2, kept, W_cat, b_cat, P2))
    views = {n: p.heads(n) for p in projections for n in p.names}
    Q, K, V = views["q"], views["k"], views["v"]  # (B, h, L, d_k) strided views

    shape = (B, h, L_q, L_k)
    P = Pd = None
    if weights != "none":  # what is returned is new memory (malloc's: reused call after call)
        last = weights == "returned"
        P = np.empty(shape, dtype) if last and not dropout_p else alloc("weights", shape, dtype)
        Pd = P if not dropout_p else (np.empty(shape, dtype) if last
                                      else alloc("dropped", shape, dtype))
    heads = alloc("heads", (B, L_q, h, d_k), dtype)
    out = np.empty((B * L_q, d), dtype)
    hide = add = None
    if mask is not None and mask.dtype.kind == "b":
        hide = np.broadcast_to(~mask, shape)  # True = must not attend
    elif mask is not None:
        add = np.broadcast_to(mask, shape)  # additive, already in the scores' dtype

    workers = num_workers()
    # Whole batch elements per thread when they divide evenly: each thread projects, attends
    # and projects back its own sequences, with no wait between the stages and the projections
    # still in its cache. Otherwise (one sequence, say) every stage is shared by all threads.
    whole, blocks = B % workers == 0 and rope_base is None, chunks(B, workers)
    proj_items = [(job, r0, r1) for job in jobs for r0, r1 in chunks(len(job[0]), workers)]
    out_items = chunks(B * L_q, workers)
    if whole:  # item i of each list: batch elements blocks[i] (the same rows as otherwise)
        proj_items = [(job, b0 * len(job[0]) // B, b1 * len(job[0]) // B)
                      for b0, b1 in blocks for job in jobs]
        out_items = [(b0 * L_q, b1 * L_q) for b0, b1 in blocks]
    rows, group = tiles_of(B, h, L_q, L_k, TILE_ELEMENTS)
    tiles = [(bi, h0, min(h0 + group, h), r0, min(r0 + rows, L_q)) for bi in range(B)
             for h0 in range(0, h, group) for r0 in range(0, L_q, rows)] if L_k else []
    if not L_k:
        heads.fill(0.0)  # no key to attend to: zero weights, zero heads, output b_o

    def project_rows(start: int, stop: int) -> None:
        for (x2, kept, W_cat, b_cat, P2), r0, r1 in proj_items[start:stop]:
            if kept is not x2:
                kept[r0:r1] = x2[r0:r1]
            np.matmul(kept[r0:r1], W_cat, out=P2[r0:r1])  # (rows, d_in) @ (d_in, n·d)
            if b_cat is not None:
                P2[r0:r1] += b_cat

    ones = np.ones(L_k, dtype=dtype)
    limit = EXP_SAFE[np.dtype(dtype)]
    floor = L_k * math.exp(-limit)  # see the per-row branch below
    keep_scale = 0.0 if dropout_p >= 1.0 else 1.0 / (1.0 - dropout_p)

    def mask_into(s: FloatArray, bi: int, h0: int, h1: int, r0: int, r1: int) -> None:
        if hide is not None:
            np.copyto(s, -np.inf, where=hide[bi, h0:h1, r0:r1])
        elif add is not None:
            s += add[bi, h0:h1, r0:r1]

    def attend_tiles(start: int, stop: int) -> None:
        group_of = None  # (batch, first head) whose keys this thread's loop holds
        for bi, h0, h1, r0, r1 in tiles[start:stop]:
            if group_of != (bi, h0):
                K_g, V_g, group_of = K[bi, h0:h1], V[bi, h0:h1], (bi, h0)  # (g, L_k, d_k)
            Q_t = Q[bi, h0:h1, r0:r1]  # (g, R, d_k)
            if P is not None:
                s = P[bi, h0:h1, r0:r1]  # (g, R, L_k): scores, then weights, in place
            else:
                flat = _scratch.work_array("tile", (group * rows * L_k,), dtype)
                s = flat[:(h1 - h0) * (r1 - r0) * L_k].reshape(h1 - h0, r1 - r0, L_k)
            np.matmul(Q_t, K_g.transpose(0, 2, 1), out=s)  # BLAS reads K^T as it is
            top = float(s.max())
            if not (-np.inf < float(s.min()) and top < np.inf):  # checked before the mask
                raise overflow_error(dtype, "the attention scores")
            mask_into(s, bi, h0, h1, r0, r1)
            if add is not None:
                top = float(s.max())  # +inf if adding the float mask overflowed
                if not top < np.inf:
                    raise overflow_error(dtype, "the attention scores plus the mask")
            if top > limit:  # shift the tile by its largest (unmasked) score
                s -= top
            np.exp(s, out=s)  # each <= e^60 (e^600): no overflow, even summed
            total = np.matmul(s, ones)  # (g, R) row sums
            if not (total >= floor).all():
                # A row whose sum is below floor has its largest score more than 60 (600) below
                # the shift, so its exponentials lose precision (a fully masked row sums to 0):
                # redo this tile with each row's own maximum.
                np.matmul(Q_t, K_g.transpose(0, 2, 1), out=s)
                mask_into(s, bi, h0, h1, r0, r1)
                peak = s.max(axis=-1, keepdims=True)  # (g, R, 1)
                peak[peak == -np.inf] = 0.0  # fully masked row: exp(-inf - 0) = 0, not NaN
                s -= peak
                np.exp(s, out=s)
                total = np.matmul(s, ones)
            if total.min() > 0:
                s *= (1.0 / total)[..., np.newaxis]  # rows sum to 1
            else:  # a fully masked row: zero weights
                s *= np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)[..., None]
            w = s
            if dropout_p:
                w = Pd[bi, h0:h1, r0:r1]
                for j in range(h1 - h0):
                    gen = np.random.default_rng([seed, bi, h0 + j, r0])
                    keep = gen.random(s.shape[1:], dtype=np.float32) >= dropout_p
                    np.multiply(s[j], keep, out=w[j])
                w *= keep_scale
            # (g, R, L_k) @ (g, L_k, d_k) into heads[bi, r0:r1, h0:h1] viewed (g, R, d_k)
            np.matmul(w, V_g, out=heads[bi, r0:r1, h0:h1].transpose(1, 0, 2))

    heads2 = heads.reshape(B * L_q, d)  # combining heads is this free reshape
    W_o, b_o = params["W_o"], params["b_o"]

    def output_rows(start: int, stop: int) -> None:
        for r0, r1 in out_items[start:stop]:
            np.matmul(heads2[r0:r1], W_o, out=out[r0:r1])
            if b_o is not None:
                out[r0:r1] += b_o
            if not np.isfinite(out[r0:r1]).all():
                raise overflow_error(dtype, "the output (a value or output projection)")

    def sequences(start: int, stop: int) -> None:  # blocks of whole batch elements
        n, t = len(jobs), len(tiles) // max(B, 1)
        for i in range(start, stop):
            project_rows(i * n, (i + 1) * n)
            attend_tiles(blocks[i][0] * t, blocks[i][1] * t)
            output_rows(i, i + 1)

    stages = [(project_rows, len(proj_items)), (attend_tiles, len(tiles)),
              (output_rows, len(out_items))]
    if whole:
        stages = [(sequences, len(blocks))]
    elif rope_base is not None:  # rotate queries and keys between the projection and attention
        run_blocks([project_rows], [len(proj_items)], workers)
        Q, K = apply_rope(Q, np.arange(L_q), rope_base), apply_rope(K, np.arange(L_k), rope_base)
        stages = stages[1:]
    run_blocks([f for f, _ in stages], [n for _, n in stages], workers)
    return Attention(projections, Q, K, V, P, Pd, heads, out.reshape(B, L_q, d))

