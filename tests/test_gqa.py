"""Tests of helpers.gqa: grouped-query attention, repeat_kv and the KV-cache size."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import create_causal_mask, multi_head_attention
from helpers.gqa import grouped_query_attention, kv_cache_bytes, repeat_kv


def _weights(rng, d_model, num_heads, num_kv_heads):
    d_kv = d_model // num_heads * num_kv_heads
    s = 1 / np.sqrt(d_model)
    return (rng.normal(size=(d_model, d_model)) * s, rng.normal(size=(d_model, d_kv)) * s,
            rng.normal(size=(d_model, d_kv)) * s, rng.normal(size=(d_model, d_model)) * s)


def test_equals_multi_head_when_kv_heads_equal_heads():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 12))
    W = _weights(rng, 12, 4, 4)
    out, w = grouped_query_attention(x, *W, num_heads=4, num_kv_heads=4)
    ref_out, ref_w = multi_head_attention(x, *W, num_heads=4)
    np.testing.assert_allclose(out, ref_out, atol=1e-12)
    np.testing.assert_allclose(w, ref_w, atol=1e-12)


@pytest.mark.parametrize("num_kv_heads", [1, 2, 3, 6])
def test_query_heads_of_a_group_share_keys(num_kv_heads):
    """GQA equals MHA whose K/V weights repeat each kv head's columns for its group."""
    rng = np.random.default_rng(1)
    d_model, h = 12, 6
    d_k, g = d_model // h, h // num_kv_heads
    x = rng.normal(size=(3, 7, d_model))
    W_q, W_k, W_v, W_o = _weights(rng, d_model, h, num_kv_heads)

    def widen(W):  # (d, h_kv*d_k) -> (d, h*d_k), kv head j copied to query heads j*g..j*g+g-1
        blocks = W.reshape(d_model, num_kv_heads, d_k)
        return np.repeat(blocks, g, axis=1).reshape(d_model, h * d_k)

    mask = create_causal_mask(7)
    out, w = grouped_query_attention(x, W_q, W_k, W_v, W_o, h, num_kv_heads, mask)
    ref_out, ref_w = multi_head_attention(x, W_q, widen(W_k), widen(W_v), W_o, h, mask)
    np.testing.assert_allclose(out, ref_out, atol=1e-12)
    np.testing.assert_allclose(w, ref_w, atol=1e-12)
    assert out.shape == x.shape and w.shape == (3, h, 7, 7)


def test_matches_torch_enable_gqa():
    import torch
    rng = np.random.default_rng(2)
    d_model, h, h_kv, seq = 16, 8, 2, 5
    x = rng.normal(size=(2, seq, d_model))
    W_q, W_k, W_v, W_o = _weights(rng, d_model, h, h_kv)
    out, _ = grouped_query_attention(x, W_q, W_k, W_v, W_o, h, h_kv)

    def heads(t, n):
        return t.reshape(2, seq, n, d_model // h).transpose(1, 2)

    X = torch.from_numpy(x)
    q = heads(X @ torch.from_numpy(W_q), h)
    k = heads(X @ torch.from_numpy(W_k), h_kv)
    v = heads(X @ torch.from_numpy(W_v), h_kv)
    o = torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    ref = o.transpose(1, 2).reshape(2, seq, d_model) @ torch.from_numpy(W_o)
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-12)


def test_repeat_kv_order():
    x = np.arange(2 * 1 * 3).reshape(2, 1, 3).astype(float)  # (h_kv=2, L=1, d_k=3)
    r = repeat_kv(x, 3)
    assert r.shape == (6, 1, 3)
    np.testing.assert_array_equal(r[:3], np.broadcast_to(x[0], (3, 1, 3)))
    np.testing.assert_array_equal(r[3:], np.broadcast_to(x[1], (3, 1, 3)))


def test_bad_inputs():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 8))
    W = _weights(rng, 8, 4, 2)
    with pytest.raises(ValueError, match="num_kv_heads"):
        grouped_query_attention(x, *W, num_heads=4, num_kv_heads=3)
    with pytest.raises(ValueError, match=r"W_k must have shape \(8, 4\)"):
        grouped_query_attention(x, W[0], W[0], W[2], W[3], num_heads=4, num_kv_heads=2)
    with pytest.raises(ValueError, match="num_heads"):
        grouped_query_attention(x, *W, num_heads=3, num_kv_heads=1)
    with pytest.raises(TypeError):
        repeat_kv(np.ones((2, 1, 3)), 1.5)
    with pytest.raises(ValueError):
        repeat_kv(np.ones((2, 3)), 2)


def test_kv_cache_bytes():
    # 32 layers, 32 kv heads of width 128, 4096 tokens, fp16: exactly 2 GiB
    assert kv_cache_bytes(32, 32, 128, 4096) == 2 * 2**30
    assert kv_cache_bytes(32, 8, 128, 4096) == 2**29
    assert kv_cache_bytes(1, 1, 1, 1, batch=3, bytes_per_value=4) == 24
    with pytest.raises(ValueError):
        kv_cache_bytes(0, 1, 1, 1)
