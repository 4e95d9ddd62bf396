"""MultiHeadAttention.backward: against torch.autograd, finite differences, and its contract.

Tolerances: float64 gradients equal PyTorch's to 1e-10 relative (of the largest entry);
finite differences (central, eps 1e-6) to 1e-7.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import MultiHeadAttention, create_padding_mask
from helpers.attention_backward import numerical_gradient

NAMES = ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)) if b.size else 0.0


def assert_grads_close(grads, reference, tol):
    """Each gradient within ``tol`` relative of the reference's, except ``b_k``.

    The key bias adds ``q . b_k`` to every score of a row, a constant that softmax
    ignores: its gradient is exactly zero, so both sides hold only rounding noise
    there, checked against the scale of the other gradients.
    """
    assert set(grads) == set(reference)
    scale = max(np.abs(g).max() for g in reference.values())
    for name, g in reference.items():
        assert grads[name].shape == g.shape, name
        if name == "b_k":
            assert np.abs(grads[name]).max() < 1e-13 * scale * max(1, len(g))
        else:
            assert rel_err(grads[name], g) < tol, name


def torch_module(d, h, *, bias=True, kdim=None, vdim=None, seed=0):
    torch.manual_seed(seed)
    m = torch.nn.MultiheadAttention(d, h, bias=bias, kdim=kdim, vdim=vdim, batch_first=True)
    m = m.double()
    if bias:  # PyTorch starts biases at zero; random ones make the test meaningful
        with torch.no_grad():
            m.in_proj_bias.normal_()
            m.out_proj.bias.normal_()
    return m


def torch_grads(m, inputs, d_out, *, attn_mask=None, key_padding_mask=None):
    """Output, input gradients and parameter gradients (in our layout) of a torch module."""
    batched = inputs[0].ndim == 3
    ts = [torch.from_numpy(x.copy()).requires_grad_() for x in inputs]
    q, k, v = ts * 3 if len(ts) == 1 else (*ts, ts[1]) if len(ts) == 2 else ts
    kw = {}
    if attn_mask is not None:
        kw["attn_mask"] = torch.from_numpy(attn_mask)
    if key_padding_mask is not None:
        kw["key_padding_mask"] = torch.from_numpy(key_padding_mask)
    out, _ = m(q, k, v, need_weights=True, average_attn_weights=False, **kw)
    (out * torch.from_numpy(d_out)).sum().backward()
    d = m.embed_dim
    grads = {"W_o": m.out_proj.weight.grad.T.numpy()}
    if m._qkv_same_embed_dim:
        W = m.in_proj_weight.grad
        grads |= {n: W[i * d:(i + 1) * d].T.numpy() for i, n in enumerate(("W_q", "W_k", "W_v"))}
    else:
        grads |= {"W_q": m.q_proj_weight.grad.T.numpy(), "W_k": m.k_proj_weight.grad.T.numpy(),
                  "W_v": m.v_proj_weight.grad.T.numpy()}
    if m.in_proj_bias is not None:
        b = m.in_proj_bias.grad
        grads |= {n: b[i * d:(i + 1) * d].numpy() for i, n in enumerate(("b_q", "b_k", "b_v"))}
        grads["b_o"] = m.out_proj.bias.grad.numpy()
    assert out.ndim == (3 if batched else 2)
    return out.detach().numpy(), [t.grad.numpy() for t in ts], grads


MASKS = ["none", "causal", "float", "padding", "per_head_bool"]


def make_mask(kind, rng, B, h, L_q, L_k):
    """(our mask, torch attn_mask, torch key_padding_mask); no fully masked rows."""
    if kind == "none":
        return None, None, None
    if kind == "causal":
        ours = np.tril(np.ones((L_q, L_k), dtype=bool))  # top-left: row 0 keeps key 0
        return ours, ~ours, None
    if kind == "float":
        ours = rng.standard_normal((L_q, L_k))
        ours[:, -1] = -np.inf  # one blocked key
        return ours, ours, None
    if kind == "padding":
        lengths = rng.integers(1, L_k + 1, size=B)
        ours = create_padding_mask(lengths, L_k)  # (B, 1, 1, L_k)
        return ours, None, ~ours[:, 0, 0, :]
    ours = rng.random((B, h, L_q, L_k)) < 0.6
    ours[..., 0] = True
    return ours, ~ours.reshape(B * h, L_q, L_k), None


@pytest.mark.parametrize("mask_kind", MASKS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind", ["self", "kv", "qkv"])
def test_backward_equals_torch_autograd(kind, bias, mask_kind):
    rng = np.random.default_rng([MASKS.index(mask_kind), bias, len(kind)])
    B, L_q, d, h = 2, 5, 12, 3
    L_k = L_q if kind == "self" else 7
    m = torch_module(d, h, bias=bias)
    layer = MultiHeadAttention.from_torch(m)
    q = rng.standard_normal((B, L_q, d))
    inputs = {"self": [q], "kv": [q, rng.standard_normal((B, L_k, d))],
              "qkv": [q, rng.standard_normal((B, L_k, d)), rng.standard_normal((B, L_k, d))]}[kind]
    ours_mask, attn_mask, kpm = make_mask(mask_kind, rng, B, h, L_q, L_k)
    d_out = rng.standard_normal((B, L_q, d))
    t_out, t_dx, t_grads = torch_grads(m, inputs, d_out, attn_mask=attn_mask, key_padding_mask=kpm)

    out, _ = layer(*inputs, mask=ours_mask)
    dx = layer.backward(d_out)
    dx = (dx,) if kind == "self" else dx
    assert rel_err(out, t_out) < 1e-12
    assert len(dx) == len(inputs)
    for ours, theirs in zip(dx, t_dx, strict=True):
        assert ours.shape == theirs.shape and rel_err(ours, theirs) < 1e-10
    assert set(layer.grads) == set(t_grads) == set(layer.parameters())
    assert_grads_close(layer.grads, t_grads, 1e-10)


@pytest.mark.parametrize("kind", ["self", "qkv"])
def test_unbatched_backward_equals_torch(kind):
    rng = np.random.default_rng(3)
    m = torch_module(8, 2)
    layer = MultiHeadAttention.from_torch(m)
    inputs = [rng.standard_normal((4, 8))] + ([] if kind == "self" else
                                               [rng.standard_normal((6, 8))] * 2)
    mask = np.tril(np.ones((4, 6 if inputs[1:] else 4), dtype=bool))
    d_out = rng.standard_normal((4, 8))
    _, t_dx, t_grads = torch_grads(m, inputs, d_out, attn_mask=~mask)
    layer(*inputs, mask=mask)
    dx = layer.backward(d_out)
    dx = (dx,) if kind == "self" else dx
    for ours, theirs in zip(dx, t_dx, strict=True):
        assert ours.shape == theirs.shape and rel_err(ours, theirs) < 1e-10
    assert_grads_close(layer.grads, t_grads, 1e-10)


def test_kdim_vdim_backward_equals_torch():
    rng = np.random.default_rng(4)
    m = torch_module(8, 2, kdim=5, vdim=3)
    layer = MultiHeadAttention.from_torch(m)
    inputs = [rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 6, 5)),
              rng.standard_normal((2, 6, 3))]
    d_out = rng.standard_normal((2, 4, 8))
    _, t_dx, t_grads = torch_grads(m, inputs, d_out)
    layer(*inputs)
    for ours, theirs in zip(layer.backward(d_out), t_dx, strict=True):
        assert ours.shape == theirs.shape and rel_err(ours, theirs) < 1e-10
    assert_grads_close(layer.grads, t_grads, 1e-10)


def _loss_fd_check(layer, args, mask=None, seed=0, reseed=None):
    """Every gradient of loss = sum(out * G) against central finite differences."""
    rng = np.random.default_rng(seed)

    def forward(*a):
        if reseed is not None:
            layer.dropout_rng = np.random.default_rng(reseed)
        return layer(*a, mask=mask)[0]

    G = rng.standard_normal(forward(*args).shape)
    forward(*args)
    dx = layer.backward(G)
    dx = (dx,) if not isinstance(dx, tuple) else dx
    for i, x in enumerate(args):
        def f(xi, i=i):
            a = list(args)
            a[i] = xi
            return float((forward(*a) * G).sum())
        num = numerical_gradient(f, x)
        assert np.abs(dx[i] - num).max() < 1e-7, f"input {i}"
    for name, P in layer.parameters().items():
        keep = P.copy()

        def g(Pi, name=name):
            getattr(layer, name)[...] = Pi
            return float((forward(*args) * G).sum())
        num = numerical_gradient(g, keep)
        getattr(layer, name)[...] = keep
        assert np.abs(layer.grads[name] - num).max() < 1e-7, name


def _with_random_biases(layer, seed):
    rng = np.random.default_rng(seed)
    for name in ("b_q", "b_k", "b_v", "b_o"):
        setattr(layer, name, rng.standard_normal(layer.d_model))
    return layer


def test_finite_differences_self_attention_with_fully_masked_row():
    layer = _with_random_biases(MultiHeadAttention(4, 2, seed=1), 2)
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    mask = np.ones((2, 1, 3, 3), dtype=bool)
    mask[0, 0, 1] = False  # batch 0, query 1 may attend to nothing
    mask[1, 0, :, 2] = False
    _loss_fd_check(layer, [x], mask=mask)


def test_finite_differences_cross_attention_float_mask_unbatched():
    layer = _with_random_biases(MultiHeadAttention(4, 2, seed=4), 5)
    rng = np.random.default_rng(6)
    q, k, v = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    mask = rng.standard_normal((3, 5))
    mask[2, 1:] = -np.inf
    _loss_fd_check(layer, [q, k, v], mask=mask)


def test_finite_differences_kdim_vdim_dropout_and_rope():
    layer = _with_random_biases(
        MultiHeadAttention(4, 2, kdim=3, vdim=5, dropout=0.3, rope_base=100.0, seed=7), 8)
    rng = np.random.default_rng(9)
    q, k, v = (rng.standard_normal(s) for s in ((2, 3, 4), (2, 4, 3), (2, 4, 5)))
    mask = np.tril(np.ones((3, 4), dtype=bool), k=1)  # bottom-right causal
    _loss_fd_check(layer, [q, k, v], mask=mask, reseed=11)


def test_fully_masked_row_gets_zero_weights_and_sends_no_gradient():
    layer = _with_random_biases(MultiHeadAttention(8, 2, seed=0), 1)
    x = np.random.default_rng(2).standard_normal((1, 4, 8))
    mask = np.ones((4, 4), dtype=bool)
    mask[2] = False
    out, w = layer(x, mask=mask)
    assert np.all(w[0, :, 2] == 0) and np.allclose(out[0, 2], layer.b_o)
    d_out = np.zeros_like(out)
    d_out[0, 2] = 1.0  # only the fully masked row's output matters to the loss
    dx = layer.backward(d_out)
    assert np.all(np.isfinite(dx)) and np.all(dx == 0)
    for name, g in layer.grads.items():
        expected = np.ones(8) if name == "b_o" else np.zeros_like(g)
        np.testing.assert_array_equal(g, expected, err_msg=name)


def test_grads_accumulate_and_zero_grad_resets():
    layer = MultiHeadAttention(8, 2, seed=0, bias=False)
    assert set(layer.grads) == {"W_q", "W_k", "W_v", "W_o"} == set(layer.parameters())
    assert all(np.all(g == 0) for g in layer.grads.values())
    rng = np.random.default_rng(1)
    x, G = rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 3, 8))
    layer(x)
    layer.backward(G)
    once = {n: g.copy() for n, g in layer.grads.items()}
    assert all(np.abs(g).max() > 0 for g in once.values())
    layer(x)
    layer.backward(G)
    for n, g in layer.grads.items():
        np.testing.assert_allclose(g, 2 * once[n], rtol=1e-14)
    layer.zero_grad()
    assert all(np.all(g == 0) for g in layer.grads.values())


def test_float32_stays_float32_and_matches_float64():
    rng = np.random.default_rng(5)
    l64 = _with_random_biases(MultiHeadAttention(16, 4, seed=2), 3)
    l32 = MultiHeadAttention(16, 4, seed=2, dtype=np.float32)
    for name, P in l64.parameters().items():
        setattr(l32, name, P.astype(np.float32))
    q, kv = rng.standard_normal((2, 5, 16)), rng.standard_normal((2, 7, 16))
    G = rng.standard_normal((2, 5, 16))
    l64(q, kv)
    d64 = l64.backward(G)
    l32(q.astype(np.float32), kv.astype(np.float32))
    d32 = l32.backward(G.astype(np.float32))
    for a, b in zip(d32, d64, strict=True):
        assert a.dtype == np.float32 and rel_err(a, b) < 1e-4
    assert all(g.dtype == np.float32 for g in l32.grads.values())
    scale = max(np.abs(g).max() for g in l64.grads.values())
    for name, g in l32.grads.items():
        assert np.abs(g - l64.grads[name]).max() < 1e-5 * scale, name


def test_backward_errors():
    layer = MultiHeadAttention(8, 2, seed=0)
    x = np.ones((2, 3, 8))
    with pytest.raises(RuntimeError, match="forward pass first"):
        layer.backward(x)
    layer(x)
    with pytest.raises(ValueError, match=r"output's shape \(2, 3, 8\), got \(2, 3, 4\)"):
        layer.backward(np.ones((2, 3, 4)))
    with pytest.raises(TypeError, match="d_out has dtype float32"):
        layer.backward(x.astype(np.float32))
    with pytest.raises(ValueError, match="NaN"):
        layer.backward(np.full((2, 3, 8), np.nan))
    layer.backward(x)  # the failed calls above did not consume the forward pass
    with pytest.raises(RuntimeError, match="forward pass first"):
        layer.backward(x)


def test_inputs_changed_after_forward_do_not_change_the_gradient():
    rng = np.random.default_rng(8)
    layer = MultiHeadAttention(8, 2, seed=1)
    x, G = rng.standard_normal((1, 4, 8)), rng.standard_normal((1, 4, 8))
    layer(x)
    expected = layer.backward(G)
    grads = {n: g.copy() for n, g in layer.grads.items()}
    layer.zero_grad()
    _, w = layer(x)
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0, 0, 0] = 1.0  # the weights the backward pass uses are protected
    x[...] = 0.0  # neither the input nor a weight changed in place after forward matters
    layer.W_q[...] = 0.0
    np.testing.assert_array_equal(layer.backward(G), expected)
    for n, g in layer.grads.items():
        np.testing.assert_array_equal(g, grads[n])
    w[0, 0, 0, 0] = 1.0  # writable again once the backward pass is done


@pytest.mark.parametrize("tile", [40, 300])
def test_small_tiles_split_rows_and_heads(monkeypatch, tile):
    # Tiles of 40 scores: 3 query rows of 11 keys, one head per tile; of 300: all 9 rows, 3 heads.
    import helpers.fastpath.tiled_matmul as tiles

    monkeypatch.setattr(tiles, "TILE_ELEMENTS", tile)
    assert tiles.tiles_of(2, 3, 9, 11) == {40: (3, 1), 300: (9, 3)}[tile]
    rng = np.random.default_rng(12)
    m = torch_module(12, 3)
    layer = MultiHeadAttention.from_torch(m)
    q, kv = rng.standard_normal((2, 9, 12)), rng.standard_normal((2, 11, 12))
    mask = rng.random((2, 3, 9, 11)) < 0.7
    mask[..., 0] = True
    d_out = rng.standard_normal((2, 9, 12))
    t_out, t_dx, t_grads = torch_grads(m, [q, kv], d_out,
                                       attn_mask=~mask.reshape(6, 9, 11))
    out, _ = layer(q, kv, mask=mask)
    assert rel_err(out, t_out) < 1e-12
    for ours, theirs in zip(layer.backward(d_out), t_dx, strict=True):
        assert rel_err(ours, theirs) < 1e-10
    assert_grads_close(layer.grads, t_grads, 1e-10)
    # With dropout and RoPE too, against finite differences.
    small = _with_random_biases(MultiHeadAttention(4, 2, dropout=0.4, rope_base=50.0, seed=3), 4)
    x = rng.standard_normal((2, 7, 4))
    _loss_fd_check(small, [x], mask=np.tril(np.ones((7, 7), dtype=bool)), reseed=5)
