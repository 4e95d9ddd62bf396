"""Input checks shared by the library: clear errors instead of broadcasting tracebacks."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def as_float_array(x: ArrayLike, name: str) -> NDArray[np.floating]:
    """Return ``x`` as a floating-point array without copying float input.

    Integer and boolean input becomes float64; float32 stays float32 (so the
    library never silently promotes a float32 computation to float64).

    Raises
    ------
    TypeError
        If ``x`` is not numeric (strings, objects, complex numbers).
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:  # ragged nested lists
        raise TypeError(f"{name} must be a numeric array, could not convert it: {err}") from None
    if arr.dtype.kind in "biu":
        return arr.astype(np.float64)
    if arr.dtype.kind != "f":
        raise TypeError(
            f"{name} must be a real numeric array, got dtype {arr.dtype} "
            f"(type {type(x).__name__})"
        )
    return arr


def require_ndim(arr: np.ndarray, name: str, shape_doc: str, *, min_ndim: int = 1,
                 max_ndim: int | None = None) -> None:
    """Raise ``ValueError`` if ``arr.ndim`` is outside ``[min_ndim, max_ndim]``."""
    if arr.ndim < min_ndim or (max_ndim is not None and arr.ndim > max_ndim):
        raise ValueError(
            f"{name} must have shape {shape_doc}, got shape {arr.shape} ({arr.ndim}-D)"
        )


def require_finite(arr: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if ``arr`` holds NaN or infinity."""
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinity; attention needs finite inputs")


def positive_int(value: object, name: str) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer, else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be a positive integer, got {value!r} ({type(value).__name__})"
        )
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_qkv(
    Q: ArrayLike, K: ArrayLike, V: ArrayLike
) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating], tuple[int, ...], bool]:
    """Validate the inputs of an attention computation.

    ``Q (..., L_q, d_k)`` or a single query ``(d_k,)``, ``K (..., L_k, d_k)``,
    ``V (..., L_k, d_v)``, with leading axes that broadcast together.

    Returns
    -------
    Q, K, V : float arrays; a 1-D ``Q`` comes back as ``(1, d_k)``
    lead : tuple of int, the broadcast leading (batch/head) shape
    single_query : bool, whether ``Q`` was 1-D (the caller drops the query axis again)

    Raises
    ------
    ValueError
        If the feature sizes of Q and K differ, K and V have different lengths,
        K or V has fewer than 2 axes, or the leading axes do not broadcast.
    TypeError
        If an input is not numeric.
    """
    Q = as_float_array(Q, "Q")
    K = as_float_array(K, "K")
    V = as_float_array(V, "V")
    single_query = Q.ndim == 1
    if single_query:
        Q = Q[np.newaxis, :]
    require_ndim(K, "K", "(..., L_k, d_k)", min_ndim=2)
    require_ndim(V, "V", "(..., L_k, d_v)", min_ndim=2)
    if Q.shape[-1] != K.shape[-1]:
        raise ValueError(
            f"Q and K must have the same feature size d_k: Q has shape {Q.shape} "
            f"(d_k={Q.shape[-1]}), K has shape {K.shape} (d_k={K.shape[-1]})"
        )
    if K.shape[-2] != V.shape[-2]:
        raise ValueError(
            f"K and V must have the same length L_k: K has shape {K.shape} "
            f"(L_k={K.shape[-2]}), V has shape {V.shape} (L_k={V.shape[-2]})"
        )
    try:
        lead = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    except ValueError:
        raise ValueError(
            f"leading (batch/head) axes do not broadcast: Q {Q.shape}, K {K.shape}, V {V.shape}"
        ) from None
    return Q, K, V, lead, single_query
