"""A known mistake is named only when it is that mistake (issue 20)."""

import math

import numpy as np

from helpers.exercises import Case, Exercise, Mistake, arrays, boolean, check, integer
from helpers.exercises._check import judge


def _known(report: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith("Known mistake — ")]


# --------------------------------------------------------------------------- the cases
def test_01_3_an_np_diag_attempt_is_not_told_sum_without_keepdims():
    def softmax_backward(p, g):
        J = np.diag(p) - np.outer(p, p)  # the Jacobian of one vector: 2-D input breaks it
        return J.T @ g

    result = check("01.3", softmax_backward)
    assert result.failed_cases == (1, 2, 4, 5)
    assert "operands could not be broadcast together with shapes (4,) (20,20)" in result.report
    assert result.mistake is None and _known(result.report) == []
    assert "Not one of the known mistakes" in result.report


def test_01_3_sum_without_keepdims_written_out_is_still_named():
    def softmax_backward(p, g):
        return p * (g - np.sum(p * g, axis=-1))

    assert check("01.3", softmax_backward).mistake == "sum without keepdims"


def test_01_4_an_in_place_attempt_that_keeps_float32_is_not_told_it_became_float64():
    def my_softmax(x, axis=-1):
        x -= x.max(axis=axis, keepdims=True)
        np.exp(x, out=x)
        x /= x.sum(axis=axis, keepdims=True)
        return x

    result = check("01.4", my_softmax)
    assert "it changed its argument x in place" in result.report
    assert "float32 became float64" not in result.report
    assert _known(result.report) == []


def test_01_4_float64_output_is_still_named_when_it_is_the_mistake():
    def my_softmax(x, axis=-1):
        x = np.asarray(x, dtype=float)
        m = x.max(axis=axis, keepdims=True)
        e = np.exp(x - np.where(np.isfinite(m), m, 0.0))
        s = e.sum(axis=axis, keepdims=True)
        return np.divide(e, s, out=np.zeros_like(e), where=s > 0)

    assert check("01.4", my_softmax).mistake == "float32 became float64"


def test_02_3_any_row_gets_one_known_mistake_line_not_a_false_second():
    def is_uniform_head(weights, threshold=0.95):
        p = weights
        H = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=-1)
        return bool(np.any(H >= threshold * math.log(p.shape[-1])))

    result = check("02.3", is_uniform_head)
    assert result.failed_cases == (4, 5, 11)
    # "mean of the row entropies" goes wrong on case 5 only, which "any row" already explains
    assert result.mistakes == ("any row instead of every row",), result.report
    assert len(_known(result.report)) == 1


def test_02_3_always_true_is_not_given_coincidental_names():
    result = check("02.3", lambda weights, threshold=0.95: True)
    assert result.failed_cases == (2, 4, 5, 7, 9, 11)
    assert _known(result.report) == [], result.report
    assert "Not one of the known mistakes" in result.report


# --------------------------------------------------------------------------- the rules, one by one
def _square(x):
    return np.asarray(x, dtype=float) ** 2


def _square_checked(x):
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D, got shape {x.shape}")
    return x.astype(float) ** 2


_SQ_CASES = (
    Case((np.array([1.0, 2.0, 3.0]),), "a vector"),
    Case((np.array([-2.0, 0.5]),), "negative entries"),
    Case((np.array([[1.0, 2.0], [3.0, 4.0]]),), "a matrix"),
)


def _exercise(mistakes, *, reference=_square, cases=_SQ_CASES, compare=None, **options):
    return Exercise(
        id="98.1", reference=reference, cases=cases, mistakes=mistakes,
        taught="notebook 98 §1", compare=compare or arrays(rtol=1e-9, atol=1e-12), **options,
    )


def test_an_error_is_named_only_with_the_same_type_and_message():
    rejects_2d = Mistake("1-D only", "matrices are allowed.", "notebook 98 §1", _square_checked)
    ex = _exercise((rejects_2d,))

    def same_message(x):
        x = np.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"x must be 1-D, got shape {x.shape}")
        return x.astype(float) ** 2

    def other_message(x):
        if np.ndim(x) == 2:
            raise ValueError("no matrices")
        return np.asarray(x, dtype=float) ** 2

    def other_type(x):
        if np.ndim(x) == 2:
            raise TypeError("x must be 1-D, got shape (2, 2)")
        return np.asarray(x, dtype=float) ** 2

    assert judge(ex, same_message).mistakes == ("1-D only",)
    assert judge(ex, other_message).mistakes == ()
    assert judge(ex, other_type).mistakes == ()


def test_a_mistake_is_named_only_with_the_same_dtype():
    halves = Mistake("halved", "no halving.", "notebook 98 §1", lambda x: _square(x) / 2)
    ex = _exercise((halves,))
    assert judge(ex, lambda x: _square(x) / 2).mistakes == ("halved",)
    # the same wrong values, in float32: another answer (the exercise allows no float32)
    assert judge(ex, lambda x: (_square(x) / 2).astype(np.float32)).mistakes == ()


def test_a_mistake_is_named_only_with_the_same_in_place_behaviour():
    def in_place_half(x):
        x **= 2
        x /= 2
        return x

    halves = Mistake("halved", "no halving.", "notebook 98 §1", lambda x: _square(x) / 2)
    ex = _exercise((halves,))
    result = judge(ex, in_place_half)
    assert "changed its argument x in place" in result.report and result.mistakes == ()


def test_two_mistakes_are_both_named_when_each_explains_its_own_cases():
    vec = Mistake("vector case wrong", ".", "notebook 98 §1",
                  lambda x: _square(x) + (np.ndim(x) == 1) * (np.size(x) == 3))
    neg = Mistake("abs missing", ".", "notebook 98 §1",
                  lambda x: np.where(np.asarray(x) < 0, -1.0, 1.0) * _square(x))
    ex = _exercise((vec, neg))

    def both(x):
        return np.where(np.asarray(x) < 0, -1.0, 1.0) * _square(x) + (np.ndim(x) == 1) * (
            np.size(x) == 3
        )

    assert set(judge(ex, both).mistakes) == {"vector case wrong", "abs missing"}
    assert len(_known(judge(ex, both).report)) == 2


def test_a_mistake_whose_cases_another_explains_is_not_named_with_it():
    wide = Mistake("wide", ".", "notebook 98 §1", lambda x: _square(x) + 1)
    narrow = Mistake("narrow", ".", "notebook 98 §1",
                     lambda x: _square(x) + (np.ndim(x) == 2))
    ex = _exercise((narrow, wide))
    assert judge(ex, lambda x: _square(x) + 1).mistakes == ("wide",)
    assert judge(ex, lambda x: _square(x) + (np.ndim(x) == 2)).mistakes == ("narrow",)


def _flag(x):
    return bool(np.asarray(x).sum() > 2)


_BOOL_CASES = (
    Case((np.array([1.0, 2.0]),), "sum 3: True"),
    Case((np.array([0.5, 0.5]),), "sum 1: False"),
    Case((np.array([-4.0, 1.0]),), "sum -3: False"),
    Case((np.array([3.0]),), "sum 3 again: True"),
)


def test_boolean_answers_name_a_mistake_only_when_the_named_ones_explain_every_failure():
    always = Mistake("abs", ".", "notebook 98 §1", lambda x: bool(np.abs(x).sum() > 2))
    ex = _exercise((always,), reference=_flag, cases=_BOOL_CASES, compare=boolean())
    assert judge(ex, lambda x: bool(np.abs(x).sum() > 2)).mistakes == ("abs",)
    # True everywhere agrees with "abs" on case 3 but also fails case 2: a coincidence
    coincidence = judge(ex, lambda x: True)
    assert coincidence.failed_cases == (2, 3) and coincidence.mistakes == ()


def test_integer_answers_of_several_digits_count_as_telling():
    small_doubled = Mistake("doubled", ".", "notebook 98 §1", lambda n: n * n * (1 + (n < 10)))
    cases = (Case((3,), "3"), Case((7,), "7"), Case((10,), "10"))
    ex = _exercise((small_doubled,), reference=lambda n: n * n, cases=cases, compare=integer())

    def doubled_and_off_by_one_at_10(n):
        return 2 * n * n if n < 10 else n * n + 1

    result = judge(ex, doubled_and_off_by_one_at_10)
    assert result.failed_cases == (1, 2, 3) and result.mistakes == ("doubled",)
    assert "Case 3 also fails for another reason." in result.report
    # counts of 0 or 1 tell nothing: the same partial agreement names nothing
    tiny = (Case((0,), "0"), Case((1,), "1"), Case((10,), "10"))
    zero_one = Mistake("zero-one", ".", "notebook 98 §1", lambda n: 1 - n if n < 2 else n * n)
    ex01 = _exercise((zero_one,), reference=lambda n: n * n, cases=tiny, compare=integer())
    assert judge(ex01, lambda n: 1 - n if n < 2 else 7).mistakes == ()
    assert judge(ex01, lambda n: 1 - n if n < 2 else n * n).mistakes == ("zero-one",)


def _keep_dtype_cases():
    return (Case((np.array([1.5, 2.0], dtype=np.float32),), "float32 in"),
            Case((np.array([1.0, 3.0]),), "float64 in"),
            Case((np.array([[1.0, -2.0]], dtype=np.float32),), "a float32 matrix"))


def test_a_learner_with_the_right_dtype_is_named_whatever_dtype_the_mistake_computes_in():
    # the mistake function happens to compute in float64; the learner keeps the input's float32
    doubled = Mistake("doubled", ".", "notebook 98 §1", lambda x: 2 * np.asarray(x, float) ** 2)
    ex = _exercise((doubled,), reference=lambda x: np.asarray(x) ** 2, cases=_keep_dtype_cases(),
                   compare=arrays(dtype="same"))
    assert judge(ex, lambda x: 2 * np.asarray(x) ** 2).mistakes == ("doubled",)
    # a learner who computes in float64 where float32 is expected has the mistake's dtype too
    assert judge(ex, lambda x: 2 * np.asarray(x, float) ** 2).mistakes == ("doubled",)


def test_a_dtype_mistake_is_not_named_for_right_values_in_the_right_dtype():
    to64 = Mistake("became float64", ".", "notebook 98 §1", lambda x: np.asarray(x, float) ** 2)

    def warns(x):
        with np.errstate(divide="warn"):
            np.log(np.zeros(1))
        return np.asarray(x) ** 2

    ex = _exercise((to64,), reference=lambda x: np.asarray(x) ** 2, cases=_keep_dtype_cases(),
                   compare=arrays(dtype="same"), no_warnings=True)
    result = judge(ex, warns)
    assert result.failed_cases == (1, 2, 3) and "NumPy warned" in result.report
    assert result.mistakes == ()
