"""helpers.exercises.check: the API, and a report that never crashes on what a learner writes."""

import inspect
import re

import numpy as np
import pytest

from helpers.exercises import (
    CheckResult,
    arrays,
    boolean,
    check,
    check_raises,
    exercise_ids,
    integer,
    real,
    reference,
    tuple_of,
)
from helpers.exercises._core import get

IDS = exercise_ids()


def test_every_notebook_has_at_least_three_exercises_in_order():
    per_notebook = {}
    for i in IDS:
        nb, k = i.split(".")
        per_notebook.setdefault(nb, []).append(int(k))
    assert (
        sorted(per_notebook) == ["01", "02", "03", "04", "05", "06", "07"] or "08" in per_notebook
    )
    for ks in per_notebook.values():
        assert len(ks) >= 3 and ks == list(range(1, len(ks) + 1))


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_passes_and_every_mistake_goes_wrong_somewhere(exercise_id, capsys):
    ex = get(exercise_id)
    result = check(exercise_id, reference(exercise_id))
    assert result.passed and result.attempted and result.mistake is None
    assert result.cases_passed == result.cases_total == len(ex.cases) >= 3
    assert f"✓ all {len(ex.cases)} cases pass" in capsys.readouterr().out
    names = [m.name for m in ex.mistakes]
    assert len(names) == len(set(names)) >= 2
    for m, wrong in zip(ex.mistakes, ex.mistake_cases, strict=True):
        assert wrong, f"{exercise_id} {m.name!r} equals the reference on every case"
        for case in ex.cases:  # a mistake takes every call a learner's function must take
            inspect.signature(m.fn).bind(*case.args, **case.kwargs)
        assert re.fullmatch(r"notebook 0\d .+", m.taught), m.taught


def _stub(*args, **kwargs):
    raise NotImplementedError


def test_a_stub_is_not_attempted_and_does_not_raise(capsys):
    result = check("02.1", _stub)
    assert isinstance(result, CheckResult)
    assert (result.passed, result.attempted, result.mistake) == (False, False, None)
    assert not result
    out = capsys.readouterr().out
    ex = get("02.1")
    effort = ", ".join(
        p
        for p in (f"difficulty {ex.difficulty} of 3" if ex.difficulty else "",
                  f"about {ex.minutes} min" if ex.minutes else "")
        if p
    )
    shown = f" ({effort})" if effort else ""
    assert out == (
        f"Exercise 02.1 · scaled_scores{shown}: not attempted yet — write the function above, "
        "then run this cell.\n"
    )


def test_a_partial_stub_counts_as_attempted():
    def partly(Q, K):
        if Q.ndim > 2:
            raise NotImplementedError
        return Q @ K.T / np.sqrt(Q.shape[-1])

    result = check("02.1", partly)
    assert result.attempted and not result.passed
    assert "part of the function is still the stub" in result.report


def test_a_learner_exception_is_reported_by_case_with_its_line():
    def crashes(Q, K):
        d_k = Q.shape[2]  # IndexError for 2-D inputs
        return Q @ np.swapaxes(K, -1, -2) / np.sqrt(d_k)

    result = check("02.1", crashes)
    assert result.attempted and not result.passed
    assert "First failing case 1 — " in result.report
    assert "it raised IndexError: tuple index out of range" in result.report
    assert "in the line: d_k = Q.shape[2]  # IndexError for 2-D inputs" in result.report


def test_wrong_arity_and_missing_keyword_are_reported():
    result = check("02.1", lambda Q: Q)
    assert "cannot be called as scaled_scores(Q, K)" in result.report

    def no_axis_parameter(x, T):
        if T <= 0:
            raise ValueError("T must be positive")
        z = x / T
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    no_axis = check("01.1", no_axis_parameter)
    assert no_axis.failed_cases == (4, 5) and no_axis.mistake is None
    assert "cannot be called as softmax_with_temperature(x, T, axis=-1)" in no_axis.report
    assert "unexpected keyword argument 'axis'" in no_axis.report


def test_wrong_return_types_none_nan_and_bools():
    assert (
        "returned None: is the return statement missing?" in check("02.1", lambda Q, K: None).report
    )
    assert "expected one array" in check("02.1", lambda Q, K: (Q, K)).report
    assert "returned a str" in check("02.1", lambda Q, K: "scores").report
    nan = check("02.1", lambda Q, K: np.full((Q.shape[-2], K.shape[-2]), np.nan))
    assert "entries are NaN" in nan.report
    ones = check("02.3", lambda weights, threshold=0.95: 1)
    assert "returned 1; expected True (a single bool)" in ones.report
    flipped = check("02.3", lambda weights, threshold=0.95: False)
    assert "returned False; expected True" in flipped.report


def test_a_mutated_input_is_reported():
    def in_place(x, axis=-1):
        x -= x.max(axis=axis, keepdims=True)
        np.exp(x, out=x)
        x /= x.sum(axis=axis, keepdims=True)
        return x

    result = check("01.4", in_place)
    assert "it changed its argument x in place" in result.report


def test_warnings_do_not_leak_and_are_named_in_the_report(recwarn, capfd):
    def naive(x, T, axis=-1):
        if T <= 0:
            raise ValueError("T")
        e = np.exp(x / T)
        return e / e.sum(axis=axis, keepdims=True)

    result = check("01.1", naive)
    assert result.mistake == "no max shift"
    assert "NumPy warned: overflow encountered in exp" in result.report
    assert len(recwarn) == 0 and capfd.readouterr().err == ""


def test_right_values_with_a_warning_fail_where_the_exercise_forbids_warnings():
    def with_warning(x, axis=-1):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return np.nan_to_num(e / e.sum(axis=axis, keepdims=True)).astype(x.dtype)

    result = check("01.4", with_warning)
    assert not result.passed
    assert "the values are right, but NumPy warned: invalid value encountered" in result.report


def test_two_mistakes_at_once_are_both_named():
    def naive_unchecked(x, T, axis=-1):
        e = np.exp(x / T)
        return e / e.sum(axis=axis, keepdims=True)

    result = check("01.1", naive_unchecked)
    assert result.mistake == "no max shift"
    assert "Known mistake — T not checked" in result.report


def test_unknown_ids_and_non_functions():
    with pytest.raises(ValueError, match=r"there is no exercise 02\.9; notebook 02 has"):
        check("02.9", _stub)
    with pytest.raises(ValueError, match=r"must look like '02\.1'"):
        check("2.1", _stub)
    with pytest.raises(TypeError, match="must be a string"):
        check(2.1, _stub)
    result = check("02.1", 42)
    assert not result.attempted and "expected your function scaled_scores, got 42" in result.report


def test_the_result_displays_nothing_more_in_a_notebook():
    result = check("02.1", _stub)
    assert result._ipython_display_() is None
    assert str(result) == result.report


def test_comparisons_of_scalars_bools_and_tuples():
    assert integer()(288, 288) is None
    assert integer()(48, 288) == "returned 48; expected 288 (got = expected × 0.166667)"
    assert integer()(288.0, 288) is None and "whole number" in integer()("288", 288)
    assert "whole number" in integer()(True, 1)
    assert real()(0.5, 0.5) is None and real()(float("nan"), 1.0) == "returned nan; expected 1"
    assert "(= √3)" in real()(3**0.5, 1.0)
    assert boolean()(np.bool_(True), True) is None
    assert boolean()(np.array([True]), True).startswith("returned a bool array of shape (1,)")
    pair = tuple_of(arrays(), arrays(), names=("output", "weights"))
    assert pair((np.ones(2), np.zeros(2)), (np.ones(2), np.ones(2))).startswith("weights: 2 of 2")
    assert "expected 2: (output, weights)" in pair((np.ones(2),), (np.ones(2), np.ones(2)))
    assert "transposed?" in arrays()(np.ones((3, 2)), np.ones((2, 3)))
    assert "(= 1/√8)" in arrays()(np.arange(1.0, 5.0) / 8**0.5, np.arange(1.0, 5.0))
    masks = arrays(dtype="bool")
    assert "expected a boolean array" in masks(np.ones(3), np.ones(3, dtype=bool))
    assert "expected True, got False" in masks(np.zeros(2, dtype=bool), np.ones(2, dtype=bool))


def test_check_raises(capsys):
    def positive(x):
        if x <= 0:
            raise ValueError("x must be > 0")
        return x

    check_raises(positive, [(0,), (-1,)])
    assert capsys.readouterr().out == "✓ positive rejects all 2 bad inputs\n"
    with pytest.raises(AssertionError, match=r"case 1: positive\(1\) accepted bad input"):
        check_raises(positive, [(1,)])
    with pytest.raises(AssertionError, match="raised TypeError"):
        check_raises(positive, [("a",)], expected=ValueError)
    check_raises(lambda a: np.ones(3) + a, [(np.ones(2),)], name="add")
    assert "✓ add rejects all 1 bad inputs" in capsys.readouterr().out
