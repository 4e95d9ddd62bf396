"""helpers.block_parts against PyTorch's nn.LayerNorm and nn.functional.gelu."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.block_parts import gelu, layer_norm


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("eps", [1e-5, 1e-12])
def test_layer_norm_equals_torch(dtype, eps):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 5, 8)) * 3 + 1).astype(dtype)
    w = rng.standard_normal(8).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    ln = torch.nn.LayerNorm(8, eps=eps, dtype=torch.float64)
    with torch.no_grad():
        ln.weight.copy_(torch.from_numpy(w.astype(np.float64)))
        ln.bias.copy_(torch.from_numpy(b.astype(np.float64)))
        want = ln(torch.from_numpy(x.astype(np.float64))).numpy()
    got = layer_norm(x, w, b, eps=eps)
    assert got.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_layer_norm_defaults_give_mean_zero_variance_one():
    x = np.random.default_rng(1).standard_normal((4, 16)) * 7 - 2
    y = layer_norm(x)
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1), 1, rtol=1e-4)


def test_layer_norm_rejects_bad_gain_and_nan():
    x = np.ones((3, 4))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        layer_norm(x, np.ones(3))
    with pytest.raises(ValueError, match="NaN or infinity"):
        layer_norm(np.array([[1.0, np.nan]]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gelu_equals_torch_exact(dtype):
    x = np.linspace(-6, 6, 97).astype(dtype)
    want = torch.nn.functional.gelu(torch.from_numpy(x.astype(np.float64))).numpy()
    got = gelu(x)
    assert got.dtype == dtype and got.shape == x.shape
    tol = 1e-14 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
