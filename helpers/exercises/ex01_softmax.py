"""Exercise 01.4 of notebook 01: the library-grade softmax (imported by ``ex01``)."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import _naive, _softmax

rng = np.random.default_rng(104)

# The mistake of shifting by another constant than the max, named wherever a softmax is written
# (01.1, 01.2, 01.4, 02.2, 03.2, 03.5): every constant cancels, only the max prevents overflow.
NOT_THE_MAX = "shifted by something other than the max"
NOT_THE_MAX_EXPLAINED = (
    "any constant c cancels in the softmax, but only c = the max keeps every exponent <= 0: "
    "shifted by the mean (or the min, or 0), a slice whose max lies more than about 709 above "
    "the shift overflows exp to inf (88.7 in float32), and inf / inf is NaN. Subtract each "
    "slice's own max."
)


def mean_of_finite(z, axis=-1):
    """The mean of each slice's finite entries (0 for a slice with none), in z's dtype."""
    finite = np.isfinite(z)
    total = np.where(finite, z, 0.0).sum(axis=axis, keepdims=True)
    count = np.maximum(finite.sum(axis=axis, keepdims=True), 1).astype(z.dtype)
    return total / count


def shifted_by_mean(z, axis=-1, guarded=False, finite_only=False):
    """Notebook 01 §8's softmax with the mean as the shift instead of the max: right until a
    slice's max lies more than about 709 above its mean, NaN there. ``guarded``: the safe shift
    and the guarded division of 01 §8's last part; ``finite_only``: the mean of the finite
    (unmasked) entries."""
    m = mean_of_finite(z, axis) if finite_only else z.mean(axis=axis, keepdims=True)
    if guarded:
        m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(z - m)
    total = e.sum(axis=axis, keepdims=True)
    if guarded:
        return np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    return e / total


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
            Case(
                (np.array([[1000.0, -1000.0], [0.0, -1.0]]),),
                "a row whose max is 1000 above its mean: only the max shift keeps exp finite "
                "(shifted by the mean 0, exp(1000) overflows)",
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
                "one maximum for the whole array",
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
                NOT_THE_MAX,
                NOT_THE_MAX_EXPLAINED,
                "notebook 01 §8",
                lambda x, axis=-1: shifted_by_mean(x, axis, guarded=True),
                hint="Try your function on [1000.0, -1000.0]: what is exp(x - c) for your c?",
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
