"""Splitting the feature axis into attention heads and joining the heads again (notebook 04, §3)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from helpers._validate import FloatArray, as_float_array, positive_int, require_ndim


def split_heads(x: ArrayLike, num_heads: int) -> FloatArray:
    """Split the feature axis into heads: ``(..., seq, d_model) -> (..., h, seq, d_k)``.

    Feature ``h * d_k + j`` goes to head ``h``, position ``j`` (PyTorch's order).
    The reshape puts heads next to features, ``(..., seq, h, d_k)``; the
    transpose then moves the head axis in front of ``seq``. Reshaping straight
    to ``(..., h, seq, d_k)`` would mix positions into heads.

    Parameters
    ----------
    x : array_like, shape (..., seq, d_model)
    num_heads : int
        ``h``; must divide ``d_model``.

    Returns
    -------
    ndarray, shape (..., h, seq, d_model // h)
        A **view** of ``x`` whenever ``x`` is already a float32/float64 array
        (reshape and transpose copy nothing): writing into the result writes
        into ``x``. Call ``.copy()`` for independent data.
    """
    x = as_float_array(x, "x")
    num_heads = positive_int(num_heads, "num_heads")
    require_ndim(x, "x", "(..., seq, d_model)", min_ndim=2)
    *lead, seq, d_model = x.shape
    if d_model % num_heads:
        raise ValueError(
            f"d_model={d_model} (x has shape {x.shape}) is not divisible by num_heads={num_heads}"
        )
    x = x.reshape(*lead, seq, num_heads, d_model // num_heads)  # (..., seq, h, d_k)
    return np.swapaxes(x, -3, -2)  # (..., h, seq, d_k)


def combine_heads(x: ArrayLike) -> FloatArray:
    """Inverse of :func:`split_heads`: ``(..., h, seq, d_k) -> (..., seq, h * d_k)``.

    Returns a new array, except when ``x`` is itself the untouched result of
    :func:`split_heads` (then NumPy can return a view of the original tokens).
    """
    x = as_float_array(x, "x")
    require_ndim(x, "x", "(..., h, seq, d_k)", min_ndim=3)
    *lead, h, seq, d_k = x.shape
    return np.swapaxes(x, -3, -2).reshape(*lead, seq, h * d_k)
