"""helpers.training.own_functions: a model trained through the learner's own functions (notebook
08's exercises 08.1-08.6 and §6's mha_forward) trains as with the library's, each function given
is the one used, and a function that changes the model's arrays in place is refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import MultiHeadAttention
from helpers.exercises import reference
from helpers.exercises.ex08_backward import mha_forward
from helpers.training import (
    Adam,
    AdamFromFunction,
    ModelConfig,
    ReversalTask,
    TinyTransformer,
    softmax_cross_entropy,
    train,
    use_own_functions,
    warmup_cosine,
)
from helpers.training.torch_model import TorchTinyTransformer, train_torch

TASK = ReversalTask(num_symbols=5, length=4)
SOLUTIONS = {  # the trusted functions of exercises 08.1-08.4: what the solutions compute
    "cross_entropy_grad": reference("08.1"),
    "layer_norm_backward": reference("08.2"),
    "embedding_backward": reference("08.3"),
    "mha_forward": mha_forward,
    "mha_backward": reference("08.4"),
}


def config(**changes) -> ModelConfig:
    base = {"vocab_size": TASK.vocab_size, "d_model": 16, "num_heads": 2, "max_len": 12}
    return ModelConfig(**{**base, **changes})


def grads_of(model, inputs, targets):
    model.zero_grad()
    loss, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(dlogits)
    return loss, {k: g.copy() for k, g in model.grads.items()}


def batch(seed=3, size=4):
    return TASK.batch(np.random.default_rng(seed), size)


CONFIGS = [{}, {"attention_bias": True, "num_layers": 2, "d_ff": 8},
           {"norm": "post", "causal": False, "d_ff": 8}]
CONFIG_IDS = ["pre-LN, no biases", "biases, 2 blocks, feed-forward", "post-LN, bidirectional"]


@pytest.mark.parametrize("changes", CONFIGS, ids=CONFIG_IDS)
def test_every_gradient_through_all_the_solutions_equals_the_library(changes):
    model = TinyTransformer(config(**changes), seed=1)
    if changes.get("attention_bias"):
        for block in model.blocks:
            block.attn.b_k[...] = np.random.default_rng(2).standard_normal(16)
    inputs, targets = batch()
    loss_lib, lib = grads_of(model, inputs, targets)
    with use_own_functions(model, **SOLUTIONS):
        loss_own, own = grads_of(model, inputs, targets)
        weights = model.attention_weights[0]
    assert abs(loss_own - loss_lib) < 1e-13
    assert own.keys() == lib.keys()
    for name, g in lib.items():
        np.testing.assert_allclose(own[name], g, rtol=0, atol=1e-12 * max(1.0, np.abs(g).max()),
                                   err_msg=name)
    assert weights.shape == (4, 2, TASK.seq_len, TASK.seq_len)


def _wrong(name):
    """A wrong version of one solution, and the parameters whose gradients it must change."""
    right = SOLUTIONS[name]
    if name == "cross_entropy_grad":
        return (lambda logits, targets: 2.0 * right(logits, targets)), None  # every one
    if name == "layer_norm_backward":  # no mean terms: what sits below a LayerNorm
        def no_mean_terms(x, dy, gamma, eps):
            return dy * gamma / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
        return no_mean_terms, {"embed.weight", "blocks.0.attn.W_q", "blocks.0.attn.W_k",
                               "blocks.0.attn.W_v", "blocks.0.attn.W_o", "blocks.0.ln1.weight",
                               "blocks.0.ln1.bias"}
    if name == "embedding_backward":
        return (lambda tokens, d_out, vocab_size: 3.0 * right(tokens, d_out, vocab_size)), {
            "embed.weight"}
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["cross_entropy_grad", "layer_norm_backward",
                                  "embedding_backward"])
def test_the_function_given_is_the_one_used_and_the_model_is_put_back(name):
    model = TinyTransformer(config(), seed=6)
    inputs, targets = batch(7, 2)
    _, lib = grads_of(model, inputs, targets)
    wrong, affected = _wrong(name)
    with use_own_functions(model, **{name: wrong}):
        _, got = grads_of(model, inputs, targets)
    for param, g in lib.items():
        differs = not np.allclose(got[param], g, rtol=1e-9, atol=1e-12)
        assert differs == (affected is None or param in affected), param
    _, again = grads_of(model, inputs, targets)  # outside the block: the library's again
    assert all(np.array_equal(again[k], g) for k, g in lib.items())
    assert not any("backward" in vars(p) for p in (model.embed, model.blocks[0].ln1, model.ln_f))


def test_the_given_attention_backward_is_used_and_the_layers_come_back_after_an_error():
    model = TinyTransformer(config(), seed=6)
    inputs, targets = batch(7, 2)
    _, lib = grads_of(model, inputs, targets)

    def no_scale(d_out, cache, params):  # the learner forgot s in dW_q
        dx, grads = SOLUTIONS["mha_backward"](d_out, cache, params)
        return dx, {**grads, "W_q": grads["W_q"] * math.sqrt(cache["Q"].shape[-1])}

    layers = [block.attn for block in model.blocks]
    with use_own_functions(model, mha_forward=mha_forward, mha_backward=no_scale):
        _, wrong = grads_of(model, inputs, targets)
    assert not np.allclose(wrong["blocks.0.attn.W_q"], lib["blocks.0.attn.W_q"])
    np.testing.assert_allclose(wrong["blocks.0.attn.W_k"], lib["blocks.0.attn.W_k"], atol=1e-12)

    with pytest.raises(KeyError), use_own_functions(
            model, mha_forward=mha_forward, mha_backward=lambda d, c, p: (d, {}),
            layer_norm_backward=SOLUTIONS["layer_norm_backward"]):
        grads_of(model, inputs, targets)  # a backward that returns no gradients
    assert all(block.attn is layer for block, layer in zip(model.blocks, layers, strict=True))
    assert "backward" not in vars(model.ln_f)
    with pytest.raises(ValueError, match="together"), use_own_functions(
            model, mha_backward=SOLUTIONS["mha_backward"]):
        pass


def test_a_function_that_changes_the_models_arrays_is_refused_and_they_are_put_back():
    model = TinyTransformer(config(), seed=9)
    inputs, targets = batch(10, 2)
    kept = {k: p.copy() for k, p in model.parameters().items()}

    def rescales_W_q(d_out, cache, params):  # right gradients, but the layer's W_q changes
        params["W_q"] *= 0.5
        return SOLUTIONS["mha_backward"](d_out, cache, params)

    def scales_gamma(x, dy, gamma, eps):
        gamma *= 2.0
        return SOLUTIONS["layer_norm_backward"](x, dy, gamma / 2.0, eps)

    for functions, label, argument in (
            ({"mha_forward": mha_forward, "mha_backward": rescales_W_q}, "mha_backward",
             "params"),
            ({"layer_norm_backward": scales_gamma}, "layer_norm_backward", "gamma")):
        with pytest.raises(ValueError, match=f"your {label} changed its argument {argument} in "
                                             "place"), use_own_functions(model, **functions):
            grads_of(model, inputs, targets)
        for k, p in model.parameters().items():
            np.testing.assert_array_equal(p, kept[k], err_msg=k)


def test_a_result_of_the_wrong_shape_is_a_clear_error():
    model = TinyTransformer(config(), seed=11)
    with pytest.raises(ValueError, match=r"your embedding_backward returned shape \(7, 16\)"), \
            use_own_functions(model, embedding_backward=lambda t, d, v: np.zeros((v + 1, 16))):
        grads_of(model, *batch(12, 2))


def test_adam_from_function_takes_the_steps_of_adam_and_refuses_a_changed_state():
    rng = np.random.default_rng(13)
    ours, lib = {"w": rng.standard_normal((3, 4))}, {}
    lib["w"] = ours["w"].copy()
    opt = AdamFromFunction(ours, reference("08.5"), lr=0.01, betas=(0.9, 0.98))
    ref = Adam(lib, lr=0.01, betas=(0.9, 0.98))
    for _ in range(20):
        g = rng.standard_normal((3, 4))
        opt.step({"w": g})
        ref.step({"w": g})
    np.testing.assert_allclose(ours["w"], lib["w"], rtol=1e-13, atol=0)

    def in_place(param, grad, m, v, t, lr, beta1, beta2, eps):
        m *= beta1
        m += (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad * grad
        return param - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps), m, v

    before = ours["w"].copy()
    with pytest.raises(ValueError, match="your adam_step changed its argument m in place"):
        AdamFromFunction(ours, in_place, lr=0.01).step({"w": np.ones((3, 4))})
    np.testing.assert_array_equal(ours["w"], before)
    with pytest.raises(ValueError, match="expected the triple"):
        AdamFromFunction(ours, lambda *a: a[0], lr=0.01).step({"w": np.ones((3, 4))})


def test_a_run_through_all_the_solutions_equals_pytorch_step_by_step():
    """Notebook 08 §9's run in small: every learner function plugged in, against autograd and
    torch.optim.Adam (with a warm-up and a cosine schedule)."""
    cfg = config(d_model=16, num_heads=2)
    rng = np.random.default_rng(14)
    batches = [TASK.batch(rng, 8) for _ in range(40)]
    schedule = lambda t: warmup_cosine(t, warmup=5, total=40)  # noqa: E731
    model = TinyTransformer(cfg, seed=15)
    twin = TorchTinyTransformer.from_numpy(TinyTransformer(cfg, seed=15))
    optimizer = AdamFromFunction(model.parameters(), reference("08.5"), lr=0.01,
                                 betas=(0.9, 0.98))
    with use_own_functions(model, **SOLUTIONS):
        ours = np.array(train(model, optimizer, batches, lr_lambda=schedule,
                              step=reference("08.6")))
    theirs = np.array(train_torch(twin, batches, lr=0.01, betas=(0.9, 0.98),
                                  lr_lambda=schedule))
    assert ours[-1] < 0.8 * ours[0]
    assert np.max(np.abs(ours - theirs) / theirs) < 1e-9
    final = twin.numpy_parameters()
    for name, p in model.parameters().items():
        np.testing.assert_allclose(p, final[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_refuses_a_layer_with_dropout():
    model = TinyTransformer(config(), seed=8)
    model.blocks[0].attn.dropout = 0.1
    with pytest.raises(ValueError, match="dropout"), use_own_functions(
            model, mha_forward=mha_forward, mha_backward=SOLUTIONS["mha_backward"]):
        pass
    assert model.blocks[0].attn.dropout == 0.1
    assert isinstance(model.blocks[0].attn, MultiHeadAttention)  # put back
