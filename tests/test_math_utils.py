"""helpers.math_utils: softmax Jacobian, entropy and log-sum-exp (values, shapes, edge cases)."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from helpers import entropy, logsumexp, softmax, softmax_jacobian

finite_rows = arrays(
    np.float64,
    st.integers(1, 8),
    elements=st.floats(-50, 50, allow_nan=False, allow_infinity=False),
)


def finite_difference_jacobian(x, h=1e-6):
    """Central differences of helpers.softmax at x (n,): column j is dp/dx_j."""
    J = np.empty((x.size, x.size))
    for j in range(x.size):
        step = np.zeros(x.size)
        step[j] = h
        J[:, j] = (softmax(x + step) - softmax(x - step)) / (2 * h)
    return J


# --------------------------------------------------------------------------- softmax_jacobian
def test_jacobian_hand_computed_two_entries():
    # p = (a, 1 - a): J = [[a(1-a), -a(1-a)], [-a(1-a), a(1-a)]]
    a = 0.25
    expected = a * (1 - a) * np.array([[1.0, -1.0], [-1.0, 1.0]])
    np.testing.assert_allclose(softmax_jacobian([a, 1 - a]), expected)


@pytest.mark.parametrize("n", [1, 3, 8])
def test_jacobian_matches_finite_differences(n):
    x = np.random.default_rng(n).normal(size=n) * 3
    np.testing.assert_allclose(
        softmax_jacobian(softmax(x)), finite_difference_jacobian(x), atol=1e-8
    )


@given(finite_rows)
@settings(max_examples=50, deadline=None)
def test_jacobian_symmetric_rows_sum_to_zero(x):
    J = softmax_jacobian(softmax(x))
    np.testing.assert_allclose(J, J.T, atol=1e-15)
    np.testing.assert_allclose(J.sum(axis=-1), 0.0, atol=1e-12)
    # positive semi-definite: v^T J v = Var_p(v) >= 0
    assert np.linalg.eigvalsh(J).min() > -1e-12


def test_jacobian_batched_equals_per_slice():
    p = softmax(np.random.default_rng(1).normal(size=(2, 3, 5)))
    J = softmax_jacobian(p)
    assert J.shape == (2, 3, 5, 5)
    for idx in np.ndindex(2, 3):
        np.testing.assert_allclose(J[idx], np.diag(p[idx]) - np.outer(p[idx], p[idx]))


def test_jacobian_keeps_float32():
    p = softmax(np.random.default_rng(2).normal(size=(4,)).astype(np.float32))
    assert softmax_jacobian(p).dtype == np.float32


def test_jacobian_rejects_scalar_and_strings():
    with pytest.raises(ValueError, match=r"\(\.\.\., n\)"):
        softmax_jacobian(0.5)
    with pytest.raises(TypeError):
        softmax_jacobian(["a", "b"])


# --------------------------------------------------------------------------- entropy
@pytest.mark.parametrize("n", [1, 2, 7])
def test_entropy_uniform_is_log_n(n):
    assert math.isclose(float(entropy(np.full(n, 1 / n))), math.log(n), abs_tol=1e-15)


def test_entropy_one_hot_is_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(entropy([0.0, 1.0, 0.0])) == 0.0


def test_entropy_hand_computed_and_axis():
    p = np.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(entropy(p), [1.5 * math.log(2), 0.0])
    np.testing.assert_allclose(entropy(p.T, axis=0), entropy(p))
    assert entropy(np.ones((2, 3, 4)) / 4).shape == (2, 3)


@given(finite_rows)
@settings(max_examples=50, deadline=None)
def test_entropy_between_zero_and_log_n(x):
    h = float(entropy(softmax(x)))
    assert -1e-12 <= h <= math.log(x.size) + 1e-12


# --------------------------------------------------------------------------- logsumexp
def test_logsumexp_small_matches_direct_formula():
    x = np.random.default_rng(3).normal(size=(3, 4))
    np.testing.assert_allclose(logsumexp(x), np.log(np.exp(x).sum(axis=-1)))
    np.testing.assert_allclose(logsumexp(x, axis=0), np.log(np.exp(x).sum(axis=0)))


def test_logsumexp_large_inputs_do_not_overflow():
    x = np.array([1000.0, 999.0, 998.0])
    expected = 1000.0 + math.log(1 + math.exp(-1) + math.exp(-2))
    assert math.isclose(float(logsumexp(x)), expected, rel_tol=1e-15)
    assert math.isclose(float(logsumexp(-x)), -998.0 + math.log(1 + math.exp(-1) + math.exp(-2)))


def test_logsumexp_handles_minus_infinity():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(logsumexp([-np.inf, -np.inf])) == -np.inf
        assert math.isclose(float(logsumexp([0.0, -np.inf])), 0.0, abs_tol=1e-15)


@given(finite_rows, st.floats(-500, 500))
@settings(max_examples=50, deadline=None)
def test_logsumexp_shift_and_softmax_identity(x, c):
    lse = float(logsumexp(x))
    assert math.isclose(float(logsumexp(x + c)), lse + c, rel_tol=1e-12, abs_tol=1e-9)
    assert x.max() <= lse <= x.max() + math.log(x.size) + 1e-12
    np.testing.assert_allclose(np.exp(x - lse), softmax(x), atol=1e-12)
