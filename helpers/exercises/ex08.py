"""Exercises of notebook 08 (training the layer): 08.1 the cross-entropy gradient, 08.2 the
LayerNorm backward pass, 08.3 the embedding's backward pass; in ex08_backward 08.4 the attention
layer's backward pass; in ex08_training 08.5 one Adam step and 08.6 one training step."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays
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


def _global_max(logits, targets):
    e = np.exp(logits - logits.max())  # one maximum for the whole array
    return (e / e.sum(axis=-1, keepdims=True) - _onehot(targets, logits.shape[1])) / len(targets)


def _columns_minus_one(logits, targets):
    p = _softmax(logits, axis=-1)
    p[:, targets] -= 1.0  # whole columns, in every row (a repeated column once)
    return p / logits.shape[0]


register(Exercise(
    id="08.1",
    reference=cross_entropy_grad,
    taught="notebook 08 §3",
    compare=arrays(rtol=1e-9, atol=1e-12),  # float64: a float32 answer fails every case
    cases=(
        Case((n((4, 5)), np.array([0, 4, 2, 2])), "4 positions, 5 classes, a repeated target"),
        Case((n((3, 7)) * 5 + 1000.0, np.array([6, 0, 3])), "logits near 1000: exp overflows"),
        Case((n((1, 3)), np.array([1])), "a single position"),
        Case((n((6, 2)), np.array([1, 1, 0, 1, 0, 0])), "two classes, N ≠ V"),
        Case((np.array([[1000.0, 999.0, 998.0], [0.0, -1.0, -2.0], [3.0, -2.0, 1.0]]),
              np.array([0, 2, 1])),
             "rows 1000 apart: each row needs its own maximum"),
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
        Mistake("one maximum for the whole array", "logits.max() without axis subtracts the "
                "largest logit of all rows: a row far below it underflows to 0/0. Subtract each "
                "row's own maximum (axis=-1, keepdims=True).", "notebook 01 §8", _global_max,
                hint="Which maximum does each row need, and which axis gives it?"),
        Mistake("p[:, targets] -= 1", "p[:, targets] picks whole columns: every row loses 1 at "
                "every target class. One entry per row is p[np.arange(N), targets].",
                "notebook 08 §3", _columns_minus_one,
                hint="Print p[:, targets].shape for N = 4 positions: how many entries does it "
                     "touch, and how many should it?"),
    ),
    difficulty=1,
    minutes=10,
    hints=(
        "Differentiate −z_y + log Σ_k e^{z_k} with respect to one logit z_j.",
        "Per row: softmax(z) − onehot(y), divided by N (the loss is a mean); each row's softmax"
        " with its own maximum subtracted.",
        "The −1 goes to one entry per row: index with the pair (np.arange(N), targets).",
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
                _ln_without(False, False),
                hint="Move one x_i: which other quantities of the token move with it?"),
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
    difficulty=2,
    minutes=20,
    hints=(
        "The gradient reaching x̂ is g = dy·γ; x̂ depends on x directly and through μ and σ² "
        "(§4, steps 1–4).",
        "dx = r·(g − mean(g) − x̂·mean(g·x̂)), means over the last axis with keepdims=True; "
        "recompute μ, σ², r and x̂ from x with eps.",
    ),
))


# --------------------------------------------------------------------------- 08.3
def embedding_backward(tokens, d_out, vocab_size):
    grad = np.zeros((vocab_size, d_out.shape[-1]))
    np.add.at(grad, tokens.reshape(-1), d_out.reshape(-1, d_out.shape[-1]))
    return grad


def _fancy_index_add(tokens, d_out, vocab_size):
    grad = np.zeros((vocab_size, d_out.shape[-1]))
    grad[tokens.reshape(-1)] += d_out.reshape(-1, d_out.shape[-1])  # repeats keep one update
    return grad


register(Exercise(
    id="08.3",
    reference=embedding_backward,
    taught="notebook 08 §5",
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
                "notebook 08 §5", _fancy_index_add,
                hint="Try a = np.zeros(3); a[[1, 1]] += 1 and look at a[1]."),
        Mistake("mean instead of sum", "every occurrence of a token adds its full gradient.",
                "notebook 08 §5",
                lambda tokens, d_out, vocab_size: embedding_backward(tokens, d_out, vocab_size)
                / np.maximum(np.bincount(tokens.reshape(-1), minlength=vocab_size), 1)[:, None]),
    ),
    difficulty=1,
    minutes=10,
    hints=(
        "Row i of dE sums d_out over every position holding token i: a repeated token adds once"
        " per occurrence.",
        "Flatten tokens to (B·L,) and d_out to (B·L, d), then np.add.at(grad, tokens, rows), or"
        " a loop.",
    ),
))


from helpers.exercises import ex08_backward, ex08_training  # noqa: E402, F401  (08.4–08.6)
