"""``MultiHeadAttention.from_torch``: which dtype the copied layer gets.

Without ``dtype`` the layer takes the module's own dtype, as a PyTorch user expects: PyTorch
builds float32 modules by default, so ``from_torch(module)`` followed by a call on the module's
own float32 inputs must work and agree within the float32 bound. An explicit ``dtype`` is
always honoured. Half-precision modules need an explicit ``dtype`` (the layer cannot compute in
their precision, so widening is the caller's choice).
"""

import numpy as np
import pytest
import torch

from helpers import MultiHeadAttention

# float32 keeps about 7 significant digits (unit round-off 6e-8); sums of a few dozen products
# of O(1) numbers agree to a few 1e-6 between two libraries. float64: 1e-12 (see the README's
# precision table).
TOL32 = dict(rtol=2e-5, atol=2e-6)
TOL64 = dict(rtol=1e-12, atol=1e-12)
PARAMS = ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")


def torch_module(dtype=None, *, kdim=None, seed=0):
    """A seeded eval-mode nn.MultiheadAttention(12, 3) with random biases, built in ``dtype``."""
    torch.manual_seed(seed)
    m = torch.nn.MultiheadAttention(12, 3, batch_first=True, kdim=kdim, vdim=kdim, dtype=dtype)
    with torch.no_grad():  # PyTorch starts biases at zero; random ones make the test meaningful
        m.in_proj_bias.normal_()
        m.out_proj.bias.normal_()
    return m.eval()


def run_both(layer, module, q, kv):
    """(ours, PyTorch's) outputs and per-head weights on the same inputs."""
    out, w = layer(q, kv, kv)
    with torch.no_grad():
        t_q, t_kv = torch.from_numpy(q), torch.from_numpy(kv)
        t_out, t_w = module(t_q, t_kv, t_kv, average_attn_weights=False)
    return (out, w), (t_out.numpy(), t_w.numpy())


def torch_values(module):
    """The module's parameters in the layer's x @ W layout, as float64 arrays."""
    d = module.embed_dim

    def f64(t):
        return t.detach().to(torch.float64).numpy()

    if module._qkv_same_embed_dim:
        W = f64(module.in_proj_weight)
        W_q, W_k, W_v = (W[i * d:(i + 1) * d].T for i in range(3))
    else:
        W_q, W_k, W_v = (f64(getattr(module, f"{n}_proj_weight")).T for n in "qkv")
    b = f64(module.in_proj_bias)
    return dict(W_q=W_q, W_k=W_k, W_v=W_v, W_o=f64(module.out_proj.weight).T,
                b_q=b[:d], b_k=b[d:2 * d], b_v=b[2 * d:], b_o=f64(module.out_proj.bias))


@pytest.mark.parametrize("kdim", [None, 7])
def test_float32_module_gives_a_float32_layer_that_takes_its_inputs(kdim):
    module = torch_module(kdim=kdim)
    assert module.in_proj_bias.dtype == torch.float32  # PyTorch's default
    layer = MultiHeadAttention.from_torch(module)
    assert layer.dtype == np.float32
    assert all(getattr(layer, name).dtype == np.float32 for name in PARAMS)
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 5, 12)).astype(np.float32)
    kv = rng.standard_normal((2, 6, kdim or 12)).astype(np.float32)
    (out, w), (t_out, t_w) = run_both(layer, module, q, kv)
    assert out.dtype == w.dtype == np.float32
    np.testing.assert_allclose(out, t_out, **TOL32)
    np.testing.assert_allclose(w, t_w, **TOL32)


def test_float32_layer_refuses_float64_inputs_like_the_module():
    layer = MultiHeadAttention.from_torch(torch_module())
    with pytest.raises(TypeError, match="float32"):
        layer(np.zeros((1, 3, 12)))


def test_float64_module_gives_a_float64_layer():
    module = torch_module(torch.float64)
    layer = MultiHeadAttention.from_torch(module)
    assert layer.dtype == np.float64
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 4, 12))
    (out, w), (t_out, t_w) = run_both(layer, module, x, x)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, t_out, **TOL64)
    np.testing.assert_allclose(w, t_w, **TOL64)


def test_explicit_dtype_is_honoured():
    module32 = torch_module()
    widened = MultiHeadAttention.from_torch(module32, dtype=np.float64)
    assert widened.dtype == np.float64
    for name, value in torch_values(module32).items():  # float32 -> float64 is exact
        np.testing.assert_array_equal(getattr(widened, name), value, err_msg=name)
    module64 = torch_module(torch.float64)
    narrowed = MultiHeadAttention.from_torch(module64, dtype="float32")
    assert narrowed.dtype == np.float32
    for name, value in torch_values(module64).items():  # each value rounded once to float32
        np.testing.assert_array_equal(getattr(narrowed, name), value.astype(np.float32),
                                      err_msg=name)
    exact = torch_values(module64)["W_q"]  # the rounding is real: float64 values were copied
    assert not np.array_equal(narrowed.W_q.astype(np.float64), exact)


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_module_needs_an_explicit_dtype(half):
    module = torch_module(half)
    name = str(half).removeprefix("torch.")
    with pytest.raises(TypeError, match=rf"dtype {name} .*pass dtype=np\.float32"):
        MultiHeadAttention.from_torch(module)
    layer = MultiHeadAttention.from_torch(module, dtype=np.float32)
    assert layer.dtype == np.float32
    for key, value in torch_values(module).items():  # half -> float32 is exact
        np.testing.assert_array_equal(getattr(layer, key), value.astype(np.float32), err_msg=key)


def test_mixed_dtype_module_needs_an_explicit_dtype():
    module = torch_module()
    module.out_proj.double()  # out_proj in float64, in_proj in float32
    with pytest.raises(TypeError, match=r"share one dtype.*float32, float64"):
        MultiHeadAttention.from_torch(module)
    assert MultiHeadAttention.from_torch(module, dtype=np.float64).dtype == np.float64


def test_dtype_follows_the_module_not_torchs_default_dtype():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        module32 = torch_module(torch.float32)
        assert MultiHeadAttention.from_torch(module32).dtype == np.float32
        assert MultiHeadAttention.from_torch(torch_module()).dtype == np.float64
    finally:
        torch.set_default_dtype(previous)
