"""Exercises of notebook 08 (training): the cross-entropy gradient, the LayerNorm backward
pass, one Adam step, and the embedding's backward pass."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays, tuple_of
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import _naive, _softmax

rng = np.random.default_rng(808)
n = rng.standard_normal


# --------------------------------------------------------------------------- 08.1
def cross_entropy_grad(logits, targets):
    N = logits.shape[0]
    p = _softmax(logits, axis=-1)
    p[np.arange(N), targets] -= 1.0
    return p / N


def _onehot(targets, V):
    return np.eye(V)[targets]


register(Exercise(
    id="08.1",
    reference=cross_entropy_grad,
    taught="notebook 08 §3",
    compare=arrays(rtol=1e-7, atol=1e-12),
    cases=(
        Case((n((4, 5)), np.array([0, 4, 2, 2])), "4 positions, 5 classes, a repeated target"),
        Case((n((3, 7)) * 5 + 1000.0, np.array([6, 0, 3])), "logits near 1000: exp overflows"),
        Case((n((1, 3)), np.array([1])), "a single position"),
        Case((n((6, 2)), np.array([1, 1, 0, 1, 0, 0])), "two classes, N ≠ V"),
    ),
    mistakes=(
        Mistake("forgot to divide by N",
                "the loss is the mean over the N positions, so each row's gradient is divided "
                "by N.", "notebook 08 §3",
                lambda logits, targets: cross_entropy_grad(logits, targets) * logits.shape[0]),
        Mistake("onehot − softmax", "the sign is flipped: the gradient is softmax − onehot "
                "(raising the target's logit lowers the loss).", "notebook 08 §3",
                lambda logits, targets: -cross_entropy_grad(logits, targets)),
        Mistake("softmax alone", "the −1 at each target class (the one-hot part) is missing.",
                "notebook 08 §3",
                lambda logits, targets: _softmax(logits, axis=-1) / logits.shape[0]),
        Mistake("softmax over the positions", "the softmax runs over the classes of each "
                "position (axis=-1), not down the positions (axis=0).", "notebook 08 §3",
                lambda logits, targets: (_softmax(logits, axis=0)
                                         - _onehot(targets, logits.shape[1])) / logits.shape[0]),
        Mistake("unstable softmax", "exp of logits near 1000 overflows: subtract each row's "
                "maximum first (notebook 01).", "notebook 01 §8",
                lambda logits, targets: (_naive(logits, axis=-1)
                                         - _onehot(targets, logits.shape[1])) / logits.shape[0]),
    ),
))


# --------------------------------------------------------------------------- 08.2
def layer_norm_backward(x, dy, gamma, eps):
    mu = x.mean(axis=-1, keepdims=True)
    r = 1.0 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    xh = (x - mu) * r
    g = dy * gamma
    return r * (g - g.mean(axis=-1, keepdims=True) - xh * (g * xh).mean(axis=-1, keepdims=True))


def _ln_parts(x, dy, gamma, eps):
    mu = x.mean(axis=-1, keepdims=True)
    r = 1.0 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    return (x - mu) * r, r, dy * gamma


def _ln_without(mean_term: bool, var_term: bool):
    def wrong(x, dy, gamma, eps):
        xh, r, g = _ln_parts(x, dy, gamma, eps)
        out = g.copy()
        if mean_term:
            out = out - g.mean(axis=-1, keepdims=True)
        if var_term:
            out = out - xh * (g * xh).mean(axis=-1, keepdims=True)
        return r * out
    return wrong


small_var = 1.0 + 1e-3 * n((2, 6))  # variance ~1e-6: eps = 1e-5 dominates it
register(Exercise(
    id="08.2",
    reference=layer_norm_backward,
    taught="notebook 08 §4",
    compare=arrays(rtol=1e-7, atol=1e-10),
    cases=(
        Case((n((3, 5)) * 2 + 1, n((3, 5)), n(5), 1e-5), "3 tokens, d = 5, a random gain"),
        Case((n((2, 4, 6)), n((2, 4, 6)), np.ones(6), 1e-5), "a batch axis, gain 1"),
        Case((small_var, n((2, 6)), n(6), 1e-5), "tokens of tiny variance: eps matters"),
        Case((n((1, 8)) * 10, n((1, 8)), n(8), 0.5), "a large eps"),
    ),
    mistakes=(
        Mistake("no mean terms", "dx = r·γ·dy treats the mean and variance as constants; "
                "both depend on x and send gradient back.", "notebook 08 §4",
                _ln_without(False, False)),
        Mistake("forgot the mean term", "the term −mean(γ·dy) (the gradient through the "
                "subtracted mean) is missing.", "notebook 08 §4", _ln_without(False, True)),
        Mistake("forgot the variance term", "the term −x̂·mean(γ·dy·x̂) (the gradient through "
                "the variance) is missing.", "notebook 08 §4", _ln_without(True, False)),
        Mistake("forgot the gain", "the gradient reaching x̂ is dy·γ, not dy.",
                "notebook 08 §4",
                lambda x, dy, gamma, eps: layer_norm_backward(x, dy, np.ones_like(gamma), eps)),
        Mistake("eps left out", "r = 1/√(var + eps): the eps of the forward pass belongs in the "
                "backward pass too.", "notebook 08 §4",
                lambda x, dy, gamma, eps: layer_norm_backward(x, dy, gamma, 0.0)),
    ),
))


# --------------------------------------------------------------------------- 08.3
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
    id="08.3",
    reference=adam_step,
    taught="notebook 08 §5",
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
                "the factors 1 − β₁ᵗ and 1 − β₂ᵗ: divide by them.", "notebook 08 §5",
                _adam(bias_correction=False)),
        Mistake("t counted from 0", "the first step is t = 1 (t = 0 would divide by zero).",
                "notebook 08 §5", _adam(t_shift=-1)),
        Mistake("|g| instead of g²", "v averages the squared gradient.", "notebook 08 §5",
                _adam(square=False)),
        Mistake("eps inside the square root", "torch.optim.Adam adds eps after the square "
                "root: √v̂ + eps.", "notebook 08 §5", _adam(eps_inside=True)),
        Mistake("step uphill", "the update subtracts: θ − lr · m̂ / (√v̂ + eps).",
                "notebook 08 §5", _adam(sign=-1.0)),
    ),
))


# --------------------------------------------------------------------------- 08.4
def embedding_backward(tokens, d_out, vocab_size):
    grad = np.zeros((vocab_size, d_out.shape[-1]))
    np.add.at(grad, tokens.reshape(-1), d_out.reshape(-1, d_out.shape[-1]))
    return grad


def _fancy_index_add(tokens, d_out, vocab_size):
    grad = np.zeros((vocab_size, d_out.shape[-1]))
    grad[tokens.reshape(-1)] += d_out.reshape(-1, d_out.shape[-1])  # repeats keep one update
    return grad


register(Exercise(
    id="08.4",
    reference=embedding_backward,
    taught="notebook 08 §4",
    compare=arrays(rtol=1e-12, atol=1e-14),
    cases=(
        Case((np.array([[1, 3, 1], [0, 1, 4]]), n((2, 3, 4)), 6),
             "batch of 2, token 1 three times, token 5 never"),
        Case((np.array([[2, 2, 2, 2]]), n((1, 4, 3)), 3), "one token repeated four times"),
        Case((np.array([[0, 1, 2]]), n((1, 3, 2)), 3), "no repeats"),
    ),
    mistakes=(
        Mistake("grad[tokens] += d_out", "with repeated tokens, fancy-index assignment keeps "
                "one update per row: use np.add.at (or a loop) so that every repeat adds.",
                "notebook 08 §4", _fancy_index_add),
        Mistake("mean instead of sum", "every occurrence of a token adds its full gradient.",
                "notebook 08 §4",
                lambda tokens, d_out, vocab_size: embedding_backward(tokens, d_out, vocab_size)
                / np.maximum(np.bincount(tokens.reshape(-1), minlength=vocab_size), 1)[:, None]),
    ),
))
