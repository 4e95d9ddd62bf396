"""Tests of helpers.tiled.tiled_attention: equal to dense attention, same errors and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import attention, tiled_attention
from helpers.tiled import DEFAULT_BLOCK_SIZE


def dense(Q, K, V, causal=False):
    """Reference: dense attention with a top-left tril mask of shape (L_q, L_k)."""
    Q = np.asarray(Q)
    L_q = 1 if Q.ndim == 1 else Q.shape[-2]
    L_k = np.shape(K)[-2]
    mask = np.tril(np.ones((L_q, L_k), dtype=bool)) if causal else None
    if Q.ndim == 1 and mask is not None:
        mask = mask[0]
    return attention(Q, K, V, mask)[0]


def random_qkv(rng, lead_q, lead_k, L_q, L_k, d_k, d_v, dtype=np.float64, scale=1.0):
    Q = (scale * rng.standard_normal((*lead_q, L_q, d_k))).astype(dtype)
    K = (scale * rng.standard_normal((*lead_k, L_k, d_k))).astype(dtype)
    V = rng.standard_normal((*lead_k, L_k, d_v)).astype(dtype)
    return Q, K, V


def assert_close(actual, expected, dtype):
    assert actual.shape == expected.shape
    assert actual.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)
    else:
        # float32: 1e-5 relative to the size of the output.
        err = np.max(np.abs(actual.astype(np.float64) - expected)) if actual.size else 0.0
        assert err <= 1e-5 * max(1.0, float(np.max(np.abs(expected), initial=0.0)))


CASES = [
    # (lead_q, lead_k, L_q, L_k, d_k, d_v, block_size)
    ((), (), 1, 1, 4, 4, 8),  # L = 1
    ((), (), 1, 37, 4, 3, 8),  # one query, ragged key blocks
    ((), (), 37, 1, 4, 3, 8),  # one key
    ((), (), 37, 53, 8, 5, 16),  # L_q != L_k, ragged last blocks
    ((), (), 53, 37, 8, 5, (7, 16)),  # L_q > L_k, different q/k blocks
    ((), (), 64, 64, 8, 8, 16),  # exact multiple of the block
    ((), (), 64, 64, 8, 8, 1000),  # one block holds everything
    ((), (), 20, 20, 8, 8, 1),  # one-by-one tiles
    ((2, 3), (2, 3), 33, 33, 8, 4, (8, 5)),  # batch and head axes
    ((), (2, 3), 19, 23, 6, 6, 4),  # Q broadcast over batch and heads
    ((2, 1), (1, 3), 19, 23, 6, 6, (5, 4)),  # both broadcast
    ((4,), (4,), 300, 700, 16, 16, DEFAULT_BLOCK_SIZE),  # default blocks, ragged
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_equals_dense_attention(case, causal, dtype):
    lead_q, lead_k, L_q, L_k, d_k, d_v, block_size = case
    rng = np.random.default_rng(len(lead_q) * 1000 + L_q * 31 + L_k)
    Q, K, V = random_qkv(rng, lead_q, lead_k, L_q, L_k, d_k, d_v, dtype)
    expected = dense(Q.astype(np.float64), K.astype(np.float64), V.astype(np.float64), causal)
    actual = tiled_attention(Q, K, V, causal=causal, block_size=block_size)
    assert_close(actual, expected, dtype)


@settings(max_examples=60, deadline=None)
@given(
    L_q=st.integers(1, 40),
    L_k=st.integers(1, 40),
    d_k=st.integers(1, 9),
    d_v=st.integers(1, 9),
    block_q=st.integers(1, 48),
    block_k=st.integers(1, 48),
    heads=st.integers(1, 3),
    causal=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_equals_dense_attention_property(L_q, L_k, d_k, d_v, block_q, block_k, heads, causal,
                                          seed):
    rng = np.random.default_rng(seed)
    Q, K, V = random_qkv(rng, (heads,), (heads,), L_q, L_k, d_k, d_v, scale=3.0)
    actual = tiled_attention(Q, K, V, causal=causal, block_size=(block_q, block_k))
    assert_close(actual, dense(Q, K, V, causal), np.float64)


def test_large_scores_do_not_overflow():
    # Scores around ±1e4: exp would overflow without the running maximum.
    rng = np.random.default_rng(1)
    Q, K, V = random_qkv(rng, (), (), 30, 50, 4, 3, scale=100.0)
    for dtype in (np.float64, np.float32):
        args = [a.astype(dtype) for a in (Q, K, V)]
        out = tiled_attention(*args, block_size=8)
        assert np.isfinite(out).all()
        assert_close(out, dense(Q, K, V), dtype)


def test_causal_matches_torch_is_causal():
    import torch
    rng = np.random.default_rng(2)
    for L_q, L_k in [(7, 12), (12, 7), (9, 9)]:
        Q, K, V = random_qkv(rng, (2,), (2,), L_q, L_k, 8, 5)
        expected = torch.nn.functional.scaled_dot_product_attention(
            *(torch.from_numpy(a) for a in (Q, K, V)), is_causal=True
        ).numpy()
        actual = tiled_attention(Q, K, V, causal=True, block_size=4)
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


def test_causal_first_query_sees_only_the_first_key():
    rng = np.random.default_rng(3)
    Q, K, V = random_qkv(rng, (), (), 5, 9, 4, 3)
    out = tiled_attention(Q, K, V, causal=True, block_size=2)
    np.testing.assert_allclose(out[0], V[0], rtol=1e-12)


def test_single_query_drops_the_query_axis():
    rng = np.random.default_rng(4)
    Q, K, V = random_qkv(rng, (), (2,), 1, 11, 4, 3)
    q = Q[0]  # (d_k,)
    out = tiled_attention(q, K, V, block_size=4)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, attention(q, K, V)[0], rtol=1e-12)


def test_result_does_not_depend_on_block_size():
    rng = np.random.default_rng(5)
    Q, K, V = random_qkv(rng, (3,), (3,), 45, 61, 8, 8)
    outs = [tiled_attention(Q, K, V, causal=True, block_size=b) for b in (1, 3, (5, 17), 64)]
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- dtypes
def test_float32_stays_float32_inside():
    # If any step promoted to float64, the result would be float64.
    rng = np.random.default_rng(6)
    Q, K, V = random_qkv(rng, (2,), (2,), 17, 19, 4, 4, np.float32)
    assert tiled_attention(Q, K, V, block_size=5).dtype == np.float32
    assert tiled_attention(Q, K, V, causal=True, block_size=5).dtype == np.float32


@pytest.mark.parametrize(
    ("dq", "dk", "dv"),
    [
        (np.float32, np.float32, np.float64),
        (np.float64, np.float32, np.float32),
        (np.float32, np.int32, np.float32),  # integers are read as float64: a mix with float32
    ],
)
def test_mixed_dtypes_raise_like_attention(dq, dk, dv):
    rng = np.random.default_rng(7)
    Q = rng.integers(-3, 4, (6, 4)).astype(dq)
    K = rng.integers(-3, 4, (8, 4)).astype(dk)
    V = rng.integers(-3, 4, (8, 2)).astype(dv)
    with pytest.raises(TypeError) as dense_err:
        attention(Q, K, V)
    with pytest.raises(TypeError) as tiled_err:
        tiled_attention(Q, K, V, block_size=3)
    assert str(tiled_err.value) == str(dense_err.value)
    assert "must share one dtype" in str(tiled_err.value)


def test_integer_inputs_become_float64():
    rng = np.random.default_rng(7)
    Q, K, V = (rng.integers(-3, 4, s) for s in ((6, 4), (8, 4), (8, 2)))
    out = tiled_attention(Q, K, V, block_size=3)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, attention(Q, K, V)[0], rtol=1e-12, atol=1e-12)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(8)
    Q, K, V = random_qkv(rng, (), (), 10, 10, 4, 4, np.float32)
    copies = [a.copy() for a in (Q, K, V)]
    tiled_attention(Q, K, V, causal=True, block_size=3)
    for a, c in zip((Q, K, V), copies, strict=True):
        np.testing.assert_array_equal(a, c)


def test_empty_query_axis():
    rng = np.random.default_rng(9)
    Q, K, V = random_qkv(rng, (), (), 0, 5, 4, 3)
    assert tiled_attention(Q, K, V).shape == (0, 3)


# ----------------------------------------------------------------------------- errors
BAD_SHAPES = [
    ((5, 4), (6, 3), (6, 2)),  # d_k differs
    ((5, 4), (6, 4), (7, 2)),  # L_k differs
    ((2, 5, 4), (3, 6, 4), (3, 6, 2)),  # leading axes do not broadcast
    ((5, 4), (4,), (6, 2)),  # K is 1-D
    ((5, 4), (6, 4), (6,)),  # V is 1-D
]


@pytest.mark.parametrize(("sq", "sk", "sv"), BAD_SHAPES)
def test_shape_errors_match_attention(sq, sk, sv):
    Q, K, V = np.ones(sq), np.ones(sk), np.ones(sv)
    with pytest.raises(ValueError) as dense_err:
        attention(Q, K, V)
    with pytest.raises(ValueError) as tiled_err:
        tiled_attention(Q, K, V)
    assert str(tiled_err.value) == str(dense_err.value)
    # The message names the offending shape.
    assert any(str(shape) in str(tiled_err.value) for shape in (sq, sk, sv))


def test_no_keys_gives_a_zero_output_like_attention():
    for causal in (False, True):
        out = tiled_attention(np.ones((3, 4)), np.ones((0, 4)), np.ones((0, 2)), causal=causal)
        assert out.shape == (3, 2) and (out == 0).all()
        np.testing.assert_array_equal(out, attention(np.ones((3, 4)), np.ones((0, 4)),
                                                     np.ones((0, 2)), is_causal=causal)[0])


@pytest.mark.parametrize("name", ["Q", "K", "V"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_rejected(name, bad):
    arrays = {"Q": np.ones((3, 4)), "K": np.ones((5, 4)), "V": np.ones((5, 2))}
    arrays[name][1, 1] = bad
    with pytest.raises(ValueError, match=f"{name} contains NaN or infinity"):
        tiled_attention(**arrays)


def test_non_numeric_input_is_a_type_error():
    with pytest.raises(TypeError, match="Q must be a real numeric array"):
        tiled_attention(np.array([["a"]]), np.ones((2, 1)), np.ones((2, 1)))


@pytest.mark.parametrize(
    ("block_size", "error", "match"),
    [
        (0, ValueError, "block_size must be >= 1"),
        (-4, ValueError, "block_size must be >= 1"),
        (2.5, TypeError, "block_size must be a positive integer"),
        ((4, 0), ValueError, "block_k must be >= 1"),
        ((4, 4, 4), ValueError, "a pair"),
    ],
)
def test_bad_block_size(block_size, error, match):
    with pytest.raises(error, match=match):
        tiled_attention(np.ones((3, 4)), np.ones((5, 4)), np.ones((5, 2)), block_size=block_size)


def test_causal_must_be_a_bool():
    with pytest.raises(TypeError, match="causal must be True or False"):
        tiled_attention(np.ones((3, 4)), np.ones((5, 4)), np.ones((5, 2)), causal="yes")
    with pytest.raises(TypeError, match="is_causal must be True or False"):
        tiled_attention(np.ones((3, 4)), np.ones((5, 4)), np.ones((5, 2)), is_causal=1)


# ----------------------------------------------------------------------------- memory
def test_never_allocates_the_full_score_matrix():
    # L_q * L_k * 8 bytes = 32 MiB for the dense scores; tiles must stay far below that.
    import tracemalloc
    rng = np.random.default_rng(10)
    L, d = 2048, 8
    Q, K, V = random_qkv(rng, (), (), L, L, d, d)
    tracemalloc.start()
    try:
        tiled_attention(Q, K, V, causal=True, block_size=(128, 256))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    dense_scores = L * L * 8
    assert peak < dense_scores / 8, f"peak {peak / 2**20:.1f} MiB"


def test_float32_work_arrays_are_float32():
    # A silent float64 promotion inside (e.g. of the scaled queries) would double the
    # size of every tile, even if the output were cast back to float32 at the end.
    import tracemalloc
    rng = np.random.default_rng(11)
    Q, K, V = random_qkv(rng, (), (), 1024, 1024, 16, 16)
    peaks = {}
    for dtype in (np.float32, np.float64):
        args = [a.astype(dtype) for a in (Q, K, V)]
        tracemalloc.start()
        try:
            tiled_attention(*args, causal=True, block_size=(128, 256))
            peaks[dtype] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peaks[np.float32] < 0.65 * peaks[np.float64], peaks
