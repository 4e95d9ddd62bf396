"""Notebook 07's exercises: each known mistake, written as a learner would, is caught and named;
wrong attempts outside the catalogue are caught too."""

import math

import numpy as np
from exercise_catalogue import catalogue_tests


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_one_max(z):
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=-1, keepdims=True)


def backward(Q, K, V, dO, *, scaled=True, step=True, dK_T=True, dV_T=True, soft=softmax):
    s = 1 / math.sqrt(Q.shape[1])
    P = soft(Q @ K.T * s)
    dP = dO @ V.T
    if step == "diagonal":
        dS = P * (1 - P) * dP
    else:
        dS = P * (dP - (dP * P).sum(1, keepdims=True)) if step else dP
    c = s if scaled else 1
    return c * dS @ K, c * (dS.T if dK_T else dS) @ Q, (P.T if dV_T else P) @ dO


def unpack(w, b, *, T=True, order="qkv", cols=False):
    E = w.shape[1]
    blocks = {
        n: (w[:, i * E : (i + 1) * E] if cols else w[i * E : (i + 1) * E])
        for i, n in enumerate("qkv")
    }
    biases = {n: b[i * E : (i + 1) * E] for i, n in enumerate("qkv")}
    return (
        *((blocks[n].T if T and not cols else blocks[n]) for n in order),
        *(biases[n] for n in order),
    )


CATALOGUED = {
    "07.1": {
        "no transpose": lambda in_proj_weight, in_proj_bias: unpack(
            in_proj_weight, in_proj_bias, T=False
        ),
        "order k, q, v": lambda in_proj_weight, in_proj_bias: unpack(
            in_proj_weight, in_proj_bias, order="kqv"
        ),
        "order q, v, k": lambda in_proj_weight, in_proj_bias: unpack(
            in_proj_weight, in_proj_bias, order="qvk"
        ),
        "sliced the columns": lambda in_proj_weight, in_proj_bias: unpack(
            in_proj_weight, in_proj_bias, cols=True
        ),
    },
    "07.2": {
        "rowsum term missing": lambda P, dP: P * dP,
        "rowsum(dP) instead of rowsum(dP ⊙ P)": lambda P, dP: (
            P * (dP - np.sum(dP, -1, keepdims=True))
        ),
        "sum over the wrong axis": lambda P, dP: P * (dP - np.sum(dP * P, -2, keepdims=True)),
        "not multiplied by P": lambda P, dP: dP - np.sum(dP * P, -1, keepdims=True),
        "sum without keepdims": lambda P, dP: P * (dP - np.sum(dP * P, -1)),
        "P(1 − P) ⊙ dP": lambda P, dP: (P - P**2) * dP,
    },
    "07.3": {
        "1/√d_k missing from dQ and dK": lambda Q, K, V, dO: backward(Q, K, V, dO, scaled=False),
        "dP used as dS": lambda Q, K, V, dO: backward(Q, K, V, dO, step=False),
        "dK without the transpose": lambda Q, K, V, dO: backward(Q, K, V, dO, dK_T=False),
        "dV = P dO": lambda Q, K, V, dO: backward(Q, K, V, dO, dV_T=False),
        "P(1 − P) ⊙ dP as the softmax step": lambda Q, K, V, dO: backward(
            Q, K, V, dO, step="diagonal"
        ),
        "one maximum for the whole array": lambda Q, K, V, dO: backward(
            Q, K, V, dO, soft=softmax_one_max
        ),
    },
}

UNLISTED = {
    "07.1": [
        lambda in_proj_weight, in_proj_bias: unpack(in_proj_weight, in_proj_bias)[:3],
        lambda in_proj_weight, in_proj_bias: unpack(
            in_proj_weight.T, in_proj_bias, T=False, cols=True
        )[::-1],
        lambda in_proj_weight, in_proj_bias: (
            *unpack(in_proj_weight, in_proj_bias)[:3],
            *[in_proj_bias] * 3,
        ),
        lambda in_proj_weight, in_proj_bias: (
            tuple(np.split(in_proj_weight, 3)) + tuple(np.split(in_proj_bias, 3))
        ),
        lambda in_proj_weight, in_proj_bias: unpack(in_proj_weight, -in_proj_bias),
    ],
    "07.2": [
        lambda P, dP: P * (dP - (dP * P).mean(-1, keepdims=True)),
        lambda P, dP: P * (dP - (dP * P).sum()),  # one sum over everything
        lambda P, dP: P * (dP - (dP * P).sum(-1, keepdims=True)) / P.shape[-1],
        lambda P, dP: np.einsum("...i,...i->...", P, dP),
        lambda P, dP: P * (dP - (dP * P).sum(-1, keepdims=True)) + P,
    ],
    "07.3": [
        lambda Q, K, V, dO: backward(Q, K, V, dO)[::-1],
        lambda Q, K, V, dO: (lambda dQ, dK, dV: (dQ, dK, dV * 2))(*backward(Q, K, V, dO)),
        lambda Q, K, V, dO: backward(Q, K, V, dO, scaled=False, step=False),
        lambda Q, K, V, dO: (
            (lambda dQ, dK, dV: (dK, dQ, dV))(*backward(Q, K, V, dO))
            if Q.shape == K.shape
            else backward(Q, K, V, dO)[:2]
        ),
        lambda Q, K, V, dO: backward(Q, K, V, -dO),
    ],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)
