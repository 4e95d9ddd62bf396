r"""Feature maps for linear attention: non-negative features whose inner product is a kernel.

Softmax attention weights key ``j`` for query ``i`` in proportion to the
*kernel* :math:`\kappa(q_i, k_j) = \exp(q_i^\top k_j/\sqrt{d})`. Linear
attention replaces the kernel by an inner product of non-negative features,
:math:`\varphi(q)^\top\varphi(k)`, of width ``r`` (see
:mod:`helpers.linear_attention`). Three maps:

* :func:`elu_feature_map` -- :math:`\mathrm{elu}(x) + 1` (Katharopoulos et
  al., 2020). Cheap and positive; it does not approximate the softmax kernel,
  it defines a different one.
* :func:`exp_max_feature_map` -- :math:`\exp(x - \max_f x_f)`, a tempting
  first guess because it looks like the numerator of a softmax. Its kernel is
  :math:`\sum_f e^{q_f} e^{k_f} \cdot e^{-\max_f q_f} e^{-\max_f k_f}`: a sum
  over coordinates, not :math:`\exp(q^\top k)`. The query's factor cancels in
  the normalisation, the key's does not (it down-weights keys with one large
  coordinate). It is not the softmax kernel.
* :class:`RandomFeatureMap` -- Performer's positive random features,
  :math:`\varphi(x) = \exp(Wx - \lVert x\rVert^2/2)/\sqrt{r}` with Gaussian rows
  :math:`w_i \sim \mathcal N(0, I)`. Since
  :math:`\mathbb E_w[e^{w^\top (x + y)}] = e^{\lVert x + y\rVert^2/2}`, the product of the
  features of ``x`` and ``y`` has mean :math:`e^{x^\top y}`: the inner product
  is an unbiased estimate of the softmax kernel; the inputs
  are scaled by :math:`d^{-1/4}` first, so the target is
  :math:`\exp(q^\top k/\sqrt d)`. Draw one with :func:`draw_random_features`.

Notebook 09, sections 9–10 ("Which kernel?" and the random features), teaches this module;
exercise 09.4 has the learner write the random features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from helpers._validate import as_float_array, positive_int, require_ndim

FloatArray = NDArray[np.floating]


def elu_feature_map(x: ArrayLike) -> FloatArray:
    r""":math:`\mathrm{elu}(x) + 1`, elementwise: ``x + 1`` for ``x > 0``, ``exp(x)`` otherwise.

    Parameters
    ----------
    x : array_like, shape (..., L, d)
        Queries or keys (used as they are, without a :math:`1/\sqrt d` scale).

    Returns
    -------
    ndarray, shape (..., L, d), dtype of ``x`` (float64 for integers)
        Strictly positive features, ``r = d``.

    Taught in notebook 09 §7.
    """
    x = as_float_array(x, "x")
    # exp(min(x, 0)) + max(x, 0): x + 1 for x > 0, exp(x) otherwise, and exp never overflows.
    out = np.exp(np.minimum(x, 0))
    out += np.maximum(x, 0)
    return out


def exp_max_feature_map(x: ArrayLike) -> FloatArray:
    r"""The map :math:`\exp(x - \max_f x_f)`, the maximum taken over each row's features.

    Parameters
    ----------
    x : array_like, shape (..., L, d)
        Queries or keys.

    Returns
    -------
    ndarray, shape (..., L, d), dtype of ``x`` (float64 for integers)
        Features in ``(0, 1]``, the largest of each row exactly 1, ``r = d``.
        The implied kernel is a sum over coordinates, **not** the softmax
        kernel (see the module docstring); notebook 09 §10 measures how far it is.
    """
    x = as_float_array(x, "x")
    if x.shape[-1] == 0:
        return x.copy()
    return np.exp(x - np.max(x, axis=-1, keepdims=True))


@dataclass(frozen=True)
class RandomFeatureMap:
    r"""Positive random features for the softmax kernel :math:`\exp(q^\top k/\sqrt{d})`.

    ``φ(x) = exp(W x̃ - ‖x̃‖²/2) / sqrt(r)`` with ``x̃ = x · d^(-1/4)``, so that
    ``E[φ(q) · φ(k)] = exp(q · k / sqrt(d))`` over the random rows of ``W``.

    Attributes
    ----------
    projection : ndarray, shape (num_features, d_k)
        The rows ``w_i``, each marginally ``N(0, I)``; float64.

    Taught in notebook 09 §10 (exercise 09.4).
    """

    projection: NDArray[np.float64]

    @property
    def num_features(self) -> int:
        """``r``, the width of the features."""
        return int(self.projection.shape[0])

    @property
    def d_k(self) -> int:
        """The width of the queries and keys the map accepts."""
        return int(self.projection.shape[1])

    def log_features(self, x: ArrayLike) -> FloatArray:
        r"""``log φ(x) = W x̃ - ‖x̃‖²/2 - log(r)/2``, shape (..., L, r), dtype of ``x``.

        :func:`helpers.linear_attention` uses the logarithms to shift each
        query row, and all keys together, by a constant before ``exp``: those
        constants cancel in its normalisation, and a query of large norm no
        longer underflows to all-zero features. (Nothing can overflow: the
        exponent ``w·x̃ - ‖x̃‖²/2 = (‖w‖² - ‖x̃ - w‖²)/2`` never exceeds ``‖w‖²/2``.)
        """
        x = as_float_array(x, "x")
        require_ndim(x, "x", f"(..., L, {self.d_k})", min_ndim=1)
        if x.shape[-1] != self.d_k:
            raise ValueError(
                f"this random feature map takes vectors of width d_k={self.d_k}, "
                f"got x of shape {x.shape} (width {x.shape[-1]})"
            )
        x = x * (self.d_k ** -0.25)  # a Python float keeps float32
        W = self.projection.astype(x.dtype, copy=False)  # (r, d_k)
        half_sq_norm = 0.5 * np.sum(x * x, axis=-1, keepdims=True)  # (..., L, 1)
        return x @ W.T - half_sq_norm - 0.5 * np.log(self.num_features)  # (..., L, r)

    def __call__(self, x: ArrayLike) -> FloatArray:
        """The features ``φ(x)``, shape (..., L, r), dtype of ``x``; non-negative."""
        return np.exp(self.log_features(x))


def _gaussian_rows(rng: np.random.Generator, num: int, d: int, orthogonal: bool) -> np.ndarray:
    if not orthogonal:
        return rng.standard_normal((num, d))
    blocks = -(-num // d)  # ceil(num / d) blocks of d orthogonal rows
    # QR of Gaussian matrices, signs fixed by R's diagonal: uniformly random rotations.
    q, r = np.linalg.qr(rng.standard_normal((blocks, d, d)))  # (blocks, d, d) each
    q = q * np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, np.newaxis, :]  # columns orthonormal
    # Row lengths of independent Gaussian vectors, so each row is marginally N(0, I).
    lengths = np.linalg.norm(rng.standard_normal((blocks, d, d)), axis=-1)  # (blocks, d)
    rows = np.swapaxes(q, -1, -2) * lengths[..., np.newaxis]  # (blocks, d, d)
    return rows.reshape(blocks * d, d)[:num]


def draw_random_features(
    d_k: int,
    num_features: int,
    rng: np.random.Generator | int,
    *,
    orthogonal: bool = True,
) -> RandomFeatureMap:
    """Draw a :class:`RandomFeatureMap` of ``num_features`` rows from a seeded generator.

    Parameters
    ----------
    d_k : int
        Width of the queries and keys.
    num_features : int
        ``r``; the approximation error of the attention output falls roughly
        like ``1 / sqrt(r)``.
    rng : numpy.random.Generator or int
        The generator to draw from (advanced by the call), or a seed for
        ``np.random.default_rng``. The same seed gives the same features.
    orthogonal : bool, keyword-only
        If True (default), rows come in blocks of ``d_k`` mutually orthogonal
        vectors (Performer's "FAVOR+" variant, a lower variance for the same
        ``r``), each row still marginally ``N(0, I)``, so the estimate stays
        unbiased. If False, the rows are independent.

    Returns
    -------
    RandomFeatureMap
        Its ``projection`` has shape ``(num_features, d_k)``, float64.

    Taught in notebook 09 §10.
    """
    d = positive_int(d_k, "d_k")
    r = positive_int(num_features, "num_features")
    if not isinstance(orthogonal, (bool, np.bool_)):
        raise TypeError(f"orthogonal must be True or False, got {orthogonal!r}")
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        rng = np.random.default_rng(int(rng))
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator or an int seed, got {type(rng).__name__}"
        )
    return RandomFeatureMap(projection=_gaussian_rows(rng, r, d, bool(orthogonal)))
