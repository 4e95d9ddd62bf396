"""The layer's forward pass when it needs more than the fused fast path gives.

:class:`~helpers.MultiHeadAttention` sends a plain call (no dropout, no RoPE)
to :func:`helpers.attention.project_and_attend`. With dropout in training, with
rotary position embeddings, or with key/value widths ``kdim``/``vdim`` other
than ``d_model``, it runs :func:`attend_general` instead: the same steps as the
readable reference path, in batched matrix products over ``(batch, heads)``,
with the two extra steps inserted where they belong::

    Q, K, V = x_q W_q + b_q, x_k W_k + b_k, x_v W_v + b_v   split into heads
    Q, K = rope(Q, positions_q), rope(K, positions_k)       (rope_base set)
    P = softmax(Q K^T / sqrt(d_k) + mask)                   weights before dropout
    Pd = P * keep / (1 - p)                                 (dropout, training only)
    out = combine(Pd V) W_o + b_o
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from helpers.attention import (
    FloatArray,
    _apply_mask,
    _check_mask,
    combine_heads,
    linear,
    softmax,
    split_heads,
)
from helpers.dropout import dropout_keep_mask, dropout_scale
from helpers.rope import apply_rope

__all__ = ["attend_general", "layer_mask"]


def layer_mask(
    mask: ArrayLike | None, batched: bool, B: int, h: int, L_q: int, L_k: int
) -> np.ndarray | None:
    """Validate a layer's mask against the scores and return a ``(B, h, L_q, L_k)`` view.

    The scores of a batched call are ``(B, h, L_q, L_k)``, of an unbatched one
    ``(h, L_q, L_k)``; the mask must broadcast to them (see
    :class:`~helpers.MultiHeadAttention.forward`).
    """
    if mask is None:
        return None
    lead = (B,) if batched else ()
    m = _check_mask(mask, (*lead, h, L_q, L_k))
    m = np.broadcast_to(m, (*lead, h, L_q, L_k))
    return m if batched else m[np.newaxis]


def attend_general(
    q: FloatArray,
    k: FloatArray,
    v: FloatArray,
    params: dict[str, FloatArray | None],
    num_heads: int,
    mask: np.ndarray | None,
    *,
    dropout_p: float = 0.0,
    rng: np.random.Generator | None = None,
    rope: tuple[np.ndarray, np.ndarray, float] | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, np.ndarray | None]:
    """Multi-head attention with optional dropout and RoPE, on 3-D inputs.

    Parameters
    ----------
    q : ndarray, shape (B, L_q, d_model)
    k : ndarray, shape (B, L_k, kdim)
    v : ndarray, shape (B, L_k, vdim)
    params : dict
        ``W_q (d_model, d_model)``, ``W_k (kdim, d_model)``, ``W_v (vdim, d_model)``,
        ``W_o (d_model, d_model)``, biases ``(d_model,)`` or None.
    mask : ndarray or None, shape (B, h, L_q, L_k) (a broadcast view, from :func:`layer_mask`)
    dropout_p : float
        Probability of dropping a weight (0: no dropout; the keep-mask is None).
    rng : numpy Generator
        Draws the dropout mask (needed when ``dropout_p > 0``).
    rope : (positions_q (L_q,), positions_k (L_k,), base) or None

    Returns
    -------
    output : ndarray, shape (B, L_q, d_model)
    weights : ndarray, shape (B, h, L_q, L_k), before dropout
    dropped : ndarray, shape (B, h, L_q, L_k), after dropout (``weights`` itself without)
    keep : ndarray of bool, shape (B, h, L_q, L_k), or None without dropout
    """
    h = num_heads
    d_k = params["W_q"].shape[1] // h
    scale = 1.0 / math.sqrt(d_k)  # a Python float keeps float32 float32
    Q = split_heads(linear(q, params["W_q"], params["b_q"]) * scale, h)  # (B, h, L_q, d_k)
    K = split_heads(linear(k, params["W_k"], params["b_k"]), h)  # (B, h, L_k, d_k)
    V = split_heads(linear(v, params["W_v"], params["b_v"]), h)  # (B, h, L_k, d_k)
    if rope is not None:
        pos_q, pos_k, base = rope
        Q, K = apply_rope(Q, pos_q, base), apply_rope(K, pos_k, base)
    scores = Q @ np.swapaxes(K, -1, -2)  # (B, h, L_q, L_k), already scaled
    if mask is not None:
        scores = _apply_mask(scores, mask)
    P = softmax(scores, axis=-1)  # (B, h, L_q, L_k)
    keep = None
    Pd = P
    if dropout_p > 0.0:
        if rng is None:
            raise ValueError("dropout needs a random generator (rng)")
        keep = dropout_keep_mask(P.shape, dropout_p, rng, P.dtype)
        Pd = P * keep
        Pd *= dropout_scale(dropout_p)
    out = linear(combine_heads(Pd @ V), params["W_o"], params["b_o"])  # (B, L_q, d_model)
    return out, P, Pd, keep
