"""Notebook 08's exercises 08.1-08.3 and 08.5 (the gradients of cross-entropy, LayerNorm and
the embedding; one Adam step): the references agree with helpers.training and PyTorch; every known
mistake, written as a learner would, is caught and named; unlisted wrong attempts are caught.
08.4 (the layer's backward pass) and 08.6 (one training step) are tested in
test_training_exercises_layer.py and test_training_exercises_step.py."""


import numpy as np
import pytest
import torch
from exercise_catalogue import catalogue_tests

from helpers.exercises import check, reference
from helpers.exercises._core import get
from helpers.training import Adam, Embedding, layer_norm_backward, softmax_cross_entropy


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ------------------------------------------------------------------------------ 08.1
def ce_grad(logits, targets, *, mean=True, onehot=True, axis=-1, sign=1.0, stable=True):
    p = softmax(logits, axis) if stable else np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    if onehot:
        p = p - np.eye(logits.shape[1])[targets]
    return sign * p / (logits.shape[0] if mean else 1)


def ce_global_max(logits, targets):
    z = logits - logits.max()  # the learner forgot axis=-1
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    for i, t in enumerate(targets):
        p[i, t] -= 1
    return p / len(targets)


def ce_columns(logits, targets):
    p = softmax(logits)
    p[:, targets] -= 1
    return p / len(logits)


# ------------------------------------------------------------------------------ 08.2
def ln_back(x, dy, gamma, eps, *, mean_term=True, var_term=True, use_gamma=True, use_eps=True):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    r = 1 / np.sqrt(var + (eps if use_eps else 0.0))
    xh = (x - mu) * r
    g = dy * gamma if use_gamma else dy
    out = g
    if mean_term:
        out = out - g.mean(-1, keepdims=True)
    if var_term:
        out = out - xh * (g * xh).mean(-1, keepdims=True)
    return r * out


# ------------------------------------------------------------------------------ 08.3
def emb_loop(tokens, d_out, vocab_size, *, mean=False):
    grad = np.zeros((vocab_size, d_out.shape[-1]))
    count = np.zeros(vocab_size)
    for tok, row in zip(tokens.reshape(-1), d_out.reshape(-1, d_out.shape[-1]), strict=True):
        grad[tok] += row
        count[tok] += 1
    return grad / np.maximum(count, 1)[:, None] if mean else grad


def emb_fancy(tokens, d_out, vocab_size):
    grad = np.zeros((vocab_size, d_out.shape[-1]))
    grad[tokens] += d_out
    return grad


# ------------------------------------------------------------------------------ 08.5
def adam(param, grad, m, v, t, lr, beta1, beta2, eps, *, correct=True, t0=0, square=True,
         eps_in=False, sign=1.0):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * (grad**2 if square else abs(grad))
    t = t + t0
    mh = m / (1 - beta1**t) if correct else m
    vh = v / (1 - beta2**t) if correct else v
    return param - sign * lr * mh / (np.sqrt(vh + eps) if eps_in else np.sqrt(vh) + eps), m, v


CATALOGUED = {
    "08.1": {
        "forgot to divide by N": lambda logits, targets: ce_grad(logits, targets, mean=False),
        "onehot − softmax": lambda logits, targets: ce_grad(logits, targets, sign=-1.0),
        "softmax alone": lambda logits, targets: ce_grad(logits, targets, onehot=False),
        "softmax over the positions": lambda logits, targets: ce_grad(logits, targets, axis=0),
        "unstable softmax": lambda logits, targets: ce_grad(logits, targets, stable=False),
        "one maximum for the whole array": ce_global_max,
        "p[:, targets] -= 1": ce_columns,
    },
    "08.2": {
        "no mean terms": lambda x, dy, gamma, eps: ln_back(x, dy, gamma, eps, mean_term=False,
                                                           var_term=False),
        "forgot the mean term": lambda x, dy, gamma, eps: ln_back(x, dy, gamma, eps,
                                                                  mean_term=False),
        "forgot the variance term": lambda x, dy, gamma, eps: ln_back(x, dy, gamma, eps,
                                                                      var_term=False),
        "forgot the gain": lambda x, dy, gamma, eps: ln_back(x, dy, gamma, eps, use_gamma=False),
        "eps left out": lambda x, dy, gamma, eps: ln_back(x, dy, gamma, eps, use_eps=False),
    },
    "08.3": {
        "grad[tokens] += d_out": emb_fancy,
        "mean instead of sum": lambda tokens, d_out, vocab_size: emb_loop(tokens, d_out,
                                                                          vocab_size, mean=True),
    },
    "08.5": {
        "no bias correction": lambda *a: adam(*a, correct=False),
        "t counted from 0": lambda *a: adam(*a, t0=-1),
        "|g| instead of g²": lambda *a: adam(*a, square=False),
        "eps inside the square root": lambda *a: adam(*a, eps_in=True),
        "step uphill": lambda *a: adam(*a, sign=-1.0),
    },
}


UNLISTED = {
    "08.1": [
        lambda logits, targets: ce_grad(logits, targets)[::-1],
        lambda logits, targets: ce_grad(logits, targets).T,
        lambda logits, targets: ce_grad(logits, targets) * 2,
        lambda logits, targets: ce_grad(logits, np.zeros_like(targets)),
        lambda logits, targets: softmax(logits) - 1.0 / logits.shape[1],
    ],
    "08.2": [
        lambda x, dy, gamma, eps: ln_back(x, dy, gamma, eps) * gamma,
        lambda x, dy, gamma, eps: dy * gamma,
        lambda x, dy, gamma, eps: ln_back(x, dy, gamma, eps) / x.shape[-1],
        lambda x, dy, gamma, eps: ln_back(x, dy, gamma, 2 * eps),
        lambda x, dy, gamma, eps: -ln_back(x, dy, gamma, eps),
    ],
    "08.3": [
        lambda tokens, d_out, vocab_size: emb_loop(tokens, d_out, vocab_size).T,
        lambda tokens, d_out, vocab_size: np.zeros((vocab_size, d_out.shape[-1])),
        lambda tokens, d_out, vocab_size: d_out.reshape(-1, d_out.shape[-1])[:vocab_size],
        lambda tokens, d_out, vocab_size: emb_loop(tokens, d_out, vocab_size + 1)[:-1] * 2,
        lambda tokens, d_out, vocab_size: emb_loop(tokens[:, ::-1], d_out, vocab_size),
    ],
    "08.5": [
        lambda param, grad, m, v, *rest: (param - 0.001 * grad, m, v),
        lambda *a: adam(*a)[::-1],
        lambda *a: adam(*a)[:2],
        lambda param, grad, m, v, t, lr, b1, b2, eps: adam(param, grad, m, v, t, lr, b2, b1, eps),
        lambda param, grad, m, v, t, lr, b1, b2, eps: (
            adam(param, grad, m, v, t, lr, b1, b2, eps)[0], m, v),  # moments not updated
    ],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


IDS = ["08.1", "08.2", "08.3", "08.4", "08.5", "08.6"]


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_passes(exercise_id):
    assert check(exercise_id, reference(exercise_id)).passed




def test_stub_is_not_attempted():
    def cross_entropy_grad(logits, targets):
        raise NotImplementedError
    result = check("08.1", cross_entropy_grad)
    assert not result.attempted and not result.passed


# ------------------------------------------------------ the references agree with the library
def test_references_agree_with_helpers_training_and_torch():
    for case in get("08.1").cases:
        logits, targets = case.args
        np.testing.assert_allclose(reference("08.1")(*case.args),
                                   softmax_cross_entropy(logits, targets)[1], rtol=1e-10)
    for case in get("08.2").cases:
        x, dy, gamma, eps = case.args
        np.testing.assert_allclose(reference("08.2")(*case.args),
                                   layer_norm_backward(x, dy, gamma, eps=eps)[0],
                                   rtol=1e-9, atol=1e-12)
    for case in get("08.3").cases:
        tokens, d_out, vocab_size = case.args
        emb = Embedding(vocab_size, d_out.shape[-1], rng=np.random.default_rng(0))
        emb(tokens)
        emb.backward(d_out)
        np.testing.assert_allclose(reference("08.3")(*case.args), emb.grads["weight"],
                                   rtol=1e-14)
    for case in get("08.5").cases:
        param, grad, m, v, t, lr, b1, b2, eps = case.args
        # torch.optim.Adam after t - 1 steps with these moments: load its state, take one step.
        p = torch.tensor(param, requires_grad=True)
        opt = torch.optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps)
        opt.state[p] = {"step": torch.tensor(float(t - 1)), "exp_avg": torch.tensor(m),
                        "exp_avg_sq": torch.tensor(v)}
        p.grad = torch.tensor(grad)
        opt.step()
        new_param, new_m, new_v = reference("08.5")(*case.args)
        np.testing.assert_allclose(new_param, p.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(new_m, opt.state[p]["exp_avg"].numpy(), rtol=1e-12)
        np.testing.assert_allclose(new_v, opt.state[p]["exp_avg_sq"].numpy(), rtol=1e-12)
        if t == 1:  # from zero moments our Adam takes the same step
            ours = {"w": param.copy()}
            Adam(ours, lr=lr, betas=(b1, b2), eps=eps).step({"w": grad})
            np.testing.assert_allclose(ours["w"], new_param, rtol=1e-12)




def test_08_1_a_float32_answer_fails_every_case_and_is_told_why():
    """rtol = 1e-9: float32 rounding (1e-8 relative) can never pass some cases by chance."""
    def cross_entropy_grad(logits, targets):
        return reference("08.1")(logits.astype(np.float32), targets)

    result = check("08.1", cross_entropy_grad)
    assert result.cases_passed == 0, result.report
    assert "right to float32 precision, but this exercise asks for float64" in result.report
