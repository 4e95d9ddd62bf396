"""Exercise 01.4 of notebook 01: the library-grade softmax (imported by ``ex01``)."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import _naive, _softmax

rng = np.random.default_rng(104)


# --------------------------------------------------------------------------- 01.4
def my_softmax(x, axis=-1):
    x = np.asarray(x)
    return _softmax(x if x.dtype.kind == "f" else x.astype(np.float64), axis=axis)


_inf = np.inf
register(
    Exercise(
        id="01.4",
        reference=my_softmax,
        taught="notebook 01 §8",
        compare=arrays(rtol=1e-5, atol=1e-12, dtype="same"),
        no_warnings=True,
        difficulty=2,
        minutes=20,
        hints=(
            "Section 8's softmax breaks twice on an all −∞ slice: its max is −∞ (and −∞ − (−∞) "
            "is NaN), and its sum of exponentials is 0 (and 0 / 0 is NaN). The last part of "
            "section 8 shows one fix for each.",
            "The safe max: where the max along axis is not finite, shift by 0 instead "
            "(np.where). The guarded division: np.divide(e, total, out=np.zeros_like(e), "
            "where=total > 0).",
            "Keep the dtype (section 6): no np.asarray(x, dtype=float), no NumPy float64 "
            "scalars; np.where with a Python 0.0 and np.zeros_like keep float32. Take the max and "
            "the sum along axis, each with keepdims=True.",
        ),
        cases=(
            Case((rng.normal(size=(3, 4)),), "a (3, 4) matrix"),
            Case(
                (np.array([1000.0, 999.0, 998.0]),),
                "scores near 1000: exp overflows without the max shift",
            ),
            Case((rng.normal(size=(3, 4)),), "axis=0", {"axis": 0}),
            Case((rng.normal(size=(2, 3, 4)),), "a batch, along the middle axis", {"axis": 1}),
            Case(
                ((rng.normal(size=(2, 5)) * 40).astype(np.float32),),
                "float32 with scores beyond 88.7 "
                "(exp overflows float32): the result must stay float32",
            ),
            Case(
                (np.array([[0.5, -_inf, 1.0], [-_inf, -_inf, -_inf]]),),
                "a row of -inf only (a query that may see nothing): zeros, no NaN, no warning",
            ),
            Case(
                (np.array([[0.0, -_inf], [2.0, -_inf], [-1.0, -_inf]]),),
                "axis=0, a column of -inf only",
                {"axis": 0},
            ),
            Case(
                (np.array([-1000.0, -1001.0]),),
                "scores near -1000: exp underflows to 0 without the shift",
            ),
            Case(
                (np.array([[1000.0, 999.0], [0.0, -1.0]]),),
                "rows 1000 apart: each row needs its own max (shifted by the largest entry of "
                "the whole array, row 2 underflows to zeros)",
            ),
        ),
        mistakes=(
            Mistake(
                "no max shift",
                "exp(x) overflows (inf / inf = NaN) or underflows (0 / 0); subtract "
                "the max along axis first.",
                "notebook 01 §8",
                lambda x, axis=-1: _naive(x, axis),
            ),
            Mistake(
                "NaN on an all -inf row",
                "the max of an all -inf slice is -inf and -inf - (-inf) is "
                "NaN: shift such a slice by 0 instead (exp(-inf) = 0) and return 0 where the sum "
                "is 0.",
                "notebook 01 §8 (a slice that is all −∞)",
                lambda x, axis=-1: (lambda e: e / e.sum(axis, keepdims=True))(
                    np.exp(x - x.max(axis, keepdims=True))
                ),
            ),
            Mistake(
                "uniform on an all -inf row",
                "replacing -inf by a large negative number (or NaN by "
                "1/n) gives a query that may see nothing equal weight on every key; it must get "
                "zeros.",
                "notebook 01 §8 (a slice that is all −∞)",
                lambda x, axis=-1: _softmax(np.where(np.isneginf(x), -1e9, x), axis).astype(
                    x.dtype
                ),
            ),
            Mistake(
                "one global max",
                "x.max() without axis shifts every slice by the largest entry of the whole "
                "array: a slice far below it underflows to all zeros. Take the max along axis.",
                "notebook 01 §8–9",
                lambda x, axis=-1: (
                    lambda e: np.divide(
                        e,
                        e.sum(axis, keepdims=True),
                        out=np.zeros_like(e),
                        where=e.sum(axis, keepdims=True) > 0,
                    )
                )(np.exp(x - (x.max() if np.isfinite(x.max()) else 0.0))),
                hint="Each slice along axis needs its own max: x.max(axis=axis, keepdims=True).",
            ),
            Mistake(
                "float32 became float64",
                "np.asarray(x, dtype=float) or a NumPy float64 scalar "
                "promotes float32 input; keep the input's dtype.",
                "notebook 01 §6",
                lambda x, axis=-1: _softmax(np.asarray(x, dtype=np.float64), axis),
            ),
            Mistake(
                "ignored axis",
                "the softmax always runs over the last axis.",
                "notebook 01 §9",
                lambda x, axis=-1: _softmax(x),
            ),
            Mistake(
                "sum without keepdims",
                "e.sum(axis) drops the axis, so the division broadcasts "
                "along the wrong one (or fails); use keepdims=True.",
                "notebook 01 §14",
                lambda x, axis=-1: (lambda e: e / e.sum(axis))(
                    np.exp(x - x.max(axis, keepdims=True))
                ),
            ),
        ),
    )
)
