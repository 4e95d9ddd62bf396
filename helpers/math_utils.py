"""Small math tools the notebooks reuse: the softmax Jacobian, entropy, log-sum-exp."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from helpers._validate import as_float_array, require_finite, require_ndim


def softmax_jacobian(p: ArrayLike) -> NDArray[np.floating]:
    r"""Jacobian of the softmax at output ``p``: :math:`J = \mathrm{diag}(p) - p p^\top`.

    ``J[..., i, j] = d p_i / d x_j``. Parameters: ``p (..., n)``, each slice a
    probability vector (a softmax output). Returns ``(..., n, n)``; symmetric,
    and every row sums to zero (shifting all inputs by a constant changes nothing).
    """
    p = as_float_array(p, "p")
    require_ndim(p, "p", "(..., n)", min_ndim=1)
    require_finite(p, "p")
    outer = p[..., :, np.newaxis] * p[..., np.newaxis, :]  # (..., n, n)
    return np.einsum("...i,ij->...ij", p, np.eye(p.shape[-1], dtype=p.dtype)) - outer


def entropy(p: ArrayLike, axis: int = -1) -> NDArray[np.floating]:
    r"""Shannon entropy :math:`-\sum_i p_i \ln p_i` (in nats) along ``axis``; ``0 \ln 0 = 0``.

    Ranges from 0 (all weight on one entry) to ``ln n`` (uniform over ``n`` entries).
    """
    p = as_float_array(p, "p")
    require_ndim(p, "p", "(..., n)", min_ndim=1)
    require_finite(p, "p")
    terms = np.zeros_like(p)
    np.multiply(p, np.log(p, out=np.zeros_like(p), where=p > 0), out=terms, where=p > 0)
    return -terms.sum(axis=axis)


def logsumexp(x: ArrayLike, axis: int = -1) -> NDArray[np.floating]:
    r"""Stable :math:`\ln \sum_i e^{x_i}` along ``axis``.

    ``-inf`` for an all ``-inf`` slice and for an empty one (a sum of nothing is 0);
    ``+inf`` entries give ``+inf``. Raises ``ValueError`` for a 0-D ``x`` or NaN.
    """
    x = as_float_array(x, "x")
    require_ndim(x, "x", "(..., n)", min_ndim=1)
    if np.isnan(x).any():
        raise ValueError("logsumexp input contains NaN")
    if x.shape[axis] == 0:
        return np.full(np.delete(x.shape, axis % x.ndim), -np.inf, dtype=x.dtype)
    peak = np.max(x, axis=axis, keepdims=True)
    peak[~np.isfinite(peak)] = 0.0
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(x - peak), axis=axis)) + np.squeeze(peak, axis=axis)
