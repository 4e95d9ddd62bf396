"""Agreement with PyTorch: SDPA for attention, nn.MultiheadAttention for the layer.

Tolerances: 1e-12 in float64, 2e-5 relative in float32. PyTorch's nn.MultiheadAttention
masks use the opposite boolean polarity (True = blocked) from SDPA and helpers (True = may attend).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import MultiHeadAttention, attention, create_causal_mask, create_padding_mask

TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def to_np(t):
    return t.detach().numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mask_kind", [None, "causal_bool", "random_bool", "float"])
def test_attention_matches_sdpa(dtype, mask_kind):
    rng = np.random.default_rng(0)
    shapes = [(2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4)]
    Q, K, V = (rng.standard_normal(s).astype(dtype) for s in shapes)
    mask = {
        None: None,
        "causal_bool": np.tril(np.ones((5, 7), dtype=bool)),
        "random_bool": rng.random((2, 1, 5, 7)) < 0.6,
        "float": rng.standard_normal((5, 7)).astype(dtype),
    }[mask_kind]
    if mask is not None and mask.dtype == bool:
        mask[..., 0] = True  # keep every row non-empty so PyTorch's result is defined
    out, w = attention(Q, K, V, mask=mask)
    t_mask = None if mask is None else torch.from_numpy(mask)
    t_q, t_k, t_v = (torch.from_numpy(a) for a in (Q, K, V))
    t_out = F.scaled_dot_product_attention(t_q, t_k, t_v, attn_mask=t_mask)
    np.testing.assert_allclose(out, to_np(t_out), **TOL[dtype])
    assert out.dtype == dtype and w.dtype == dtype


def make_torch_mha(d_model, heads, dtype, *, bias=True, batch_first=True, seed=0):
    torch.manual_seed(seed)
    m = torch.nn.MultiheadAttention(d_model, heads, bias=bias, batch_first=batch_first)
    m = m.to(TORCH_DTYPE[dtype]).eval()
    if bias:  # PyTorch starts biases at zero; random ones make the test meaningful
        with torch.no_grad():
            m.in_proj_bias.normal_()
            m.out_proj.bias.normal_()
    return m


def torch_forward(m, q, k, v, **kw):
    with torch.no_grad():
        out, w = m(*(torch.from_numpy(a) for a in (q, k, v)), need_weights=True,
                   average_attn_weights=False, **kw)
    return to_np(out), to_np(w)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_self_attention_matches_nn_multihead(dtype, bias):
    rng = np.random.default_rng(1)
    m = make_torch_mha(16, 4, dtype, bias=bias)
    layer = MultiHeadAttention.from_torch(m, dtype=dtype)
    x = rng.standard_normal((3, 6, 16)).astype(dtype)
    out, w = layer(x)
    t_out, t_w = torch_forward(m, x, x, x)
    np.testing.assert_allclose(out, t_out, **TOL[dtype])
    np.testing.assert_allclose(w, t_w, **TOL[dtype])
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_attention_matches_nn_multihead(dtype):
    rng = np.random.default_rng(2)
    m = make_torch_mha(12, 3, dtype)
    layer = MultiHeadAttention.from_torch(m, dtype=dtype)
    q = rng.standard_normal((2, 4, 12)).astype(dtype)
    kv = rng.standard_normal((2, 9, 12)).astype(dtype)
    out, w = layer(q, kv, kv)
    t_out, t_w = torch_forward(m, q, kv, kv)
    assert w.shape == (2, 3, 4, 9)
    np.testing.assert_allclose(out, t_out, **TOL[dtype])
    np.testing.assert_allclose(w, t_w, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_causal_and_padding_masks_match_with_opposite_polarity(dtype):
    rng = np.random.default_rng(3)
    m = make_torch_mha(8, 2, dtype)
    layer = MultiHeadAttention.from_torch(m, dtype=dtype)
    x = rng.standard_normal((2, 5, 8)).astype(dtype)
    causal = create_causal_mask(5)
    padding = create_padding_mask([5, 3], 5)
    out, w = layer(x, mask=causal & padding)
    # nn.MultiheadAttention: True = blocked, so both masks are negated.
    t_out, t_w = torch_forward(m, x, x, x, attn_mask=torch.from_numpy(~causal),
                               key_padding_mask=torch.from_numpy(~padding[:, 0, 0, :]))
    np.testing.assert_allclose(out, t_out, **TOL[dtype])
    np.testing.assert_allclose(w, t_w, **TOL[dtype])


def test_float_mask_matches_nn_multihead():
    rng = np.random.default_rng(4)
    m = make_torch_mha(8, 2, np.float64)
    layer = MultiHeadAttention.from_torch(m)
    x = rng.standard_normal((1, 4, 8))
    bias = np.where(create_causal_mask(4), 0.0, -np.inf) + rng.standard_normal((4, 4))
    out, _ = layer(x, mask=bias)
    t_out, _ = torch_forward(m, x, x, x, attn_mask=torch.from_numpy(bias))
    np.testing.assert_allclose(out, t_out, **TOL[np.float64])


def test_from_torch_sequence_first_module():
    rng = np.random.default_rng(5)
    m = make_torch_mha(8, 2, np.float64, batch_first=False)
    layer = MultiHeadAttention.from_torch(m)
    x = rng.standard_normal((2, 5, 8))  # (batch, seq, d) for helpers
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))  # (seq, batch, d) for PyTorch
    t_out, t_w = torch_forward(m, xt, xt, xt)
    out, w = layer(x)
    np.testing.assert_allclose(out, t_out.transpose(1, 0, 2), **TOL[np.float64])
    np.testing.assert_allclose(w, t_w, **TOL[np.float64])


def test_from_torch_rejects_unsupported_modules():
    with pytest.raises(TypeError, match="MultiheadAttention"):
        MultiHeadAttention.from_torch(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiHeadAttention.from_torch(torch.nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(ValueError, match="add_zero_attn"):
        MultiHeadAttention.from_torch(torch.nn.MultiheadAttention(8, 2, add_zero_attn=True))
