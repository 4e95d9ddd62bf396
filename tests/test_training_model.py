"""helpers.training.tiny_transformer: the model's gradients, training and decoding vs PyTorch."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from helpers.kv_cache import decoding_macs
from helpers.training import (
    Adam,
    ModelConfig,
    ReversalTask,
    TinyTransformer,
    accuracy,
    generate,
    softmax_cross_entropy,
    train,
    train_step,
    warmup_cosine,
)
from helpers.training.losses import IGNORE_INDEX
from helpers.training.torch_model import TorchTinyTransformer, train_torch

TASK = ReversalTask(num_symbols=5, length=4)


def small_config(**changes) -> ModelConfig:
    base = {"vocab_size": TASK.vocab_size, "d_model": 16, "num_heads": 2, "max_len": 12}
    return ModelConfig(**{**base, **changes})


def loss_and_grads(model: TinyTransformer, inputs, targets):
    model.zero_grad()
    loss, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(dlogits)
    return loss, {k: g.copy() for k, g in model.grads.items()}


def torch_loss_and_grads(twin: TorchTinyTransformer, inputs, targets):
    twin.zero_grad()
    logits = twin(torch.from_numpy(inputs))
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), torch.from_numpy(targets).reshape(-1))
    loss.backward()
    return loss.item(), twin.numpy_grads()


CONFIGS = {
    "pre-LN, attention only": {},
    "pre-LN, 2 blocks with feed-forward": {"num_layers": 2, "d_ff": 24},
    "post-LN, 2 blocks with feed-forward": {"num_layers": 2, "d_ff": 24, "norm": "post"},
    "attention biases, bidirectional": {"attention_bias": True, "causal": False},
}


@pytest.mark.parametrize("changes", CONFIGS.values(), ids=CONFIGS.keys())
def test_gradients_equal_torch_autograd(changes):
    model = TinyTransformer(small_config(**changes), seed=1)
    # Train a few steps first so that no parameter sits at its special initial value.
    rng = np.random.default_rng(2)
    train(model, Adam(model.parameters(), lr=0.01), [TASK.batch(rng, 4) for _ in range(3)])
    inputs, targets = TASK.batch(rng, 3)
    twin = TorchTinyTransformer.from_numpy(model)
    loss, grads = loss_and_grads(model, inputs, targets)
    t_loss, t_grads = torch_loss_and_grads(twin, inputs, targets)
    assert abs(loss - t_loss) <= 1e-12 * t_loss
    assert grads.keys() == t_grads.keys()
    for name, g in grads.items():
        scale = np.abs(t_grads[name]).max()
        assert np.abs(g - t_grads[name]).max() <= 1e-10 * max(scale, 1e-3), name


def test_gradients_match_finite_differences():
    # A directional derivative per parameter: (L(p + e u) - L(p - e u)) / 2e = <grad, u>.
    model = TinyTransformer(small_config(num_layers=2, d_ff=8), seed=3)
    rng = np.random.default_rng(4)
    inputs, targets = TASK.batch(rng, 2)
    _, grads = loss_and_grads(model, inputs, targets)
    eps = 1e-5
    for name, p in model.parameters().items():
        u = rng.standard_normal(p.shape)
        keep = p.copy()
        p += eps * u
        up = softmax_cross_entropy(model(inputs), targets)[0]
        p[...] = keep - eps * u
        down = softmax_cross_entropy(model(inputs), targets)[0]
        p[...] = keep
        numeric, analytic = (up - down) / (2 * eps), float(np.sum(grads[name] * u))
        assert abs(numeric - analytic) <= 1e-7 * max(1.0, abs(analytic)), name


def test_training_run_equals_torch_step_by_step():
    steps = 120
    model = TinyTransformer(small_config(d_ff=16), seed=5)
    twin = TorchTinyTransformer.from_numpy(model)
    rng = np.random.default_rng(6)
    batches = [TASK.batch(rng, 16) for _ in range(steps)]
    schedule = functools.partial(warmup_cosine, warmup=10, total=steps)
    ours = np.array(train(model, Adam(model.parameters(), lr=0.01, betas=(0.9, 0.98)), batches,
                          lr_lambda=schedule))
    theirs = np.array(train_torch(twin, batches, lr=0.01, betas=(0.9, 0.98), lr_lambda=schedule))
    assert ours[-1] < 0.5 * ours[0], "the run must actually train"
    assert np.max(np.abs(ours - theirs) / theirs) <= 1e-9
    final = twin.numpy_parameters()
    for name, p in model.parameters().items():
        assert np.abs(p - final[name]).max() <= 1e-9 * np.abs(final[name]).max(), name


def test_train_runs_the_step_it_is_given():
    batches = [TASK.batch(np.random.default_rng(3), 8) for _ in range(4)]
    calls = []

    def my_step(model, optimizer, inputs, targets):  # the library's step, counted
        calls.append(inputs.shape)
        return train_step(model, optimizer, inputs, targets)

    a, b = TinyTransformer(small_config(), seed=2), TinyTransformer(small_config(), seed=2)
    schedule = functools.partial(warmup_cosine, warmup=2, total=4)
    ours = train(a, Adam(a.parameters(), lr=0.01), batches, lr_lambda=schedule, step=my_step)
    lib = train(b, Adam(b.parameters(), lr=0.01), batches, lr_lambda=schedule)
    assert len(calls) == 4 and ours == lib
    assert all(np.array_equal(p, b.parameters()[k]) for k, p in a.parameters().items())


@pytest.mark.parametrize("returned", [None, float("nan"), "1.0", np.array([1.0, 2.0]), True])
def test_train_refuses_a_step_that_returns_no_loss(returned):
    def bad_step(model, optimizer, inputs, targets):
        return returned

    model = TinyTransformer(small_config(), seed=2)
    optimizer = Adam(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match="step 0: bad_step returned"):
        train(model, optimizer, [TASK.batch(np.random.default_rng(3), 2)],
              lr_lambda=lambda t: 0.5, step=bad_step)
    assert optimizer.lr == 0.01  # the base rate is restored after the error


def test_model_learns_the_reversal_task():
    task = ReversalTask(num_symbols=6, length=4)
    config = ModelConfig(vocab_size=task.vocab_size, d_model=32, num_heads=1,
                         max_len=task.seq_len, position_base=100.0)
    model = TinyTransformer(config, seed=0)
    rng = np.random.default_rng(1)
    steps = 150
    train(model, Adam(model.parameters(), lr=0.01, betas=(0.9, 0.98)),
          [task.batch(rng, 32) for _ in range(steps)],
          lr_lambda=functools.partial(warmup_cosine, warmup=15, total=steps))
    held_out = task.batch(np.random.default_rng(99), 300)
    assert accuracy(model, *held_out) >= 0.99
    on_source = task.weight_on_source(model.attention_weights[0])  # (B, h, n)
    assert on_source.mean() >= 0.8


def test_zero_grad_matters():
    model = TinyTransformer(small_config(), seed=7)
    inputs, targets = TASK.batch(np.random.default_rng(8), 2)
    _, once = loss_and_grads(model, inputs, targets)
    _, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(dlogits)  # no zero_grad in between: the gradients add up
    for name, g in model.grads.items():
        np.testing.assert_allclose(g, 2 * once[name], rtol=1e-12, atol=1e-15)
    model.zero_grad()
    assert all((g == 0).all() for g in model.grads.values())


def test_parameter_names_and_layout():
    pre = TinyTransformer(small_config(d_ff=8), seed=0)
    post = TinyTransformer(small_config(norm="post"), seed=0)
    assert "ln_f.weight" in pre.parameters() and "ln_f.weight" not in post.parameters()
    assert "blocks.0.ffn.in.W" in pre.parameters() and "blocks.0.attn.b_q" not in pre.parameters()
    assert pre.parameters()["blocks.0.attn.W_q"] is pre.blocks[0].attn.W_q
    assert pre.num_parameters == sum(p.size for p in pre.parameters().values())
    assert np.array_equal(TinyTransformer(small_config(), seed=0).head.W,
                          TinyTransformer(small_config(), seed=0).head.W), "a seed fixes the model"


def test_float32_model_stays_float32():
    model = TinyTransformer(small_config(), seed=0, dtype=np.float32)
    inputs, targets = TASK.batch(np.random.default_rng(0), 2)
    logits = model(inputs)
    assert logits.dtype == np.float32
    _, dlogits = softmax_cross_entropy(logits, targets)
    model.backward(dlogits)
    assert all(g.dtype == np.float32 for g in model.grads.values())


# ---------------------------------------------------------------------------- generation
@pytest.mark.parametrize("changes", [{}, {"num_layers": 2, "d_ff": 8, "norm": "post"}])
def test_kv_cache_generation_equals_recomputing_the_prefix(changes):
    model = TinyTransformer(small_config(**changes), seed=9)
    prompt = np.random.default_rng(10).integers(0, TASK.vocab_size, (3, 4))
    cached = generate(model, prompt, 6, use_cache=True)
    full = generate(model, prompt, 6, use_cache=False)
    np.testing.assert_array_equal(cached.tokens, full.tokens)
    assert cached.tokens.shape == (3, 10) and cached.logits.shape == (3, 6, TASK.vocab_size)
    np.testing.assert_allclose(cached.logits, full.logits, rtol=0, atol=1e-12)
    # Each step's logits are the full forward pass's last row.
    np.testing.assert_allclose(full.logits[:, -1], model(cached.tokens[:, :-1])[:, -1],
                               rtol=0, atol=1e-12)
    assert cached.attention_macs < full.attention_macs


def test_work_counts_agree_with_decoding_macs():
    model = TinyTransformer(small_config(num_layers=2), seed=0)
    prompt = np.zeros((1, 1), dtype=int)
    d, new = model.config.d_model, 7
    cached = generate(model, prompt, new)
    # With a one-token prompt the cached path feeds tokens 1..new, as decoding_macs counts.
    assert cached.attention_macs == 2 * decoding_macs(new, d, cache=True)
    full = generate(model, prompt, new, use_cache=False)
    assert full.attention_macs == 2 * decoding_macs(new, d, cache=False)


def test_generation_errors():
    causal = TinyTransformer(small_config(), seed=0)
    with pytest.raises(ValueError, match="causal"):
        generate(TinyTransformer(small_config(causal=False), seed=0), np.zeros((1, 2), int), 2)
    with pytest.raises(ValueError, match="max_len"):
        generate(causal, np.zeros((1, 10), int), 5)
    with pytest.raises(TypeError, match="integer"):
        generate(causal, np.zeros((1, 2)), 2)


# ---------------------------------------------------------------------------- data, errors
def test_reversal_task_data():
    inputs, targets = TASK.batch(np.random.default_rng(0), 5)
    assert inputs.shape == targets.shape == (5, 8)
    assert (inputs[:, 4] == TASK.sep).all()
    assert (targets[:, :4] == IGNORE_INDEX).all()
    np.testing.assert_array_equal(targets[:, 4:], inputs[:, 3::-1])  # the prompt reversed
    # Position p = n + i is answered by the token at 2n - 1 - p, as the ideal weights say.
    ideal = TASK.ideal_weights()
    for p, src in zip(TASK.answer_positions, TASK.source_positions(), strict=True):
        np.testing.assert_array_equal(targets[:, p], inputs[:, src])
        assert ideal[p, src] == 1 and ideal[p].sum() == 1
    assert (task_weights := TASK.weight_on_source(ideal[np.newaxis])).shape == (1, 4)
    assert (task_weights == 1).all()


@pytest.mark.parametrize("call, error, words", [
    (lambda m: m(np.zeros((2, 13), int)), ValueError, "max_len=12"),
    (lambda m: m(np.zeros(5, int)), ValueError, "(batch, L)"),
    (lambda m: m(np.full((1, 3), 99)), ValueError, "[0, 6)"),
    (lambda m: m(np.zeros((1, 3))), TypeError, "integer"),
    (lambda m: m.backward(np.zeros((1, 3, 5))), ValueError, "shape"),
])
def test_model_errors(call, error, words):
    model = TinyTransformer(small_config(), seed=0)
    model(np.zeros((1, 3), int))
    with pytest.raises(error) as info:
        call(model)
    assert words in str(info.value)


@pytest.mark.parametrize("changes, words", [
    ({"norm": "middle"}, "norm"), ({"d_model": 15}, "even"), ({"d_ff": 0}, "d_ff"),
])
def test_config_errors(changes, words):
    with pytest.raises(ValueError, match=words):
        small_config(**changes)
