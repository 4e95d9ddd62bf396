"""Exercises of notebook 01 (math utilities): softmax with a temperature and log-softmax; the
softmax backward step is in ``ex01_backward``, the library-grade softmax in ``ex01_softmax``."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import _naive, _softmax
from helpers.exercises.ex01_softmax import NOT_THE_MAX, NOT_THE_MAX_EXPLAINED, shifted_by_mean

rng = np.random.default_rng(101)


# --------------------------------------------------------------------------- 01.1
def _rejects_bad_T(f):
    """A wrong answer that still raises ValueError for T <= 0 (only its values are wrong)."""

    def wrong(x, T, axis=-1):
        if not T > 0:
            raise ValueError("T must be > 0")
        return f(x, T, axis)

    return wrong


def softmax_with_temperature(x, T, axis=-1):
    if not T > 0:
        raise ValueError(f"temperature T must be > 0, got {T}")
    return _softmax(np.asarray(x, dtype=float) / T, axis=axis)


_low_T = rng.normal(size=(2, 5)) * 3 + np.array([[12.0], [-9.0]])  # x / 0.01 reaches ~1500
_far_rows = np.array([[1000.0, 999.0], [0.0, -1.0]])  # one max for both rows underflows row 2
register(
    Exercise(
        id="01.1",
        reference=softmax_with_temperature,
        taught="notebook 01 §10",
        compare=arrays(rtol=1e-6, atol=1e-12, dtype="same"),  # float64 in, float64 out
        difficulty=1,
        minutes=10,
        hints=(
            "Divide the scores by T first; after that it is section 8's stable softmax, taken "
            "along `axis` instead of always the last axis.",
            "At T = 0.01 the scores x / T reach about 1500 and exp overflows: subtract the max "
            "of x / T along `axis`, with keepdims=True so that it broadcasts back.",
            "Check T before anything else (`not T > 0` also catches NaN) and raise ValueError; "
            "then shift by the max along axis, exponentiate, and divide by the sum along the "
            "same axis, both with keepdims=True.",
        ),
        cases=(
            Case((rng.normal(size=(3, 4)), 0.5), "a (3, 4) matrix at T = 0.5"),
            Case((rng.normal(size=(4, 4)) * 3, 2.0), "a square matrix at T = 2"),
            Case((rng.normal(size=6), 1.0), "a vector at T = 1: the plain softmax"),
            Case(
                (rng.normal(size=(3, 5)), 0.5), "axis=0: each column is a distribution", {"axis": 0}
            ),
            Case((rng.normal(size=(2, 3, 4)), 0.7), "a batch, along the middle axis", {"axis": 1}),
            Case((_low_T, 0.01), "a low temperature: x / T reaches about 1500, beyond exp's range"),
            Case(
                (_far_rows, 1.0),
                "rows 1000 apart: each row needs its own max (one max for the whole array "
                "underflows row 2)",
            ),
            Case(
                (np.array([[1000.0, -1000.0], [0.0, -1.0]]), 1.0),
                "a row whose max is 1000 above its mean: only the max shift keeps exp finite",
            ),
            Case((np.ones(3), 0.0), "T = 0 must raise ValueError", raises=ValueError),
            Case((np.ones(3), -1.0), "T < 0 must raise ValueError", raises=ValueError),
        ),
        mistakes=(
            Mistake(
                "multiplied by T",
                "softmax(x * T) instead of softmax(x / T): a small T must sharpen "
                "the weights, not flatten them.",
                "notebook 01 §10",
                _rejects_bad_T(lambda x, T, axis: _softmax(x * T, axis)),
            ),
            Mistake(
                "ignored T",
                "the temperature is never used.",
                "notebook 01 §10",
                _rejects_bad_T(lambda x, T, axis: _softmax(x, axis)),
            ),
            Mistake(
                "ignored axis",
                "the softmax always runs over the last axis; pass axis to the max and to the sum.",
                "notebook 01 §8–9",
                _rejects_bad_T(lambda x, T, axis: _softmax(x / T)),
            ),
            Mistake(
                "no max shift",
                "exp(x / T) overflows to inf at a low temperature and inf / inf is "
                "NaN; subtract the max of x / T along axis first.",
                "notebook 01 §8",
                _rejects_bad_T(lambda x, T, axis: _naive(x / T, axis)),
            ),
            Mistake(
                "T not checked",
                "a temperature T <= 0 must raise ValueError: T = 0 divides by zero "
                "and T < 0 reverses the order of the weights.",
                "notebook 01 §10",
                lambda x, T, axis=-1: _softmax(x / T, axis),
            ),
            Mistake(
                "sum without keepdims",
                "e.sum(axis) drops the axis, so the division broadcasts "
                "along the wrong one (or fails); use keepdims=True.",
                "notebook 01 §14",
                _rejects_bad_T(
                    lambda x, T, axis: (lambda e: e / e.sum(axis))(
                        np.exp(x / T - (x / T).max(axis, keepdims=True))
                    )
                ),
            ),
            Mistake(
                "normalised over the whole array",
                "one sum over every entry instead of one per slice along axis.",
                "notebook 01 §9",
                _rejects_bad_T(
                    lambda x, T, axis: (lambda e: e / e.sum())(np.exp(x / T - (x / T).max()))
                ),
            ),
            Mistake(
                "one maximum for the whole array",
                "(x / T).max() without axis shifts every slice by the largest entry of the "
                "whole array: a slice far below it underflows to 0 / 0. Take the max along axis.",
                "notebook 01 §8–9",
                _rejects_bad_T(
                    lambda x, T, axis: (lambda e: e / e.sum(axis, keepdims=True))(
                        np.exp(x / T - (x / T).max())
                    )
                ),
                hint="The max must be taken per slice: x.max(axis=axis, keepdims=True).",
            ),
            Mistake(
                NOT_THE_MAX,
                NOT_THE_MAX_EXPLAINED,
                "notebook 01 §8",
                _rejects_bad_T(lambda x, T, axis: shifted_by_mean(x / T, axis)),
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 01.2
def log_softmax(x, axis=-1):
    x = np.asarray(x, dtype=float)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _log_softmax_shifted_by_mean(x, axis=-1):
    m = x.mean(axis=axis, keepdims=True)
    return (x - m) - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


register(
    Exercise(
        id="01.2",
        reference=log_softmax,
        taught="notebook 01 §13",
        compare=arrays(rtol=1e-9, atol=1e-9),
        difficulty=2,
        minutes=15,
        hints=(
            "ln softmax(x) = x − ln Σ_j exp(x_j): the only hard part is the log of the sum, which "
            "overflows for large scores and is ln 0 when every exp underflows.",
            "Use section 13's identity LSE(x) = m + ln Σ_j exp(x_j − m) with m the max along "
            "`axis` (keepdims=True): the largest exp is then exactly 1.",
            "Compute the shifted scores x − m once; the answer is those shifted scores minus the "
            "log of the sum, along axis with keepdims=True, of their exponentials.",
        ),
        cases=(
            Case((rng.normal(size=(3, 5)) * 10,), "a (3, 5) matrix with scores of spread 10"),
            Case(
                (np.array([0.0, -800.0, 5.0]),),
                "a score 805 below the max: its softmax underflows to 0, its log must stay finite",
            ),
            Case((rng.normal(size=(2, 3, 4)),), "a batch (2, 3, 4)"),
            Case((rng.normal(size=(4, 3)),), "axis=0", {"axis": 0}),
            Case(
                (np.array([[1000.0, 999.0, 998.0], [-1000.0, -1001.0, -1003.0]]),),
                "scores near ±1000: exp overflows or underflows without the max trick",
            ),
            Case(
                (np.array([[0.0, 500.0, -700.0], [1.0, 499.0, -702.0]]),),
                "axis=0 with columns hundreds apart",
                {"axis": 0},
            ),
            Case(
                (np.array([0.0, -2200.0]),),
                "a max 1100 above the mean: shifted by the mean, exp(1100) overflows; the answer "
                "is [0, -2200]",
            ),
        ),
        mistakes=(
            Mistake(
                "log of the softmax",
                "np.log(softmax(x)) is -inf wherever a weight underflows to "
                "0; compute x - LSE(x) directly.",
                "notebook 01 §13",
                lambda x, axis=-1: np.log(_softmax(x, axis)),
            ),
            Mistake(
                "no max trick",
                "ln Σ exp(x) overflows to inf (or ln 0 = -inf) for large scores; "
                "use LSE(x) = m + ln Σ exp(x - m).",
                "notebook 01 §13",
                lambda x, axis=-1: x - np.log(np.exp(x).sum(axis, keepdims=True)),
            ),
            Mistake(
                "one maximum for the whole array",
                "x.max() without axis shifts every slice by the largest entry of "
                "the whole array; a slice far below it underflows. Take the max along axis.",
                "notebook 01 §13",
                lambda x, axis=-1: (
                    (x - x.max()) - np.log(np.exp(x - x.max()).sum(axis, keepdims=True))
                ),
            ),
            Mistake(
                "forgot the log of the sum",
                "x - max(x) is only the first part; subtract ln Σ exp(x - m) as well.",
                "notebook 01 §13",
                lambda x, axis=-1: x - x.max(axis, keepdims=True),
            ),
            Mistake(
                "forgot m in LSE",
                "x - ln Σ exp(x - m) drops the m: LSE(x) = m + ln Σ exp(x - m).",
                "notebook 01 §13",
                lambda x, axis=-1: (
                    x - np.log(np.exp(x - x.max(axis, keepdims=True)).sum(axis, keepdims=True))
                ),
            ),
            Mistake(
                "ignored axis",
                "the reduction always runs over the last axis.",
                "notebook 01 §9",
                lambda x, axis=-1: log_softmax(x),
            ),
            Mistake(
                NOT_THE_MAX,
                "LSE(x) = c + ln Σ exp(x - c) holds for every constant c, but only c = the max "
                "keeps every exponent <= 0: shifted by the mean, a max more than about 709 "
                "above it overflows exp to inf and the result is -inf. Use m = the max.",
                "notebook 01 §8 and §13",
                _log_softmax_shifted_by_mean,
            ),
        ),
    )
)


from helpers.exercises import ex01_backward, ex01_softmax  # noqa: E402, F401  (01.3, 01.4)
