"""Exercise 03.2 of notebook 03: causal attention with a mask the learner builds (imported by
``ex03``)."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import INF, _attend, _softmax, _t, pair
from helpers.exercises.ex01_softmax import NOT_THE_MAX, NOT_THE_MAX_EXPLAINED, shifted_by_mean
from helpers.exercises.ex03_common import plain_softmax

rng = np.random.default_rng(302)
n = rng.standard_normal


# --------------------------------------------------------------------------- 03.2
def causal_attention(Q, K, V):
    L = Q.shape[-2]
    return _attend(Q, K, V, keep=np.tril(np.ones((L, L), dtype=bool)))


def _triu(Q, k, value):
    L = Q.shape[-2]
    return np.triu(np.full((L, L), value), k=k)


def _times_mask(Q, K, V):
    s = Q @ _t(K) / math.sqrt(Q.shape[-1]) * np.tril(np.ones((Q.shape[-2],) * 2))
    w = _softmax(s)
    return w @ V, w


def _nan_mask(Q, K, V, *, library_softmax=False):
    """The classic np.triu(np.ones((L, L)), k=1) * -np.inf: 0 * (-inf) = NaN on and below the
    diagonal. A plain stable softmax turns every row into NaN; helpers.softmax refuses it."""
    L = Q.shape[-2]
    mask = np.triu(np.ones((L, L)), k=1) * -np.inf  # NaN where the ones were 0
    s = Q @ _t(K) / math.sqrt(Q.shape[-1]) + mask
    if library_softmax:
        from helpers import softmax

        w = softmax(s, axis=-1)
    else:
        w = plain_softmax(s)
    return w @ V, w


_far_rows = 2.0 * np.array(  # Q = 2 S and K = I with d_k = 4: the scaled scores are S
    [[5.0, 0.0, 0.0, 0.0], [1000.0, 999.0, 0.0, 0.0], [0.0, -1.0, 0.5, 0.2],
     [-800.0, -801.0, -799.0, -802.0]]
)
# Row 3 sees every key and its max lies 1000 above its mean: a shift by the mean overflows
_mean_far = 2.0 * np.array(
    [[0.5, 0.0, 0.0, 0.0], [1.0, -1.0, 0.0, 0.0], [0.2, 0.1, -0.4, 0.0],
     [1000.0, -1000.0, 0.5, -0.5]]
)


def _causal_scores(Q, K):
    L = Q.shape[-2]
    return Q @ _t(K) / math.sqrt(Q.shape[-1]) + np.triu(np.full((L, L), -INF), k=1)


def _own_softmax(shift):
    """Causal attention with the learner's own softmax (notebook 01 §8, plain division)."""

    def wrong(Q, K, V):
        s = _causal_scores(Q, K)
        e = np.exp(s - shift(s))
        w = e / e.sum(axis=-1, keepdims=True)
        return w @ V, w

    return wrong


_NAN_MASK_EXPLAINED = (
    "np.triu(np.ones((L, L)), k=1) * -np.inf multiplies the zeros on and below the diagonal "
    "by -inf, and 0·(-inf) is NaN (NumPy warns 'invalid value encountered in multiply'): every "
    "row gets a NaN score. Build the mask from -inf itself, np.triu(np.full((L, L), -np.inf), "
    "k=1), or with np.where(causal, 0.0, -np.inf)."
)
register(
    Exercise(
        id="03.2",
        reference=causal_attention,
        taught="notebook 03 §1",
        compare=pair,
        difficulty=2,
        minutes=15,
        hints=(
            "Start from notebook 02's attention, scores = Q Kᵀ / √d_k. The one new step is an "
            "(L, L) matrix added to the scores before the softmax: 0 where key j ≤ query i, "
            "-inf where j > i (section 1).",
            "`np.triu(A, k=1)` keeps the entries of `A` strictly above the diagonal and sets "
            "the rest to 0. Apply it to a matrix that is -inf everywhere, not to ones times "
            "-inf: 0·(-inf) is NaN (section 1, the pitfall).",
            "The (L, L) mask broadcasts over any batch or head axes in front. Finish with a "
            "softmax over the last axis that subtracts each row's own maximum "
            "(`helpers.softmax` does), then `weights @ V`.",
        ),
        cases=(
            Case((n((4, 3)), n((4, 3)), n((4, 3))), "Q, K, V (4, 3)"),
            Case(
                (n((2, 5, 4)), n((2, 5, 4)), n((2, 5, 2))), "a batch: Q, K (2, 5, 4), V (2, 5, 2)"
            ),
            Case(
                (n((2, 3, 6, 4)), n((2, 3, 6, 4)), n((2, 3, 6, 5))),
                "batch and heads, d_v = 5 ≠ d_k = 4",
            ),
            Case(
                (n((5, 8)) * 10, n((5, 8)) * 10, n((5, 8))),
                "large scores: exp overflows without the max shift",
            ),
            Case(
                (_far_rows, np.eye(4), n((4, 2))),
                "rows whose scores differ by about 1000 (row 1 near 1000, row 3 near -800): "
                "each row needs its own maximum",
            ),
            Case(
                (_mean_far, np.eye(4), n((4, 2))),
                "row 3's max lies 1000 above its mean: only a shift by each row's max keeps exp "
                "finite",
            ),
        ),
        mistakes=(
            Mistake(
                "0·(-inf) = NaN in the mask",
                _NAN_MASK_EXPLAINED,
                "notebook 03 §1",
                _nan_mask,
                hint="Print your mask for L = 3: which entries are NaN, and why?",
            ),
            Mistake(
                "0·(-inf) = NaN in the mask, refused by the softmax",
                _NAN_MASK_EXPLAINED + " helpers.softmax refuses NaN scores with this ValueError.",
                "notebook 03 §1",
                lambda Q, K, V: _nan_mask(Q, K, V, library_softmax=True),
                hint="Print your mask for L = 3: which entries are NaN, and why?",
            ),
            Mistake(
                "triu with k=0 (NaN row)",
                "np.triu(..., k=0) masks the diagonal too: token 0 has no "
                "key left (NaN with a plain softmax) and every token loses itself. Use k=1.",
                "notebook 03 §1",
                lambda Q, K, V: _attend(Q, K, V, bias=_triu(Q, 0, -INF), softmax=plain_softmax),
            ),
            Mistake(
                "triu with k=0",
                "np.triu(..., k=0) masks the diagonal too: token 0 is left with no key "
                "(the course's softmax gives it zero weights) and every token loses itself. "
                "Use k=1.",
                "notebook 03 §1",
                lambda Q, K, V: _attend(Q, K, V, bias=_triu(Q, 0, -INF)),
            ),
            Mistake(
                "future kept, past masked",
                "the -inf belong strictly above the diagonal (keys j > i); "
                "below it they hide the past.",
                "notebook 03 §1",
                lambda Q, K, V: _attend(
                    Q, K, V, bias=np.tril(np.full((Q.shape[-2],) * 2, -INF), k=-1)
                ),
            ),
            Mistake(
                "+1e9 instead of -inf",
                "a positive value rewards the future keys instead of hiding "
                "them; the sign must be negative.",
                "notebook 03 §8",
                lambda Q, K, V: _attend(Q, K, V, bias=_triu(Q, 1, 1e9)),
            ),
            Mistake(
                "no mask",
                "that is bidirectional attention: every query sees the future.",
                "notebook 03 §1",
                lambda Q, K, V: _attend(Q, K, V),
            ),
            Mistake(
                "masked after the softmax",
                "zeroing the future weights after the softmax leaves rows "
                "that no longer sum to 1; mask the scores before it.",
                "notebook 03 §1",
                lambda Q, K, V: (lambda w: (w @ V, w))(np.tril(_attend(Q, K, V)[1])),
            ),
            Mistake(
                "multiplied by a 0/1 mask",
                "a score set to 0 still gets weight e^0 = 1 relative to "
                "the others; masked scores must be -inf.",
                "notebook 03 §1",
                _times_mask,
            ),
            Mistake(
                "no scale",
                "the scores must be divided by √d_k before the mask and the softmax.",
                "notebook 02 §11",
                lambda Q, K, V: _attend(Q, K, V, bias=_triu(Q, 1, -INF), scale=False),
            ),
            Mistake(
                "boolean mask added as numbers",
                "scores + np.tril(np.ones((L, L), dtype=bool)) adds 1 to the past and 0 to the "
                "future: nothing is masked. The additive mask holds 0 and -inf; a boolean one "
                "goes through np.where(mask, scores, -np.inf).",
                "notebook 03 §1",
                lambda Q, K, V: _attend(
                    Q, K, V, bias=np.tril(np.ones((Q.shape[-2],) * 2, dtype=bool)),
                    softmax=plain_softmax,
                ),
            ),
            Mistake(
                "one maximum for the whole array",
                "s.max() without axis shifts every row by the largest score of the whole array: "
                "a row far below it underflows to 0 / 0 = NaN. Take each row's own max "
                "(axis=-1, keepdims=True).",
                "notebook 01 §8–9",
                _own_softmax(lambda s: s.max()),
            ),
            Mistake(
                NOT_THE_MAX,
                NOT_THE_MAX_EXPLAINED,
                "notebook 01 §8",
                lambda Q, K, V: (lambda w: (w @ V, w))(
                    shifted_by_mean(_causal_scores(Q, K), finite_only=True)
                ),
            ),
        ),
    )
)
