r"""The backward pass of scaled dot-product attention, written out by hand in NumPy.

Forward pass (``s = 1/sqrt(d_k)`` unless another ``scale`` is given)::

    S = s * Q @ K^T (+ mask)     (..., L_q, L_k)   scores
    P = softmax(S, axis=-1)      (..., L_q, L_k)   attention weights
    O = P @ V                    (..., L_q, d_v)   output

Given the gradient of a scalar loss with respect to the output, ``dO = dL/dO``
``(..., L_q, d_v)``, the chain rule gives, step by step backwards::

    dV = P^T @ dO                                  (..., L_k, d_v)
    dP = dO @ V^T                                  (..., L_q, L_k)
    dS = P * (dP - rowsum(dP * P))                 (..., L_q, L_k)   softmax backward
    dQ = s * dS @ K                                (..., L_q, d_k)
    dK = s * dS^T @ Q                              (..., L_k, d_k)

A masked score is a constant (``-inf``), so no gradient flows through it: its
weight ``P`` is 0 and so is its ``dS``. A fully masked row has ``P = 0``
everywhere (see :func:`helpers.softmax`) and contributes nothing to any gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from helpers._validate import (
    FloatArray,
    as_float_arrays,
    check_qkv,
    check_scale,
    match_dtype,
    require_finite,
    require_ndim,
)
from helpers.attention import masked_scores, softmax

__all__ = ["attention_backward", "numerical_gradient", "softmax_backward"]


def softmax_backward(P: ArrayLike, dP: ArrayLike) -> FloatArray:
    r"""Gradient through a row-wise softmax: :math:`dS = P \odot (dP - \sum_j dP_j P_j)`.

    This is the vector-Jacobian product ``dP @ J`` with the softmax Jacobian
    ``J = diag(p) - p p^T`` of every row, computed without building ``J``.

    Parameters
    ----------
    P : array_like, shape (..., n)
        Softmax outputs (each row a probability vector, or all zero).
    dP : array_like, shape (..., n)
        Gradient of the loss with respect to ``P``.

    Returns
    -------
    ndarray, shape (..., n)
        Gradient of the loss with respect to the softmax input. Each row sums to
        zero: adding a constant to a row of scores does not change the softmax.

    Raises
    ------
    ValueError
        If ``P`` and ``dP`` have different shapes.
    """
    arrays = as_float_arrays(P=P, dP=dP)
    P, dP = arrays["P"], arrays["dP"]
    if P.shape != dP.shape:
        raise ValueError(f"P and dP must have the same shape, got P {P.shape} and dP {dP.shape}")
    require_ndim(P, "P", "(..., n)", min_ndim=1)
    require_finite(P, "P")
    require_finite(dP, "dP")
    return _softmax_backward(P, dP)


def _softmax_backward(P: FloatArray, dP: FloatArray) -> FloatArray:
    """:func:`softmax_backward` on checked arrays."""
    return P * (dP - np.sum(dP * P, axis=-1, keepdims=True))


def _unbroadcast(grad: FloatArray, shape: tuple[int, ...]) -> FloatArray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def attention_backward(
    Q: ArrayLike,
    K: ArrayLike,
    V: ArrayLike,
    dO: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    scale: float | None = None,
    is_causal: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Gradients of scaled dot-product attention with respect to ``Q``, ``K`` and ``V``.

    Recomputes the forward pass ``O = softmax(scale * Q K^T + mask) V`` (the
    same as :func:`helpers.attention`, with the same checks) and applies the
    chain rule backwards from ``dO``. See the module docstring for the
    equations (notebook 07, section 8).

    Parameters
    ----------
    Q : array_like, shape (..., L_q, d_k) or (d_k,)
        Queries. A 1-D ``Q`` is a single query; ``dO`` is then ``(d_v,)``.
    K : array_like, shape (..., L_k, d_k)
        Keys.
    V : array_like, shape (..., L_k, d_v)
        Values.
    dO : array_like, shape (..., L_q, d_v)
        Gradient of the loss with respect to the attention output; its shape
        is the output's shape (the leading axes of Q, K, V broadcast together)
        and its dtype that of Q, K and V.
    mask : array_like, optional, broadcastable to (..., L_q, L_k)
        Boolean (True = may attend) or float (added to the scaled scores), as
        in :func:`helpers.attention`. Masks receive no gradient.
    scale : float, keyword-only, optional
        Factor applied to ``Q K^T``; default ``1 / sqrt(d_k)``. ``scale=1.0``
        gives unscaled dot-product attention.
    is_causal : bool, keyword-only
        PyTorch's top-left causal mask, as in :func:`helpers.attention`.

    Returns
    -------
    dQ : ndarray, shape of Q
    dK : ndarray, shape of K
    dV : ndarray, shape of V
        Gradients summed over any axes that broadcasting stretched, so each has
        the shape of its input. Rows of a query with nothing to attend to (all
        keys masked, or ``L_k = 0``) get zero gradient.

    Raises
    ------
    ValueError
        As :func:`helpers.attention`, and if ``dO`` does not have the output's
        shape or holds NaN or infinity.
    TypeError
        As :func:`helpers.attention` (mixed dtypes, integer masks, a ``scale``
        that is not a real number), and if ``dO`` has another dtype.
    """
    Q, K, V, lead, single_query = check_qkv(Q, K, V)
    dO = match_dtype(dO, "dO", Q, "Q")
    if single_query:
        require_ndim(dO, "dO", "(d_v,) for a 1-D Q", min_ndim=1, max_ndim=1)
        dO = dO[np.newaxis, :]
    out_shape = (*lead, Q.shape[-2], V.shape[-1])
    if dO.shape != out_shape:
        raise ValueError(
            f"dO must have the output's shape (..., L_q, d_v) = {out_shape}, got {dO.shape}"
        )
    require_finite(dO, "dO")
    s = check_scale(scale, Q.shape[-1])

    # Forward pass, keeping the weights P.
    scores = masked_scores(Q, K, mask, scale=s, is_causal=is_causal,
                           single_query=single_query)  # (..., L_q, L_k)
    P = softmax(scores, axis=-1)  # (..., L_q, L_k)

    # Backward pass.
    with np.errstate(over="ignore", invalid="ignore"):
        dV = np.swapaxes(P, -1, -2) @ dO  # (..., L_k, d_v)
        dP = dO @ np.swapaxes(V, -1, -2)  # (..., L_q, L_k)
        dS = _softmax_backward(P, dP)  # (..., L_q, L_k); zero where P is zero
        dQ = (dS @ K) * s  # (..., L_q, d_k)
        dK = (np.swapaxes(dS, -1, -2) @ Q) * s  # (..., L_k, d_k)
    for name, grad in (("dQ", dQ), ("dK", dK), ("dV", dV)):
        if not np.isfinite(grad).all():
            raise ValueError(
                f"the gradient {name} overflows {grad.dtype}: it is not finite; scale the "
                "inputs or dO down, or compute in float64"
            )

    dQ = _unbroadcast(dQ, Q.shape)
    if single_query:
        dQ = dQ[..., 0, :]
    return dQ, _unbroadcast(dK, K.shape), _unbroadcast(dV, V.shape)


def numerical_gradient(
    f: Callable[[FloatArray], float], x: ArrayLike, eps: float = 1e-6
) -> FloatArray:
    r"""Central finite-difference gradient of a scalar function ``f`` at ``x``.

    Entry ``i`` is :math:`(f(x + \epsilon e_i) - f(x - \epsilon e_i)) / 2\epsilon`.

    Slow (two calls of ``f`` per entry of ``x``): meant for checking
    hand-written gradients on small float64 inputs, where the error is about
    ``eps**2`` (truncation) plus ``1e-16 / eps`` (rounding).

    Parameters
    ----------
    f : callable
        Takes an array of the shape of ``x`` and returns a scalar.
    x : array_like, any shape
        Point at which to differentiate (not modified).
    eps : float
        Step size.

    Returns
    -------
    ndarray, shape of ``x``, float64
    """
    x = np.array(x, dtype=np.float64)  # a copy: x is modified entry by entry below
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + eps
        up = float(f(x))
        flat[i] = keep - eps
        down = float(f(x))
        flat[i] = keep
        gflat[i] = (up - down) / (2.0 * eps)
    return grad
