r"""The parts a Transformer block puts around attention: layer normalisation and GELU.

Forward passes only; the training code (:mod:`helpers.training`) adds their backward
passes. Both work on the last axis and keep the input's floating dtype.

* :func:`layer_norm` -- :math:`\gamma \odot (x - \mu) / \sqrt{\sigma^2 + \varepsilon} + \beta`
  over the feature axis (PyTorch's ``nn.LayerNorm``: biased variance, ``eps`` inside
  the square root).
* :func:`gelu` -- :math:`x\,\Phi(x)` with the exact normal CDF
  :math:`\Phi(x) = \tfrac12\,(1 + \operatorname{erf}(x/\sqrt2))` (PyTorch's default
  ``approximate="none"``, the one BERT uses).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from helpers._validate import as_float_array, require_finite, require_ndim

FloatArray = NDArray[np.floating]

_erf = np.frompyfunc(math.erf, 1, 1)


def layer_norm(
    x: ArrayLike,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    *,
    eps: float = 1e-5,
) -> FloatArray:
    """Normalise each feature vector to mean 0 and variance 1, then scale and shift.

    Parameters
    ----------
    x : array_like, shape (..., d)
    weight, bias : array_like, shape (d,), optional
        The learned gain :math:`\\gamma` (default ones) and shift :math:`\\beta`
        (default zeros).
    eps : float
        Added to the variance before the square root (PyTorch's default 1e-5;
        BERT uses 1e-12).

    Returns
    -------
    ndarray, shape and dtype of ``x``
    """
    x = as_float_array(x, "x")
    require_ndim(x, "x", "(..., d)", min_ndim=1)
    require_finite(x, "x")
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps >= 0:
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    d = x.shape[-1]
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)  # biased (divides by d), as nn.LayerNorm
    y = (x - mean) / np.sqrt(var + float(eps))
    for name, p in (("weight", weight), ("bias", bias)):
        if p is None:
            continue
        p = as_float_array(p, name)
        if p.shape != (d,):
            raise ValueError(
                f"{name} must have shape ({d},) for x of shape {x.shape}, got {p.shape}"
            )
        require_finite(p, name)
        p = p.astype(x.dtype, copy=False)
        y = y * p if name == "weight" else y + p
    return y


def gelu(x: ArrayLike) -> FloatArray:
    r"""Gaussian error linear unit, :math:`x\,\Phi(x)`, exact (erf), elementwise.

    Returns an array of the shape and floating dtype of ``x``.
    """
    x = as_float_array(x, "x")
    require_finite(x, "x")
    phi = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))
    return (x * phi).astype(x.dtype, copy=False)
