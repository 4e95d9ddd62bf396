r"""The backward pass of the whole :class:`~helpers.MultiHeadAttention` layer.

Forward pass, for one batch element (``s = 1/sqrt(d_k)``; the layer's ``x @ W + b`` convention)::

    Q = s (x_q W_q + b_q)   K = x_k W_k + b_k   V = x_v W_v + b_v     split into h heads
    Q, K = rope(Q), rope(K)                          (only with rope_base; a rotation)
    P  = softmax(Q K^T + mask)                       (h, L_q, L_k)  weights before dropout
    Pd = P * keep / (1 - p)                          (h, L_q, L_k)  inverted dropout (training)
    H  = Pd V                                        (h, L_q, d_k)  -> combined: (L_q, d_model)
    out = H W_o + b_o                                (L_q, d_model)

Given ``d_out = dLoss/d out`` the chain rule runs the same steps backwards::

    dW_o = H^T d_out     db_o = sum_rows d_out     dH = d_out W_o^T   (split into heads)
    dV  = Pd^T dH        dPd = dH V^T              dP = dPd * keep / (1 - p)
    dS  = P * (dP - rowsum(dP * P))                (softmax backward; zero where P is zero)
    dQ  = dS K           dK = dS^T Q               (then rope^T: the inverse rotation)
    dW_q = s x_q^T dQ    db_q = s sum_rows dQ      dx_q = s dQ W_q^T   (same for k, v)

Masked scores are constants: their weight is 0, so is their ``dS``, and a fully
masked row (all weights 0) sends no gradient anywhere. Self-attention feeds one
``x`` into all three projections, so its gradient is the sum of the three paths.

Everything runs as batched matrix products over ``(batch, heads)``: no Python
loop over heads. The projections are recomputed in the backward pass from the
saved inputs (one fused product, cheaper than keeping them); the weights ``P``
and the dropout mask are kept from the forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from helpers.attention import FloatArray, combine_heads, split_heads
from helpers.rope import apply_rope

__all__ = ["ForwardRecord", "layer_backward"]


@dataclass
class ForwardRecord:
    """What one forward pass of the layer leaves for its backward pass.

    Arrays are 3-D ``(batch, L, features)`` / 4-D ``(batch, h, L_q, L_k)``; an
    unbatched call is stored with a batch axis of 1 and ``batched=False``.
    """

    kind: str  # "self" (layer(x)), "kv" (layer(q, kv)) or "qkv" (layer(q, k, v))
    batched: bool
    query: FloatArray  # (B, L_q, d_model), a copy of the input
    key: FloatArray  # (B, L_k, kdim); the same object as query for "self"
    value: FloatArray  # (B, L_k, vdim); the same object as key for "self" and "kv"
    params: dict[str, FloatArray | None]  # copies of W_q .. b_o as used (None: no bias)
    num_heads: int
    weights: FloatArray  # P (B, h, L_q, L_k), before dropout, read-only
    keep: np.ndarray | None  # dropout keep-mask (B, h, L_q, L_k), or None without dropout
    keep_scale: float  # 1 / (1 - p) for kept weights
    rope: tuple[np.ndarray, np.ndarray, float] | None  # query positions, key positions, base


def _project(x: FloatArray, W: FloatArray, b: FloatArray | None) -> FloatArray:
    """``x (B, L, d_in) @ W (d_in, d_out) + b`` as one 2-D product."""
    y = (x.reshape(-1, x.shape[-1]) @ W).reshape(*x.shape[:-1], W.shape[-1])
    return y if b is None else y + b


def _weight_grad(x: FloatArray, dy: FloatArray) -> FloatArray:
    """``sum over batch and rows of x^T dy``: ``(B, L, d_in), (B, L, d_out) -> (d_in, d_out)``."""
    return x.reshape(-1, x.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])


def layer_backward(
    rec: ForwardRecord, d_out: FloatArray
) -> tuple[tuple[FloatArray, ...], dict[str, FloatArray]]:
    """Gradients of the layer for the forward pass ``rec`` and ``d_out (B, L_q, d_model)``.

    ``d_out`` is already validated and 3-D (batch axis added for an unbatched call).

    Returns
    -------
    inputs : tuple of ndarray
        ``(dx,)`` for ``"self"``, ``(d_query, d_key)`` for ``"kv"`` (``d_key`` sums
        the key and value paths), ``(d_query, d_key, d_value)`` for ``"qkv"``;
        each with the shape of its (3-D) input.
    grads : dict
        Gradient of every parameter the layer has (``W_q .. W_o``, ``b_q .. b_o``
        when present), in the layer's dtype.
    """
    p, h = rec.params, rec.num_heads
    d_model = p["W_q"].shape[1]
    scale = 1.0 / math.sqrt(d_model // h)  # a Python float keeps float32 float32
    xq, xk, xv = rec.query, rec.key, rec.value

    # ---- recompute the projections (s folded into Q) and the heads' outputs
    Q = split_heads(_project(xq, p["W_q"], p["b_q"]) * scale, h)  # (B, h, L_q, d_k)
    K = split_heads(_project(xk, p["W_k"], p["b_k"]), h)  # (B, h, L_k, d_k)
    V = split_heads(_project(xv, p["W_v"], p["b_v"]), h)  # (B, h, L_k, d_k)
    if rec.rope is not None:
        pos_q, pos_k, base = rec.rope
        Q = apply_rope(Q, pos_q, base)
        K = apply_rope(K, pos_k, base)
    P = rec.weights  # (B, h, L_q, L_k)
    Pd = P if rec.keep is None else P * rec.keep * rec.keep_scale  # after dropout
    H = combine_heads(Pd @ V)  # (B, L_q, d_model)

    grads: dict[str, FloatArray] = {"W_o": _weight_grad(H, d_out)}
    if p["b_o"] is not None:
        grads["b_o"] = d_out.sum(axis=(0, 1))

    # ---- through the output projection and the attention
    dH = split_heads(_project(d_out, p["W_o"].T, None), h)  # (B, h, L_q, d_k)
    dV = np.swapaxes(Pd, -1, -2) @ dH  # (B, h, L_k, d_k)
    dP = dH @ np.swapaxes(V, -1, -2)  # (B, h, L_q, L_k): gradient w.r.t. Pd
    if rec.keep is not None:
        dP *= rec.keep
        dP *= rec.keep_scale
    # softmax backward, in place on dP: dS = P * (dP - rowsum(dP * P))
    row = np.einsum("...ij,...ij->...i", dP, P)[..., np.newaxis]  # (B, h, L_q, 1)
    dP -= row
    dP *= P  # now dS
    dQ = dP @ K  # (B, h, L_q, d_k), w.r.t. the scaled, rotated Q
    dK = np.swapaxes(dP, -1, -2) @ Q  # (B, h, L_k, d_k), w.r.t. the rotated K
    if rec.rope is not None:  # a rotation's transpose is the rotation by minus the angles
        dQ = apply_rope(dQ, -pos_q, base)
        dK = apply_rope(dK, -pos_k, base)
    dQp = combine_heads(dQ) * scale  # w.r.t. x_q W_q + b_q, (B, L_q, d_model)
    dKp = combine_heads(dK)  # (B, L_k, d_model)
    dVp = combine_heads(dV)  # (B, L_k, d_model)

    # ---- through the input projections
    for name, x, dy in (("q", xq, dQp), ("k", xk, dKp), ("v", xv, dVp)):
        grads[f"W_{name}"] = _weight_grad(x, dy)
        if p[f"b_{name}"] is not None:
            grads[f"b_{name}"] = dy.sum(axis=(0, 1))
    dxq = _project(dQp, p["W_q"].T, None)
    dxk = _project(dKp, p["W_k"].T, None)
    dxv = _project(dVp, p["W_v"].T, None)
    if rec.kind == "self":
        return (dxq + dxk + dxv,), grads
    if rec.kind == "kv":
        return (dxq, dxk + dxv), grads
    return (dxq, dxk, dxv), grads
