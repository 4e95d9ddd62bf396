"""Exercise 05.4 of notebook 05: the layer's forward pass (imported by ``ex05``), and the plain
NumPy forward pass its reference and the references of 05.2 share."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import (
    _softmax,
    one_max_mistake,
    pair,
    softmax_one_max,
    softmax_one_max_guarded,
)
from helpers.mha import MultiHeadAttention

rng = np.random.default_rng(545)
n = rng.standard_normal


def _forward(layer, query, key=None, value=None, mask=None, *, value_default="key", bias=True,
             out=True, out_bias=True, scale=None, invert=False, split=None, torch_layout=False,
             mask_as="dtype", fill=-np.inf, softmax=_softmax):
    """The layer's forward pass in plain NumPy, with switches for the mistakes.

    ``mask_as``: "dtype" (right: boolean masks select, float masks are added), "bool" (every mask
    used as a boolean, so a float 0/-inf mask is inverted), "added" (every mask added, so a
    boolean mask adds 1 to the keys it allows) or "isfinite" (a float mask turned boolean with
    np.isfinite: its finite biases are lost). ``fill`` is what a boolean mask puts in place of a
    blocked score. ``torch_layout`` computes x @ W.T.
    """
    key = query if key is None else key
    value = (key if value_default == "key" else query) if value is None else value
    h = layer.num_heads

    def proj(x, W, b):
        W = W.T if torch_layout else W
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
        if mask_as == "isfinite" and m.dtype != np.bool_:
            m = np.isfinite(m)
        as_bool = mask_as in ("bool", "isfinite") or (mask_as == "dtype" and m.dtype == np.bool_)
        s = np.where(~m if invert else m, s, fill) if as_bool else s + m
    w = softmax(s)
    o = w @ V  # (..., h, L_q, d_k)
    y = np.swapaxes(o, -3, -2).reshape(*o.shape[:-3], o.shape[-2], -1)
    return (proj(y, layer.W_o, layer.b_o if out_bias else None) if out else y), w


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


def _softmax_nan_when_masked(z):
    """The usual stable softmax without a guard: a row of -inf gives -inf - (-inf) = NaN."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_A, _B = _layer(8, 2, True, 1), _layer(12, 3, False, 2)
_causal = np.tril(np.ones((4, 4), dtype=bool))
_keep = (np.arange(6) < np.array([6, 3])[:, None])[:, None, None, :]  # (2, 1, 1, 6)
_float_causal = np.where(_causal, 0.0, -np.inf)  # (4, 4): 0 keeps, -inf blocks
_row_blocked = np.ones((3, 6), dtype=bool)
_row_blocked[1] = False  # query 1 may attend to nothing
_shifted = np.zeros((4, 4))
_shifted[0] = -3000.0  # lowers every score of query 0: its weights do not change
_shifted[2, :2] = -np.inf  # query 2 may not see keys 0 and 1
_offset = np.subtract.outer(np.arange(4), np.arange(4))  # query i - key j
_alibi = np.where(_offset >= 0, -np.array([0.5, 0.125])[:, None, None] * _offset, -np.inf)[None]
register(
    Exercise(
        id="05.4",
        reference=mha_forward,
        taught="notebook 05 §3–4",
        compare=pair,
        difficulty=3,
        minutes=30,
        hints=(
            "Follow the shapes table of section 3: project, split into heads, scaled scores, "
            "mask, softmax over the keys, weights @ V, combine, output projection. Each "
            "projection adds its bias only when the layer has one.",
            "A mask can be boolean (True = may attend: keep the score or put −∞ there) or "
            "float (add it to the scores). Test mask.dtype: the two are used differently, and "
            "a float 0/−∞ mask used as a boolean is inverted.",
            "Subtract each row's own maximum before exp, but a row whose every key is masked "
            "has maximum −∞: replace a non-finite maximum by 0 and divide only where the row "
            "sum is positive, so that row's weights are 0, not NaN.",
        ),
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
            Case(
                (_A, n((2, 4, 8))),
                "a float causal mask (4, 4) of 0 and −∞: the same as the boolean one",
                {"mask": _float_causal},
            ),
            Case(
                (_A, n((2, 3, 8)), n((2, 6, 8))),
                "a fully masked query row (query 1 may see no key): zero weights, no NaN",
                {"mask": _row_blocked},
            ),
            Case(
                (_B, n((2, 4, 12))),
                "a float mask that lowers every score of query 0 by 3000 (its weights do not "
                "change) and blocks two keys of query 2 with −∞",
                {"mask": _shifted},
            ),
            Case(
                (_A, n((2, 3, 8)) * np.array([3000.0, 1.0, 1.0])[:, None], n((2, 6, 8))),
                "no mask; query token 0 is 3000 times larger than the others: its scores are "
                "thousands, theirs about 1, so each row needs its own maximum",
            ),
            Case(
                (_A, n((2, 4, 8))),
                "an ALiBi-style float mask (1, 2, 4, 4): causal −∞ plus a bias −slope·(i − j) "
                "that differs within each row (slopes 1/2 and 1/8 for the two heads)",
                {"mask": _alibi},
            ),
        ),
        mistakes=(
            Mistake(
                "value defaulted to the query",
                "value defaults to key (and key to query): "
                "layer(q, kv) attends to kv for both keys and values.",
                "notebook 05 §3",
                _variant(value_default="query"),
                hint="With layer(q, kv), which array should the values come from when value is "
                     "not given?",
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
                "left out b_o",
                "the output projection has a bias too: combine_heads(...) @ W_o + b_o.",
                "notebook 05 §3",
                _variant(out_bias=False),
                hint="Which of the four projections add their bias in your code?",
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
                hint="In this course, what does True mean in a boolean mask: may attend, or "
                     "blocked?",
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
                hint="What are layer.b_q … layer.b_o for a layer built with bias=False, and what"
                     " does x @ W + None do?",
            ),
            Mistake(
                "PyTorch's (out, in) layout",
                "the course stores each W as (in, out) and computes x @ W; x @ W.T is "
                "torch.nn.Linear's convention. The matrices are square, so nothing fails: the "
                "numbers are simply wrong.",
                "notebook 05 §1",
                _variant(torch_layout=True),
                hint="Which way round does this course store W_q: (in, out) or (out, in)? "
                "Section 1 says, and the shapes cannot tell you because W_q is square.",
            ),
            Mistake(
                "a float mask used as a boolean",
                "np.where(mask, scores, −∞) reads a float mask's 0 as False and its −∞ as True, "
                "so a 0/−∞ causal mask is inverted. Add a float mask to the scores; only a "
                "boolean mask selects.",
                "notebook 03 §1",
                _variant(mask_as="bool"),
                hint="Print mask.dtype for the failing case. Which entries of a 0/−∞ mask count "
                "as True in np.where?",
            ),
            Mistake(
                "a float mask turned boolean with np.isfinite",
                "np.isfinite(mask) keeps the keys a float mask allows but throws away its "
                "finite values; a float mask is added to the scores, so a bias such as ALiBi's "
                "−slope·(i − j) changes the weights.",
                "notebook 03 §1",
                _variant(mask_as="isfinite"),
                hint="The failing case's float mask holds numbers other than 0 and −∞. What "
                "must they do to the scores?",
            ),
            Mistake(
                "a boolean mask added to the scores",
                "scores + mask adds 1 where a boolean mask allows and 0 where it blocks: no key "
                "is blocked. Use np.where(mask, scores, −∞) for a boolean mask.",
                "notebook 03 §1",
                _variant(mask_as="added"),
                hint="What is scores + True? A boolean mask must select, not be added.",
            ),
            Mistake(
                "NaN on a fully masked row",
                "a row whose every key is masked has maximum −∞, and −∞ − (−∞) is NaN; that "
                "row's weights must be 0 (the layer's output row is then b_o).",
                "notebook 03 §8",
                _variant(softmax=_softmax_nan_when_masked),
                hint="What is the maximum of a row of −∞, and what does subtracting it give?",
            ),
            Mistake(
                "−1e9 instead of −∞",
                "a boolean mask that puts −1e9 in place of the blocked scores gives a fully "
                "masked row equal scores, so uniform weights over keys it may not see; −∞, a "
                "safe max and the guarded division give it zero weights.",
                "notebook 03 §8",
                _variant(fill=-1e9),
                hint="What are the scores of a fully masked row after your fill, and what does "
                "a softmax of equal scores give?",
            ),
            one_max_mistake(_variant(softmax=softmax_one_max)),
            one_max_mistake(_variant(softmax=softmax_one_max_guarded), guarded=True),
        ),
    )
)
