r"""Rotary position embeddings (RoPE): encode a token's position by rotating its query and key.

Sinusoidal encodings *add* a position vector to each token. RoPE instead
*rotates* every query and key: pair ``i`` of features is turned by the angle
:math:`m\,\omega_i` at position ``m``, with the frequencies of the sinusoidal
encoding, :math:`\omega_i = base^{-2i/d}`. Writing :math:`R_m` for that block
rotation,

.. math::

    (R_m q)^\top (R_n k) = q^\top R_m^\top R_n\, k = q^\top R_{n-m}\, k ,

because 2-D rotations compose by adding angles and :math:`R_m^\top = R_{-m}`.
The score of a query at ``m`` and a key at ``n`` therefore depends on the
positions only through the offset ``n - m``. Values are not rotated: the
output :math:`\sum_j a_{ij} v_j` would become :math:`\sum_j a_{ij} R_{n_j} v_j`,
each value turned by its key's *absolute* position, which is exactly what the
rotation of q and k avoids.

Two layouts decide which features form a pair (both rotate by the same angles):

* ``"interleaved"`` -- pair ``i`` is features ``(2i, 2i + 1)``, as in the
  RoFormer paper and in notebook 06's :math:`M_k`;
* ``"half"`` -- pair ``i`` is features ``(i, i + d/2)``, the "rotate half"
  layout of many open implementations.

They differ by a fixed permutation of the features
(:func:`rope_layout_permutation`). Rotating queries with one layout and keys
with the other is a silent bug: every shape is right, but the score then
depends on the absolute positions, not only on their offset.

Notebook 09, sections 2–6 ("Rotary position embeddings" to "RoPE in the layer"), teaches
this module; exercise 09.1 has the learner write :func:`apply_rope`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from helpers._validate import as_float_array, require_finite, require_ndim
from helpers.positional import DEFAULT_BASE, positional_frequencies

ROPE_LAYOUTS = ("interleaved", "half")
"""The two pairings of features: ``(2i, 2i + 1)`` and ``(i, i + d/2)``."""


def _check_layout(layout: object) -> str:
    if not isinstance(layout, str) or layout not in ROPE_LAYOUTS:
        raise ValueError(f"layout must be one of {ROPE_LAYOUTS}, got {layout!r}")
    return layout


def _check_positions(positions: ArrayLike, x_shape: tuple[int, ...]) -> NDArray[np.integer]:
    """Integer positions whose shape broadcasts to ``x_shape[:-1]`` with the full L axis."""
    pos = np.asarray(positions)
    if pos.size == 0 and pos.dtype.kind == "f":
        pos = pos.astype(np.int64)  # [] for an empty sequence
    if pos.dtype.kind not in "iu":
        raise TypeError(
            f"positions must be an integer array (absolute token positions), got dtype "
            f"{pos.dtype}"
        )
    if pos.ndim == 0:
        raise ValueError(
            f"positions must have shape (L,) = ({x_shape[-2]},), one per token of x "
            f"(shape {x_shape}); got a scalar"
        )
    L = x_shape[-2]
    if pos.shape[-1] != L:
        raise ValueError(
            f"positions must have one entry per token: shape (L,) = ({L},) for x of shape "
            f"{x_shape}, got shape {pos.shape}"
        )
    try:
        fits = np.broadcast_shapes(pos.shape, x_shape[:-1]) == x_shape[:-1]
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"positions of shape {pos.shape} do not broadcast to x's leading axes "
            f"{x_shape[:-1]} (x has shape {x_shape}, positions (..., L))"
        )
    return pos


def rope_layout_permutation(d_model: int) -> NDArray[np.intp]:
    """Feature order that turns the ``"half"`` layout into the ``"interleaved"`` one.

    ``perm = [0, d/2, 1, d/2 + 1, ..., d/2 - 1, d - 1]`` puts the two features
    of each ``"half"`` pair next to each other, so for every ``x (..., L, d)``::

        apply_rope(x, p, layout="half")[..., perm]
            == apply_rope(x[..., perm], p, layout="interleaved")

    Parameters
    ----------
    d_model : int
        Even feature width ``d`` of the rotated vectors.

    Returns
    -------
    ndarray of intp, shape (d_model,)
        A permutation of ``0 .. d - 1``. Permuting the columns of ``W_q`` and
        ``W_k`` by it converts weights trained with one layout to the other.

    Taught in notebook 09 §5.
    """
    half = positional_frequencies(d_model).size  # validates d_model: positive and even
    return np.stack([np.arange(half), np.arange(half, 2 * half)], axis=1).reshape(-1)


def apply_rope(
    x: ArrayLike,
    positions: ArrayLike,
    base: float = DEFAULT_BASE,
    *,
    layout: str = "interleaved",
) -> NDArray[np.floating]:
    r"""Rotate each feature pair of ``x`` by ``position * base^(-2i/d)``.

    Apply it to the queries and the keys (after their projections and the
    head split), never to the values.

    Parameters
    ----------
    x : array_like, shape (..., L, d)
        Queries or keys; ``d`` even and at least 2. float32 stays float32
        (the angles are computed in float64, their cosines and sines cast to
        float32); integer input is treated as float64.
    positions : array_like of int, shape (L,) or (..., L)
        Absolute position of each of the ``L`` tokens (``np.arange(L)`` for a
        whole sequence, ``[t]`` for the token at step ``t`` of a KV cache;
        negative values rotate backwards). Leading axes broadcast against the
        leading axes of ``x`` (e.g. ``(batch, 1, L)`` for a different offset
        per sequence), never enlarging them.
    base : float
        Base of the frequencies, > 1 (10000 in most models; see
        :func:`helpers.positional.positional_frequencies`, the same
        frequencies as the sinusoidal encoding).
    layout : {"interleaved", "half"}, keyword-only
        Which features form pair ``i``: ``(2i, 2i + 1)`` or ``(i, i + d/2)``.
        Queries and keys must use the same layout.

    Returns
    -------
    ndarray, shape and dtype of ``x``
        A new array (``x`` is never modified). Pair ``(a, b)`` becomes
        ``(a cos θ - b sin θ, a sin θ + b cos θ)``, so each pair keeps its norm
        and position 0 leaves ``x`` unchanged. For ``layout="interleaved"``,
        ``apply_rope(x, [m] * L) == x @ positional_shift_matrix(m, d)``.

    Raises
    ------
    ValueError
        If ``x`` has fewer than 2 axes, an odd or zero feature size, NaN or
        infinity; if ``positions`` does not have one entry per token or its
        leading axes do not broadcast to those of ``x``; if ``base <= 1``; if
        ``layout`` is unknown.
    TypeError
        If ``x`` is not numeric, ``positions`` is not an integer array, or
        ``base`` is not a real number.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> q, k = rng.standard_normal((2, 1, 8))
    >>> s1 = apply_rope(q, [3]) @ apply_rope(k, [1]).T  # offset 2
    >>> s2 = apply_rope(q, [10]) @ apply_rope(k, [8]).T  # offset 2 again
    >>> bool(np.allclose(s1, s2))
    True

    Taught in notebook 09 §2 (exercise 09.1).
    """
    layout = _check_layout(layout)
    x = as_float_array(x, "x")
    require_ndim(x, "x", "(..., L, d)", min_ndim=2)
    d = x.shape[-1]
    if d < 2 or d % 2:
        raise ValueError(
            f"x must have an even feature size d >= 2 (features are rotated in pairs), "
            f"got shape {x.shape} (d={d})"
        )
    pos = _check_positions(positions, x.shape)
    require_finite(x, "x")
    omega = positional_frequencies(d, base=base)  # (d/2,), validates base

    # Angles in float64 (large positions keep their precision), then cast once.
    angles = pos[..., np.newaxis].astype(np.float64) * omega  # (..., L, d/2)
    cos = np.cos(angles).astype(x.dtype, copy=False)
    sin = np.sin(angles).astype(x.dtype, copy=False)
    if layout == "interleaved":
        first, second = slice(0, d, 2), slice(1, d, 2)  # pair i = features (2i, 2i + 1)
    else:
        first, second = slice(0, d // 2), slice(d // 2, d)  # pair i = features (i, i + d/2)
    a, b = x[..., first], x[..., second]  # (..., L, d/2) each, views
    out = np.empty_like(x)  # (..., L, d), a new array
    out[..., first] = a * cos - b * sin
    out[..., second] = a * sin + b * cos
    return out
