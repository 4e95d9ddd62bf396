"""How numbers appear in the messages of a check: enough digits, and factors in exact form."""

from __future__ import annotations

import math

import numpy as np


def article(word: str) -> str:
    """'an' or 'a' before ``word``: 'an int64', 'an IndexError', 'a float32', 'a uint8'.

    A leading u is read as 'you' (uint8, UserWarning, UnicodeError), so it takes 'a'.
    """
    return "an" if word[:1].lower() in ("a", "e", "i", "o") else "a"


def number(v: float) -> str:
    """A value with six significant digits (``inf``/``nan`` as they are)."""
    return f"{v:.6g}" if math.isfinite(v) else str(v)


def numbers(got: float, want: float) -> tuple[str, str]:
    """``got`` and ``want`` with the fewest digits (six at least) that show they differ."""
    if not (math.isfinite(got) and math.isfinite(want)):
        return number(got), number(want)
    for digits in range(6, 18):
        g, w = f"{got:.{digits}g}", f"{want:.{digits}g}"
        if g != w:
            return g, w
    return repr(got), repr(want)


def _whole(x: float) -> int | None:
    """``x`` as a whole number above 1 when it is one (to a relative 1e-6), else None."""
    n = round(x)
    return n if n > 1 and abs(x - n) < 1e-6 * n else None


def _square(n: int) -> bool:
    return math.isqrt(n) ** 2 == n


def exact_factor(c: float) -> str | None:
    """``c`` written exactly when it is one: '4', '1/5', '√3', '1/√8', with its sign."""
    sign, a = ("−" if c < 0 else ""), abs(c)
    if a == 0:
        return None
    if (n := _whole(a)) is not None:
        return f"{sign}{n}"
    if (n := _whole(1 / a)) is not None:
        return f"{sign}1/{n}"
    if (k := _whole(a * a)) is not None and not _square(k):
        return f"{sign}√{k}"
    if (k := _whole(1 / (a * a))) is not None and not _square(k):
        return f"{sign}1/√{k}"
    return None


def factor_hint(g: np.ndarray, w: np.ndarray, rtol: float = 0.0) -> str:
    """'; every entry is c times the expected one' when ``g`` = c · ``w`` for one c ≠ 1.

    A factor within ``rtol`` (the comparison's relative tolerance) of 1, or one that prints as
    1 with six significant digits (a float32 answer to a float64 case: c = 1.00000003), is no
    factor at all and gives no hint. The factor is also written exactly when it is a whole
    number's root or reciprocal ('(= √8)', '(= 1/5)'); a whole number is written as it is
    ('4 times', never '√16').
    """
    big = np.abs(w) > 1e-12
    if not big.any() or not (np.isfinite(g).all() and np.isfinite(w).all()):
        return ""
    if not np.allclose(g[~big], 0.0, atol=1e-9):
        return ""
    ratio = g[big] / w[big]
    c = float(ratio.mean())
    if not np.allclose(ratio, c, rtol=1e-6) or c == 0.0:
        return ""
    if abs(c - 1.0) <= max(rtol, 1e-9) or f"{c:.6g}" == "1":
        return ""
    if abs(c + 1.0) < 1e-9:
        return "; every entry has the opposite sign"
    exact = exact_factor(c)
    shown = f"{c:.6g}"
    if exact is None or exact.replace("−", "-") == shown:
        return f"; every entry is {shown} times the expected one"
    return f"; every entry is {shown} times the expected one (= {exact})"
