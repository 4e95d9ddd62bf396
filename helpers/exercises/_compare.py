"""How an exercise's result is compared with the reference, and how values are described.

A *comparison* is a function ``compare(got, want) -> str | None``: ``None`` when ``got``
is right, otherwise one sentence saying what came back and what was expected. Each exercise
picks the comparison that suits its result: :func:`arrays` (with an optional dtype rule),
:func:`boolean`, :func:`integer`, :func:`real`, or :func:`tuple_of` for several results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Comparison = Callable[[Any, Any], "str | None"]

_SMALL = 12  # arrays with at most this many entries are printed in full


def _number(v: float) -> str:
    return f"{v:.6g}" if math.isfinite(v) else str(v)


def describe(value: Any) -> str:
    """A short description of any value, for messages: booleans as True/False."""
    if value is None:
        return "None"
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return _number(float(value))
    if isinstance(value, np.ndarray):
        text = f"a {value.dtype} array of shape {value.shape}"
        if 0 < value.size <= _SMALL and value.dtype.kind in "biuf":
            flat = np.array2string(value, precision=4, separator=", ").replace("\n", "")
            text += f" {' '.join(flat.split())}"
        return text
    if isinstance(value, tuple | list):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return f"a {kind} of {len(value)} values"
    return f"a {type(value).__name__}"


def _index(idx: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def _factor_hint(g: np.ndarray, w: np.ndarray) -> str:
    """' — every entry is c times the expected one (c = √n?)' when got = c · want."""
    big = np.abs(w) > 1e-12
    if not big.any() or not (np.isfinite(g).all() and np.isfinite(w).all()):
        return ""
    if not np.allclose(g[~big], 0.0, atol=1e-9):
        return ""
    ratio = g[big] / w[big]
    c = float(ratio.mean())
    if not np.allclose(ratio, c, rtol=1e-6) or abs(c - 1.0) < 1e-9 or c == 0.0:
        return ""
    hint = f"; every entry is {c:.6g} times the expected one"
    for power, form in ((c**2, "√{n}"), (1.0 / c**2, "1/√{n}"), (c, "{n}"), (1.0 / c, "1/{n}")):
        n = round(power)
        if n > 1 and abs(power - n) < 1e-6 * n:
            return hint + f" (= {form.format(n=n)})"
    return hint


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
                f"where {_number(float(w[idx]))} was expected"
            )
        with np.errstate(invalid="ignore"):
            err = np.where(close, 0.0, np.abs(g - w))
        err[np.isnan(err)] = np.inf
        idx = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
        where = f"; the largest difference is at {_index(idx)}" if idx else ""
        return (
            f"{int((~close).sum())} of {w.size} entries differ{where}: "
            f"expected {_number(float(w[idx]))}, got {_number(float(g[idx]))}{_factor_hint(g, w)}"
        )

    return compare


def boolean() -> Comparison:
    """Compare a single truth value: it must be ``True`` or ``False`` (or a NumPy bool)."""

    def compare(got: Any, want: Any) -> str | None:
        if not isinstance(got, bool | np.bool_):
            return f"returned {describe(got)}; expected {bool(want)} (a single bool)"
        if bool(got) != bool(want):
            return f"returned {bool(got)}; expected {bool(want)}"
        return None

    return compare


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

    return compare


def real(rtol: float = 1e-9, atol: float = 0.0) -> Comparison:
    """Compare one real number within ``rtol``/``atol``."""

    def compare(got: Any, want: Any) -> str | None:
        if isinstance(got, np.ndarray) and got.ndim == 0:
            got = got[()]
        if isinstance(got, bool | np.bool_) or not isinstance(
            got, int | float | np.integer | np.floating
        ):
            return f"returned {describe(got)}; expected the number {_number(float(want))}"
        g, w = float(got), float(want)
        if math.isclose(g, w, rel_tol=rtol, abs_tol=atol):
            return None
        text = f"returned {_number(g)}; expected {_number(w)}"
        return text + _factor_hint(np.array([g]), np.array([w]))

    return compare


def tuple_of(*parts: Comparison, names: Sequence[str]) -> Comparison:
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

    return compare
