r"""Inverted dropout, as ``nn.MultiheadAttention`` applies it to the attention weights.

In training, each weight is kept with probability :math:`1 - p` and the kept
ones are divided by :math:`1 - p`, so every weight keeps its expected value:
:math:`\mathbb{E}[\tilde P_{ij}] = (1 - p) \cdot P_{ij} / (1 - p) = P_{ij}`.
At evaluation nothing is dropped and nothing is rescaled.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = ["check_dropout_p", "dropout_keep_mask", "dropout_scale"]


def check_dropout_p(p: object, name: str = "dropout") -> float:
    """Return ``p`` as a float in ``[0, 1]``, or raise ``TypeError``/``ValueError``."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a probability (a float in [0, 1]), got {p!r}")
    p = float(p)
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must lie in [0, 1], got {p}")
    return p


def dropout_scale(p: float) -> float:
    """The factor ``1 / (1 - p)`` applied to kept weights (0 when ``p = 1``: nothing is kept)."""
    return 0.0 if p >= 1.0 else 1.0 / (1.0 - p)


def dropout_keep_mask(
    shape: tuple[int, ...], p: float, rng: np.random.Generator, dtype: DTypeLike = np.float64
) -> NDArray[np.bool_]:
    """Boolean array of ``shape``, each entry True (kept) with probability ``1 - p``.

    Drawn as ``rng.random(shape) >= p`` with uniforms of ``dtype`` (float32
    draws are twice as fast), so the same generator state gives the same mask.
    Used by the dropout option of the layer of notebook 05, ``MultiHeadAttention``.
    """
    p = check_dropout_p(p, "p")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    uniform_dtype = np.float32 if np.dtype(dtype) == np.float32 else np.float64
    return rng.random(shape, dtype=uniform_dtype) >= p
