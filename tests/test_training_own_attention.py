"""helpers.training.own_attention: a model trained through the learner's attention functions
(notebook 08 §6's mha_forward, exercise 08.4's mha_backward) trains as with the library's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers.exercises import reference
from helpers.exercises.ex08_backward import mha_forward
from helpers.training import (
    Adam,
    ModelConfig,
    ReversalTask,
    TinyTransformer,
    softmax_cross_entropy,
    train,
    use_attention_functions,
)

TASK = ReversalTask(num_symbols=5, length=4)
mha_backward = reference("08.4")


def config(**changes) -> ModelConfig:
    base = {"vocab_size": TASK.vocab_size, "d_model": 16, "num_heads": 2, "max_len": 12}
    return ModelConfig(**{**base, **changes})


def grads_of(model, inputs, targets):
    model.zero_grad()
    loss, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(dlogits)
    return loss, {k: g.copy() for k, g in model.grads.items()}


@pytest.mark.parametrize("changes", [{}, {"attention_bias": True, "num_layers": 2, "d_ff": 8},
                                     {"norm": "post", "causal": False}],
                         ids=["pre-LN, no biases", "biases, 2 blocks", "post-LN, bidirectional"])
def test_gradients_through_the_functions_equal_the_library(changes):
    model = TinyTransformer(config(**changes), seed=1)
    if changes.get("attention_bias"):
        for block in model.blocks:
            block.attn.b_k[...] = np.random.default_rng(2).standard_normal(16)
    inputs, targets = TASK.batch(np.random.default_rng(3), 4)
    loss_lib, lib = grads_of(model, inputs, targets)
    with use_attention_functions(model, mha_forward, mha_backward):
        loss_own, own = grads_of(model, inputs, targets)
        weights = model.attention_weights[0]
    assert abs(loss_own - loss_lib) < 1e-13
    assert own.keys() == lib.keys()
    for name, g in lib.items():
        np.testing.assert_allclose(own[name], g, rtol=0, atol=1e-12 * max(1.0, np.abs(g).max()),
                                   err_msg=name)
    assert weights.shape == (4, 2, TASK.seq_len, TASK.seq_len)


def test_a_run_through_the_functions_equals_the_library_run_and_the_layers_come_back():
    rng = np.random.default_rng(4)
    batches = [TASK.batch(rng, 8) for _ in range(25)]
    a, b = TinyTransformer(config(), seed=5), TinyTransformer(config(), seed=5)
    layers = [block.attn for block in a.blocks]
    with use_attention_functions(a, mha_forward, mha_backward):
        ours = train(a, Adam(a.parameters(), lr=0.01), batches)
    lib = train(b, Adam(b.parameters(), lr=0.01), batches)
    assert all(block.attn is layer for block, layer in zip(a.blocks, layers, strict=True))
    np.testing.assert_allclose(ours, lib, rtol=1e-11, atol=0)
    assert ours[-1] < 0.8 * ours[0]
    for name, p in a.parameters().items():
        np.testing.assert_allclose(p, b.parameters()[name], rtol=0, atol=1e-10, err_msg=name)


def test_the_given_backward_is_the_one_used_and_the_layers_come_back_after_an_error():
    model = TinyTransformer(config(), seed=6)
    inputs, targets = TASK.batch(np.random.default_rng(7), 2)
    _, lib = grads_of(model, inputs, targets)

    def no_scale(d_out, cache, params):  # the learner forgot s in the query path
        dx, grads = mha_backward(d_out, cache, params)
        s = math.sqrt(cache["Q"].shape[-1])
        return dx, {**grads, "W_q": grads["W_q"] * s}

    layers = [block.attn for block in model.blocks]
    with use_attention_functions(model, mha_forward, no_scale):
        _, wrong = grads_of(model, inputs, targets)
    assert not np.allclose(wrong["blocks.0.attn.W_q"], lib["blocks.0.attn.W_q"])
    np.testing.assert_allclose(wrong["blocks.0.attn.W_k"], lib["blocks.0.attn.W_k"], atol=1e-12)

    with pytest.raises(KeyError), use_attention_functions(model, mha_forward,
                                                          lambda d, c, p: (d, {})):
        grads_of(model, inputs, targets)  # a backward that returns no gradients
    assert all(block.attn is layer for block, layer in zip(model.blocks, layers, strict=True))


def test_refuses_a_layer_with_dropout():
    model = TinyTransformer(config(), seed=8)
    model.blocks[0].attn.dropout = 0.1
    with pytest.raises(ValueError, match="dropout"), use_attention_functions(
            model, mha_forward, mha_backward):
        pass
    assert model.blocks[0].attn.dropout == 0.1
