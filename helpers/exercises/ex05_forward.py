"""Exercise 05.4 of notebook 05: the layer's forward pass (imported by ``ex05``), and the plain
NumPy forward pass its reference and the references of 05.2 share."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import _softmax, pair
from helpers.mha import MultiHeadAttention

rng = np.random.default_rng(545)
n = rng.standard_normal


def _forward(
    layer,
    query,
    key=None,
    value=None,
    mask=None,
    *,
    value_default="key",
    bias=True,
    out=True,
    scale=None,
    invert=False,
    split=None,
):
    """The layer's forward pass in plain NumPy, with switches for the mistakes."""
    key = query if key is None else key
    value = (key if value_default == "key" else query) if value is None else value
    h = layer.num_heads

    def proj(x, W, b):
        return x @ W if b is None or not bias else x @ W + b

    def heads(y):  # (..., L, d_model) -> (..., h, L, d_k)
        if split == "no transpose":
            return y.reshape(*y.shape[:-2], h, y.shape[-2], -1)
        return np.swapaxes(y.reshape(*y.shape[:-1], h, y.shape[-1] // h), -3, -2)

    Q = heads(proj(query, layer.W_q, layer.b_q))
    K = heads(proj(key, layer.W_k, layer.b_k))
    V = heads(proj(value, layer.W_v, layer.b_v))
    s = Q @ np.swapaxes(K, -1, -2) / math.sqrt(scale or Q.shape[-1])
    if mask is not None:
        m = np.asarray(mask)
        s = np.where(~m if invert else m, s, -np.inf) if m.dtype == np.bool_ else s + m
    w = _softmax(s)
    o = w @ V  # (..., h, L_q, d_k)
    y = np.swapaxes(o, -3, -2).reshape(*o.shape[:-3], o.shape[-2], -1)
    return (proj(y, layer.W_o, layer.b_o) if out else y), w


# --------------------------------------------------------------------------- 05.4
def mha_forward(layer, query, key=None, value=None, mask=None):
    return _forward(layer, query, key, value, mask)


def _layer(d, h, bias, seed):
    layer = MultiHeadAttention(d, h, bias=bias, seed=seed)
    if bias:
        for name in ("b_q", "b_k", "b_v", "b_o"):
            setattr(layer, name, n(d))
    return layer


def _variant(**wrong):
    return lambda layer, query, key=None, value=None, mask=None: _forward(
        layer, query, key, value, mask, **wrong
    )


def _assumes_biases(layer, query, key=None, value=None, mask=None):
    _ = np.asarray(query) @ layer.W_q + layer.b_q  # TypeError when b_q is None
    return mha_forward(layer, query, key, value, mask)


_A, _B = _layer(8, 2, True, 1), _layer(12, 3, False, 2)
_causal = np.tril(np.ones((4, 4), dtype=bool))
_keep = (np.arange(6) < np.array([6, 3])[:, None])[:, None, None, :]  # (2, 1, 1, 6)
register(
    Exercise(
        id="05.4",
        reference=mha_forward,
        taught="notebook 05 §3–4",
        compare=pair,
        cases=(
            Case((_A, n((2, 5, 8))), "self-attention: layer(x), x (2, 5, 8), 2 heads, with biases"),
            Case(
                (_A, n((2, 3, 8)), n((2, 6, 8))),
                "cross-attention layer(q, kv): value defaults to key",
            ),
            Case(
                (_A, n((1, 4, 8)), n((1, 5, 8)), n((1, 5, 8))), "query, key and value all different"
            ),
            Case(
                (_B, n((2, 4, 12))),
                "a layer without biases (b_q … b_o are None), causal mask (4, 4)",
                {"mask": _causal},
            ),
            Case(
                (_A, n((2, 3, 8)), n((2, 6, 8))),
                "cross-attention with a padding mask (2, 1, 1, 6)",
                {"mask": _keep},
            ),
            Case((_A, n((5, 8))), "unbatched tokens (5, 8): output (5, 8), weights (2, 5, 5)"),
        ),
        mistakes=(
            Mistake(
                "value defaulted to the query",
                "value defaults to key (and key to query): "
                "layer(q, kv) attends to kv for both keys and values.",
                "notebook 05 §3",
                _variant(value_default="query"),
            ),
            Mistake(
                "left out the biases",
                "every projection adds its bias when the layer has one.",
                "notebook 05 §1",
                _variant(bias=False),
            ),
            Mistake(
                "no output projection",
                "the combined heads go through W_o (and b_o).",
                "notebook 05 §3",
                _variant(out=False),
            ),
            Mistake(
                "scaled by √d_model",
                "each head's scores are divided by √d_k = √(d_model / heads).",
                "notebook 04 §4",
                lambda layer, query, key=None, value=None, mask=None: _forward(
                    layer, query, key, value, mask, scale=layer.d_model
                ),
            ),
            Mistake(
                "True = blocked",
                "in this course a boolean True means may attend.",
                "notebook 03 §8",
                _variant(invert=True),
            ),
            Mistake(
                "split without the transpose",
                "reshape to (…, L, heads, d_k), then swap the L and heads axes.",
                "notebook 04 §3",
                _variant(split="no transpose"),
            ),
            Mistake(
                "assumed the layer has biases",
                "b_q … b_o are None for a layer built with "
                "bias=False: add a bias only when there is one.",
                "notebook 05 §3",
                _assumes_biases,
            ),
        ),
    )
)
