"""MultiHeadAttention: parameter checks, kdim/vdim, need_weights, dropout, RoPE, dtypes, sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import MultiHeadAttention, apply_rope, attention, combine_heads, split_heads
from helpers.mha.dropout import dropout_keep_mask

TOL64 = dict(rtol=1e-12, atol=1e-12)


def torch_mha(d, h, *, dropout=0.0, kdim=None, vdim=None, bias=True, seed=0):
    torch.manual_seed(seed)
    m = torch.nn.MultiheadAttention(d, h, dropout=dropout, kdim=kdim, vdim=vdim, bias=bias,
                                    batch_first=True).double()
    if bias:
        with torch.no_grad():
            m.in_proj_bias.normal_()
            m.out_proj.bias.normal_()
    return m


def torch_out(m, *xs, **kw):
    with torch.no_grad():
        out, w = m(*(torch.from_numpy(x) for x in xs), average_attn_weights=False, **kw)
    return out.numpy(), None if w is None else w.numpy()


# ---------------------------------------------------------------------------- parameters
def test_assigned_parameters_are_validated_and_named():
    layer = MultiHeadAttention(8, 2, seed=0)
    with pytest.raises(ValueError, match=r"b_o must have shape \(8,\), got shape \(1,\)"):
        layer.b_o = np.ones(1)  # would broadcast as a scalar bias
    with pytest.raises(ValueError, match=r"W_q must have shape \(8, 8\), got shape \(8, 4\)"):
        layer.W_q = np.zeros((8, 4))
    with pytest.raises(TypeError, match=r"W_k must have the layer's dtype float64, got float32"):
        layer.W_k = np.zeros((8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match=r"W_v .*NaN"):
        layer.W_v = np.full((8, 8), np.nan)
    with pytest.raises(ValueError, match=r"b_q must be an array.*got None"):
        layer.b_q = None
    with pytest.raises(TypeError, match="W_o must be a real floating-point array"):
        layer.W_o = np.full((8, 8), "a")
    layer.b_v = [0.5] * 8  # a list of floats suits a float64 layer
    assert layer.b_v.dtype == np.float64 and layer.b_v.shape == (8,)
    no_bias = MultiHeadAttention(8, 2, bias=False)
    with pytest.raises(ValueError, match="b_q: this layer was built with bias=False"):
        no_bias.b_q = np.zeros(8)
    no_bias.b_q = None  # stays absent


def test_parameters_changed_in_place_are_checked_at_forward():
    layer = MultiHeadAttention(8, 2, seed=0)
    layer(np.ones((3, 8)))
    layer.W_o[2, 3] = np.inf  # bypasses the setter
    with pytest.raises(ValueError, match=r"W_o \(shape \(8, 8\)\) contains NaN or infinity"):
        layer(np.ones((3, 8)))
    layer.b_k[0] = np.nan
    layer.W_o[2, 3] = 0.0
    with pytest.raises(ValueError, match=r"b_k .*NaN"):
        layer(np.ones((3, 8)))


def test_constructor_errors():
    with pytest.raises(TypeError, match="bias must be True or False, got 'no'"):
        MultiHeadAttention(8, 2, bias="no")
    with pytest.raises(TypeError, match="dropout must be a probability"):
        MultiHeadAttention(8, 2, dropout="0.1")
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\], got 1.5"):
        MultiHeadAttention(8, 2, dropout=1.5)
    with pytest.raises(ValueError, match="kdim must be >= 1"):
        MultiHeadAttention(8, 2, kdim=0)
    with pytest.raises(ValueError, match="rope_base must be a finite float > 1"):
        MultiHeadAttention(8, 2, rope_base=1.0)
    with pytest.raises(ValueError, match=r"even head width d_k.*d_k=3"):
        MultiHeadAttention(6, 2, rope_base=10000.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        MultiHeadAttention(8, 2, dtype=np.float16)


def test_parameters_and_grads_share_keys_absent_biases_omitted():
    assert list(MultiHeadAttention(8, 2).parameters()) == [
        "W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o"]
    layer = MultiHeadAttention(8, 2, bias=False, kdim=3, vdim=5)
    params = layer.parameters()
    assert list(params) == list(layer.grads) == ["W_q", "W_k", "W_v", "W_o"]
    assert params["W_k"].shape == layer.grads["W_k"].shape == (3, 8)
    assert params["W_v"].shape == (5, 8)
    assert params["W_q"] is layer.W_q  # the arrays themselves: an optimizer updates them in place
    assert layer.num_parameters == 8 * 8 * 2 + 3 * 8 + 5 * 8
    assert "kdim=3, vdim=5" in repr(layer)


# ---------------------------------------------------------------------------- dtypes, sizes
def test_dtype_rule_mixed_dtypes_raise():
    l32 = MultiHeadAttention(8, 2, seed=0, dtype=np.float32)
    x32 = np.ones((2, 3, 8), dtype=np.float32)
    with pytest.raises(TypeError, match=r"query has dtype float64 but the layer is float32"):
        l32(x32.astype(np.float64))
    with pytest.raises(TypeError, match=r"key has dtype float64 but the layer is float32"):
        l32(x32, x32.astype(np.float64))
    out, w = l32(x32, x32, x32, mask=np.zeros((3, 3)))  # a float64 mask is cast
    assert out.dtype == w.dtype == np.float32
    l64 = MultiHeadAttention(8, 2, seed=0)
    out, _ = l64(np.ones((3, 8), dtype=int))  # integers are read as float64
    assert out.dtype == np.float64


@pytest.mark.parametrize(("q_shape", "kv_shape"), [
    ((0, 3, 8), (0, 4, 8)), ((2, 0, 8), (2, 4, 8)), ((2, 3, 8), (2, 0, 8)), ((0, 8), (0, 8))])
def test_zero_sizes(q_shape, kv_shape):
    layer = MultiHeadAttention(8, 2, seed=0)
    layer.b_o = np.arange(8.0)
    out, w = layer(np.ones(q_shape), np.ones(kv_shape))
    assert out.shape == q_shape
    assert w.shape == (*q_shape[:-2], 2, q_shape[-2], kv_shape[-2])
    # A query with no key to attend to gets zero weights and a zero attention output: b_o.
    np.testing.assert_array_equal(out, np.broadcast_to(layer.b_o, q_shape))
    d_q, d_kv = layer.backward(np.ones(q_shape))
    assert d_q.shape == q_shape and d_kv.shape == kv_shape
    assert np.all(d_q == 0) and np.all(d_kv == 0)
    assert np.all(layer.grads["W_q"] == 0)
    assert np.all(layer.grads["b_o"] == np.prod(q_shape[:-1]))


def test_need_weights_and_average_attn_weights():
    rng = np.random.default_rng(0)
    m = torch_mha(8, 2)
    layer = MultiHeadAttention.from_torch(m)
    x = rng.standard_normal((2, 5, 8))
    out, w = layer(x, need_weights=False)
    assert w is None
    np.testing.assert_allclose(out, torch_out(m, x, x, x)[0], **TOL64)
    _, w_avg = layer(x, average_attn_weights=True)
    with torch.no_grad():
        _, t_w = m(*(torch.from_numpy(x),) * 3)  # PyTorch averages by default
    assert w_avg.shape == (2, 5, 5)
    np.testing.assert_allclose(w_avg, t_w.numpy(), **TOL64)


# ---------------------------------------------------------------------------- kdim / vdim
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kdim_vdim_equal_pytorch(dtype):
    rng = np.random.default_rng(1)
    m = torch_mha(8, 2, kdim=5, vdim=3)
    layer = MultiHeadAttention.from_torch(m, dtype=dtype)
    assert (layer.kdim, layer.vdim, layer.W_k.shape, layer.W_v.shape) == (5, 3, (5, 8), (3, 8))
    q, k, v = (rng.standard_normal(s) for s in ((2, 4, 8), (2, 6, 5), (2, 6, 3)))
    out, w = layer(*(a.astype(dtype) for a in (q, k, v)))
    t_out, t_w = torch_out(m, q, k, v)
    tol = TOL64 if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out, t_out, **tol)
    np.testing.assert_allclose(w, t_w, **tol)
    with pytest.raises(ValueError, match=r"kdim=5, vdim=3 \(d_model=8\): pass key and value"):
        layer(q.astype(dtype))  # self-attention needs kdim == vdim == d_model
    with pytest.raises(ValueError, match="kdim=5 != vdim=3: pass value explicitly"):
        layer(q.astype(dtype), k.astype(dtype))


# ---------------------------------------------------------------------------- dropout
def test_train_eval_and_from_torch_copy_dropout_and_mode():
    m = torch_mha(8, 2, dropout=0.3)
    layer = MultiHeadAttention.from_torch(m)
    assert layer.dropout == 0.3 and layer.training  # PyTorch modules start in training mode
    assert MultiHeadAttention.from_torch(m.eval()).training is False
    assert layer.eval() is layer and not layer.training
    assert layer.train() is layer and layer.training
    with pytest.raises(TypeError, match="mode must be True or False"):
        layer.train("yes")


def test_eval_mode_with_dropout_equals_pytorch():
    rng = np.random.default_rng(2)
    m = torch_mha(16, 4, dropout=0.5).eval()
    layer = MultiHeadAttention.from_torch(m)
    x = rng.standard_normal((3, 6, 16))
    mask = np.tril(np.ones((6, 6), dtype=bool))
    out, w = layer(x, mask=mask)
    t_out, t_w = torch_out(m, x, x, x, attn_mask=torch.from_numpy(~mask))
    np.testing.assert_allclose(out, t_out, **TOL64)
    np.testing.assert_allclose(w, t_w, **TOL64)
    # The pitfall: the same layer left in training mode drops weights at evaluation.
    out_train, _ = layer.train()(x, mask=mask)
    assert np.abs(out_train - t_out).max() > 0.1


def test_dropout_statistics_and_seeding():
    x = np.random.default_rng(3).standard_normal((2, 16, 8))
    p = 0.25
    layer = MultiHeadAttention(8, 2, dropout=p, seed=4)
    _, P = layer.eval()(x)
    P = P.copy()
    layer.train()
    draws = np.stack([layer(x)[1] for _ in range(400)])  # (400, 2, 2, 16, 16) after dropout
    ratio = draws / P
    kept = ratio > 0
    assert np.allclose(ratio[kept], 1 / (1 - p))  # inverted dropout: kept weights scaled
    assert abs((~kept).mean() - p) < 0.01  # fraction dropped ~ p (204,800 draws: sd 0.001)
    assert np.abs(draws.mean(axis=0) - P).max() < 0.25 * P.max()  # expectation preserved
    np.testing.assert_allclose(draws.mean(axis=0).sum(-1), 1.0, atol=0.05)

    a, b, c = (MultiHeadAttention(8, 2, dropout=p, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a(x)[1], b(x)[1])  # same seed: same weights, same masks
    assert not np.array_equal(a(x)[1], c(x)[1])
    a.dropout_rng = np.random.default_rng(0)
    b.dropout_rng = np.random.default_rng(0)
    np.testing.assert_array_equal(a(x)[0], b(x)[0])
    assert not np.array_equal(a(x)[0], a(x)[0])  # a new mask on every call


def test_dropout_one_drops_everything():
    layer = MultiHeadAttention(8, 2, dropout=1.0, seed=0)
    layer.b_o = np.ones(8)
    out, w = layer(np.ones((2, 3, 8)))
    assert np.all(w == 0) and np.all(out == 1.0)
    dx = layer.backward(np.ones((2, 3, 8)))
    assert np.all(dx == 0) and np.all(layer.grads["W_q"] == 0)


def test_dropout_keep_mask_helper():
    rng = np.random.default_rng(0)
    keep = dropout_keep_mask((1000, 100), 0.3, rng, np.float32)
    assert keep.dtype == bool and abs(keep.mean() - 0.7) < 0.01
    with pytest.raises(TypeError, match="Generator"):
        dropout_keep_mask((2,), 0.3, 0)


# ---------------------------------------------------------------------------- RoPE
def rope_reference(layer, q, kv):
    """Project, split, rotate q and k at positions 0.., attend, combine, project."""
    Q = split_heads(q @ layer.W_q + layer.b_q, layer.num_heads)
    K = split_heads(kv @ layer.W_k + layer.b_k, layer.num_heads)
    V = split_heads(kv @ layer.W_v + layer.b_v, layer.num_heads)
    Q = apply_rope(Q, np.arange(q.shape[-2]), layer.rope_base)
    K = apply_rope(K, np.arange(kv.shape[-2]), layer.rope_base)
    heads, w = attention(Q, K, V)
    return combine_heads(heads) @ layer.W_o + layer.b_o, w


def test_rope_layer_equals_rotating_queries_and_keys():
    rng = np.random.default_rng(7)
    layer = MultiHeadAttention(16, 2, rope_base=500.0, seed=1)
    for name in ("b_q", "b_k", "b_v", "b_o"):
        setattr(layer, name, rng.standard_normal(16))
    q, kv = rng.standard_normal((2, 5, 16)), rng.standard_normal((2, 7, 16))
    for args in ((q,), (q, kv)):
        out, w = layer(*args)
        ref_out, ref_w = rope_reference(layer, q, args[-1])
        np.testing.assert_allclose(out, ref_out, **TOL64)
        np.testing.assert_allclose(w, ref_w, **TOL64)
    plain = MultiHeadAttention(16, 2, seed=1)
    assert not np.allclose(plain(q)[1], MultiHeadAttention(16, 2, rope_base=500.0, seed=1)(q)[1])
    assert "rope_base=500.0" in repr(layer)


def test_rope_scores_depend_only_on_the_offset():
    # Every token the same vector: without RoPE every score of a row is equal; with RoPE
    # score(i, j) depends only on j - i, so log-weights minus the diagonal's form a
    # Toeplitz matrix (softmax adds one constant per row, cancelled by the difference).
    x = np.tile(np.random.default_rng(0).standard_normal(8), (6, 1))
    np.testing.assert_allclose(MultiHeadAttention(8, 1, seed=2)(x)[1], 1 / 6, **TOL64)
    _, w = MultiHeadAttention(8, 1, rope_base=10.0, seed=2)(x)
    s = np.log(w[0])
    assert np.ptp(s - s[:, :1]) > 0.1  # the weights do depend on position
    for offset in range(-5, 6):
        diffs = [s[i, i + offset] - s[i, i] for i in range(6) if 0 <= i + offset < 6]
        np.testing.assert_allclose(diffs, diffs[0], atol=1e-12)
