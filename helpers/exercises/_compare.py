"""How an exercise's result is compared with the reference, and how values are described.

A *comparison* is a callable ``compare(got, want) -> str | None``: ``None`` when ``got`` is
right, otherwise one sentence saying what came back and what was expected. Each exercise picks
the comparison that suits its result: :func:`arrays` (with an optional dtype rule),
:func:`boolean`, :func:`integer`, :func:`real`, or :func:`tuple_of` for several results.

The comparisons made here are :class:`Comparison` objects: ``compare.at_precision(dtype)`` is
the same comparison with its tolerances widened to what ``dtype`` can hold (``PRECISION``), used
when an exercise allows answers in a less precise dtype (``Exercise(allowed_dtypes=...)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from helpers.exercises._format import article, factor_hint, number, numbers

_SMALL = 12  # arrays with at most this many entries are printed in full

# (rtol, atol) an answer computed in this dtype is held to when the exercise allows it: the
# defaults of torch.testing.assert_close. float32 keeps about 7 significant digits, and a few
# operations lose one or two.
PRECISION: dict[str, tuple[float, float]] = {"float32": (1.3e-6, 1e-5), "float16": (1e-3, 1e-5)}


class Comparison:
    """``compare(got, want) -> None | str``, which can be re-made at a lower precision."""

    def __init__(
        self,
        fn: Callable[[Any, Any], str | None],
        at_precision: Callable[[str], Comparison] | None = None,
    ) -> None:
        self._fn = fn
        self._at_precision = at_precision

    def __call__(self, got: Any, want: Any) -> str | None:
        return self._fn(got, want)

    def at_precision(self, dtype: str) -> Comparison:
        """The comparison for an answer computed in ``dtype`` (a key of ``PRECISION``)."""
        return self._at_precision(dtype) if self._at_precision else self


def at_precision(compare: Callable[[Any, Any], str | None], dtype: str) -> Callable[..., Any]:
    """``compare`` widened to ``dtype``'s precision (a plain function is returned unchanged)."""
    return compare.at_precision(dtype) if isinstance(compare, Comparison) else compare


def describe(value: Any) -> str:
    """A short description of any value, for messages: booleans as True/False."""
    if value is None:
        return "None"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return number(float(value))
    if isinstance(value, np.ndarray):
        text = f"{article(value.dtype.name)} {value.dtype} array of shape {value.shape}"
        if 0 < value.size <= _SMALL and value.dtype.kind in "biuf":
            flat = np.array2string(value, precision=4, separator=", ").replace("\n", "")
            text += f" {' '.join(flat.split())}"
        return text
    if isinstance(value, tuple | list):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return f"a {kind} of {len(value)} values"
    name = type(value).__name__
    return f"{article(name)} {name}"


def _index(idx: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _shape_hint(g: tuple[int, ...], w: tuple[int, ...]) -> str:
    if len(g) >= 2 and len(g) == len(w) and g[:-2] + g[-2:][::-1] == w:
        return " (the last two axes swapped: transposed?)"
    if sorted(g) == sorted(w):
        return " (the same axes in another order: a transpose is missing or wrong)"
    if len(g) < len(w):
        return " (an axis is missing)"
    if len(g) > len(w):
        return " (an extra axis)"
    return ""


def _difference(g: float, w: float, rtol: float, atol: float) -> str:
    """'expected …, got …' with enough digits to tell them apart, and how far apart they are."""
    gs, ws = numbers(g, w)
    text = f"expected {ws}, got {gs}"
    if math.isfinite(g) and math.isfinite(w) and w != 0 and abs(g - w) <= 1e-3 * abs(w):
        text += (
            f" (a relative difference of {abs(g - w) / abs(w):.1e}; "
            f"the check allows {rtol:g} relative + {atol:g} absolute)"
        )
    return text


def _bool_difference(g: np.ndarray, w: np.ndarray) -> str | None:
    wrong = g != w
    if not wrong.any():
        return None
    idx = tuple(np.argwhere(wrong)[0])
    where = f" at {_index(idx)}" if idx else ""
    text = (
        f"{int(wrong.sum())} of {w.size} entries differ; first{where}: "
        f"expected {bool(w[idx])}, got {describe(g[idx])}"
    )
    if w.size <= _SMALL:
        text += f"\n  expected {describe(w)}\n  got      {describe(g)}"
    return text


def arrays(rtol: float = 1e-6, atol: float = 1e-9, *, dtype: str | None = None) -> Comparison:
    """Compare arrays: same shape, values within ``rtol``/``atol`` (NaN and ±inf must match).

    ``dtype="bool"`` requires a boolean array (exact comparison); ``dtype="same"`` requires
    the reference's dtype (e.g. float32 in, float32 out).
    """

    def compare(got: Any, want: Any) -> str | None:
        w = np.asarray(want)
        if isinstance(got, tuple | list) and len(got) and not np.isscalar(got[0]):
            return f"returned {describe(got)}; expected one array, {describe(w)}"
        try:
            g = np.asarray(got)
        except (TypeError, ValueError):
            return f"returned {describe(got)}; expected {describe(w)}"
        if g.dtype.kind not in "biuf":
            return f"returned {describe(got)}; expected {describe(w)}"
        if dtype == "bool" and g.dtype != np.bool_:
            return f"returned {describe(g)}; expected a boolean array ({describe(w)})"
        if dtype == "same" and g.dtype != w.dtype:
            return f"returned dtype {g.dtype}; expected {w.dtype} (the input's dtype)"
        if g.shape != w.shape:
            return (
                f"returned shape {g.shape}; expected shape {w.shape}{_shape_hint(g.shape, w.shape)}"
            )
        if w.dtype == np.bool_:
            return _bool_difference(g, w)
        g = g.astype(np.float64)
        w = w.astype(np.float64)
        close = np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
        if close.all():
            return None
        nan = np.isnan(g) & ~np.isnan(w)
        if nan.any():
            idx = tuple(np.argwhere(nan)[0])
            where = f"; the first at {_index(idx)}" if idx else ""
            return (
                f"{int(nan.sum())} of {w.size} entries are NaN{where}, "
                f"where {number(float(w[idx]))} was expected"
            )
        with np.errstate(invalid="ignore"):
            err = np.where(close, 0.0, np.abs(g - w))
        err[np.isnan(err)] = np.inf
        idx = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
        where = f"; the largest difference is at {_index(idx)}" if idx else ""
        return (
            f"{int((~close).sum())} of {w.size} entries differ{where}: "
            f"{_difference(float(g[idx]), float(w[idx]), rtol, atol)}{factor_hint(g, w, rtol)}"
        )

    def relaxed(low: str) -> Comparison:
        r, a = PRECISION.get(low, (rtol, atol))
        return arrays(max(rtol, r), max(atol, a), dtype=None if dtype == "same" else dtype)

    return Comparison(compare, relaxed)


def boolean() -> Comparison:
    """Compare a single truth value: it must be ``True`` or ``False`` (or a NumPy bool)."""

    def compare(got: Any, want: Any) -> str | None:
        if not isinstance(got, bool | np.bool_):
            return f"returned {describe(got)}; expected {bool(want)} (a single bool)"
        if bool(got) != bool(want):
            return f"returned {bool(got)}; expected {bool(want)}"
        return None

    return Comparison(compare)


def integer() -> Comparison:
    """Compare a count: equal value; an ``int``, a NumPy integer or a whole ``float``."""

    def compare(got: Any, want: Any) -> str | None:
        whole = (
            isinstance(got, float | np.floating) and math.isfinite(got) and float(got).is_integer()
        )
        if isinstance(got, bool | np.bool_) or not (isinstance(got, int | np.integer) or whole):
            return f"returned {describe(got)}; expected the whole number {int(want)}"
        if int(got) == int(want):
            return None
        text = f"returned {int(got)}; expected {int(want)}"
        if int(want) and int(got):
            ratio = int(got) / int(want)
            text += f" (got = expected × {ratio:.6g})"
        return text

    return Comparison(compare)


def real(rtol: float = 1e-9, atol: float = 0.0) -> Comparison:
    """Compare one real number within ``rtol``/``atol``."""

    def compare(got: Any, want: Any) -> str | None:
        if isinstance(got, np.ndarray) and got.ndim == 0:
            got = got[()]
        if isinstance(got, bool | np.bool_) or not isinstance(
            got, int | float | np.integer | np.floating
        ):
            return f"returned {describe(got)}; expected the number {number(float(want))}"
        g, w = float(got), float(want)
        if math.isclose(g, w, rel_tol=rtol, abs_tol=atol):
            return None
        gs, ws = numbers(g, w)
        text = f"returned {gs}; expected {ws}"
        if math.isfinite(g) and w != 0 and abs(g - w) <= 1e-3 * abs(w):
            text += f" (a relative difference of {abs(g - w) / abs(w):.1e}; allowed {rtol:g})"
        return text + factor_hint(np.array([g]), np.array([w]), rtol)

    def relaxed(low: str) -> Comparison:
        r, a = PRECISION.get(low, (rtol, atol))
        return real(max(rtol, r), max(atol, a))

    return Comparison(compare, relaxed)


def tuple_of(*parts: Callable[[Any, Any], str | None], names: Sequence[str]) -> Comparison:
    """Compare a tuple of results part by part; ``names`` say what each part is."""

    def compare(got: Any, want: Any) -> str | None:
        if not isinstance(got, tuple | list):
            return f"returned {describe(got)}; expected a tuple ({', '.join(names)})"
        if len(got) != len(parts):
            return f"returned {len(got)} values; expected {len(parts)}: ({', '.join(names)})"
        for part, name, g, w in zip(parts, names, got, want, strict=True):
            problem = part(g, w)
            if problem is not None:
                return f"{name}: {problem}"
        return None

    def relaxed(low: str) -> Comparison:
        return tuple_of(*(at_precision(p, low) for p in parts), names=names)

    return Comparison(compare, relaxed)
