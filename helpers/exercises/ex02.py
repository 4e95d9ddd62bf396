"""Exercises of notebook 02 (single-head attention): scaled scores, a self-attention head, and
spotting a uniform head."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._compare import arrays, boolean, tuple_of
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises.ex01 import _naive, _softmax

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
        compare=arrays(rtol=1e-9, atol=1e-12),
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


register(
    Exercise(
        id="02.2",
        reference=self_attention,
        taught="notebook 02 §3–5 and §10",
        compare=tuple_of(arrays(), arrays(), names=("output", "weights")),
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
        ),
        mistakes=(
            Mistake(
                "softmax over the query axis",
                "axis=-2 makes each key's column sum to 1; each query's row must (axis=-1).",
                "notebook 02 §13",
                lambda X, Wq, Wk, Wv: _head(X, Wq, Wk, Wv, math.sqrt(Wq.shape[1]), axis=-2),
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


# --------------------------------------------------------------------------- 02.3
def _row_entropy(p, axis=-1):
    p = np.asarray(p, dtype=float)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=axis)


def is_uniform_head(weights, threshold=0.95):
    H = _row_entropy(weights)  # (L_q,)
    return bool(np.all(H >= threshold * math.log(weights.shape[-1])))


def _rows_with_entropy(target, L_k, L_q, seed):
    """L_q rows over L_k keys, each with normalised entropy ``target`` (0 … 1)."""
    g = np.random.default_rng(seed).standard_normal((L_q, L_k))
    lo, hi = np.zeros((L_q, 1)), np.full((L_q, 1), 50.0)
    for _ in range(60):  # bisect each row's inverse temperature
        mid = (lo + hi) / 2
        h = _row_entropy(_softmax(g * mid))[:, None] / math.log(L_k)
        lo, hi = np.where(h > target, mid, lo), np.where(h > target, hi, mid)
    return _softmax(g * lo)


_uniform6 = np.full((5, 6), 1 / 6)
_one_sharp = np.vstack([_uniform6, _rows_with_entropy(0.8, 6, 1, 4)])
_one_uniform = np.vstack([np.full((1, 6), 1 / 6), _softmax(n((3, 6)) * 4)])
_at_70 = _rows_with_entropy(0.70, 8, 3, 1)
_at_97 = _rows_with_entropy(0.975, 6, 4, 2)
_wide = _rows_with_entropy(0.6, 10, 2, 3)
register(
    Exercise(
        id="02.3",
        reference=is_uniform_head,
        taught="notebook 02 §12",
        compare=boolean(),
        cases=(
            Case((np.full((3, 4), 0.25),), "every row exactly uniform: True"),
            Case((_softmax(n((4, 6)) * 3),), "sharp rows: False"),
            Case((_softmax(0.01 * n((5, 6))),), "nearly uniform rows (scores × 0.01): True"),
            Case((_one_uniform,), "one uniform row among sharp ones: False"),
            Case(
                (_one_sharp,),
                "five uniform rows and one at 80 % of ln L_k: the mean passes 0.95, "
                "one row does not: False",
            ),
            Case((_at_70, 0.5), "rows at about 70 % of ln L_k with threshold=0.5: True"),
            Case((_at_97, 0.99), "rows at about 97.5 % of ln L_k with threshold=0.99: False"),
            Case((_at_97,), "the same rows with the default threshold 0.95: True"),
            Case((_wide,), "2 queries, 10 keys, rows at about 60 % of ln 10: False"),
        ),
        mistakes=(
            Mistake(
                "ln L_q instead of ln L_k",
                "the largest entropy of a row over L_k keys is ln L_k "
                "(weights.shape[-1]), whatever the number of queries.",
                "notebook 02 §12",
                lambda w, t=0.95: bool(np.all(_row_entropy(w) >= t * math.log(w.shape[0]))),
            ),
            Mistake(
                "any row instead of every row",
                "the head is uniform only when every row is; use np.all.",
                "notebook 02 §12",
                lambda w, t=0.95: bool(np.any(_row_entropy(w) >= t * math.log(w.shape[-1]))),
            ),
            Mistake(
                "mean of the row entropies",
                "a high mean hides a sharp row; every row must reach the threshold.",
                "notebook 02 §12",
                lambda w, t=0.95: bool(_row_entropy(w).mean() >= t * math.log(w.shape[-1])),
            ),
            Mistake(
                "hard-coded threshold",
                "use the threshold argument, not 0.95 written into the code.",
                "notebook 02 §12",
                lambda w, t=0.95: bool(np.all(_row_entropy(w) >= 0.95 * math.log(w.shape[-1]))),
            ),
            Mistake(
                "peak equal to 1/L_k",
                "comparing the largest weight with 1/L_k exactly is too strict; "
                "measure the entropy against threshold · ln L_k.",
                "notebook 02 §12",
                lambda w, t=0.95: bool(np.allclose(w.max(axis=-1), 1 / w.shape[-1])),
            ),
            Mistake(
                "entropy of the columns",
                "a row (one query) is a distribution; sum over the last axis.",
                "notebook 02 §12",
                lambda w, t=0.95: bool(np.all(_row_entropy(w, 0) >= t * math.log(w.shape[-1]))),
            ),
            Mistake(
                "entropy in bits against ln L_k",
                "with log2 the maximum is log2 L_k; use natural logs for both.",
                "notebook 02 §12",
                lambda w, t=0.95: bool(
                    np.all(_row_entropy(w) / math.log(2) >= t * math.log(w.shape[-1]))
                ),
            ),
            Mistake(
                "returned one bool per row",
                "return a single True/False for the whole head: np.all over the rows.",
                "notebook 02 §12",
                lambda w, t=0.95: _row_entropy(w) >= t * math.log(w.shape[-1]),
            ),
        ),
    )
)
