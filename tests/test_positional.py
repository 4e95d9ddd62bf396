"""Sinusoidal positional encodings: values, shapes, the shift matrix and bad input."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.positional import (
    positional_frequencies,
    positional_shift_matrix,
    sinusoidal_positional_encoding,
)


def reference_pe(seq_len: int, d_model: int, base: float = 10000.0) -> np.ndarray:
    """The defining formula, one entry at a time."""
    pe = np.zeros((seq_len, d_model))
    for pos in range(seq_len):
        for i in range(d_model // 2):
            angle = pos / base ** (2 * i / d_model)
            pe[pos, 2 * i] = math.sin(angle)
            pe[pos, 2 * i + 1] = math.cos(angle)
    return pe


@pytest.mark.parametrize(("seq_len", "d_model"), [(1, 2), (6, 64), (50, 16), (7, 10)])
def test_matches_the_formula(seq_len, d_model):
    pe = sinusoidal_positional_encoding(seq_len, d_model)
    assert pe.shape == (seq_len, d_model)
    np.testing.assert_allclose(pe, reference_pe(seq_len, d_model), atol=1e-12)


def test_known_values_and_row_norm():
    pe = sinusoidal_positional_encoding(4, 8)
    np.testing.assert_array_equal(pe[0], [0, 1] * 4)  # sin 0 = 0, cos 0 = 1
    assert pe[1, 0] == pytest.approx(math.sin(1.0))
    assert pe[3, 1] == pytest.approx(math.cos(3.0))
    assert pe[2, 2] == pytest.approx(math.sin(2 / 10000 ** (2 / 8)))
    np.testing.assert_allclose((pe**2).sum(axis=1), 4.0)  # d_model / 2


def test_frequencies_and_base():
    omega = positional_frequencies(8)
    np.testing.assert_allclose(omega, [1.0, 10.0**-1, 10.0**-2, 10.0**-3])
    np.testing.assert_allclose(positional_frequencies(4, base=100.0), [1.0, 0.1])
    pe = sinusoidal_positional_encoding(5, 4, base=100.0)
    np.testing.assert_allclose(pe, reference_pe(5, 4, base=100.0), atol=1e-12)


def test_dtype():
    pe = sinusoidal_positional_encoding(5, 8, dtype=np.float32)
    assert pe.dtype == np.float32
    x = np.ones((5, 8), dtype=np.float32)
    assert (x + pe).dtype == np.float32
    for bad in (np.int64, np.float16):
        with pytest.raises(TypeError, match="float32 or float64"):
            sinusoidal_positional_encoding(5, 8, dtype=bad)


@settings(max_examples=40, deadline=None)
@given(
    pos=st.integers(0, 200),
    k=st.integers(-60, 60),
    half=st.integers(1, 32),
)
def test_shift_matrix_moves_every_position_by_k(pos, k, half):
    d = 2 * half
    target = pos + k
    if target < 0:
        return
    pe = sinusoidal_positional_encoding(max(pos, target) + 1, d)
    M = positional_shift_matrix(k, d)
    np.testing.assert_allclose(M @ pe[pos], pe[target], atol=1e-9)


def test_shift_matrix_is_a_block_diagonal_rotation():
    d = 16
    M3 = positional_shift_matrix(3, d)
    np.testing.assert_allclose(M3 @ M3.T, np.eye(d), atol=1e-12)
    np.testing.assert_allclose(positional_shift_matrix(-3, d), M3.T, atol=1e-12)
    np.testing.assert_allclose(positional_shift_matrix(0, d), np.eye(d), atol=1e-12)
    np.testing.assert_allclose(positional_shift_matrix(1, d) @ positional_shift_matrix(2, d), M3,
                               atol=1e-12)
    outside = M3.copy()
    for i in range(0, d, 2):
        outside[i:i + 2, i:i + 2] = 0.0
    assert not outside.any()
    # Row form over a whole table: pe[k:] == pe[:-k] @ M_k.T, the same M for every pos.
    pe = sinusoidal_positional_encoding(40, d)
    np.testing.assert_allclose(pe[3:], pe[:-3] @ M3.T, atol=1e-9)


def test_dot_product_depends_on_offset_only():
    pe = sinusoidal_positional_encoding(30, 32)
    gram = pe @ pe.T  # (30, 30)
    for k in range(5):
        diag = np.diagonal(gram, offset=k)
        np.testing.assert_allclose(diag, diag[0], atol=1e-9)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((5, 7), ValueError, "even"),
        ((0, 8), ValueError, "seq_len"),
        ((5, 0), ValueError, "d_model"),
        ((5.0, 8), TypeError, "seq_len"),
        ((5, "8"), TypeError, "d_model"),
    ],
)
def test_bad_sizes(args, error, match):
    with pytest.raises(error, match=match):
        sinusoidal_positional_encoding(*args)


def test_bad_base_and_offset():
    with pytest.raises(ValueError, match="base"):
        sinusoidal_positional_encoding(5, 8, base=1.0)
    with pytest.raises(TypeError, match="base"):
        positional_frequencies(8, base="10000")
    with pytest.raises(TypeError, match="k must be a real number"):
        positional_shift_matrix("1", 8)
    with pytest.raises(ValueError, match="even"):
        positional_shift_matrix(1, 9)
