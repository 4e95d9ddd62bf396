"""Exercises of notebook 02 (single-head attention): scaled scores and a self-attention head;
spotting a uniform head is in ``ex02_uniform``."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._compare import arrays, tuple_of
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import softmax_one_max
from helpers.exercises.ex01 import _naive, _softmax
from helpers.exercises.ex01_softmax import NOT_THE_MAX, NOT_THE_MAX_EXPLAINED, shifted_by_mean

rng = np.random.default_rng(202)
n = rng.standard_normal


def _t(x):
    return np.swapaxes(x, -1, -2)


# --------------------------------------------------------------------------- 02.1
def scaled_scores(Q, K):
    return Q @ _t(K) / math.sqrt(Q.shape[-1])


register(
    Exercise(
        id="02.1",
        reference=scaled_scores,
        taught="notebook 02 §4–5",
        compare=arrays(rtol=1e-6, atol=1e-6, dtype="same"),
        difficulty=1,
        minutes=10,
        hints=(
            "Entry [i, j] is the dot product of query i (row i of Q) with key j (row j of K); one "
            "matrix product computes them all once K is transposed (sections 4 and 5).",
            "With batch axes in front, transpose only the last two axes of K: np.swapaxes(K, -1, "
            "-2). K.T would reverse every axis.",
            "d_k is the width of a query, Q.shape[-1]; divide by its square root as a Python "
            "float (math.sqrt), which keeps float32 scores float32 (notebook 01 §6).",
        ),
        cases=(
            Case((n((4, 8)), n((4, 8))), "Q and K (4, 8): 4 tokens, d_k = 8"),
            Case(
                (n((3, 16)), n((7, 16))), "L_q = 3 ≠ L_k = 7: queries and keys of different lengths"
            ),
            Case((n((2, 5, 8)), n((2, 6, 8))), "a batch axis: Q (2, 5, 8), K (2, 6, 8)"),
            Case(
                (n((2, 3, 4, 6)), n((2, 3, 5, 6))),
                "batch and heads axes: Q (2, 3, 4, 6), K (2, 3, 5, 6)",
            ),
            Case(
                (n((6, 6)), n((6, 6))),
                "L = d_k = 6, where Q @ K without the transpose runs silently",
            ),
            Case((n((2, 4, 5)), n((3, 5))), "one K (3, 5) shared by a batch of queries (2, 4, 5)"),
            Case(
                (n((3, 5)).astype(np.float32), n((4, 5)).astype(np.float32)),
                "float32 Q (3, 5) and K (4, 5): the scores must stay float32",
            ),
        ),
        mistakes=(
            Mistake(
                "no scale",
                "QKᵀ must be divided by √d_k.",
                "notebook 02 §11",
                lambda Q, K: Q @ _t(K),
            ),
            Mistake(
                "divided by d_k",
                "the scale is √d_k, not d_k: it brings the variance d_k back to 1.",
                "notebook 02 §11",
                lambda Q, K: Q @ _t(K) / Q.shape[-1],
            ),
            Mistake(
                "multiplied by √d_k",
                "divide by √d_k; multiplying makes the scores larger still.",
                "notebook 02 §11",
                lambda Q, K: Q @ _t(K) * math.sqrt(Q.shape[-1]),
            ),
            Mistake(
                "scaled by √L_k",
                "d_k is the feature size, Q.shape[-1]; the number of keys plays no "
                "part in the scale.",
                "notebook 02 §11",
                lambda Q, K: Q @ _t(K) / math.sqrt(K.shape[-2]),
            ),
            Mistake(
                "computed K Qᵀ",
                "keys down and queries across: the result is transposed. Row i must be query i.",
                "notebook 02 §4",
                lambda Q, K: K @ _t(Q) / math.sqrt(Q.shape[-1]),
            ),
            Mistake(
                "K.T on a batch",
                "K.T reverses every axis of a batched K; transpose only the last "
                "two: np.swapaxes(K, -1, -2).",
                "notebook 02 §9",
                lambda Q, K: Q @ K.T / math.sqrt(Q.shape[-1]),
            ),
            Mistake(
                "Q @ K without the transpose",
                "it runs only when L_k = d_k, and then multiplies the wrong axes; use Kᵀ.",
                "notebook 02 §13",
                lambda Q, K: Q @ K / math.sqrt(Q.shape[-1]),
            ),
            Mistake(
                "float32 became float64",
                "np.sqrt(d_k) is a NumPy float64 scalar, and dividing a float32 array by it gives "
                "float64; divide by math.sqrt(d_k), a Python float.",
                "notebook 01 §6",
                lambda Q, K: Q @ _t(K) / np.sqrt(Q.shape[-1]),
                hint="Print the dtype of your result for float32 inputs, then of np.sqrt(5) and "
                "of math.sqrt(5).",
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 02.2
def self_attention(X, W_q, W_k, W_v):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    weights = _softmax(Q @ _t(K) / math.sqrt(W_q.shape[-1]))
    return weights @ V, weights


def _head(X, W_q, W_k, W_v, scale, axis=-1, softmax=_softmax):
    weights = softmax((X @ W_q) @ _t(X @ W_k) / scale, axis)
    return weights @ (X @ W_v), weights


# W = I, d_k = 3: row 0's scores are [1443, 0, 0], rows 1 and 2 about 1: one max for the whole
# array underflows rows 1 and 2; row 0's max lies 962 above its mean, so exp overflows after a
# shift by the mean
_far_X = np.array([[50.0, 0.0, 0.0], [0.0, 1.0, 0.5], [0.0, 0.5, 1.0]])
register(
    Exercise(
        id="02.2",
        reference=self_attention,
        taught="notebook 02 §3–5 and §10",
        # float64 in, float64 out: a float32 answer is told so, never passed by tolerance luck
        compare=tuple_of(arrays(dtype="same"), arrays(dtype="same"), names=("output", "weights")),
        difficulty=2,
        minutes=20,
        hints=(
            "Three projections (section 3), then section 5's steps: scores, a softmax along each "
            "query's row, a weighted sum of the values.",
            "The scale is √d_k with d_k = W_q.shape[1], the width of a query, not of a token; "
            "transpose only K's last two axes so that a batch works.",
            "Your stable softmax from notebook 01, along axis=-1 with each row's own max, then "
            "weights @ V; return (output, weights) in that order.",
        ),
        cases=(
            Case((n((5, 8)), n((8, 4)), n((8, 4)), n((8, 3))), "X (5, 8), d_k = 4, d_v = 3"),
            Case(
                (n((2, 6, 8)), n((8, 2)), n((8, 2)), n((8, 5))),
                "a batch X (2, 6, 8), d_k = 2, d_v = 5",
            ),
            Case((n((4, 6)), n((6, 6)), n((6, 6)), n((6, 2))), "d_k = d_model = 6, d_v = 2"),
            Case(
                (n((3, 16)) * 10, n((16, 4)), n((16, 4)), n((16, 4))),
                "large tokens: scores in the hundreds, exp overflows without the max shift",
            ),
            Case(
                (n((2, 2, 4, 6)), n((6, 3)), n((6, 3)), n((6, 2))),
                "two leading axes X (2, 2, 4, 6)",
            ),
            Case(
                (_far_X, np.eye(3), np.eye(3), n((3, 2))),
                "rows whose scores lie about 1400 apart: each row needs its own max (one max "
                "for the whole array underflows the small rows; a shift by the row's mean "
                "overflows the large one)",
            ),
        ),
        mistakes=(
            Mistake(
                "softmax over the query axis",
                "axis=-2 makes each key's column sum to 1; each query's row must (axis=-1).",
                "notebook 02 §13",
                lambda X, Wq, Wk, Wv: _head(X, Wq, Wk, Wv, math.sqrt(Wq.shape[1]), axis=-2),
            ),
            Mistake(
                "softmax with axis=0",
                "axis=0 is the first axis: the queries of one sequence, but the batch of a "
                "batched X. Each query's row must sum to 1: axis=-1.",
                "notebook 02 §13",
                lambda X, Wq, Wk, Wv: _head(X, Wq, Wk, Wv, math.sqrt(Wq.shape[1]), axis=0),
            ),
            Mistake(
                "computed K Qᵀ",
                "keys down and queries across: the scores are transposed, so row i holds every "
                "query's score for key i. Row i must be query i: Q Kᵀ.",
                "notebook 02 §4",
                lambda X, Wq, Wk, Wv: _head(X, Wk, Wq, Wv, math.sqrt(Wq.shape[1])),
            ),
            Mistake(
                "no scale",
                "the scores must be divided by √d_k.",
                "notebook 02 §11",
                lambda X, Wq, Wk, Wv: _head(X, Wq, Wk, Wv, 1.0),
            ),
            Mistake(
                "scaled by √d_model",
                "d_k is the width of a query (W_q.shape[1]), not of a token.",
                "notebook 02 §11",
                lambda X, Wq, Wk, Wv: _head(X, Wq, Wk, Wv, math.sqrt(Wq.shape[0])),
            ),
            Mistake(
                "W_q used for the keys",
                "queries and keys have their own matrices; one shared matrix "
                "makes the scores symmetric.",
                "notebook 02 §7",
                lambda X, Wq, Wk, Wv: _head(X, Wq, Wq, Wv, math.sqrt(Wq.shape[1])),
            ),
            Mistake(
                "no max shift",
                "exp of scores in the hundreds overflows (inf / inf = NaN); subtract "
                "each row's max first.",
                "notebook 01 §8",
                lambda X, Wq, Wk, Wv: _head(X, Wq, Wk, Wv, math.sqrt(Wq.shape[1]), softmax=_naive),
            ),
            Mistake(
                "one maximum for the whole array",
                "scores.max() without axis shifts every row by the largest score of the whole "
                "array: a row far below it underflows (0 / 0 = NaN). Take each row's max.",
                "notebook 01 §8–9",
                lambda X, Wq, Wk, Wv: _head(
                    X, Wq, Wk, Wv, math.sqrt(Wq.shape[1]), softmax=softmax_one_max
                ),
            ),
            Mistake(
                NOT_THE_MAX,
                NOT_THE_MAX_EXPLAINED,
                "notebook 01 §8",
                lambda X, Wq, Wk, Wv: _head(
                    X, Wq, Wk, Wv, math.sqrt(Wq.shape[1]), softmax=shifted_by_mean
                ),
            ),
            Mistake(
                "weighted the tokens, not the values",
                "the output averages V = X W_v, not X.",
                "notebook 02 §5",
                lambda X, Wq, Wk, Wv: (lambda w: (w @ X, w))(self_attention(X, Wq, Wk, Wv)[1]),
            ),
            Mistake(
                "returned (weights, output)",
                "return the output first, then the weights.",
                "notebook 02 §10",
                lambda X, Wq, Wk, Wv: self_attention(X, Wq, Wk, Wv)[::-1],
            ),
        ),
    )
)


from helpers.exercises import ex02_uniform  # noqa: E402, F401  (registers 02.3)
