"""helpers.training.layers and losses: backward passes against finite differences and autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.attention_backward import numerical_gradient
from helpers.block_parts import gelu, layer_norm
from helpers.training.layers import (
    Embedding,
    FeedForward,
    LayerNorm,
    Linear,
    gelu_backward,
    layer_norm_backward,
)
from helpers.training.losses import IGNORE_INDEX, softmax_cross_entropy

rng = np.random.default_rng(0)
T = torch.from_numpy


def close(a, b, tol=1e-10):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1.0, float(np.abs(b).max()))
    assert float(np.abs(a - b).max()) <= tol * scale, float(np.abs(a - b).max())


# ---------------------------------------------------------------------------- cross-entropy
def test_cross_entropy_equals_torch_with_ignored_targets():
    logits = rng.standard_normal((3, 5, 7)) * 3
    targets = rng.integers(0, 7, (3, 5))
    targets[0, :2] = IGNORE_INDEX
    targets[2, 4] = IGNORE_INDEX
    loss, grad = softmax_cross_entropy(logits, targets)
    t = T(logits).requires_grad_()
    t_loss = torch.nn.functional.cross_entropy(t.reshape(-1, 7), T(targets).reshape(-1))
    t_loss.backward()
    assert abs(loss - t_loss.item()) <= 1e-14
    close(grad, t.grad.numpy(), 1e-15)
    assert (grad[0, :2] == 0).all(), "ignored positions get no gradient"


def test_cross_entropy_gradient_is_softmax_minus_onehot_and_matches_finite_differences():
    logits = rng.standard_normal((4, 6))
    targets = np.array([0, 5, 2, 2])
    _, grad = softmax_cross_entropy(logits, targets)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    close(grad, (p - np.eye(6)[targets]) / 4, 1e-15)
    numeric = numerical_gradient(lambda z: softmax_cross_entropy(z, targets)[0], logits)
    close(grad, numeric, 1e-8)
    assert np.allclose(grad.sum(axis=-1), 0, atol=1e-16)


def test_cross_entropy_is_stable_for_large_logits():
    loss, grad = softmax_cross_entropy(np.array([[1000.0, 0.0, -1000.0]]), np.array([1]))
    assert loss == pytest.approx(1000.0) and np.isfinite(grad).all()


@pytest.mark.parametrize("logits, targets, error, words", [
    (np.zeros((2, 3)), np.zeros(3, dtype=int), ValueError, "shape"),
    (np.zeros((2, 3)), np.array([0, 3]), ValueError, "[0, 3)"),
    (np.zeros((2, 3)), np.array([0.0, 1.0]), TypeError, "integer"),
    (np.zeros((2, 3), dtype=int), np.array([0, 1]), TypeError, "floating"),
    (np.full((2, 3), np.nan), np.array([0, 1]), ValueError, "NaN"),
    (np.zeros((2, 3)), np.array([IGNORE_INDEX, IGNORE_INDEX]), ValueError, "ignore_index"),
])
def test_cross_entropy_errors(logits, targets, error, words):
    with pytest.raises(error) as info:
        softmax_cross_entropy(logits, targets)
    assert words in str(info.value)


# ---------------------------------------------------------------------------- layer norm
def test_layer_norm_backward_equals_torch_and_finite_differences():
    x = rng.standard_normal((2, 3, 6)) * 2 + 1
    w, b = rng.standard_normal(6), rng.standard_normal(6)
    dy = rng.standard_normal((2, 3, 6))
    dx, dw, db = layer_norm_backward(x, dy, w, eps=1e-5)
    tx, tw, tb = (T(a).requires_grad_() for a in (x, w, b))
    (torch.nn.functional.layer_norm(tx, (6,), tw, tb, 1e-5) * T(dy)).sum().backward()
    for ours, t in ((dx, tx), (dw, tw), (db, tb)):
        close(ours, t.grad.numpy(), 1e-12)
    numeric = numerical_gradient(lambda z: float((layer_norm(z, w, b) * dy).sum()), x)
    close(dx, numeric, 1e-7)


def test_layer_norm_backward_needs_its_mean_terms():
    # dx = r * dy * w alone (what the normalisation would give with constant mean and
    # variance) is wrong, and rows of the true dx sum to zero (a shifted row normalises alike).
    x, dy = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    dx, _, _ = layer_norm_backward(x, dy)
    naive = dy / np.sqrt(x.var(axis=-1, keepdims=True) + 1e-5)
    assert np.abs(dx - naive).max() > 0.1
    assert np.allclose(dx.sum(axis=-1), 0, atol=1e-12)


def test_layer_norm_module_accumulates_and_zeroes():
    ln = LayerNorm(4)
    x, dy = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    ln(x)
    dx1 = ln.backward(dy)
    first = {k: v.copy() for k, v in ln.grads.items()}
    ln(x)
    ln.backward(dy)
    for k in first:
        close(ln.grads[k], 2 * first[k], 1e-15)
    ln.zero_grad()
    assert all((g == 0).all() for g in ln.grads.values())
    close(dx1, layer_norm_backward(x, dy, ln.weight)[0], 0)


# ---------------------------------------------------------------------------- GELU, Linear, FFN
def test_gelu_backward_equals_torch_and_finite_differences():
    x, dy = rng.standard_normal(50) * 3, rng.standard_normal(50)
    tx = T(x).requires_grad_()
    (torch.nn.functional.gelu(tx) * T(dy)).sum().backward()
    close(gelu_backward(x, dy), tx.grad.numpy(), 1e-13)
    numeric = numerical_gradient(lambda z: float((gelu(z) * dy).sum()), x)
    close(gelu_backward(x, dy), numeric, 1e-8)


def test_linear_backward_equals_torch():
    lin = Linear(4, 3, rng=rng)
    x, dy = rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 3))
    y = lin(x)
    dx = lin.backward(dy)
    tx, tW, tb = (T(a).requires_grad_() for a in (x, lin.W.T.copy(), lin.b))
    ty = torch.nn.functional.linear(tx, tW, tb)
    (ty * T(dy)).sum().backward()
    close(y, ty.detach().numpy(), 1e-14)
    close(dx, tx.grad.numpy(), 1e-14)
    close(lin.grads["W"], tW.grad.numpy().T, 1e-14)
    close(lin.grads["b"], tb.grad.numpy(), 1e-14)


def test_linear_without_bias_has_only_W():
    lin = Linear(3, 2, bias=False, rng=rng)
    assert list(lin.parameters()) == ["W"] and list(lin.grads) == ["W"]


def test_feed_forward_backward_equals_torch():
    ffn = FeedForward(4, 6, rng=rng)
    x, dy = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    ffn(x)
    dx = ffn.backward(dy)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.GELU(), torch.nn.Linear(6, 4))
    net.double()
    with torch.no_grad():
        net[0].weight.copy_(T(ffn.inner.W.T.copy()))
        net[0].bias.copy_(T(ffn.inner.b))
        net[2].weight.copy_(T(ffn.outer.W.T.copy()))
        net[2].bias.copy_(T(ffn.outer.b))
    tx = T(x).requires_grad_()
    (net(tx) * T(dy)).sum().backward()
    close(dx, tx.grad.numpy(), 1e-13)
    g = ffn.grads
    assert sorted(g) == ["in.W", "in.b", "out.W", "out.b"]
    close(g["in.W"], net[0].weight.grad.numpy().T, 1e-13)
    close(g["out.b"], net[2].bias.grad.numpy(), 1e-13)


# ---------------------------------------------------------------------------- embedding
def test_embedding_backward_adds_repeated_tokens():
    emb = Embedding(5, 3, rng=rng)
    tokens = np.array([[1, 1, 4], [1, 0, 4]])
    dy = rng.standard_normal((2, 3, 3))
    np.testing.assert_array_equal(emb(tokens), emb.weight[tokens])
    assert emb.backward(dy) is None
    t = T(emb.weight.copy()).requires_grad_()
    (torch.nn.functional.embedding(T(tokens), t) * T(dy)).sum().backward()
    close(emb.grads["weight"], t.grad.numpy(), 1e-15)
    close(emb.grads["weight"][1], dy[0, 0] + dy[0, 1] + dy[1, 0], 1e-15)
    assert (emb.grads["weight"][[2, 3]] == 0).all()


@pytest.mark.parametrize("tokens, error, words", [
    (np.array([[0.0, 1.0]]), TypeError, "integer"),
    (np.array([[0, 5]]), ValueError, "[0, 5)"),
    (np.array([[-1, 0]]), ValueError, "[0, 5)"),
])
def test_embedding_rejects_bad_tokens(tokens, error, words):
    with pytest.raises(error) as info:
        Embedding(5, 3, rng=rng)(tokens)
    assert words in str(info.value)


# ---------------------------------------------------------------------------- protocol errors
def test_backward_before_forward_and_wrong_dy_are_clear_errors():
    with pytest.raises(RuntimeError, match="before forward"):
        Linear(2, 2, rng=rng).backward(np.zeros((1, 2)))
    lin = Linear(2, 3, rng=rng)
    lin(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"shape \(4, 3\)"):
        lin.backward(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        lin(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        LayerNorm(2)(np.array([[np.nan, 1.0]]))


def test_forward_and_backward_leave_inputs_unchanged():
    x, dy = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    keep_x, keep_dy = x.copy(), dy.copy()
    for module in (LayerNorm(4), Linear(4, 4, rng=rng), FeedForward(4, 5, rng=rng)):
        module(x)
        module.backward(dy)
    np.testing.assert_array_equal(x, keep_x)
    np.testing.assert_array_equal(dy, keep_dy)


@pytest.mark.parametrize("make", [
    lambda: Linear(4, 3, rng=np.random.default_rng(1)),
    lambda: FeedForward(4, 5, rng=np.random.default_rng(2)),
    lambda: LayerNorm(4),
], ids=["Linear", "FeedForward", "LayerNorm"])
def test_module_gradients_match_finite_differences(make):
    module = make()
    if isinstance(module, LayerNorm):  # away from gain 1 and shift 0
        module.weight[...] = rng.standard_normal(4)
        module.bias[...] = rng.standard_normal(4)
    x = rng.standard_normal((2, 3, 4))
    dy = rng.standard_normal(module(x).shape)
    module.zero_grad()
    module(x)
    dx = module.backward(dy)
    close(dx, numerical_gradient(lambda z: float(np.sum(module(z) * dy)), x), 1e-8)
    for name, p in module.parameters().items():
        def loss_at(value, p=p):
            keep = p.copy()
            p[...] = value
            out = float(np.sum(module(x) * dy))
            p[...] = keep
            return out
        close(module.grads[name], numerical_gradient(loss_at, p), 1e-8)


def test_embedding_gradient_matches_finite_differences():
    emb = Embedding(4, 3, rng=rng)
    tokens, dy = np.array([[0, 2, 2, 3]]), rng.standard_normal((1, 4, 3))
    emb(tokens)
    emb.backward(dy)

    def loss_at(value):
        keep = emb.weight.copy()
        emb.weight[...] = value
        out = float(np.sum(emb(tokens) * dy))
        emb.weight[...] = keep
        return out

    close(emb.grads["weight"], numerical_gradient(loss_at, emb.weight), 1e-8)
