"""PyTorch's own attention tests, ported: every case is run by PyTorch and by helpers.

The cases follow PyTorch's ``test/nn/test_multihead_attention.py`` (``nn.MultiheadAttention``)
and the scaled-dot-product-attention parts of ``test/test_transformers.py``, rewritten
for this library: each layer case builds a seeded ``torch.nn.MultiheadAttention``,
copies it with :meth:`MultiHeadAttention.from_torch` and compares outputs and
weights; each SDPA case compares :func:`helpers.attention` with
``torch.nn.functional.scaled_dot_product_attention`` (and its weights with the
softmax PyTorch's math backend computes).

Ported: 59 pytest cases running 126 PyTorch configurations -- 87 of ``nn.MultiheadAttention``
(72 random configurations of ``test_multihead_attention``, the 3-D mask, no-bias, invalid-shape,
two-mask, dtype/batch_first, small-shape, unbatched, is_causal-hint and zero-length cases) and
39 of SDPA (random masks over 3 shapes x 4 mask kinds x 2 dtypes, is_causal, causal_lower_right,
scale, fully masked rows, zero-length inputs, GQA).

Conventions translated in every case:

* ``nn.MultiheadAttention``'s boolean masks mean True = *blocked*; ours (and SDPA's)
  True = *may attend*: its masks are negated here.
* ``key_padding_mask (B, L_k)`` has no argument of its own here: it is the 4-D
  mask ``~key_padding_mask[:, None, None, :]``, combined with ``&``.
* A 3-D ``attn_mask (B * h, L_q, L_k)`` is ``mask.reshape(B, h, L_q, L_k)``.
* A query that may attend to no key gets NaN from PyTorch and zero weights (its
  output is then ``b_o``) here: such rows are compared with that rule.

Not expressible with this library's API (listed, not run):

* ``add_bias_kv`` -- a learned key/value row appended to every sequence (and its
  combination with a key-padding mask); ``from_torch`` refuses it.
* ``add_zero_attn`` -- a zero key/value row appended to every sequence; refused.
* ``static_k`` / ``static_v`` (``saved_kv``) of ``multi_head_attention_forward`` --
  precomputed per-head keys and values fed in place of the projections.
* Nested (jagged) tensors, half precision (float16 is rejected), CUDA devices,
  autocast, ``torch.compile`` and the checks that PyTorch's fused fast path is taken.
* Dropout with PyTorch's random stream (our masks come from NumPy; dropout is
  compared in evaluation mode, and its statistics are tested in test_mha_layer.py).
* Query and bias of different dtypes (PyTorch's fast path accepts them): here
  mixed dtypes raise ``TypeError`` by design (see the dtype rule).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right, causal_upper_left

from helpers import MultiHeadAttention, attention, create_causal_mask
from helpers.gqa import repeat_kv

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}
TORCH = {np.float64: torch.float64, np.float32: torch.float32}


def module(d, h, *, dtype=np.float64, seed=0, random_bias=True, **kw):
    """A seeded nn.MultiheadAttention in ``dtype``, in eval mode, with random biases."""
    torch.manual_seed(seed)
    m = torch.nn.MultiheadAttention(d, h, batch_first=True, **kw).to(TORCH[dtype]).eval()
    if random_bias and m.in_proj_bias is not None:
        with torch.no_grad():
            m.in_proj_bias.normal_()
            m.out_proj.bias.normal_()
    return m


def _t(a):
    return None if a is None else torch.from_numpy(np.ascontiguousarray(a))


def run_torch(m, q, k, v, *, blocked=None, padding=None, average=False, **kw):
    """Output and weights of the torch module on numpy inputs (masks in torch polarity)."""
    with torch.no_grad():
        out, w = m(_t(q), _t(k), _t(v), attn_mask=_t(blocked), key_padding_mask=_t(padding),
                   need_weights=True, average_attn_weights=average, **kw)
    return out.numpy(), w.numpy()


def assert_layer_matches(layer, args, mask, t_out, t_w, *, dtype=np.float64, average=False):
    """Compare with torch; rows where every key is blocked follow our zero-weights rule."""
    out, w = layer(*args, mask=mask, average_attn_weights=average)
    assert out.shape == t_out.shape and w.shape == t_w.shape
    empty = np.isnan(t_out).any(axis=-1)  # (..., L_q): queries that may attend to nothing
    np.testing.assert_allclose(out[~empty], t_out[~empty], **TOL[dtype])
    if layer.has_bias:
        np.testing.assert_allclose(out[empty], np.broadcast_to(layer.b_o, out[empty].shape))
    rows_ok = ~np.isnan(t_w).any(axis=-1)
    np.testing.assert_allclose(w[rows_ok], t_w[rows_ok], **TOL[dtype])
    assert np.all(w[~rows_ok] == 0)
    assert out.dtype == w.dtype == dtype


# ============================================================ test_multihead_attention.py
RANDOM_CONFIGS = 12


@pytest.mark.parametrize("average", [True, False])
@pytest.mark.parametrize("variant", ["no_masking", "key_padding_mask", "same_embed_dim"])
def test_random_configurations(variant, average):
    """``test_multihead_attention``: random sizes, one decoder query, kdim = vdim != d."""
    rng = np.random.default_rng(["no_masking", "key_padding_mask", "same_embed_dim"]
                                .index(variant) * 2 + average)
    for case in range(RANDOM_CONFIGS):
        B, L = rng.integers(2, 11, size=2)
        d_head, h = int(rng.integers(3, 11)), 2 * int(rng.integers(2, 6))
        d = d_head * h
        kv_dim = d if variant == "same_embed_dim" else int(rng.integers(5, 21))
        m = module(d, h, kdim=kv_dim, vdim=kv_dim, seed=case)
        layer = MultiHeadAttention.from_torch(m)
        q = rng.random((B, 1, d))  # one decoder state per sequence
        kv = rng.random((B, L, kv_dim))
        keep = rng.integers(0, 2, size=(1, L)).astype(bool)  # attn_mask: a 0/-inf float row
        float_mask = np.where(keep, 0.0, -np.inf)
        padding = None
        mask = float_mask
        if variant != "no_masking":
            pad = np.repeat(rng.integers(0, 2, size=(1, L)) == 1, B, axis=0)  # True = padding
            mask = np.where(~pad[:, None, None, :], float_mask, -np.inf)  # (B, 1, 1, L)
            padding = np.where(pad, -np.inf, 0.0)  # the float form, like the float attn_mask
        t_out, t_w = run_torch(m, q, kv, kv, blocked=float_mask, padding=padding,
                               average=average)
        assert_layer_matches(layer, (q, kv, kv), mask, t_out, t_w, average=average)


def test_3d_attn_mask_is_per_sequence():
    """``test_multihead_attn_3d_attn_mask``: a (B * h, T, S) mask equals B separate calls."""
    rng = np.random.default_rng(1)
    B, T, S, d, h = 8, 2, 3, 8, 4
    m = module(d, h)
    layer = MultiHeadAttention.from_torch(m)
    q, kv = rng.random((B, T, d)), rng.random((B, S, d))
    per_seq = np.where(rng.integers(0, 2, (B, T, S)) == 1, 0.0, -np.inf)  # (B, T, S)
    per_seq[..., 0] = 0.0  # every query keeps a key
    t_out, t_w = run_torch(m, q, kv, kv, blocked=np.repeat(per_seq, h, axis=0))
    assert_layer_matches(layer, (q, kv, kv), per_seq[:, None], t_out, t_w)
    for i in range(B):
        out_i, _ = layer(q[i], kv[i], kv[i], mask=per_seq[i])
        np.testing.assert_allclose(out_i, t_out[i], **TOL[np.float64])
    with pytest.raises(ValueError, match="ambiguous"):  # the 3-D mask itself is refused
        layer(q, kv, kv, mask=per_seq)


def test_no_bias():
    """``test_multihead_attn_no_bias``: bias=False removes every bias, in and out."""
    m = module(8, 4, bias=False)
    layer = MultiHeadAttention.from_torch(m)
    assert not layer.has_bias and set(layer.parameters()) == {"W_q", "W_k", "W_v", "W_o"}
    x = np.random.default_rng(2).random((2, 5, 8))
    assert_layer_matches(layer, (x,), None, *run_torch(m, x, x, x))


def test_invalid_shapes():
    """``test_multihead_attn_invalid_shape``: mismatched ranks and masks are refused."""
    layer = MultiHeadAttention(4, 4, seed=0)
    q3, q2 = np.ones((4, 4, 4)), np.ones((4, 4))
    with pytest.raises(ValueError, match=r"must all be \(batch, L, features\)"):
        layer(q3, q2, q3)  # 3-D query, 2-D key
    with pytest.raises(ValueError, match=r"must all be \(batch, L, features\)"):
        layer(q3, q3, q2)  # 3-D query and key, 2-D value
    with pytest.raises(ValueError, match=r"1-D"):
        layer(q3, q3, q3, mask=np.array([True, True, False, False]))
    with pytest.raises(ValueError, match=r"or all \(L, features\)"):
        layer(q2, q3, q2)  # 2-D query, 3-D key
    with pytest.raises(ValueError, match=r"or all \(L, features\)"):
        layer(q2, q2, q3)
    with pytest.raises(ValueError, match=r"1-D"):
        layer(q2, q2, q2, mask=np.array([True, True, False, False]))
    with pytest.raises(ValueError, match=r"\(5, 4, 4\) does not broadcast"):
        layer(q2, q2, q2, mask=np.ones((5, 4, 4), dtype=bool))  # 5 heads' masks for 4 heads


def test_two_masks_merged():
    """``test_multihead_self_attn_two_masks_fast_path``: attn_mask and key_padding_mask."""
    rng = np.random.default_rng(3)
    B, L, d, h = 8, 5, 14, 7
    m = module(d, h)
    layer = MultiHeadAttention.from_torch(m)
    x = rng.random((B, L, d))
    blocked = rng.integers(0, 2, (L, L)).astype(bool)
    padding = rng.integers(0, 2, (B, L)).astype(bool)
    t_out, t_w = run_torch(m, x, x, x, blocked=blocked, padding=padding)
    assert_layer_matches(layer, (x,), ~blocked & ~padding[:, None, None, :], t_out, t_w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_first", [True, False])
def test_dtype_kept_and_batch_first(dtype, batch_first):
    """``test_multihead_attention_dtype`` (``_batch_first``): same dtype out; either layout."""
    rng = np.random.default_rng(4)
    torch.manual_seed(0)
    m = torch.nn.MultiheadAttention(32, 8, batch_first=batch_first).to(TORCH[dtype]).eval()
    layer = MultiHeadAttention.from_torch(m, dtype=dtype)
    q, k, v = (rng.standard_normal((3, 10, 32)).astype(dtype) for _ in range(3))
    tq, tk, tv = (a if batch_first else np.ascontiguousarray(a.transpose(1, 0, 2))
                  for a in (q, k, v))
    t_out, t_w = run_torch(m, tq, tk, tv)
    if not batch_first:
        t_out = t_out.transpose(1, 0, 2)
    assert_layer_matches(layer, (q, k, v), None, t_out, t_w, dtype=dtype)


def test_small_shapes_without_in_proj_bias_or_weight():
    """``test_multihead_attn_in_proj_bias_none`` and ``..._in_proj_weight_none`` (kdim=vdim=2)."""
    rng = np.random.default_rng(5)
    m = module(2, 2, bias=False)
    x = rng.random((2, 2, 2))
    assert_layer_matches(MultiHeadAttention.from_torch(m), (x,), None, *run_torch(m, x, x, x))
    m = module(4, 4, kdim=2, vdim=2)
    assert m.in_proj_weight is None
    q, kv = rng.random((4, 4, 4)), rng.random((4, 4, 2))
    assert_layer_matches(MultiHeadAttention.from_torch(m), (q, kv), None,
                         *run_torch(m, q, kv, kv))


def test_unbatched_inputs():
    """Unbatched (2-D) query, key and value, with a per-head 3-D mask (h, L_q, L_k)."""
    rng = np.random.default_rng(6)
    m = module(12, 3)
    layer = MultiHeadAttention.from_torch(m)
    q, kv = rng.random((4, 12)), rng.random((6, 12))
    keep = rng.random((3, 4, 6)) < 0.6
    keep[..., 0] = True
    t_out, t_w = run_torch(m, q, kv, kv, blocked=~keep)
    assert_layer_matches(layer, (q, kv), keep, t_out, t_w)


def test_is_causal_hint_with_causal_mask():
    """``forward(..., is_causal=True)`` is a hint that attn_mask is the causal mask."""
    rng = np.random.default_rng(7)
    m = module(8, 2)
    x = rng.random((2, 6, 8))
    causal = create_causal_mask(6)
    t_out, t_w = run_torch(m, x, x, x, blocked=~causal, is_causal=True)
    assert_layer_matches(MultiHeadAttention.from_torch(m), (x,), causal, t_out, t_w)


@pytest.mark.parametrize(("L_q", "L_k", "B"), [(0, 4, 2), (3, 0, 2), (3, 4, 0)])
def test_zero_length_layer(L_q, L_k, B):
    """Empty query or key sequences and an empty batch: shapes as PyTorch; keyless = b_o."""
    m = module(8, 2)
    layer = MultiHeadAttention.from_torch(m)
    q, kv = np.ones((B, L_q, 8)), np.ones((B, L_k, 8))
    t_out, _ = run_torch(m, q, kv, kv)
    out, w = layer(q, kv)
    assert out.shape == t_out.shape == (B, L_q, 8) and w.shape == (B, 2, L_q, L_k)
    if L_k == 0 and B and L_q:  # PyTorch: no key -> zero attention output -> out_proj.bias
        np.testing.assert_allclose(out, t_out, **TOL[np.float64])


# ============================================================ test_transformers.py (SDPA)
def sdpa(Q, K, V, mask=None, **kw):
    return F.scaled_dot_product_attention(_t(Q), _t(K), _t(V), attn_mask=_t(mask), **kw).numpy()


def torch_weights(Q, K, mask=None, scale=None):
    """The weights of PyTorch's math backend: softmax(scale * Q K^T + mask)."""
    tq, tk = torch.from_numpy(Q), torch.from_numpy(K)
    s = (tq @ tk.transpose(-1, -2)) * (Q.shape[-1] ** -0.5 if scale is None else scale)
    if mask is not None:
        m = torch.from_numpy(mask)
        s = s.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else s + m
    return torch.softmax(s, dim=-1).numpy()


SDPA_SHAPES = [  # (Q shape, K shape, V shape): 3-D and 4-D, L_q != L_k, d_v != d_k
    ((2, 8, 16), (2, 8, 16), (2, 8, 16)),
    ((3, 4, 7, 8), (3, 4, 5, 8), (3, 4, 5, 6)),
    ((1, 2, 16, 32), (1, 2, 33, 32), (1, 2, 33, 32)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mask_kind", [None, "bool", "float", "bool_broadcast"])
@pytest.mark.parametrize("shapes", SDPA_SHAPES)
def test_sdpa_random_masks(shapes, mask_kind, dtype):
    """``test_scaled_dot_product_attention``: random inputs and masks, math backend."""
    rng = np.random.default_rng(len(shapes[0]) * 10 + shapes[0][-2])
    Q, K, V = (rng.standard_normal(s).astype(dtype) for s in shapes)
    L_q, L_k = shapes[0][-2], shapes[1][-2]
    mask = None
    if mask_kind == "bool":
        mask = rng.random((*shapes[0][:-2], L_q, L_k)) < 0.7
    elif mask_kind == "bool_broadcast":
        mask = rng.random((L_q, L_k)) < 0.7
    elif mask_kind == "float":
        mask = rng.standard_normal((L_q, L_k)).astype(dtype)
    if mask is not None and mask.dtype == bool:
        mask[..., 0] = True
    out, w = attention(Q, K, V, mask)
    np.testing.assert_allclose(out, sdpa(Q, K, V, mask), **TOL[dtype])
    np.testing.assert_allclose(w, torch_weights(Q, K, mask), **TOL[dtype])
    assert out.dtype == dtype


@pytest.mark.parametrize(("L_q", "L_k"), [(5, 5), (3, 7), (7, 3)])
def test_is_causal_is_upper_left(L_q, L_k):
    """``is_causal=True`` is top-left aligned (``causal_upper_left``); with a mask: an error."""
    rng = np.random.default_rng(L_q * 10 + L_k)
    Q, K, V = (rng.standard_normal((2, 3, L, 4)) for L in (L_q, L_k, L_k))
    expected = sdpa(Q, K, V, is_causal=True)
    out, _ = attention(Q, K, V, is_causal=True)
    rows = ~np.isnan(expected).any(-1)
    np.testing.assert_allclose(out[rows], expected[rows], **TOL[np.float64])
    upper_left = causal_upper_left(L_q, L_k)._materialize().numpy()
    np.testing.assert_array_equal(upper_left, np.tril(np.ones((L_q, L_k), dtype=bool)))
    with pytest.raises(ValueError, match="is_causal"):
        attention(Q, K, V, np.ones((L_q, L_k), dtype=bool), is_causal=True)


@pytest.mark.filterwarnings("ignore:Lower right causal bias will produce NaNs:UserWarning")
@pytest.mark.parametrize(("L_q", "L_k"), [(4, 4), (3, 8), (1, 6), (8, 3)])
def test_causal_lower_right(L_q, L_k):
    """``test_causal_variants``: ``causal_lower_right`` is ``create_causal_mask(L_q, L_k)``."""
    rng = np.random.default_rng(L_q * 10 + L_k + 1)
    Q, K, V = (rng.standard_normal((2, 2, L, 8)) for L in (L_q, L_k, L_k))
    bias = causal_lower_right(L_q, L_k)
    mask = create_causal_mask(L_q, L_k)
    np.testing.assert_array_equal(bias._materialize().numpy(), mask)
    expected = F.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (Q, K, V)),
                                              attn_mask=bias).numpy()
    out, w = attention(Q, K, V, mask)
    rows = mask.any(-1)  # L_q > L_k: the first rows may attend to nothing
    np.testing.assert_allclose(out[..., rows, :], expected[..., rows, :], **TOL[np.float64])
    assert np.all(w[..., ~rows, :] == 0) and np.all(out[..., ~rows, :] == 0)


def test_scale_argument():
    """``scale=`` overrides 1/sqrt(d_k), as in SDPA."""
    rng = np.random.default_rng(8)
    Q, K, V = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))
    np.testing.assert_allclose(attention(Q, K, V, scale=0.3)[0], sdpa(Q, K, V, scale=0.3),
                               **TOL[np.float64])


def test_fully_masked_rows():
    """A row with every key masked: PyTorch's math backend gives NaN; we give zeros."""
    rng = np.random.default_rng(9)
    Q, K, V = (rng.standard_normal((1, 2, 4, 4)) for _ in range(3))
    mask = np.ones((4, 4), dtype=bool)
    mask[1] = False
    expected = sdpa(Q, K, V, mask)
    out, w = attention(Q, K, V, mask)
    assert np.isnan(expected[..., 1, :]).all() or np.all(expected[..., 1, :] == 0)
    assert np.all(out[..., 1, :] == 0) and np.all(w[..., 1, :] == 0)
    np.testing.assert_allclose(out[..., [0, 2, 3], :], expected[..., [0, 2, 3], :],
                               **TOL[np.float64])


@pytest.mark.parametrize(("L_q", "L_k", "B"), [(0, 5, 2), (4, 0, 2), (4, 5, 0)])
def test_sdpa_zero_length(L_q, L_k, B):
    """``test_fused_kernels_seq_len_0_inputs``: empty sequences and batches."""
    Q, K, V = np.ones((B, 2, L_q, 4)), np.ones((B, 2, L_k, 4)), np.ones((B, 2, L_k, 3))
    expected = sdpa(Q, K, V)
    out, w = attention(Q, K, V)
    assert out.shape == expected.shape and w.shape == (B, 2, L_q, L_k)
    np.testing.assert_array_equal(out, expected)  # L_k = 0: zeros, like PyTorch


@pytest.mark.parametrize(("h", "h_kv"), [(8, 2), (6, 3), (4, 1)])
def test_gqa(h, h_kv):
    """``enable_gqa=True``: query head i reads key/value head i // (h / h_kv)."""
    rng = np.random.default_rng(h * 10 + h_kv)
    Q = rng.standard_normal((2, h, 5, 8))
    K, V = rng.standard_normal((2, h_kv, 7, 8)), rng.standard_normal((2, h_kv, 7, 8))
    expected = sdpa(Q, K, V, enable_gqa=True)
    out, _ = attention(Q, repeat_kv(K, h // h_kv), repeat_kv(V, h // h_kv))
    np.testing.assert_allclose(out, expected, **TOL[np.float64])
