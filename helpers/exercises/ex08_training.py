"""Exercises of notebook 08 on training: 08.5 one Adam step and 08.6 one whole training step
(registered when :mod:`helpers.exercises.ex08` is imported)."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays, real, tuple_of
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.training import SGD, Adam, ModelConfig, TinyTransformer, softmax_cross_entropy

rng = np.random.default_rng(8085)
n = rng.standard_normal


# --------------------------------------------------------------------------- 08.5
def adam_step(param, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def _adam(bias_correction=True, square=True, eps_inside=False, t_shift=0, sign=1.0):
    def wrong(param, grad, m, v, t, lr, beta1, beta2, eps):
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * (grad * grad if square else np.abs(grad))
        t = t + t_shift
        m_hat, v_hat = (m / (1 - beta1**t), v / (1 - beta2**t)) if bias_correction else (m, v)
        denom = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
        return param - sign * lr * m_hat / denom, m, v
    return wrong


def _adam_case(t, shape=(3, 4), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, warm=True):
    m = 0.1 * n(shape) if warm else np.zeros(shape)
    v = 0.01 * np.abs(n(shape)) if warm else np.zeros(shape)
    return (n(shape), n(shape), m, v, t, lr, *betas, eps)


register(Exercise(
    id="08.5",
    reference=adam_step,
    taught="notebook 08 §8",
    compare=tuple_of(arrays(rtol=1e-9, atol=1e-14), arrays(rtol=1e-9, atol=1e-14),
                     arrays(rtol=1e-9, atol=1e-14), names=("param", "m", "v")),
    cases=(
        Case(_adam_case(1, warm=False), "the first step (t = 1), moments at zero"),
        Case(_adam_case(3, lr=0.01), "step 3 with warm moments"),
        Case(_adam_case(500, shape=(5,), betas=(0.8, 0.99)), "step 500, other betas"),
        Case(_adam_case(2, shape=(2, 2), eps=0.1), "a large eps"),
    ),
    mistakes=(
        Mistake("no bias correction", "m and v start at 0, so early on they are too small by "
                "the factors 1 − β₁ᵗ and 1 − β₂ᵗ: divide by them.", "notebook 08 §8",
                _adam(bias_correction=False)),
        Mistake("t counted from 0", "the first step is t = 1 (t = 0 would divide by zero).",
                "notebook 08 §8", _adam(t_shift=-1)),
        Mistake("|g| instead of g²", "v averages the squared gradient.", "notebook 08 §8",
                _adam(square=False)),
        Mistake("eps inside the square root", "torch.optim.Adam adds eps after the square "
                "root: √v̂ + eps.", "notebook 08 §8", _adam(eps_inside=True)),
        Mistake("step uphill", "the update subtracts: θ − lr · m̂ / (√v̂ + eps).",
                "notebook 08 §8", _adam(sign=-1.0)),
    ),
    difficulty=2,
    minutes=15,
    hints=(
        "Update m with g and v with g², then divide each by its bias correction 1 − βᵗ, t "
        "counted from 1.",
        "param − lr·m̂/(√v̂ + eps), eps outside the root; build new arrays (m = beta1 * m + "
        "...), never m *= beta1.",
    ),
))


# --------------------------------------------------------------------------- 08.6
def one_step(model, optimizer, inputs, targets):
    model.zero_grad()
    logits = model(inputs)
    loss, dlogits = softmax_cross_entropy(logits, targets)
    model.backward(dlogits)
    optimizer.step(model.grads)
    return loss


def _step(*, zero=True, zero_late=False, update=True, loss_after=False, sign=1.0,
          params_as_grads=False):
    def wrong(model, optimizer, inputs, targets):
        if zero:
            model.zero_grad()
        loss, dlogits = softmax_cross_entropy(model(inputs), targets)
        model.backward(sign * dlogits)
        if zero_late:
            model.zero_grad()  # between backward and step: the optimizer sees zeros
        if update:
            optimizer.step(model.parameters() if params_as_grads else model.grads)
        if loss_after:
            loss = softmax_cross_entropy(model(inputs), targets)[0]
        return loss
    return wrong


def _after_step(loss, model, optimizer, inputs, targets):
    """What a step is judged on: its returned loss and every parameter after it."""
    return loss, {name: p.copy() for name, p in model.parameters().items()}


_loss = real(rtol=1e-10)
_param = arrays(rtol=1e-9, atol=1e-12)


def _compare_step(got, want):
    loss, params = got
    problem = _loss(loss, want[0])
    if problem is not None:
        return f"the returned loss: {problem} (the loss of the batch, before the update)"
    wrong = {k: p for k, w in want[1].items() if (p := _param(params[k], w)) is not None}
    if not wrong:
        return None
    first = next(iter(wrong))
    return (f"{len(wrong)} of {len(want[1])} parameters are wrong after the step "
            f"({', '.join(wrong)})\n  {first}: {wrong[first]}")


def _case_model(config, optimizer, *, warm_steps=0, stale=False, lr=0.01):
    """A small model and its optimizer, after ``warm_steps`` updates, maybe with stale grads."""
    model = TinyTransformer(config, seed=int(rng.integers(1000)))
    opt = optimizer(model.parameters(), lr=lr)
    L = config.max_len
    for _ in range(warm_steps):
        one_step(model, opt, *_batch(config.vocab_size, L))
    if stale:  # an earlier backward pass, not followed by a step
        inputs, targets = _batch(config.vocab_size, L)
        model.backward(softmax_cross_entropy(model(inputs), targets)[1])
    return model, opt


def _batch(vocab, L, B=3):
    inputs = rng.integers(0, vocab, (B, L))
    targets = rng.integers(0, vocab, (B, L))
    targets[:, : L // 2] = -100  # positions without a target, as in the reversal task
    return inputs, targets


_SMALL = ModelConfig(vocab_size=7, d_model=8, num_heads=2, max_len=6, position_base=10.0)
_POST = ModelConfig(vocab_size=5, d_model=8, num_heads=2, num_layers=2, max_len=4, d_ff=12,
                    norm="post")


def _step_case(note, config=_SMALL, optimizer=Adam, **kw):
    model, opt = _case_model(config, optimizer, **kw)
    return Case((model, opt, *_batch(config.vocab_size, config.max_len)), note)


register(Exercise(
    id="08.6",
    reference=one_step,
    taught="notebook 08 §9",
    compare=_compare_step,
    after_call=_after_step,
    cases=(
        _step_case("a fresh model and a fresh Adam"),
        _step_case("the model arrives with gradients of an earlier backward pass", stale=True),
        _step_case("Adam after three steps (its moments are warm)", warm_steps=3),
        _step_case("SGD: use the optimizer you are given", optimizer=SGD, lr=0.1),
        _step_case("two post-LN blocks with feed-forward layers", config=_POST, stale=True),
    ),
    mistakes=(
        Mistake("gradients not zeroed first", "backward adds to model.grads: call "
                "model.zero_grad() before the backward pass (zeroing only after the step leaves "
                "whatever the model arrived with).", "notebook 08 §9",
                _step(zero=False),
                hint="What does model.grads hold when the step begins?"),
        Mistake("the optimizer stepped on zero gradients", "optimizer.step(model.grads) ran "
                "while the gradients were zero: zero_grad between backward and step, or the "
                "step before backward. The order is zero_grad, forward, loss, backward, step.",
                "notebook 08 §9", _step(zero_late=True),
                hint="Print the size of model.grads just before optimizer.step: what does it "
                     "hold?"),
        Mistake("no optimizer step", "the gradients are computed but never used: "
                "optimizer.step(model.grads) updates the parameters.", "notebook 08 §9",
                _step(update=False)),
        Mistake("loss after the update", "return the loss of the forward pass the gradients "
                "came from, computed before the step.", "notebook 08 §9",
                _step(loss_after=True)),
        Mistake("stepped uphill", "model.backward takes dL/dlogits as it comes from "
                "softmax_cross_entropy, not its negative.", "notebook 08 §9", _step(sign=-1.0)),
        Mistake("parameters handed to the optimizer", "optimizer.step takes the gradients, "
                "model.grads, not model.parameters().", "notebook 08 §9",
                _step(params_as_grads=True)),
    ),
    difficulty=2,
    minutes=15,
    hints=(
        "Five calls in §9's order: zero the gradients, forward, loss and dlogits, backward, "
        "optimizer step.",
        "softmax_cross_entropy returns (loss, dlogits); model.backward(dlogits) fills "
        "model.grads, which optimizer.step takes. Return the loss from before the step.",
    ),
))
