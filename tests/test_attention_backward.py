"""Tests of helpers.attention_backward: the hand-written attention backward pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import attention, softmax, softmax_jacobian
from helpers.attention_backward import attention_backward, numerical_gradient, softmax_backward

F = torch.nn.functional


def _autograd(Q, K, V, dO, mask=None, scale=None):
    """dQ, dK, dV of PyTorch's scaled_dot_product_attention, seeded with dO."""
    tQ, tK, tV = (torch.from_numpy(np.array(a)).requires_grad_() for a in (Q, K, V))
    t_mask = None if mask is None else torch.from_numpy(np.asarray(mask))
    out = F.scaled_dot_product_attention(tQ, tK, tV, attn_mask=t_mask, scale=scale)
    (out * torch.from_numpy(np.asarray(dO))).sum().backward()
    return tQ.grad.numpy(), tK.grad.numpy(), tV.grad.numpy()


SHAPES = {
    # name: (Q shape, K shape, V shape); dO has the output's shape
    "one head": ((4, 8), (4, 8), (4, 8)),
    "cross, d_v != d_k": ((3, 6), (7, 6), (7, 2)),
    "batch and heads": ((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 3)),
    "K and V shared by heads": ((2, 3, 5, 4), (2, 1, 6, 4), (2, 1, 6, 3)),
    "K and V without batch axes": ((2, 3, 5, 4), (6, 4), (6, 3)),
}


def _inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    Q, K, V = (rng.standard_normal(s) for s in shapes)
    lead = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    dO = rng.standard_normal((*lead, Q.shape[-2], V.shape[-1]))
    return Q, K, V, dO, rng


@pytest.mark.parametrize("name", SHAPES)
@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
def test_matches_torch_autograd(name, mask_kind):
    Q, K, V, dO, rng = _inputs(SHAPES[name])
    L_q, L_k = Q.shape[-2], K.shape[-2]
    mask = None
    if mask_kind == "bool":
        mask = rng.random((L_q, L_k)) < 0.6
        mask[0] = False  # a fully masked row
    elif mask_kind == "float":
        mask = np.where(rng.random((L_q, L_k)) < 0.7, rng.standard_normal((L_q, L_k)), -np.inf)
    ours = attention_backward(Q, K, V, dO, mask)
    for got, want, arr in zip(ours, _autograd(Q, K, V, dO, mask), (Q, K, V), strict=True):
        assert got.shape == arr.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("scale", [1.0, 0.1, 3.0])
def test_custom_scale_matches_torch(scale):
    Q, K, V, dO, _ = _inputs(SHAPES["batch and heads"], seed=1)
    ours = attention_backward(Q, K, V, dO, scale=scale)
    for got, want in zip(ours, _autograd(Q, K, V, dO, scale=scale), strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_default_scale_is_inverse_sqrt_dk():
    Q, K, V, dO, _ = _inputs(SHAPES["one head"], seed=2)
    default = attention_backward(Q, K, V, dO)
    explicit = attention_backward(Q, K, V, dO, scale=1 / math.sqrt(Q.shape[-1]))
    for a, b in zip(default, explicit, strict=True):
        np.testing.assert_array_equal(a, b)
    unscaled = attention_backward(Q, K, V, dO, scale=1.0)
    assert not np.allclose(default[0], unscaled[0])


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
def test_matches_finite_differences(mask_kind):
    rng = np.random.default_rng(3)
    Q, K, V = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    dO = rng.standard_normal((3, 2))
    mask = {
        "none": None,
        "bool": np.array([[1, 0, 1, 1, 0], [0, 0, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=bool),
        "float": np.array([[0.0, -1.0, 2.0, -np.inf, 0.5]] * 3),
    }[mask_kind]

    def loss(q, k, v):
        return float(np.sum(attention(q, k, v, mask)[0] * dO))

    dQ, dK, dV = attention_backward(Q, K, V, dO, mask)
    np.testing.assert_allclose(dQ, numerical_gradient(lambda q: loss(q, K, V), Q), atol=1e-8)
    np.testing.assert_allclose(dK, numerical_gradient(lambda k: loss(Q, k, V), K), atol=1e-8)
    np.testing.assert_allclose(dV, numerical_gradient(lambda v: loss(Q, K, v), V), atol=1e-8)


def test_fully_masked_row_and_hidden_key_get_zero_gradient():
    Q, K, V, dO, _ = _inputs(((4, 6), (5, 6), (5, 3)), seed=4)
    mask = np.ones((4, 5), dtype=bool)
    mask[2] = False  # query 2 sees nothing
    mask[:, 1] = False  # key 1 is seen by nobody
    dQ, dK, dV = attention_backward(Q, K, V, dO, mask)
    assert (dQ[2] == 0).all()
    assert (dK[1] == 0).all() and (dV[1] == 0).all()
    assert np.isfinite(dQ).all() and np.isfinite(dK).all() and np.isfinite(dV).all()
    assert np.abs(dQ[[0, 1, 3]]).min(axis=-1).max() > 0  # the other rows do get a gradient


def test_single_query_equals_one_row_batch():
    rng = np.random.default_rng(5)
    q, K, V, do = (rng.standard_normal(s) for s in ((4,), (6, 4), (6, 3), (3,)))
    keep = np.array([1, 1, 0, 1, 0, 1], dtype=bool)
    dq, dK, dV = attention_backward(q, K, V, do, keep)
    dQ2, dK2, dV2 = attention_backward(q[None], K, V, do[None], keep[None])
    assert dq.shape == (4,)
    np.testing.assert_allclose(dq, dQ2[0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(dK, dK2, rtol=0, atol=1e-15)
    np.testing.assert_allclose(dV, dV2, rtol=0, atol=1e-15)


def test_float32_stays_float32_and_close_to_float64():
    Q, K, V, dO, _ = _inputs(SHAPES["batch and heads"], seed=6)
    g64 = attention_backward(Q, K, V, dO)
    g32 = attention_backward(*(a.astype(np.float32) for a in (Q, K, V, dO)))
    for a, b in zip(g32, g64, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)


def test_softmax_backward_is_the_jacobian_product():
    rng = np.random.default_rng(7)
    P = softmax(rng.standard_normal((3, 4, 6)))
    dP = rng.standard_normal((3, 4, 6))
    via_jacobian = np.einsum("...i,...ij->...j", dP, softmax_jacobian(P))
    dS = softmax_backward(P, dP)
    np.testing.assert_allclose(dS, via_jacobian, rtol=0, atol=1e-14)
    np.testing.assert_allclose(dS.sum(axis=-1), 0.0, atol=1e-14)


def test_softmax_backward_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(4, 3\)"):
        softmax_backward(np.full((3, 4), 0.25), np.zeros((4, 3)))


def test_numerical_gradient_of_a_quadratic():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    before = x.copy()
    grad = numerical_gradient(lambda z: float(np.sum(z @ A * z)), x)
    np.testing.assert_allclose(grad, x @ (A + A.T), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(x, before)


BAD_INPUTS = {
    "d_k of Q and K differ": (((4, 8), (5, 7), (5, 3), (4, 3)), ValueError, r"d_k"),
    "K and V lengths differ": (((4, 8), (5, 8), (6, 3), (4, 3)), ValueError, r"L_k"),
    "dO has the wrong shape": (((4, 8), (5, 8), (5, 3), (4, 8)), ValueError, r"dO.*\(4, 3\)"),
    "leading axes clash": (((2, 4, 8), (3, 5, 8), (3, 5, 3), (2, 4, 3)), ValueError, "broadcast"),
    "1-D K": (((4, 8), (8,), (5, 3), (4, 3)), ValueError, r"K must have shape"),
    "2-D dO for a 1-D Q": (((8,), (5, 8), (5, 3), (1, 3)), ValueError, r"dO"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_shapes_raise_with_the_shapes_in_the_message(name):
    shapes, error, pattern = BAD_INPUTS[name]
    arrays = [np.ones(s) for s in shapes]
    with pytest.raises(error, match=pattern):
        attention_backward(*arrays)


def test_bad_mask_and_dtype_raise():
    Q, K, V, dO, _ = _inputs(SHAPES["one head"])
    with pytest.raises(ValueError, match="does not broadcast"):
        attention_backward(Q, K, V, dO, np.ones((3, 3), dtype=bool))
    with pytest.raises(TypeError, match="numeric"):
        attention_backward(Q, K, V, np.array([["a"] * 8] * 4))
    with pytest.raises(TypeError, match="mask"):
        attention_backward(Q, K, V, dO, np.array([["x"] * 4] * 4))
