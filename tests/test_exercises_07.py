"""Notebooks 06 and 07's exercises: each known mistake, written as a learner would, is caught and
named; wrong attempts outside the catalogue are caught too."""

import math

import numpy as np
from exercise_catalogue import catalogue_tests


def pe(seq_len, d_model, *, first=np.sin, second=np.cos, two=2, start=0, times=False):
    pos = np.arange(start, start + seq_len)[:, None]
    div = 10000 ** (two * np.arange(d_model // 2) / d_model)
    angle = pos * div if times else pos / div
    out = np.empty((seq_len, d_model))
    out[:, ::2], out[:, 1::2] = first(angle), second(angle)
    return out


def pe_per_column(seq_len, d_model):
    angle = np.arange(seq_len)[:, None] / 10000 ** (np.arange(d_model) / d_model)
    out = np.cos(angle)
    out[:, ::2] = np.sin(angle[:, ::2])
    return out


def M(k, d_model, *, sign=1, use_k=True, same_freq=False, two=2):
    out = np.zeros((d_model, d_model))
    for i in range(d_model // 2):
        w = 1.0 if same_freq else 10000 ** (-two * i / d_model)
        a = (k if use_k else 1) * w
        out[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [
            [np.cos(a), sign * np.sin(a)],
            [-sign * np.sin(a), np.cos(a)],
        ]
    return out


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def backward(Q, K, V, dO, *, scaled=True, step=True, dK_T=True, dV_T=True):
    s = 1 / math.sqrt(Q.shape[1])
    P = softmax(Q @ K.T * s)
    dP = dO @ V.T
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
    "06.1": {
        "sin and cos swapped": lambda seq_len, d_model: pe(
            seq_len, d_model, first=np.cos, second=np.sin
        ),
        "sines and cosines in two halves": lambda seq_len, d_model: np.hstack(
            [pe(seq_len, d_model)[:, ::2], pe(seq_len, d_model)[:, 1::2]]
        ),
        "exponent i/d with the pair index": lambda seq_len, d_model: pe(seq_len, d_model, two=1),
        "positions start at 1": lambda seq_len, d_model: pe(seq_len, d_model, start=1),
        "multiplied by the frequency term": lambda seq_len, d_model: pe(
            seq_len, d_model, times=True
        ),
        "exponent from the column index": pe_per_column,
    },
    "06.2": {
        "signs of the sines swapped": lambda k, d_model: M(k, d_model, sign=-1),
        "angle ω_i instead of k·ω_i": lambda k, d_model: M(k, d_model, use_k=False),
        "one frequency for every block": lambda k, d_model: M(k, d_model, same_freq=True),
        "exponent i/d": lambda k, d_model: M(k, d_model, two=1),
    },
    "06.3": {
        "forgot the heads": lambda batch, heads, seq_len, itemsize: (
            batch * seq_len * seq_len * itemsize
        ),
        "L instead of L²": lambda batch, heads, seq_len, itemsize: (
            batch * heads * seq_len * itemsize
        ),
        "bits instead of bytes": lambda batch, heads, seq_len, itemsize: (
            batch * heads * seq_len**2 * itemsize * 8
        ),
        "forgot the batch": lambda batch, heads, seq_len, itemsize: heads * seq_len**2 * itemsize,
        "forgot itemsize": lambda batch, heads, seq_len, itemsize: batch * heads * seq_len**2,
    },
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
    },
    "07.3": {
        "1/√d_k missing from dQ and dK": lambda Q, K, V, dO: backward(Q, K, V, dO, scaled=False),
        "dP used as dS": lambda Q, K, V, dO: backward(Q, K, V, dO, step=False),
        "dK without the transpose": lambda Q, K, V, dO: backward(Q, K, V, dO, dK_T=False),
        "dV = P dO": lambda Q, K, V, dO: backward(Q, K, V, dO, dV_T=False),
    },
}

UNLISTED = {
    "06.1": [
        lambda seq_len, d_model: pe(seq_len, d_model)[::-1],
        lambda seq_len, d_model: pe(seq_len, d_model, first=np.sin, second=np.sin),
        lambda seq_len, d_model: pe(seq_len, d_model).T,
        lambda seq_len, d_model: pe(seq_len + 1, d_model)[:-1] * 0.5,
        lambda seq_len, d_model: np.sin(
            np.arange(seq_len)[:, None] / 10000 ** (np.arange(d_model) / d_model)
        ),
    ],
    "06.2": [
        lambda k, d_model: M(k, d_model).T @ M(k, d_model),  # identity
        lambda k, d_model: M(k, d_model)[::-1],
        lambda k, d_model: np.kron(np.eye(d_model // 2), [[1.0, 0.0], [0.0, 1.0]]) * np.cos(k),
        lambda k, d_model: M(k + 1, d_model),
        lambda k, d_model: M(k, d_model)[: d_model // 2],
    ],
    "06.3": [
        lambda batch, heads, seq_len, itemsize: (
            batch * heads * seq_len**2 * itemsize / 2**20
        ),  # MiB
        lambda batch, heads, seq_len, itemsize: batch * heads * seq_len**2 * 8,  # always float64
        lambda batch, heads, seq_len, itemsize: batch * heads * (seq_len + 1) ** 2 * itemsize,
        lambda batch, heads, seq_len, itemsize: 3 * batch * heads * seq_len**2 * itemsize,
        lambda batch, heads, seq_len, itemsize: np.zeros((batch, heads, seq_len, seq_len)).nbytes,
    ],
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
        lambda P, dP: (P - P**2) * dP,
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
