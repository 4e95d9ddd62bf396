"""Scaled dot-product attention: shapes, probabilities, masks, stability, dtypes."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import attention, create_causal_mask, softmax


def rand(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def reference_attention(Q, K, V, mask=None):
    """Direct formula in float64 with an explicit loop over queries (independent of helpers)."""
    Q, K, V = (np.asarray(a, dtype=np.float64) for a in (Q, K, V))
    out = np.zeros((*Q.shape[:-1], V.shape[-1]))
    w = np.zeros((*Q.shape[:-1], K.shape[-2]))
    for idx in np.ndindex(Q.shape[:-1]):
        lead = idx[:-1]
        s = K[lead] @ Q[idx] / np.sqrt(Q.shape[-1])
        keep = np.ones_like(s, dtype=bool) if mask is None else np.broadcast_to(mask, w.shape)[idx]
        if keep.any():
            e = np.where(keep, np.exp(s - s[keep].max()), 0.0)
            w[idx] = e / e.sum()
        out[idx] = w[idx] @ V[lead]
    return out, w


def test_shapes_single_head():
    rng = np.random.default_rng(0)
    out, w = attention(rand(rng, 6, 64), rand(rng, 6, 64), rand(rng, 6, 64))
    assert out.shape == (6, 64)
    assert w.shape == (6, 6)


def test_shapes_cross_attention_and_dv():
    rng = np.random.default_rng(1)
    out, w = attention(rand(rng, 2, 3, 5, 8), rand(rng, 2, 3, 7, 8), rand(rng, 2, 3, 7, 4))
    assert out.shape == (2, 3, 5, 4)
    assert w.shape == (2, 3, 5, 7)


def test_matches_reference_with_broadcast_leading_dims():
    rng = np.random.default_rng(2)
    Q, K, V = rand(rng, 2, 1, 4, 6), rand(rng, 1, 3, 5, 6), rand(rng, 2, 3, 5, 2)
    out, w = attention(Q, K, V)
    Qb, Kb = np.broadcast_to(Q, (2, 3, 4, 6)), np.broadcast_to(K, (2, 3, 5, 6))
    ref_out, ref_w = reference_attention(Qb, Kb, V)
    np.testing.assert_allclose(out, ref_out, atol=1e-12)
    np.testing.assert_allclose(w, ref_w, atol=1e-12)


def test_weights_rows_sum_to_one():
    rng = np.random.default_rng(3)
    _, w = attention(rand(rng, 4, 32), rand(rng, 4, 32), rand(rng, 4, 32))
    np.testing.assert_allclose(w.sum(axis=-1), 1.0, rtol=1e-12)
    assert (w >= 0).all()


def test_two_token_example_from_the_spec():
    Q = K = np.array([[1, 0, 1, 0], [0, 1, 0, 1]], dtype=float)
    V = np.array([[10, 20, 30, 40], [5, 15, 25, 35]], dtype=float)
    out, w = attention(Q, K, V)
    np.testing.assert_allclose(w, [[0.73, 0.27], [0.27, 0.73]], atol=0.005)
    np.testing.assert_allclose(out[0], [8.65, 18.65, 28.65, 38.65], atol=0.01)
    e = np.e / (np.e + 1)  # exact weight
    np.testing.assert_allclose(out[0], e * V[0] + (1 - e) * V[1], rtol=1e-14)


def test_single_query_equals_row_of_batch():
    rng = np.random.default_rng(4)
    Q, K, V = rand(rng, 3, 8), rand(rng, 5, 8), rand(rng, 5, 2)
    out, w = attention(Q, K, V)
    for i in range(3):
        o1, w1 = attention(Q[i], K, V)
        assert o1.shape == (2,) and w1.shape == (5,)
        np.testing.assert_allclose(o1, out[i], rtol=1e-14)
        np.testing.assert_allclose(w1, w[i], rtol=1e-14)


def test_causal_mask_gives_zero_weight_to_future():
    _, w = attention(np.eye(4), np.eye(4), np.eye(4), mask=create_causal_mask(4))
    assert np.all(np.triu(w, k=1) == 0.0)
    np.testing.assert_allclose(w.sum(-1), 1.0)


def test_boolean_and_additive_masks_agree():
    rng = np.random.default_rng(5)
    Q, K, V = rand(rng, 2, 5, 4), rand(rng, 2, 5, 4), rand(rng, 2, 5, 3)
    keep = create_causal_mask(5)
    additive = np.where(keep, 0.0, -np.inf)
    o_bool, w_bool = attention(Q, K, V, mask=keep)
    o_add, w_add = attention(Q, K, V, mask=additive)
    np.testing.assert_array_equal(w_bool, w_add)
    np.testing.assert_array_equal(o_bool, o_add)
    ref_o, _ = reference_attention(Q, K, V, keep)
    np.testing.assert_allclose(o_bool, ref_o, atol=1e-12)


def test_float_mask_is_added_to_scaled_scores():
    rng = np.random.default_rng(6)
    Q, K, V = rand(rng, 3, 4), rand(rng, 5, 4), rand(rng, 5, 2)
    bias = rand(rng, 3, 5)
    _, w = attention(Q, K, V, mask=bias)
    np.testing.assert_allclose(w, softmax(Q @ K.T / 2.0 + bias), rtol=1e-12)


def test_fully_masked_row_gives_zeros_without_warning():
    rng = np.random.default_rng(7)
    Q, K, V = rand(rng, 3, 4), rand(rng, 3, 4), rand(rng, 3, 2)
    mask = np.array([[True, False, False], [False, False, False], [True, True, True]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, w = attention(Q, K, V, mask=mask)
        out_f, w_f = attention(Q, K, V, mask=np.where(mask, 0.0, -np.inf))
    assert np.all(w[1] == 0) and np.all(out[1] == 0)
    assert np.all(w_f[1] == 0) and np.all(out_f[1] == 0)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(w[[0, 2]].sum(-1), 1.0)


@pytest.mark.parametrize("scale", [100.0, 1e4])
def test_stable_for_large_inputs(scale):
    rng = np.random.default_rng(8)
    Q, K, V = rand(rng, 4, 32) * scale, rand(rng, 4, 32) * scale, rand(rng, 4, 32)
    out, w = attention(Q, K, V)
    assert np.isfinite(out).all() and np.isfinite(w).all()
    np.testing.assert_allclose(w.sum(-1), 1.0)


def test_softmax_no_overflow_at_1e4_and_shift_invariant():
    x = np.array([1e4, -1e4, 0.0, 9999.0])
    p = softmax(x)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, softmax(x - 1e4), rtol=1e-15)
    np.testing.assert_allclose(p.sum(), 1.0)
    np.testing.assert_allclose(softmax([2.0, 1.0, 0.5]), [0.63, 0.23, 0.14], atol=0.005)


def test_softmax_axis():
    rng = np.random.default_rng(9)
    x = rand(rng, 3, 4, 5)
    for axis in range(3):
        p = softmax(x, axis=axis)
        np.testing.assert_allclose(p.sum(axis=axis), 1.0)
        np.testing.assert_allclose(p, np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True))


def test_float32_stays_float32_even_with_float64_mask():
    rng = np.random.default_rng(10)
    Q, K, V = (rand(rng, 2, 5, 8, dtype=np.float32) for _ in range(3))
    mask = np.where(create_causal_mask(5), 0.0, -np.inf)  # float64
    out, w = attention(Q, K, V, mask=mask)
    assert out.dtype == np.float32 and w.dtype == np.float32
    out2, w2 = attention(Q, K, V, mask=create_causal_mask(5))
    assert out2.dtype == np.float32 and w2.dtype == np.float32
    assert softmax(Q).dtype == np.float32


def test_integer_input_becomes_float64():
    out, w = attention([[1, 0]], [[1, 0], [0, 1]], [[1, 2], [3, 4]])
    assert out.dtype == np.float64 and w.dtype == np.float64


def test_inputs_are_not_modified():
    rng = np.random.default_rng(11)
    Q, K, V = rand(rng, 3, 4), rand(rng, 3, 4), rand(rng, 3, 4)
    mask = create_causal_mask(3)
    copies = [a.copy() for a in (Q, K, V, mask)]
    attention(Q, K, V, mask=mask)
    softmax(Q)
    for a, c in zip((Q, K, V, mask), copies, strict=True):
        np.testing.assert_array_equal(a, c)


@settings(max_examples=40, deadline=None)
@given(
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    L_q=st.integers(1, 6), L_k=st.integers(1, 6), d_k=st.integers(1, 8), d_v=st.integers(1, 5),
    masked=st.booleans(), seed=st.integers(0, 2**16),
)
def test_property_matches_reference(lead, L_q, L_k, d_k, d_v, masked, seed):
    rng = np.random.default_rng(seed)
    Q, K, V = rand(rng, *lead, L_q, d_k), rand(rng, *lead, L_k, d_k), rand(rng, *lead, L_k, d_v)
    mask = rng.random((L_q, L_k)) < 0.7 if masked else None
    out, w = attention(Q, K, V, mask=mask)
    ref_out, ref_w = reference_attention(Q, K, V, mask)
    np.testing.assert_allclose(out, ref_out, atol=1e-12)
    np.testing.assert_allclose(w, ref_w, atol=1e-12)
    sums = w.sum(-1)
    assert np.all(np.isclose(sums, 1.0) | (sums == 0.0))
