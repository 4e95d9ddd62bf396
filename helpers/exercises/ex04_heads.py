"""Exercises 04.4 and 04.5 of notebook 04: combine heads, and the whole multi-head attention
function (imported by ``ex04``)."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._compare import arrays
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import _softmax, pair

rng = np.random.default_rng(445)
n = rng.standard_normal
_exact = arrays(rtol=0.0, atol=0.0)


# --------------------------------------------------------------------------- 04.4
def my_combine_heads(x):
    batch, heads, seq, d_k = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch, seq, heads * d_k)


register(
    Exercise(
        id="04.4",
        reference=my_combine_heads,
        taught="notebook 04 §2",
        compare=_exact,
        cases=(
            Case((n((2, 2, 4, 4)),), "2 heads, 4 positions, d_k = 4"),
            Case((n((1, 3, 5, 4)),), "3 heads, 5 positions"),
            Case((n((3, 6, 6, 1)),), "6 heads of width 1"),
            Case((n((2, 4, 4, 3)),), "heads = seq = 4: a missing transpose keeps the right shape"),
        ),
        mistakes=(
            Mistake(
                "reshape without the transpose",
                "reading (batch, heads, seq, d_k) straight as "
                "(batch, seq, d_model) mixes positions; transpose(0, 2, 1, 3) first.",
                "notebook 04 §2",
                lambda x: x.reshape(x.shape[0], x.shape[2], -1),
            ),
            Mistake(
                "(d_k, heads) order",
                "the features of head i go to i·d_k … (i+1)·d_k - 1, so the "
                "heads axis comes before d_k.",
                "notebook 04 §2",
                lambda x: x.transpose(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1),
            ),
            Mistake(
                "heads stacked along the sequence",
                "the heads are joined along the features: (batch, seq, heads·d_k).",
                "notebook 04 §2",
                lambda x: np.concatenate(list(np.moveaxis(x, 1, 0)), axis=1),
            ),
            Mistake(
                "summed the heads",
                "the heads are concatenated, not added.",
                "notebook 04 §2",
                lambda x: x.sum(axis=1),
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 04.5
def _split(x, h):
    return x.reshape(*x.shape[:2], h, x.shape[2] // h).transpose(0, 2, 1, 3)


def _combine(x):
    return x.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1)


def _mha(
    x,
    W_q,
    W_k,
    W_v,
    W_o,
    h,
    mask=None,
    *,
    split=_split,
    combine=_combine,
    scale=None,
    axis=-1,
    out=True,
    invert=False,
    mean=False,
):
    Q, K, V = (split(x @ W, h) for W in (W_q, W_k, W_v))  # (batch, h, L, d_k)
    s = Q @ np.swapaxes(K, -1, -2) / math.sqrt(x.shape[-1] if scale == "d_model" else Q.shape[-1])
    if mask is not None:
        m = np.asarray(mask)
        s = np.where(~m if invert else m, s, -np.inf) if m.dtype == np.bool_ else s + m
    w = _softmax(s, axis=axis)
    y = combine(w @ V)
    return (y @ W_o if out else y), (w.mean(axis=1) if mean else w)


def my_multi_head_attention(x, W_q, W_k, W_v, W_o, num_heads, mask=None):
    return _mha(x, W_q, W_k, W_v, W_o, num_heads, mask)


def _variant(**wrong):
    """my_multi_head_attention with one step done wrong."""
    return lambda x, W_q, W_k, W_v, W_o, h, mask=None: _mha(x, W_q, W_k, W_v, W_o, h, mask, **wrong)


def _params(d):
    return tuple(n((d, d)) / math.sqrt(d) for _ in range(4))


_causal6 = np.tril(np.ones((6, 6), dtype=bool))
_pad = (np.arange(4) < np.array([4, 2, 3])[:, None])[:, None, None, :]  # (3, 1, 1, 4)
_bias = np.where(np.tril(np.ones((5, 5), dtype=bool)), 0.0, -np.inf) + np.tril(n((5, 5)))
register(
    Exercise(
        id="04.5",
        reference=my_multi_head_attention,
        taught="notebook 04 §4 and §6",
        compare=pair,
        cases=(
            Case((n((2, 5, 8)), *_params(8), 2), "x (2, 5, 8), 2 heads, no mask"),
            Case((n((1, 6, 12)), *_params(12), 3, _causal6), "3 heads with a causal mask (6, 6)"),
            Case((n((3, 4, 8)), *_params(8), 4, _pad), "4 heads with a padding mask (3, 1, 1, 4)"),
            Case((n((2, 4, 6)), *_params(6), 1), "one head: d_k = d_model"),
            Case(
                (n((2, 5, 8)) * 8, *_params(8), 2, _bias),
                "large tokens and a float mask (causal -inf plus biases)",
            ),
        ),
        mistakes=(
            Mistake(
                "split without the transpose",
                "reshaping straight to (batch, heads, seq, d_k) mixes positions into heads.",
                "notebook 04 §3",
                _variant(split=lambda y, h: y.reshape(y.shape[0], h, y.shape[1], -1)),
            ),
            Mistake(
                "combine without the transpose",
                "transpose (batch, heads, seq, d_k) to (batch, seq, "
                "heads, d_k) before the reshape.",
                "notebook 04 §2",
                _variant(combine=lambda y: y.reshape(y.shape[0], y.shape[2], -1)),
            ),
            Mistake(
                "scaled by √d_model",
                "each head's scores are divided by √d_k, d_k = d_model / heads.",
                "notebook 04 §4",
                _variant(scale="d_model"),
            ),
            Mistake(
                "forgot W_o",
                "the combined heads go through the output projection W_o.",
                "notebook 04 §1 and §4",
                _variant(out=False),
            ),
            Mistake(
                "softmax over the query axis",
                "each query's row of weights sums to 1: axis=-1.",
                "notebook 02 §12",
                _variant(axis=-2),
            ),
            Mistake(
                "True = blocked",
                "in this course a boolean True means may attend.",
                "notebook 03 §8",
                _variant(invert=True),
            ),
            Mistake(
                "weights averaged over the heads",
                "return every head's weights, (batch, heads, L, L).",
                "notebook 04 §5",
                _variant(mean=True),
            ),
        ),
    )
)
