"""Tests of helpers.kv_cache: incremental decoding equals full causal attention."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import MultiHeadAttention, create_causal_mask
from helpers.kv_cache import KVCache, decode_incrementally, decode_step, decoding_macs


def _layer_with_biases(d_model, h, seed):
    layer = MultiHeadAttention(d_model, h, seed=seed)
    rng = np.random.default_rng(seed + 100)
    for name in ("b_q", "b_k", "b_v", "b_o"):
        setattr(layer, name, rng.normal(size=d_model))
    return layer


@pytest.mark.parametrize("shape", [(2, 9, 8), (6, 8)])
def test_incremental_equals_full_causal(shape):
    layer = _layer_with_biases(8, 2, seed=0)
    x = np.random.default_rng(1).normal(size=shape)
    full, _ = layer(x, mask=create_causal_mask(shape[-2]))
    np.testing.assert_allclose(decode_incrementally(layer, x), full, rtol=0, atol=1e-12)


def test_step_weights_are_rows_of_causal_weights():
    layer = MultiHeadAttention(12, 3, seed=4)
    x = np.random.default_rng(5).normal(size=(2, 6, 12))
    _, full_w = layer(x, mask=create_causal_mask(6))
    cache = KVCache()
    for t in range(6):
        out, w = decode_step(layer, x[:, t:t + 1], cache)
        assert len(cache) == t + 1 and w.shape == (2, 3, 1, t + 1) and out.shape == (2, 1, 12)
        np.testing.assert_allclose(w[:, :, 0], full_w[:, :, t, :t + 1], atol=1e-12)
        np.testing.assert_allclose(full_w[:, :, t, t + 1:], 0.0)


def test_bad_inputs():
    layer = MultiHeadAttention(8, 2, seed=0)
    with pytest.raises(ValueError, match="d_model=8"):
        decode_step(layer, np.ones((1, 4)), KVCache())
    with pytest.raises(TypeError, match="x_new has dtype float32"):
        decode_step(layer, np.ones((1, 8), dtype=np.float32), KVCache())
    cache = KVCache()
    cache.append(np.ones((2, 1, 4)), np.ones((2, 1, 4)))
    with pytest.raises(ValueError, match="do not match"):
        cache.append(np.ones((3, 1, 4)), np.ones((3, 1, 4)))
    with pytest.raises(ValueError, match="do not match"):
        cache.append(np.ones((2, 1, 4), np.float32), np.ones((2, 1, 4), np.float32))
    with pytest.raises(ValueError, match="same shape and dtype"):
        cache.append(np.ones((2, 1, 4)), np.ones((2, 2, 4)))
    with pytest.raises(TypeError, match=r"k_new must be a floating NumPy array.*got list"):
        cache.append([[[1.0] * 4]] * 2, np.ones((2, 1, 4)))
    with pytest.raises(TypeError, match=r"v_new must be a floating NumPy array.*int64"):
        cache.append(np.ones((2, 1, 4)), np.ones((2, 1, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"k_new must have shape .*got shape \(4,\)"):
        KVCache().append(np.ones(4), np.ones(4))
    assert len(cache) == 1  # the rejected appends left it as it was
    with pytest.raises(TypeError, match="MultiHeadAttention"):
        decode_step(None, np.ones((1, 8)), KVCache())
    with pytest.raises(ValueError, match="kdim = vdim = d_model"):
        decode_step(MultiHeadAttention(8, 2, kdim=4), np.ones((1, 8)), KVCache())
    with pytest.raises(ValueError, match=r"chunks must be non-negative sizes summing to L=3"):
        decode_incrementally(layer, np.ones((3, 8)), chunks=[1, 1])


def test_append_copies_and_returns_read_only_views():
    cache = KVCache()
    k, v = np.zeros((2, 1, 4)), np.ones((2, 1, 4))
    keys, _ = cache.append(k, v)
    assert keys is not k and not np.shares_memory(keys, k)
    k[...] = 7.0  # the caller's array changes after the append: the cache does not
    np.testing.assert_array_equal(cache.keys, 0.0)
    with pytest.raises(ValueError, match="read-only"):
        keys[0, 0, 0] = 1.0
    cache.append(np.full((2, 2, 4), 2.0), np.full((2, 2, 4), 3.0))
    np.testing.assert_array_equal(cache.values[:, 0], 1.0)  # (h, t, d_k): token 0
    np.testing.assert_array_equal(cache.values[:, 1:], 3.0)
    np.testing.assert_array_equal(keys, 0.0)  # earlier views keep their tokens


def test_capacity_doubles_so_appends_copy_little():
    cache = KVCache()
    capacities = []
    for _ in range(1000):
        cache.append(np.ones((1, 2, 1, 4)), np.ones((1, 2, 1, 4)))
        capacities.append(cache._k.shape[-2])
    assert len(cache) == 1000 and cache.keys.shape == (1, 2, 1000, 4)
    assert sorted(set(capacities)) == [16, 32, 64, 128, 256, 512, 1024]  # 6 regrowths


@pytest.mark.parametrize("rope_base", [None, 100.0])
@pytest.mark.parametrize("shape", [(2, 8, 8), (8, 8)])
def test_chunked_prefill_equals_full_causal(shape, rope_base):
    layer = MultiHeadAttention(8, 2, seed=3, rope_base=rope_base)
    x = np.random.default_rng(2).normal(size=shape)
    full, full_w = layer(x, mask=create_causal_mask(8))
    for chunks in ([3, 1, 4], [8], [0, 2, 0, 6], [1] * 8):
        np.testing.assert_allclose(decode_incrementally(layer, x, chunks), full, atol=1e-12)
    cache = KVCache()
    decode_step(layer, x[..., :3, :], cache)
    out, w = decode_step(layer, x[..., 3:7, :], cache)  # 4 new tokens after 3 cached ones
    assert w.shape == (*shape[:-2], 2, 4, 7)
    np.testing.assert_allclose(w, full_w[..., 3:7, :7], atol=1e-12)
    np.testing.assert_allclose(out, full[..., 3:7, :], atol=1e-12)


def test_rope_decoding_uses_absolute_positions():
    # The same token at step 5 with a cache of 5 tokens, versus at step 0: with RoPE the
    # new query and key are rotated by their absolute positions, so the outputs differ
    # exactly as in the full sequence.
    layer = MultiHeadAttention(8, 2, seed=1, rope_base=10.0)
    x = np.random.default_rng(4).normal(size=(6, 8))
    full, _ = layer(x, mask=create_causal_mask(6))
    cache = KVCache()
    decode_step(layer, x[:5], cache)
    out, _ = decode_step(layer, x[5:], cache)
    np.testing.assert_allclose(out, full[5:], atol=1e-12)
    positions_ignored = decode_step(layer, x[5:], KVCache())[0]
    assert not np.allclose(positions_ignored, full[5:])


def test_empty_prompt_and_dropout_mode():
    layer = MultiHeadAttention(8, 2, seed=0, dropout=0.5)
    with pytest.raises(ValueError, match=r"training mode with dropout=0.5.*layer.eval\(\)"):
        decode_step(layer, np.ones((1, 8)), KVCache())
    layer.eval()
    assert decode_incrementally(layer, np.empty((0, 8))).shape == (0, 8)
    cache = KVCache()
    out, w = decode_step(layer, np.empty((2, 0, 8)), cache)  # an empty prompt
    assert out.shape == (2, 0, 8) and w.shape == (2, 2, 0, 0) and len(cache) == 0
    x = np.random.default_rng(0).normal(size=(2, 3, 8))
    rows = [decode_step(layer, x[:, t:t + 1], cache)[0] for t in range(3)]
    np.testing.assert_allclose(np.concatenate(rows, axis=1),
                               layer(x, mask=create_causal_mask(3))[0], atol=1e-12)


def _brute_force_macs(L, d, cache):
    total = 0
    for t in range(1, L + 1):
        n = 1 if cache else t  # rows projected at this step
        total += 4 * n * d * d  # q, k, v, output projections: (n, d) @ (d, d)
        total += 2 * n * t * d  # scores (n, d) . (t, d) and weights (n, t) @ (t, d), all heads
    return total


@pytest.mark.parametrize("L", [1, 2, 7, 64])
@pytest.mark.parametrize("d", [1, 16])
def test_decoding_macs_formula(L, d):
    assert decoding_macs(L, d, cache=True) == _brute_force_macs(L, d, True)
    assert decoding_macs(L, d, cache=False) == _brute_force_macs(L, d, False)
