"""check_function on functions that return plain numbers (0-d results)."""

import pytest

from helpers.selfcheck import SelfCheckError, check_function


def reference(n):
    return n * n * 8


def test_scalar_results_match():
    check_function(lambda n: n * n * 8, reference, cases=[(1,), (6,), (1024,)])


def test_scalar_mismatch_names_the_mistake():
    with pytest.raises(SelfCheckError, match=r"differs: got 48, expected 288") as info:
        check_function(lambda n: n * 8, reference, cases=[(6,)],
                       mistakes={"L instead of L squared": lambda n: n * 8})
    assert "Likely mistake: L instead of L squared" in str(info.value)


def test_scalar_nan_result():
    with pytest.raises(SelfCheckError, match="NaN or infinity"):
        check_function(lambda n: float("nan"), reference, cases=[(2,)])
