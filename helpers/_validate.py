"""Input checks shared by the library: clear errors instead of broadcasting tracebacks.

The dtype rule of every attention entry point
----------------------------------------------
* The floating inputs of one call (queries, keys, values, tokens, weights and
  biases, an upstream gradient) must share one dtype, ``float32`` or ``float64``.
  Mixing them raises ``TypeError`` naming both arrays, as PyTorch does.
* Integer and boolean arrays, and Python lists, given *as data* are converted to
  ``float64`` first. So mixing them with ``float32`` arrays also raises; the
  message says so and gives the fix (``x.astype(np.float32)``).
* ``float16`` (and ``longdouble``) is rejected with a ``TypeError``: the
  library computes in float32 or float64 only.
* A float mask is cast to the dtype of the scores (a float64 mask on float32
  scores stays float32). Masks are never data: an integer mask is an error
  (see :mod:`helpers._mask_validation`).
* The output has the dtype of the inputs.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.floating]

SUPPORTED_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _convert(x: ArrayLike, name: str) -> tuple[FloatArray, str | None]:
    """``x`` as a float32/float64 array, and a note when it was converted to float64."""
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:  # ragged nested lists
        raise TypeError(f"{name} must be a numeric array, could not convert it: {err}") from None
    kind = arr.dtype.kind
    given_as = "a Python list" if isinstance(x, (list, tuple)) else None
    if kind in "biu":
        how = given_as or f"{arr.dtype} data"
        return arr.astype(np.float64), f"{name} was {how}, converted to float64"
    if kind != "f":
        raise TypeError(
            f"{name} must be a real numeric array, got dtype {arr.dtype} "
            f"(type {type(x).__name__})"
        )
    if arr.dtype not in SUPPORTED_FLOATS:
        raise TypeError(
            f"{name} has dtype {arr.dtype}; the library computes in float32 or float64 only "
            f"(half precision loses too much in the softmax and the products): "
            f"convert it with {name}.astype(np.float32)"
        )
    return arr, (f"{name} was {given_as}, read as float64" if given_as else None)


def as_float_array(x: ArrayLike, name: str) -> FloatArray:
    """Return ``x`` as a float32 or float64 array without copying float input.

    Integer and boolean input becomes float64; float32 stays float32 (so the
    library never silently promotes a float32 computation to float64).

    Raises
    ------
    TypeError
        If ``x`` is not real numeric (strings, objects, complex numbers) or is
        of a floating type other than float32/float64 (float16, longdouble).
    """
    return _convert(x, name)[0]


def as_float_arrays(**named: ArrayLike | None) -> dict[str, FloatArray]:
    """Convert several inputs of one call and check that they share one dtype.

    Keyword names are the names used in messages; ``None`` values are skipped.
    Returns a dict ``name -> array`` in the order given (see the module docstring
    for the rule).

    Raises
    ------
    TypeError
        If an input is not numeric, or two inputs end up with different dtypes:
        the message names both and says how to convert.
    """
    converted = {n: _convert(v, n) for n, v in named.items() if v is not None}
    if not converted:
        return {}
    # The reference is the first array that was floating already (not converted).
    native = [n for n, (_, note) in converted.items() if note is None]
    ref = native[0] if native else next(iter(converted))
    ref_dtype = converted[ref][0].dtype
    for name, (arr, note) in converted.items():
        if arr.dtype != ref_dtype:
            why = f" ({note})" if note else ""
            raise TypeError(
                f"{ref} is {ref_dtype} but {name} is {arr.dtype}{why}: all floating inputs of "
                f"one call must share one dtype, float32 or float64 (as in PyTorch); convert "
                f"with {name}.astype(np.{ref_dtype})"
            )
    return {n: arr for n, (arr, _) in converted.items()}


def match_dtype(x: ArrayLike, name: str, ref: np.ndarray, ref_name: str) -> FloatArray:
    """Convert ``x`` and require the dtype of the already converted ``ref``."""
    arr, note = _convert(x, name)
    if arr.dtype != ref.dtype:
        why = f" ({note})" if note else ""
        raise TypeError(
            f"{ref_name} is {ref.dtype} but {name} is {arr.dtype}{why}: all floating inputs of "
            f"one call must share one dtype, float32 or float64 (as in PyTorch); convert "
            f"with {name}.astype(np.{ref.dtype})"
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
    """Raise ``ValueError`` if ``arr`` holds NaN or infinity, naming it and the first bad entry."""
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)
        first = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{name} contains NaN or infinity ({len(bad)} of {arr.size} entries, the first at "
            f"index {first}: {arr[first]}; shape {arr.shape}); attention needs finite inputs"
        )


def positive_int(value: object, name: str) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer, else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be a positive integer, got {value!r} ({type(value).__name__})"
        )
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_bool(value: object, name: str) -> bool:
    """Return ``value`` as a ``bool`` if it is True or False, else raise ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_scale(scale: object, d_k: int) -> float:
    """The factor applied to ``Q K^T``: ``1/sqrt(d_k)`` for None, else a finite real number."""
    if scale is None:
        return 1.0 / math.sqrt(d_k)
    if isinstance(scale, (bool, np.bool_)) or not isinstance(scale, numbers.Real):
        raise TypeError(
            f"scale must be a real number or None (None: 1/sqrt(d_k)), got {scale!r} "
            f"({type(scale).__name__})"
        )
    value = float(scale)
    if not math.isfinite(value):
        raise ValueError(f"scale must be finite, got {value}")
    return value


def abs_max(arr: np.ndarray) -> float:
    """Largest ``|entry|`` of ``arr`` as a Python float (0 for an empty array)."""
    if not arr.size:
        return 0.0
    return float(max(arr.max(), -arr.min()))  # two reductions, no |arr| temporary


def products_may_overflow(a_max: float, b_max: float, inner: int, scale: float,
                          dtype: np.dtype) -> bool:
    """Whether a product ``scale * (A @ B)`` with ``|A| <= a_max``, ``|B| <= b_max`` may overflow.

    Each entry is a sum of ``inner`` products, so its size is at most
    ``inner * a_max * b_max * |scale|``; below half the dtype's largest number
    (room for rounding) nothing can overflow, and no score needs checking.
    Python floats turn an overflowing bound into ``inf`` (and ``0 * inf`` into
    NaN), which also answers "may overflow".
    """
    bound = inner * a_max * b_max * max(1.0, abs(scale))
    return not bound < 0.5 * float(np.finfo(dtype).max)


def scores_overflow_error(dtype: np.dtype, what: str, a_max: float, b_max: float) -> ValueError:
    """The error for scores that are not finite although the inputs are."""
    return ValueError(
        f"the attention scores overflow {dtype}: {what} (largest |entries| {a_max:.3g} and "
        f"{b_max:.3g}) give scores that are not finite; scale the inputs down or compute in "
        f"float64"
    )


def check_qkv(
    Q: ArrayLike, K: ArrayLike, V: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, tuple[int, ...], bool]:
    """Validate the inputs of an attention computation.

    ``Q (..., L_q, d_k)`` or a single query ``(d_k,)``, ``K (..., L_k, d_k)``,
    ``V (..., L_k, d_v)``, with leading axes that broadcast together. Any of
    ``L_q``, ``L_k``, ``d_v`` and the leading sizes may be 0; ``d_k`` may not.

    Returns
    -------
    Q, K, V : float arrays of one dtype; a 1-D ``Q`` comes back as ``(1, d_k)``
    lead : tuple of int, the broadcast leading (batch/head) shape
    single_query : bool, whether ``Q`` was 1-D (the caller drops the query axis again)

    Raises
    ------
    ValueError
        If an input is 0-D, the feature sizes of Q and K differ or are 0, K and
        V have different lengths, K or V has fewer than 2 axes, the leading axes
        do not broadcast, or an input holds NaN or infinity.
    TypeError
        If an input is not numeric, or the dtypes differ (see the module docstring).
    """
    arrays = as_float_arrays(Q=Q, K=K, V=V)
    Q, K, V = arrays["Q"], arrays["K"], arrays["V"]
    require_ndim(Q, "Q", "(..., L_q, d_k) or (d_k,)", min_ndim=1)
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
    if Q.shape[-1] == 0:
        raise ValueError(
            f"Q and K have d_k = 0 features (Q shape {Q.shape}, K shape {K.shape}): "
            "attention needs d_k >= 1"
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
    for name, arr in (("Q", Q), ("K", K), ("V", V)):
        require_finite(arr, name)
    return Q, K, V, lead, single_query
