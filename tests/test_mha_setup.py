"""The MultiHeadAttention layer's set-up (the exercise checks are tested in test_exercises_*.py)."""

import numpy as np

from helpers import MultiHeadAttention, multi_head_attention


def test_layer_init_is_seeded_xavier():
    a, b, c = (MultiHeadAttention(64, 8, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.W_q, b.W_q)
    assert not np.array_equal(a.W_q, c.W_q)
    limit = np.sqrt(6 / 128)
    for W in (a.W_q, a.W_k, a.W_v, a.W_o):
        assert np.abs(W).max() <= limit
        assert abs(W.var() - limit**2 / 3) < 0.1 * limit**2 / 3  # Var U(-a, a) = a²/3
    assert a.num_parameters == 4 * 64 * 64 + 4 * 64
    assert MultiHeadAttention(64, 8, bias=False).num_parameters == 4 * 64 * 64
    assert "parameters=16,640" in repr(a)


def test_layer_equals_function_without_bias():
    rng = np.random.default_rng(0)
    layer = MultiHeadAttention(12, 3, bias=False, seed=0)
    x = rng.standard_normal((2, 5, 12))
    out, w = layer(x)
    ref_out, ref_w = multi_head_attention(x, layer.W_q, layer.W_k, layer.W_v, layer.W_o, 3)
    # The layer keeps what its backward pass needs, the function does not: the two
    # orders of floating-point operations agree to rounding.
    np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(w, ref_w, rtol=1e-12, atol=1e-15)


def test_layer_biases_are_used():
    rng = np.random.default_rng(1)
    layer = MultiHeadAttention(8, 2, seed=0)
    x = rng.standard_normal((4, 8))
    before, _ = layer(x)
    layer.b_o = layer.b_o + 1.0
    after, _ = layer(x)
    np.testing.assert_allclose(after, before + 1.0, rtol=1e-13)


def test_layer_float32():
    layer = MultiHeadAttention(8, 2, seed=0, dtype=np.float32)
    out, w = layer(np.ones((1, 3, 8), dtype=np.float32))
    assert out.dtype == np.float32 and w.dtype == np.float32

