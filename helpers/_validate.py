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
