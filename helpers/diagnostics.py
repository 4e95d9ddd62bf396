"""Diagnostics for attention weights: how peaked or how uniform each row is.

A softmax row over ``n`` allowed keys has entropy between 0 (all weight on one
key) and ``ln n`` (weight ``1/n`` on every key). Dividing by ``ln n`` gives a
number in ``[0, 1]`` that is comparable across rows of different lengths; a
value near 1 together with a peak weight near ``1/n`` is the signature of
attention that carries no information ("uniform attention").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from helpers._mask_validation import mask_array
from helpers._validate import as_float_array, require_finite, require_ndim
from helpers.math_utils import entropy


def _allowed_counts(weights: NDArray[np.floating], mask: ArrayLike | None) -> NDArray[np.int64]:
    """Number of keys each query may attend to, shape ``weights.shape[:-1]``."""
    if mask is None:
        return np.full(weights.shape[:-1], weights.shape[-1], dtype=np.int64)
    m = mask_array(mask)
    if m.dtype.kind != "b":
        raise TypeError(f"mask must be boolean (True = may attend), got dtype {m.dtype}")
    try:
        m = np.broadcast_to(m, weights.shape)
    except ValueError:
        raise ValueError(
            f"mask of shape {m.shape} does not broadcast to the weights' shape "
            f"{weights.shape} (..., L_q, L_k)"
        ) from None
    return m.sum(axis=-1)


def normalized_entropy(weights: ArrayLike, mask: ArrayLike | None = None) -> NDArray[np.floating]:
    r"""Entropy of each attention row divided by its maximum, :math:`H(p)/\ln n`.

    Parameters
    ----------
    weights : array_like, shape (..., L_q, L_k)
        Attention weights, each row a probability vector.
    mask : array_like of bool, optional, broadcastable to (..., L_q, L_k)
        True where a query may attend. ``n`` counts the allowed keys of a row;
        without a mask ``n = L_k``.

    Returns
    -------
    ndarray, shape (..., L_q)
        1 for a uniform row, 0 for a one-hot row. A row with at most one
        allowed key has no choice to make and gets 0.
    """
    w = as_float_array(weights, "weights")
    require_ndim(w, "weights", "(..., L_q, L_k)", min_ndim=2)
    require_finite(w, "weights")
    n = _allowed_counts(w, mask)
    h = entropy(w, axis=-1)
    log_n = np.log(np.maximum(n, 1)).astype(w.dtype)
    return np.divide(h, log_n, out=np.zeros_like(h), where=n > 1)


@dataclass(frozen=True)
class UniformityReport:
    """Summary returned by :func:`diagnose_uniform_attention` (print it for a readable report)."""

    num_rows: int
    num_uniform_rows: int
    mean_normalized_entropy: float
    mean_peak_weight: float
    mean_uniform_weight: float
    threshold: float

    @property
    def fraction_uniform(self) -> float:
        """Share of rows whose normalized entropy is at least ``threshold``."""
        return self.num_uniform_rows / self.num_rows if self.num_rows else 0.0

    def __str__(self) -> str:
        verdict = (
            "UNIFORM: the scores barely differ; check for zero or identical queries/keys, "
            "a missing projection, or a temperature that is too high"
            if self.fraction_uniform >= 0.5
            else "ok: the rows are not uniform"
        )
        return (
            f"{self.num_uniform_rows}/{self.num_rows} rows near uniform "
            f"(H/ln n >= {self.threshold:g}); mean H/ln n = {self.mean_normalized_entropy:.3f}; "
            f"mean peak weight = {self.mean_peak_weight:.3f} vs 1/n = "
            f"{self.mean_uniform_weight:.3f} -> {verdict}"
        )


def diagnose_uniform_attention(
    weights: ArrayLike, mask: ArrayLike | None = None, *, threshold: float = 0.95
) -> UniformityReport:
    """Measure how many attention rows are (nearly) uniform.

    Parameters
    ----------
    weights : array_like, shape (..., L_q, L_k)
        Attention weights.
    mask : array_like of bool, optional, broadcastable to (..., L_q, L_k)
        True where a query may attend; rows with fewer than two allowed keys
        are left out (they cannot be anything but "uniform").
    threshold : float
        A row counts as uniform when its normalized entropy is at least this.

    Returns
    -------
    UniformityReport
        Counts and means over the rows that were considered.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    w = as_float_array(weights, "weights")
    require_ndim(w, "weights", "(..., L_q, L_k)", min_ndim=2)
    require_finite(w, "weights")
    n = _allowed_counts(w, mask)
    ratio = normalized_entropy(w, mask)
    rows = n > 1
    count = int(rows.sum())
    if count == 0:
        return UniformityReport(0, 0, 0.0, 0.0, 0.0, threshold)
    return UniformityReport(
        num_rows=count,
        num_uniform_rows=int((ratio[rows] >= threshold).sum()),
        mean_normalized_entropy=float(ratio[rows].mean()),
        mean_peak_weight=float(w.max(axis=-1)[rows].mean()),
        mean_uniform_weight=float((1.0 / n[rows]).mean()),
        threshold=threshold,
    )
