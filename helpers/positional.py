r"""Sinusoidal positional encodings ("Attention Is All You Need", section 3.5).

Self-attention compares every query with every key by content alone, so it
cannot tell ``"cat sat"`` from ``"sat cat"``. Adding a position-dependent
vector to each embedding fixes that. The sinusoidal encoding of position
``pos`` pairs its features ``(2i, 2i+1)`` and gives pair ``i`` the angular
frequency :math:`\omega_i = 10000^{-2i/d}`:

.. math::

    PE(pos, 2i) = \sin(pos\,\omega_i), \qquad PE(pos, 2i+1) = \cos(pos\,\omega_i).

Each pair is a point on the unit circle turning at its own speed, so moving
``k`` positions on is the same rotation for every ``pos``:

.. math::

    PE(pos + k) = M_k\, PE(pos), \qquad
    M_k = \operatorname{blockdiag}_i
    \begin{pmatrix} \cos k\omega_i & \sin k\omega_i \\
                    -\sin k\omega_i & \cos k\omega_i \end{pmatrix}.

:func:`positional_shift_matrix` builds ``M_k``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike, NDArray

from helpers._validate import positive_int

DEFAULT_BASE = 10000.0
"""The base of the frequencies in the original Transformer."""


def _even_width(d_model: object) -> int:
    d = positive_int(d_model, "d_model")
    if d % 2:
        raise ValueError(
            f"d_model must be even (features come in sin/cos pairs), got d_model={d}"
        )
    return d


def _positive_base(base: object) -> float:
    if isinstance(base, bool) or not isinstance(base, (int, float, np.integer, np.floating)):
        raise TypeError(f"base must be a real number, got {base!r} ({type(base).__name__})")
    if not base > 1:
        raise ValueError(f"base must be > 1, got {base}")
    return float(base)


def positional_frequencies(d_model: int, *, base: float = DEFAULT_BASE) -> NDArray[np.float64]:
    r"""Angular frequencies :math:`\omega_i = base^{-2i/d}` of the ``d_model / 2`` pairs.

    Parameters
    ----------
    d_model : int
        Even embedding width ``d``.
    base : float, keyword-only
        ``10000`` in the original Transformer; must be > 1.

    Returns
    -------
    ndarray, shape (d_model // 2,)
        From ``1`` (pair 0, period ``2π`` positions) down to nearly
        ``1 / base`` (the last pair, period close to ``2π·base``).

    Taught in notebook 06 §4.
    """
    d = _even_width(d_model)
    b = _positive_base(base)
    two_i = np.arange(0, d, 2, dtype=np.float64)  # (d/2,): 0, 2, 4, ...
    return b ** (-two_i / d)


def sinusoidal_positional_encoding(
    seq_len: int,
    d_model: int,
    *,
    base: float = DEFAULT_BASE,
    dtype: DTypeLike = np.float64,
) -> NDArray[np.floating]:
    """Sinusoidal positional encodings of positions ``0 .. seq_len - 1``.

    Parameters
    ----------
    seq_len : int
        Number of positions ``L``.
    d_model : int
        Even embedding width ``d``; the encodings are added to embeddings of
        shape ``(..., L, d)``.
    base : float, keyword-only
        Base of the frequencies (see :func:`positional_frequencies`).
    dtype : np.float32 or np.float64, keyword-only
        Computed in float64, then cast (float32 to add to float32 embeddings
        without promoting them).

    Returns
    -------
    ndarray, shape (seq_len, d_model)
        Column ``2i`` is ``sin(pos * ω_i)`` and column ``2i + 1`` is
        ``cos(pos * ω_i)`` (interleaved pairs). Every entry lies in
        ``[-1, 1]`` and every row has squared norm ``d_model / 2``.

    Raises
    ------
    ValueError
        If ``d_model`` is odd or a size is not positive.
    TypeError
        If a size is not an integer or ``dtype`` is not float32/float64.

    Taught in notebook 06 §4.
    """
    L = positive_int(seq_len, "seq_len")
    omega = positional_frequencies(d_model, base=base)  # (d/2,)
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.float32, np.float64):
        raise TypeError(
            f"dtype must be float32 or float64 (the dtypes attention computes in), got {out_dtype}"
        )
    angles = np.arange(L, dtype=np.float64)[:, np.newaxis] * omega  # (L, d/2)
    pe = np.empty((L, omega.size * 2), dtype=np.float64)  # (L, d)
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles)
    return pe.astype(out_dtype, copy=False)


def positional_shift_matrix(
    k: float, d_model: int, *, base: float = DEFAULT_BASE
) -> NDArray[np.float64]:
    r"""The matrix :math:`M_k` with :math:`PE(pos + k) = M_k\,PE(pos)` for every ``pos``.

    ``M_k`` is block diagonal: pair ``i`` of features is rotated by the angle
    ``k * ω_i``. It depends on the offset ``k`` only, never on ``pos``, which
    is why a linear layer can learn to attend "``k`` tokens back".

    Parameters
    ----------
    k : int or float
        Offset in positions; negative values shift backwards, and
        ``M_{-k}`` is the inverse (and transpose) of ``M_k``.
    d_model : int
        Even embedding width ``d``.
    base : float, keyword-only
        Base of the frequencies (see :func:`positional_frequencies`).

    Returns
    -------
    ndarray, shape (d_model, d_model)
        Orthogonal. For encodings stored as rows, ``pe[pos + k] == M_k @ pe[pos]``
        and ``pe[k:] == pe[:-k] @ M_k.T``.

    Taught in notebook 06 §4 (exercise 06.2).
    """
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
        raise TypeError(f"k must be a real number, got {k!r} ({type(k).__name__})")
    omega = positional_frequencies(d_model, base=base)  # (d/2,)
    c, s = np.cos(float(k) * omega), np.sin(float(k) * omega)  # (d/2,) each
    M = np.zeros((omega.size * 2, omega.size * 2))  # (d, d)
    idx = np.arange(omega.size) * 2
    # [sin(a + b), cos(a + b)] = [[cos b, sin b], [-sin b, cos b]] @ [sin a, cos a]
    M[idx, idx] = c
    M[idx, idx + 1] = s
    M[idx + 1, idx] = -s
    M[idx + 1, idx + 1] = c
    return M
