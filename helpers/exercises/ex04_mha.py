"""Exercise 04.5 of notebook 04: the whole multi-head attention function (imported by ``ex04``),
and the two wrong softmaxes with one maximum for the whole array that notebook 05's exercises
share."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import (
    _softmax,
    one_max_mistake,
    softmax_one_max,
    softmax_one_max_guarded,
)
from helpers.exercises.ex03_common import pair_in_input_dtype, plain_softmax
from helpers.exercises.ex04_heads import rng  # the cases continue 04.4's seeded draws

n = rng.standard_normal


# --------------------------------------------------------------------------- 04.5
def _split(x, h):
    return x.reshape(*x.shape[:2], h, x.shape[2] // h).transpose(0, 2, 1, 3)


def _combine(x):
    return x.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1)


def _mha(x, W_q, W_k, W_v, W_o, h, mask=None, *, split=_split, combine=_combine, scale=None,
         axis=-1, out=True, invert=False, mean=False, mask_as=None, fill=-np.inf,
         softmax=_softmax):
    """my_multi_head_attention with switches for the mistakes."""
    Q, K, V = (split(x @ W, h) for W in (W_q, W_k, W_v))  # (batch, h, L, d_k)
    s = Q @ np.swapaxes(K, -1, -2) / math.sqrt(x.shape[-1] if scale == "d_model" else Q.shape[-1])
    if mask is not None:
        m = np.asarray(mask)
        if mask_as == "added":  # every mask added to the scores, booleans as 1/0
            s = s + m
        elif mask_as == "boolean":  # every mask read as keep/drop: a float 0.0 drops a key
            s = np.where(m, s, -np.inf)
        elif mask_as == "isfinite":  # a float mask turned boolean: its finite biases are lost
            s = np.where(m if m.dtype == np.bool_ else np.isfinite(m), s, -np.inf)
        else:
            s = np.where(~m if invert else m, s, fill) if m.dtype == np.bool_ else s + m
    w = softmax(s, axis=axis)
    y = combine(w @ V)
    return (y @ W_o if out else y), (w.mean(axis=1) if mean else w)


def my_multi_head_attention(x, W_q, W_k, W_v, W_o, num_heads, mask=None):
    return _mha(x, W_q, W_k, W_v, W_o, num_heads, mask)


def _variant(**wrong):
    """my_multi_head_attention with one step done wrong."""
    return lambda x, W_q, W_k, W_v, W_o, h, mask=None: _mha(x, W_q, W_k, W_v, W_o, h, mask, **wrong)


def _params(d):
    return tuple(n((d, d)) / math.sqrt(d) for _ in range(4))


def _promoted(x, W_q, W_k, W_v, W_o, h, mask=None):
    """As written with np.sqrt(d_k), a NumPy float64: float32 inputs come back float64."""
    return _mha(x * (np.sqrt(4.0) / 2.0), W_q, W_k, W_v, W_o, h, mask)


def _pad(lengths, L):
    return (np.arange(L) < np.array(lengths)[:, None])[:, None, None, :]  # (batch, 1, 1, L)


def _grid(shape, step=8):  # float32 values on a grid of 1/step: the products stay exact
    return (rng.integers(-step, step + 1, size=shape) / step).astype(np.float32)


_causal = np.tril(np.ones((6, 6), dtype=bool))
_bias = np.where(np.tril(np.ones((5, 5), dtype=bool)), 0.0, -np.inf) + np.tril(n((5, 5)))
_empty_row = np.zeros((1, 1, 5, 5))
_empty_row[..., 2, :] = -np.inf  # query 2 may see no key
_far = np.array([[[10.0] * 4, [0.1] * 4, [0.1, -0.1, 0.1, -0.1]]])  # (1, 3, 4)
_far_W = (40.0 * np.eye(4), np.eye(4), n((4, 4)) / 2, n((4, 4)) / 2)  # scores ~5657, ~57, ~0.6
register(
    Exercise(
        id="04.5",
        reference=my_multi_head_attention,
        taught="notebook 04 §4 and §6",
        compare=pair_in_input_dtype,
        no_warnings=True,
        difficulty=3,
        minutes=30,
        hints=(
            "Follow section 4's vectorized version: project with W_q, W_k, W_v, split each into "
            "heads (exercise 04.1), attend in all heads at once (the heads axis is one more "
            "batch axis for `@`), combine (exercise 04.4), project with W_o.",
            "Divide by √d_k of one head, d_k = d_model / num_heads, not by √d_model. The mask "
            "meets the scores (batch, heads, seq, seq) exactly as in exercise 03.5: `np.where` "
            "for a boolean mask, `+` for a float one.",
            "The softmax of exercise 03.5 carries over: one maximum per row, a safe max and "
            "`np.divide(..., where=)` for fully masked rows, `math.sqrt` to keep float32 "
            "(notebook 01 §6 and §8).",
        ),
        cases=(  # batch, seq, heads and d_k differ in every case
            Case((n((2, 5, 8)), *_params(8), 2), "x (2, 5, 8), 2 heads, no mask"),
            Case((n((1, 6, 12)), *_params(12), 3, _causal), "3 heads with a causal mask (6, 6)"),
            Case(
                (n((3, 5, 8)), *_params(8), 4, _pad([5, 2, 3], 5)),
                "4 heads with a padding mask (3, 1, 1, 5), lengths 5, 2, 3",
            ),
            Case((n((2, 4, 6)), *_params(6), 1), "one head: d_k = d_model"),
            Case(
                (n((2, 5, 8)) * 8, *_params(8), 2, _bias),
                "large tokens and a float mask (causal -inf plus biases)",
            ),
            Case(
                (n((2, 6, 12)), *_params(12), 3, np.where(_causal, 0.0, -np.inf)),
                "a float 0/-inf causal mask (6, 6): 0 keeps a key, -inf removes it",
            ),
            Case(
                (n((3, 4, 6)), *_params(6), 2, _pad([4, 0, 2], 4)),
                "a boolean padding mask with an empty sequence (length 0): every row of "
                "sequence 1 fully masked, zero weights and output",
            ),
            Case(
                (n((2, 5, 6)), *_params(6), 3, _empty_row),
                "a float mask (1, 1, 5, 5) whose row 2 is all -inf",
            ),
            Case(
                (_far, *_far_W, 2),
                "no mask; query 0's scores near 5657, query 2's near 0: each row needs its own "
                "maximum",
            ),
            Case(
                (_grid((2, 3, 8)), *(_grid((8, 8)) for _ in range(4)), 4, _causal[:3, :3]),
                "float32 x and weights with a causal mask: float32 results",
            ),
        ),
        mistakes=(
            Mistake(
                "split without the transpose",
                "reshaping straight to (batch, heads, seq, d_k) mixes positions into heads.",
                "notebook 04 §3",
                _variant(split=lambda y, h: y.reshape(y.shape[0], h, y.shape[1], -1)),
                hint="Check your split alone against helpers.split_heads (exercise 04.1): same "
                "shape, same values?",
            ),
            Mistake(
                "combine without the transpose",
                "transpose (batch, heads, seq, d_k) to (batch, seq, "
                "heads, d_k) before the reshape.",
                "notebook 04 §2",
                _variant(combine=lambda y: y.reshape(y.shape[0], y.shape[2], -1)),
                hint="Check your combine alone against helpers.combine_heads (exercise 04.4): "
                     "same shape, same values?",
            ),
            Mistake(
                "scaled by √d_model",
                "each head's scores are divided by √d_k, d_k = d_model / heads.",
                "notebook 04 §4",
                _variant(scale="d_model"),
                hint="How wide is one head's query vector, and which width does the scale "
                "belong to?",
            ),
            Mistake(
                "forgot W_o",
                "the combined heads go through the output projection W_o.",
                "notebook 04 §1 and §4",
                _variant(out=False),
            ),
            Mistake(
                "split and combine without the transpose",
                "reshaping straight to (batch, heads, seq, d_k) and straight back hands each "
                "head whole positions, so the heads attend over the wrong rows: the shapes are "
                "right and the values are not. Transpose in both directions.",
                "notebook 04 §3",
                _variant(
                    split=lambda y, h: y.reshape(y.shape[0], h, y.shape[1], -1),
                    combine=lambda y: y.reshape(y.shape[0], y.shape[2], -1),
                ),
                hint="Compare your split with helpers.split_heads on a small array whose "
                "entries tell where they came from (section 2).",
            ),
            Mistake(
                "softmax over the query axis",
                "each query's row of weights sums to 1: axis=-1.",
                "notebook 02 §13",
                _variant(axis=-2),
                hint="Which axis of the scores (batch, heads, queries, keys) must each softmax "
                     "run along, so that every query's weights sum to 1?",
            ),
            Mistake(
                "boolean mask added as numbers",
                "scores + mask adds 1 where True and 0 where False: nothing is masked. Use "
                "np.where(mask, scores, -inf) for a boolean mask.",
                "notebook 03 §1",
                _variant(mask_as="added"),
            ),
            Mistake(
                "float mask used as a boolean",
                "a float mask is added to the scores: 0.0 changes nothing and -inf hides the "
                "key; np.where treats 0.0 as masked and -inf as kept.",
                "notebook 03 §1",
                _variant(mask_as="boolean"),
                hint="Print mask.dtype for the failing case. Which entries of a 0/-inf mask "
                "count as True in np.where?",
            ),
            Mistake(
                "float mask turned boolean with np.isfinite",
                "np.isfinite(mask) keeps the keys a float mask allows but throws away its "
                "finite values: a float mask is added to the scores, and a bias such as "
                "ALiBi's or a relative-position term changes the weights.",
                "notebook 03 §1",
                _variant(mask_as="isfinite"),
                hint="In the failing case the float mask holds numbers other than 0 and -inf. "
                "What should they do to the scores?",
            ),
            Mistake(
                "NaN on a fully masked row",
                "a row of -inf has max -inf and -inf - (-inf) = NaN; the row must get zero "
                "weights and a zero output (a safe max, then np.divide with where=).",
                "notebook 03 §8",
                _variant(softmax=plain_softmax),
                hint="What is the maximum of a row of -inf, and what does subtracting it give?",
            ),
            Mistake(
                "-1e9 instead of -inf",
                "filling the masked scores with -1e9 gives a fully masked row equal scores, "
                "so uniform weights over keys it may not see; -inf, a safe max and the guarded "
                "division give it zero weights.",
                "notebook 03 §8",
                _variant(fill=-1e9),
                hint="Take the failing case's fully masked row: what are its scores after your "
                "fill, and what does a softmax of equal scores give?",
            ),
            one_max_mistake(_variant(softmax=softmax_one_max)),
            one_max_mistake(
                _variant(softmax=softmax_one_max_guarded), guarded=True,
                hint="Over which axis did you take the maximum you subtract? In the failing "
                "case, one query's scores are near 5657 and another's near 0.",
            ),
            Mistake(
                "float32 became float64",
                "float32 inputs must give float32 results. A NumPy float64 scalar such as "
                "np.sqrt(d_k), or any float64 array in the computation, promotes the whole "
                "result; divide by math.sqrt(d_k), a Python float.",
                "notebook 01 §6",
                _promoted,
                hint="Print the dtype after each step of the float32 case: where does float64 "
                "appear first?",
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
                "weights averaged over the heads",
                "return every head's weights, (batch, heads, L, L).",
                "notebook 04 §5",
                _variant(mean=True),
            ),
        ),
    )
)
