"""How exercise 07.4 compares two attention masks: by what they do to the scores.

A course mask is boolean (True = may attend) or float (added to the scores). ``same_mask``
turns both the answer and the expected mask into what they add to the scores (True -> 0,
False -> -inf, a float as it is) and compares those, so a boolean mask and its float 0/-inf
form are the same answer. The shapes must be equal (a 2-D ``(L_q, L_k)`` answer counts as
``(1, 1, L_q, L_k)``); a message says when an answer is the same mask broadcast further.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from helpers.exercises._compare import PRECISION, Comparison, describe
from helpers.exercises._format import numbers

INF = np.inf


def _as_added(m: np.ndarray) -> np.ndarray:
    """What a course mask adds to the scores: bool True -> 0, False -> -inf; float as it is."""
    return np.where(m, 0.0, -INF) if m.dtype == np.bool_ else m.astype(np.float64)


def _entry(m: np.ndarray, idx: tuple[int, ...], shown: str | None = None) -> str:
    v = m[idx]
    if m.dtype == np.bool_:
        return "True (may attend)" if v else "False (blocked)"
    return "-inf (blocked)" if v == -INF else shown or describe(float(v))


def _pair(want: np.ndarray, got: np.ndarray, idx: tuple[int, ...]) -> str:
    """'expected …, got …', floats with the digits that tell them apart."""
    w_txt = g_txt = None
    if want.dtype != np.bool_ and got.dtype != np.bool_:
        g_txt, w_txt = numbers(float(got[idx]), float(want[idx]))
    return f"expected {_entry(want, idx, w_txt)}, got {_entry(got, idx, g_txt)}"


def _same_mask(got: Any, want: Any, rtol: float = 1e-12) -> str | None:
    if want is None:
        if got is None:
            return None
        return (
            f"returned {describe(got)}; expected None: with no mask given there is nothing to "
            "convert (the layer is called with mask=None)"
        )
    if got is None:
        return f"returned None; expected {describe(want)}"
    if not isinstance(got, np.ndarray) or got.dtype.kind not in "bf":
        return (
            f"returned {describe(got)}; a course mask is a NumPy array, boolean (True = may "
            "attend) or float (added to the scores)"
        )
    g = got[None, None] if got.ndim == 2 and want.shape[:2] == (1, 1) else got
    if g.ndim != 4:
        extra = " (MultiHeadAttention refuses a 3-D mask as ambiguous)" if g.ndim == 3 else ""
        return f"returned a {got.ndim}-D mask of shape {got.shape}{extra}; expected {want.shape}"
    if g.shape != want.shape:
        text = (
            f"returned shape {got.shape}; expected shape {want.shape} "
            "(B or 1, h or 1, L_q or 1, L_k)"
        )
        try:
            same = np.array_equal(*np.broadcast_arrays(_as_added(g), _as_added(want)))
        except ValueError:
            same = False
        if same:
            text += (
                ": the same mask, broadcast further than asked; keep an axis of size 1 where "
                "no given mask varies along it"
            )
        return text
    added, wanted = _as_added(g), _as_added(want)
    nan = np.isnan(added)
    if nan.any():
        idx = tuple(int(i) for i in np.argwhere(nan)[0])
        return (
            f"{int(nan.sum())} of {nan.size} entries are NaN, the first at {list(idx)}: a mask "
            "holds 0, finite values and -inf, never NaN"
        )
    wrong = ~((added == wanted) | np.isclose(added, wanted, rtol=rtol, atol=0.0))
    if not wrong.any():
        return None
    idx = tuple(int(i) for i in np.argwhere(wrong)[0])
    b, n, i, j = idx
    return (
        f"{int(wrong.sum())} of {wrong.size} entries differ; the first at {list(idx)} (sequence "
        f"{b}, head {n}, query {i}, key {j}): {_pair(want, g, idx)}"
    )


def _at(dtype: str) -> Comparison:  # the values of a float32 answer, held to float32 precision
    return Comparison(lambda got, want: _same_mask(got, want, PRECISION.get(dtype, (1e-12,))[0]))


same_mask = Comparison(_same_mask, _at)
