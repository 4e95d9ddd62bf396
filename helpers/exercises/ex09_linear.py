"""Exercises of notebook 09 on linear attention: its causal form as a recurrence (09.3) and
Performer's positive random features (09.4). Imported by ``ex09``."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import in_answer_precision

rng = np.random.default_rng(919)
n = rng.standard_normal


# --------------------------------------------------------------------------- 09.3
def causal_linear_attention(phi_q, phi_k, V):
    L, r = phi_q.shape
    S = np.zeros((r, V.shape[1]), dtype=V.dtype)  # state: sum over j <= i of phi(k_j) v_j^T
    z = np.zeros(r, dtype=V.dtype)  # and sum over j <= i of phi(k_j)
    out = np.empty((L, V.shape[1]), dtype=V.dtype)
    for i in range(L):
        S += np.outer(phi_k[i], V[i])  # add token i first: query i sees key i
        z += phi_k[i]
        out[i] = phi_q[i] @ S / (phi_q[i] @ z)
    return out


def _recurrence(*, late=False, normalise=True, causal=True, full_normaliser=False,
                outer_swapped=False, eps=0.0):
    """causal_linear_attention with one detail changed."""

    def wrong(phi_q, phi_k, V):
        L, r = phi_q.shape
        S = np.zeros((V.shape[1], r) if outer_swapped else (r, V.shape[1]))
        z = np.zeros(r)
        if not causal:
            S, z = phi_k.T @ V, phi_k.sum(axis=0)
        z_all = phi_k.sum(axis=0)
        out = np.empty((L, V.shape[1]))
        for i in range(L):
            if late:
                num, den = phi_q[i] @ S, phi_q[i] @ z
            if causal:
                S += np.outer(V[i], phi_k[i]) if outer_swapped else np.outer(phi_k[i], V[i])
                z += phi_k[i]
            if not late:
                num, den = phi_q[i] @ S, phi_q[i] @ (z_all if full_normaliser else z)
            out[i] = num / (den + eps) if normalise else num
        return out

    return wrong


def _features(shape, scale=1.0):
    x = n(shape) * scale
    return np.where(x > 0, x + 1.0, np.exp(np.minimum(x, 0.0)))  # elu(x) + 1 > 0


_row_scales = 10.0 ** rng.uniform(-3, 3, size=(6, 1))  # rows of very different sizes
_TAUGHT_RNN = "notebook 09 §8"
register(Exercise(
    id="09.3",
    reference=causal_linear_attention,
    taught=_TAUGHT_RNN,
    compare=in_answer_precision(rtol=1e-9, atol=1e-12, rtol32=1e-5, atol32=1e-6),
    difficulty=2,
    minutes=20,
    hints=(
        "Carry two running sums through a loop over the tokens: S of shape (r, d_v) and z of "
        "shape (r,), both zero before the first token.",
        "At token i, first add token i's key to the state (S += outer(φ(k_i), v_i), z += φ(k_i)): "
        "query i may see key i. Then read the state with φ(q_i).",
        "Output row i is (φ(q_i) @ S) / (φ(q_i) @ z): a (d_v,) vector divided by one number.",
    ),
    cases=(
        Case((_features((5, 3)), _features((5, 3)), n((5, 2))), "L = 5, r = 3 features, d_v = 2"),
        Case((_features((1, 4)), _features((1, 4)), n((1, 3))), "one token: it sees only itself"),
        Case((_features((8, 6)), _features((8, 6)), n((8, 6))), "L = 8, r = d_v = 6"),
        Case((_features((6, 4)) * _row_scales, _features((6, 4)) * _row_scales[::-1], n((6, 3))),
             "feature rows from 1e-3 to 1e3 in size"),
        Case(tuple(a.astype(np.float32) for a in (_features((7, 5)), _features((7, 5)),
                                                   n((7, 4)))), "float32 features and values"),
    ),
    mistakes=(
        Mistake("state updated after the output",
                "query i sees key i: add token i to S and z before reading them (otherwise "
                "token 0 divides 0 by 0).", _TAUGHT_RNN, _recurrence(late=True),
                hint="Which keys may query 0 see? Update the state before you read it."),
        Mistake("not normalised", "divide φ(q_i)ᵀS_i by φ(q_i)ᵀz_i: the weights of a row sum "
                "to 1.", _TAUGHT_RNN, _recurrence(normalise=False)),
        Mistake("not causal", "query i may use the keys j ≤ i only: the sums run up to i, not "
                "over the whole sequence.", _TAUGHT_RNN, _recurrence(causal=False)),
        Mistake("normaliser over every key",
                "z must be the running sum too: with the sum over every key the future leaks "
                "into the denominator and the weights of a row no longer sum to 1.", _TAUGHT_RNN,
                _recurrence(full_normaliser=True)),
        Mistake("eps in the denominator",
                "the features are positive, so φ(q_i)ᵀz_i > 0 from the first token on: no eps is "
                "needed, and one changes every row whose normaliser is small (features of size "
                "1e-3 here). Katharopoulos et al.'s code adds 1e-6 for safety; the exercise asks "
                "for the exact recurrence.", _TAUGHT_RNN, _recurrence(eps=1e-6)),
        Mistake("S built as v φ(k)ᵀ",
                "S = Σ φ(k_j) v_jᵀ has shape (r, d_v), so that φ(q_i)ᵀS is a (d_v,) output "
                "row.", _TAUGHT_RNN, _recurrence(outer_swapped=True)),
    ),
))


# --------------------------------------------------------------------------- 09.4
def random_features(x, W):
    d, r = x.shape[-1], W.shape[0]
    x = x * d**-0.25  # so that the features estimate exp(q·k / sqrt(d)); float32 stays float32
    half_sq_norm = 0.5 * np.sum(x * x, axis=-1, keepdims=True)  # (..., L, 1)
    return np.exp(x @ W.T.astype(x.dtype) - half_sq_norm) / math.sqrt(r)  # (..., L, r)


def _rf(*, scale=-0.25, root_r=True, norm_term=True, squared=True, half=True, transpose=True,
        norm_unscaled=False):
    """random_features with one detail changed."""

    def wrong(x, W):
        d, r = x.shape[-1], W.shape[0]
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        x = x * d**scale
        if not norm_unscaled:
            norm = np.linalg.norm(x, axis=-1, keepdims=True)
        term = (0.5 if half else 1.0) * (norm**2 if squared else norm)
        projected = x @ (W.T if transpose else W)
        features = np.exp(projected - term) if norm_term else np.exp(projected)
        return features / np.sqrt(r) if root_r else features

    return wrong


_TAUGHT_RF = "notebook 09 §10"
register(Exercise(
    id="09.4",
    reference=random_features,
    taught=_TAUGHT_RF,
    compare=in_answer_precision(rtol=1e-9, atol=1e-12, rtol32=1e-5, atol32=1e-6),
    difficulty=2,
    minutes=15,
    hints=(
        "Three steps: scale x by d^(-1/4); project it on the r random directions (the rows of "
        "W); then exponentiate, subtract and divide.",
        "x @ W.T has shape (..., L, r): entry f is w_f · x̃. The norm term ‖x̃‖²/2 is one number "
        "per row: sum over the last axis with keepdims=True so that it broadcasts.",
        "φ(x̃) = exp(x̃ Wᵀ − ‖x̃‖²/2) / √r, where r = W.shape[0] and x̃ = x · d^(-1/4).",
    ),
    cases=(
        Case((n((5, 4)), n((8, 4))), "five vectors of d = 4, r = 8 directions"),
        Case((n((2, 3, 4)), n((6, 4))), "a batch axis: x (2, 3, 4), r = 6"),
        Case((n((1, 16)), n((64, 16))), "one vector of d = 16, r = 64"),
        Case((n((3, 2)), n((2, 2))), "r = d = 2: W is square"),
        Case((n((4, 8)) * 3.0, n((16, 8))), "long vectors (entries of standard deviation 3)"),
        Case((n((3, 4)).astype(np.float32), n((5, 4))), "float32 x"),
    ),
    mistakes=(
        Mistake("d^(-1/4) scaling left out",
                "scale x by d^(-1/4) first: then φ(q)·φ(k) estimates exp(q·k/√d), the softmax "
                "kernel, not exp(q·k).", _TAUGHT_RF, _rf(scale=0.0)),
        Mistake("x scaled by 1/√d",
                "each of q and k takes d^(-1/4), so that their product takes 1/√d.", _TAUGHT_RF,
                _rf(scale=-0.5)),
        Mistake("1/√r left out", "divide by √r: the inner product of two feature vectors "
                "is then a mean over the r directions.", _TAUGHT_RF, _rf(root_r=False)),
        Mistake("‖x‖²/2 left out", "E[exp(w·x)] = exp(‖x‖²/2): subtract ‖x̃‖²/2 in the "
                "exponent to make the estimate unbiased.", _TAUGHT_RF, _rf(norm_term=False)),
        Mistake("‖x‖ not squared", "the term is half the squared norm, ‖x̃‖²/2.", _TAUGHT_RF,
                _rf(squared=False)),
        Mistake("‖x‖² without the 1/2", "E[exp(w·x)] = exp(‖x‖²/2): the term is half the "
                "squared norm.", _TAUGHT_RF, _rf(half=False)),
        Mistake("‖x‖²/2 of the unscaled x", "the norm term belongs to the scaled x̃ = x·d^(-1/4): "
                "‖x̃‖²/2 = ‖x‖²/(2√d). (Scaling W by d^(-1/4) instead of x gives the same "
                "projection but leaves the norm term unscaled: the same mistake.)", _TAUGHT_RF,
                _rf(norm_unscaled=True)),
        Mistake("W not transposed", "W holds one direction per row, (r, d): project with "
                "x @ W.T.", _TAUGHT_RF, _rf(transpose=False)),
    ),
))
