"""The numbers in a report tell the truth (issue 20): enough digits, exact factors, and answers
compared in the precision the exercise allows."""

import numpy as np
import pytest

from helpers.exercises import Case, Exercise, Mistake, arrays, check, real
from helpers.exercises._check import judge
from helpers.exercises._format import exact_factor, factor_hint, numbers


def _square(x):
    return np.asarray(x, dtype=float) ** 2


def _exercise(mistakes, *, reference=_square, cases=(), compare=None, **options):
    return Exercise(
        id="98.1", reference=reference, cases=cases, mistakes=mistakes,
        taught="notebook 98 §1", compare=compare or arrays(rtol=1e-9, atol=1e-12), **options,
    )


# --------------------------------------------------------------------------- messages
@pytest.mark.parametrize(
    ("factor", "shown", "exact"),
    [
        (4.0, "4 times the expected one", None),  # 1/N forgotten with N = 4: never "(= √16)"
        (0.2, "0.2 times the expected one", "(= 1/5)"),  # never "1/√25"
        (10.0, "10 times the expected one", None),  # never "√100"
        (3**0.5, "1.73205 times the expected one", "(= √3)"),
        (8**-0.5, "0.353553 times the expected one", "(= 1/√8)"),
        (-2.0, "-2 times the expected one", None),
        (2.5, "2.5 times the expected one", None),
    ],
)
def test_the_ratio_hint_writes_whole_numbers_as_they_are(factor, shown, exact):
    want = np.arange(1.0, 6.0)
    text = factor_hint(want * factor, want)
    assert shown in text
    assert ("(= " in text) == (exact is not None)
    if exact:
        assert text.endswith(exact)
    assert "√16" not in text and "√25" not in text and "√100" not in text


def test_exact_factor_forms():
    assert [exact_factor(c) for c in (16.0, 1 / 25, 100.0, 2**0.5, -(3**0.5), 1 / 3, 0.3)] == [
        "16", "1/25", "100", "√2", "−√3", "1/3", None,
    ]


def test_a_sign_flip_is_said_as_such():
    assert factor_hint(-np.ones(3), np.ones(3)) == "; every entry has the opposite sign"


def test_values_print_with_enough_digits_to_differ():
    want, got = -0.0705504321, -0.0705504123
    g, w = numbers(got, want)
    assert g != w and w.startswith("-0.07055043") and g.startswith("-0.07055041")
    text = arrays(rtol=1e-9, atol=1e-12)(np.array([1.0, got]), np.array([1.0, want]))
    assert "expected -0.07055043, got -0.07055041" in text
    assert "a relative difference of 2.8e-07" in text
    assert "expected -0.0705504, got -0.0705504" not in text
    far = real()(0.5, 0.25)
    assert far.startswith("returned 0.5; expected 0.25") and "relative difference" not in far
    near = real(rtol=1e-12)(1.0 + 3e-11, 1.0)
    assert near.startswith("returned 1.00000000003; expected 1 (a relative difference of 3.0e-11")


# --------------------------------------------------------------------------- allowed dtypes
def _pe(seq_len, d_model, dtype=np.float64):
    pos = np.arange(seq_len, dtype=dtype)[:, None]
    angles = pos / dtype(10000.0) ** (np.arange(0, d_model, 2, dtype=dtype) / dtype(d_model))
    pe = np.zeros((seq_len, d_model), dtype=dtype)
    pe[:, 0::2], pe[:, 1::2] = np.sin(angles), np.cos(angles)
    return pe


def _pe_swapped(seq_len, d_model, dtype=np.float64):
    pe = _pe(seq_len, d_model, dtype)
    return pe[:, [i + 1 if i % 2 == 0 else i - 1 for i in range(d_model)]]


_PE_CASES = (Case((1, 2), "one position"), Case((50, 64), "50 positions"), Case((9, 10), "d 10"))
_SWAPPED = Mistake("swapped", "sin and cos swapped.", "notebook 98 §1",
                   lambda seq_len, d_model: _pe_swapped(seq_len, d_model))


def _pe_exercise(**options):
    return _exercise((_SWAPPED,), reference=lambda seq_len, d_model: _pe(seq_len, d_model),
                     cases=_PE_CASES, **options)


def test_a_float32_answer_is_compared_in_float32_precision_when_allowed():
    right32 = judge(_pe_exercise(allowed_dtypes=("float32",)),
                    lambda seq_len, d_model: _pe(seq_len, d_model, np.float32))
    assert right32.passed, right32.report
    assert right32.report.endswith("✓ all 3 cases pass (compared in float32 precision).")
    swapped32 = judge(_pe_exercise(allowed_dtypes=("float32",)),
                      lambda seq_len, d_model: _pe_swapped(seq_len, d_model, np.float32))
    assert not swapped32.passed and swapped32.mistakes == ("swapped",)


def test_a_float32_answer_where_float32_is_not_allowed_is_told_why_it_fails():
    result = judge(_pe_exercise(), lambda seq_len, d_model: _pe(seq_len, d_model, np.float32))
    assert not result.passed
    assert "The values are right to float32 precision, but this exercise asks for float64" in (
        result.report
    )
    assert "expected 0.841471, got 0.841471" not in result.report


def test_06_1_in_float32_is_never_told_expected_and_got_the_same_number():
    def positional_encoding(seq_len, d_model):
        return _pe(seq_len, d_model, np.float32)

    report = check("06.1", positional_encoding).report
    for line in report.splitlines():
        if "expected" in line and ", got " in line:
            want, got = line.split("expected ")[-1].split(", got ")
            assert want.split()[0] != got.split()[0], line


def test_a_wrong_dtype_that_is_the_mistake_is_not_excused_by_allowed_dtypes():
    to64 = Mistake("became float64", ".", "notebook 98 §1", lambda x: _square(x))
    cases = (Case((np.array([1.5, 2.0], dtype=np.float32),), "float32 in"),
             Case((np.array([1.0, 3.0]),), "float64 in"))
    ex = _exercise((to64,), reference=lambda x: np.asarray(x) ** 2, cases=cases,
                   compare=arrays(dtype="same"), allowed_dtypes=("float32",))
    assert judge(ex, lambda x: np.asarray(x, dtype=float) ** 2).mistakes == ("became float64",)


def test_allowed_dtypes_are_validated():
    from helpers.exercises._core import _validate

    with pytest.raises(ValueError, match="allowed_dtypes"):
        _validate(_exercise((), allowed_dtypes=("float8",)))
    with pytest.raises(ValueError, match="allowed_dtypes"):
        _validate(_exercise((), allowed_dtypes="float32"))
    with pytest.raises(ValueError, match="difficulty must be 1, 2 or 3"):
        _validate(_exercise((), difficulty=4))
    with pytest.raises(TypeError, match="hints must be a tuple"):
        _validate(_exercise((), hints="one long hint"))


def test_compared_in_float32_precision_is_said_only_when_float32_is_allowed():
    """A float32 answer that passes an exercise that does not allow float32 (its tolerance let it
    through) is not told it was 'compared in float32 precision': it was not."""
    cases = (Case((np.array([1.5, 2.25, -3.1]),), "a vector"), Case((np.ones((2, 2)),), "ones"))

    def square32(x):
        return np.asarray(x, dtype=np.float32) ** 2

    loose = _exercise((), cases=cases, compare=arrays(rtol=1e-6, atol=1e-9))
    not_allowed = judge(loose, square32)
    assert not_allowed.passed and "precision" not in not_allowed.report, not_allowed.report
    allowed = _exercise((), cases=cases, compare=arrays(rtol=1e-6, atol=1e-9),
                        allowed_dtypes=("float32",))
    assert judge(allowed, square32).report.endswith("(compared in float32 precision).")


def test_a_factor_that_is_one_to_the_comparisons_tolerance_is_no_factor():
    """ALiBi (03.4) with a float32 answer said 'every entry is 1 times the expected one'."""
    want = -np.abs(np.subtract.outer(np.arange(5.0), np.arange(5.0))) * 2.0 ** (-8 / 3)
    got = want.astype(np.float32)
    text = arrays(rtol=1e-12, atol=1e-12)(got, want)
    assert text is not None and "times the expected one" not in text, text
    assert factor_hint(want * (1 + 3e-8), want) == ""  # prints as 1 with six digits
    assert factor_hint(want * (1 + 1e-4), want, rtol=1e-3) == ""  # within the comparison's rtol
    assert "1.0001 times" in factor_hint(want * (1 + 1e-4), want, rtol=1e-6)
    def alibi32(seq_len, num_heads):  # 03.4 computed in float32
        slopes = 2.0 ** (-8.0 * np.arange(1, num_heads + 1) / num_heads)
        d = np.abs(np.subtract.outer(np.arange(seq_len), np.arange(seq_len)))
        return (-slopes[:, None, None] * d).astype(np.float32)

    report = check("03.4", alibi32).report
    assert "entries differ" in report and "times the expected one" not in report, report


def test_dtypes_and_errors_take_the_right_article():
    from helpers.exercises._format import article

    assert [article(w) for w in ("int64", "float32", "uint8", "IndexError", "ValueError",
                                 "object", "bool", "AssertionError")] == [
        "an", "a", "a", "an", "a", "an", "a", "an"]
    report = check("03.1", lambda size: np.tril(np.ones((size, size), dtype=np.int64))).report
    assert "returned an int64 array" in report and "a int64" not in report
    raising = Exercise(id="98.2", reference=lambda x: float(x), taught="notebook 98 §1",
                       cases=(Case(("a",), "a string", raises=IndexError),), mistakes=(),
                       compare=real())
    assert "expected it to raise an IndexError" in judge(raising, lambda x: 1.0).report
