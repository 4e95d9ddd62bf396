r"""The forward pass of :class:`~helpers.MultiHeadAttention`, keeping what its backward needs.

The steps are those of the readable reference path
(:func:`helpers.multihead.project_and_attend`), with dropout and rotary position
embeddings inserted where they belong (``s = 1/sqrt(d_k)``)::

    Q = s (x_q W_q + b_q)   K = x_k W_k + b_k   V = x_v W_v + b_v    split into h heads
    Q, K = rope(Q, positions_q), rope(K, positions_k)       (only with rope_base)
    P  = softmax(Q K^T + mask)                              weights before dropout
    Pd = P * keep / (1 - p)                                 (dropout in training only)
    H  = Pd V,  out = combine(H) W_o + b_o

What the backward pass needs is kept in a :class:`~helpers.mha.backward.ForwardRecord`:
copies of the inputs, the projections (``Q``, ``K``, ``V``), the weights before
and after dropout, and the heads' outputs ``H``.

How the work is laid out (the same ideas as the fast path of
:mod:`helpers.fastpath.fused_mha`): the projections of one input are one matrix product
against the concatenated weights (``[s W_q | W_k | W_v]`` for self-attention),
heads are strided views of it, and the attention runs in tiles of
``(batch, heads, rows)`` of about a megabyte, spread over one thread per core:
each tile's scores are written straight into the returned weights and
normalised there while they are in the CPU cache, then multiply ``V`` into the
heads' output buffer, which *is* the combined ``(B, L_q, d_model)`` matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from helpers.attention import FloatArray
from helpers.fastpath.threads import run_blocks
from helpers.fastpath.tiled_matmul import (
    OVERFLOW_MESSAGE,
    abs_max,
    matmul,
    softmax_in_place,
    tiles_of,
)
from helpers.rope import apply_rope

__all__ = ["ForwardRecord", "Projection", "forward_and_record"]

@dataclass
class Projection:
    """One input and its fused projection ``x @ W + b`` (several of q, k, v at once).

    ``x`` is ``(B, L, d_in)``, ``W`` ``(d_in, n * d_model)`` for the ``n`` names
    in ``names`` (``"qkv"``, ``"kv"``, ``"q"``, ...), ``out`` ``(B, L, n, h, d_k)``.
    ``W`` and ``b`` hold ``s W_q`` and ``s b_q`` for the query block.
    """

    names: str
    x: FloatArray
    W: FloatArray
    b: FloatArray | None
    out: FloatArray

    def heads(self, name: str) -> FloatArray:
        """The ``(B, h, L, d_k)`` view of projection ``name`` (no copy)."""
        return self.out[:, :, self.names.index(name)].transpose(0, 2, 1, 3)


def project_inputs(
    kind: str, q: FloatArray, k: FloatArray, v: FloatArray,
    params: dict[str, FloatArray | None], num_heads: int,
) -> list[Projection]:
    """Copy the inputs and project them: one fused product per distinct input.

    ``kind`` is ``"self"`` (one input feeds q, k and v), ``"kv"`` (keys and
    values from one input) or ``"qkv"``. The copies keep the record independent
    of later changes to the caller's arrays.
    """
    d = params["W_q"].shape[1]
    scale = 1.0 / math.sqrt(d // num_heads)  # a Python float keeps float32 float32
    W = {"q": params["W_q"] * scale, "k": params["W_k"], "v": params["W_v"]}
    b = {"q": None if params["b_q"] is None else params["b_q"] * scale,
         "k": params["b_k"], "v": params["b_v"]}
    groups = {"self": [("qkv", q)], "kv": [("q", q), ("kv", k)],
              "qkv": [("q", q), ("k", k), ("v", v)]}[kind]
    projections = []
    for names, x in groups:
        W_cat = np.concatenate([W[n] for n in names], axis=1)  # (d_in, n * d)
        b_cat = None
        if b[names[0]] is not None:
            b_cat = np.concatenate([b[n] for n in names])
        B, L, d_in = x.shape
        out = matmul(x.reshape(B * L, d_in), W_cat, b_cat)  # (B L, n d): one product
        projections.append(Projection(names, x.copy(), W_cat, b_cat,
                                      out.reshape(B, L, len(names), num_heads, d // num_heads)))
    return projections


def attend_tiles(
    Q: FloatArray, K: FloatArray, V: FloatArray, mask: np.ndarray | None,
    heads_out: FloatArray, *, dropout_p: float, seed: int | None,
) -> tuple[FloatArray, FloatArray]:
    """Softmax attention of ``Q (B, h, L_q, d_k)`` over ``K, V (B, h, L_k, d_k)``, in tiles.

    ``Q`` is already scaled (and rotated). ``mask`` is a checked bool or float
    array broadcastable to ``(B, h, L_q, L_k)``. ``heads_out (B, L_q, h, d_k)``
    receives ``Pd V``. With ``dropout_p > 0`` every tile draws its keep-mask
    from its own generator, seeded by ``(seed, batch, head, first row)``: the
    masks do not depend on which thread runs the tile.

    Returns the weights ``P`` before and ``Pd`` after dropout, ``(B, h, L_q, L_k)``
    (the same array without dropout). Raises ``ValueError`` if a score overflows.
    """
    B, h, L_q, d_k = Q.shape
    L_k = K.shape[2]
    dtype = Q.dtype
    # |q . k| <= d_k max|q| max|k|: only when that bound is near the dtype's largest
    # number can a score overflow (to +inf or -inf), and only then are tiles checked.
    bound = d_k * abs_max(Q) * abs_max(K)
    check_scores = not bound < 0.5 * float(np.finfo(dtype).max)
    P = np.empty((B, h, L_q, L_k), dtype=dtype)
    Pd = P if dropout_p == 0.0 else np.empty_like(P)
    keep_scale = 0.0 if dropout_p >= 1.0 else 1.0 / (1.0 - dropout_p)
    hide = add = None
    if mask is not None:
        if mask.dtype.kind == "b":
            hide = np.broadcast_to(~mask, P.shape)  # True = must not attend
        else:
            add = np.broadcast_to(mask.astype(dtype, copy=False), P.shape)
    rows, group = tiles_of(B, h, L_q, L_k)
    tiles = [(bi, h0, min(h0 + group, h), r0, min(r0 + rows, L_q))
             for bi in range(B) for h0 in range(0, h, group) for r0 in range(0, L_q, rows)]

    def run(start: int, stop: int) -> None:
        group_of = None
        for bi, h0, h1, r0, r1 in tiles[start:stop]:
            if group_of != (bi, h0):
                K_g = np.ascontiguousarray(K[bi, h0:h1])  # (g, L_k, d_k)
                V_g = np.ascontiguousarray(V[bi, h0:h1])
                group_of = (bi, h0)
            s = P[bi, h0:h1, r0:r1]  # (g, R, L_k): scores, then weights, in place
            np.matmul(Q[bi, h0:h1, r0:r1], K_g.transpose(0, 2, 1), out=s)
            if check_scores and not np.isfinite(s).all():
                raise ValueError(OVERFLOW_MESSAGE.format(dtype=dtype))
            if hide is not None:
                np.copyto(s, -np.inf, where=hide[bi, h0:h1, r0:r1])
            elif add is not None:
                s += add[bi, h0:h1, r0:r1]
            softmax_in_place(s)
            w = s
            if dropout_p > 0.0:
                w = Pd[bi, h0:h1, r0:r1]
                for j in range(h1 - h0):
                    gen = np.random.default_rng([seed, bi, h0 + j, r0])
                    keep = gen.random(s.shape[1:], dtype=np.float32) >= dropout_p
                    np.multiply(s[j], keep, out=w[j])
                w *= keep_scale
            np.matmul(w, V_g, out=heads_out[bi, r0:r1, h0:h1].transpose(1, 0, 2))

    if tiles:
        run_blocks([run], [len(tiles)])
    return P, Pd


@dataclass
class ForwardRecord:
    """What one forward pass of the layer leaves for its backward pass (all 3-D/4-D).

    An unbatched call is stored with a batch axis of 1 and ``batched=False``.
    """

    kind: str  # "self" (layer(x)), "kv" (layer(q, kv)) or "qkv" (layer(q, k, v))
    batched: bool
    projections: list[Projection]  # copies of the inputs and their projections
    Q: FloatArray  # (B, h, L_q, d_k), scaled by 1/sqrt(d_k) (and rotated)
    K: FloatArray  # (B, h, L_k, d_k) (rotated)
    V: FloatArray  # (B, h, L_k, d_k)
    weights: FloatArray  # P (B, h, L_q, L_k) before dropout
    dropped: FloatArray  # Pd after dropout (the same array without dropout)
    heads: FloatArray  # H = Pd V combined, (B, L_q, d_model)
    W_o: FloatArray  # a copy of W_o as used
    has_bias: bool
    rope: tuple[np.ndarray, np.ndarray, float] | None  # positions of queries, keys; base


def forward_and_record(
    kind: str, q: FloatArray, k: FloatArray, v: FloatArray,
    params: dict[str, FloatArray | None], num_heads: int, mask: np.ndarray | None, *,
    batched: bool, dropout_p: float = 0.0, rng: np.random.Generator | None = None,
    rope_base: float | None = None,
) -> tuple[FloatArray, ForwardRecord]:
    """The layer's forward pass on 3-D inputs; returns the output and its record.

    Parameters
    ----------
    kind : "self", "kv" or "qkv"
        Which inputs are the same array (``k is q`` / ``v is k``).
    q : ndarray, shape (B, L_q, d_model)
    k : ndarray, shape (B, L_k, kdim)
    v : ndarray, shape (B, L_k, vdim)
    params : dict
        ``W_q (d_model, d_model)``, ``W_k (kdim, d_model)``, ``W_v (vdim, d_model)``,
        ``W_o (d_model, d_model)``, biases ``(d_model,)`` or None; validated.
    mask : ndarray or None
        A checked bool/float mask broadcastable to ``(B, h, L_q, L_k)``.
    dropout_p : float
        Probability of dropping each weight (0: no dropout).
    rng : numpy Generator
        Source of the dropout masks (one draw per call seeds the tiles' generators).
    rope_base : float or None
        Rotate queries at positions ``0..L_q-1`` and keys at ``0..L_k-1``.

    Returns
    -------
    output : ndarray, shape (B, L_q, d_model)
    record : ForwardRecord
        ``record.dropped`` holds the weights after dropout, ``(B, h, L_q, L_k)``.
    """
    h = num_heads
    projections = project_inputs(kind, q, k, v, params, h)
    for proj in projections:
        if not np.isfinite(proj.out).all():
            raise ValueError(
                f"the projections x @ W_{proj.names[0]} overflow {proj.out.dtype}: scale the "
                "inputs or weights down, or compute in float64"
            )
    by_name = {n: proj for proj in projections for n in proj.names}
    Q, K, V = (by_name[n].heads(n) for n in "qkv")  # (B, h, L, d_k) strided views
    B, _, L_q, d_k = Q.shape
    L_k = K.shape[2]
    rope = None
    if rope_base is not None:
        rope = (np.arange(L_q), np.arange(L_k), rope_base)
        Q, K = apply_rope(Q, rope[0], rope_base), apply_rope(K, rope[1], rope_base)
    seed = None
    if dropout_p > 0.0:
        if rng is None:
            raise ValueError("dropout needs a random generator")
        seed = int(rng.integers(2**63))
    heads = np.empty((B, L_q, h, d_k), dtype=Q.dtype)  # = concat(heads) as (B, L_q, d)
    P, Pd = attend_tiles(Q, K, V, mask, heads, dropout_p=dropout_p, seed=seed)
    H = heads.reshape(B, L_q, h * d_k)
    out = matmul(H.reshape(B * L_q, h * d_k), params["W_o"], params["b_o"])
    record = ForwardRecord(kind, batched, projections, Q, K, V, P, Pd, H,
                           params["W_o"].copy(), params["b_o"] is not None, rope)
    return out.reshape(B, L_q, h * d_k), record
