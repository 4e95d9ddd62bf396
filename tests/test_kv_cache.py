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
    with pytest.raises(ValueError, match="one token"):
        decode_step(layer, np.ones((2, 8)), KVCache())
    with pytest.raises(ValueError, match="d_model=8"):
        decode_step(layer, np.ones((1, 4)), KVCache())
    cache = KVCache()
    cache.append(np.ones((2, 1, 4)), np.ones((2, 1, 4)))
    with pytest.raises(ValueError, match="do not match"):
        cache.append(np.ones((3, 1, 4)), np.ones((3, 1, 4)))
    with pytest.raises(ValueError, match="same shape"):
        cache.append(np.ones((2, 1, 4)), np.ones((2, 2, 4)))


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
