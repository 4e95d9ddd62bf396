"""Exercise 02.3 of notebook 02: spotting a uniform head (imported by ``ex02``)."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._compare import boolean
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import _softmax

rng = np.random.default_rng(203)
n = rng.standard_normal


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
_one_zero = np.full((3, 20), 1 / 19)  # each row uniform over 19 of 20 keys: H / ln 20 = 0.983
for _row, _key in enumerate((0, 7, 19)):
    _one_zero[_row, _key] = 0.0
_zeros_sharp = np.array([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])  # H / ln 4 = 0.5, 1


def _nan_entropy(w, axis=-1):
    """The hand-written entropy: 0 * ln 0 = 0 * (-inf) = NaN at an exact zero weight."""
    return -(w * np.log(w)).sum(axis=axis)


register(
    Exercise(
        id="02.3",
        reference=is_uniform_head,
        taught="notebook 02 §12",
        compare=boolean(),
        difficulty=1,
        minutes=10,
        hints=(
            "A row p over L_k keys has entropy H = −Σ_j p_j ln p_j, largest (ln L_k) when the row "
            "is uniform; compare each row's H with threshold · ln L_k.",
            "A weight of exactly 0 adds nothing to H (p ln p → 0 as p → 0), but NumPy computes "
            "0 · ln 0 = 0 · (−∞) = NaN: use helpers.entropy, or take the log of 1 where p is 0.",
            "Compute every row's entropy at once along the last axis, compare them all with "
            "threshold · ln(weights.shape[-1]), and reduce with np.all into one bool.",
        ),
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
            Case(
                (_one_zero,),
                "each row uniform over 19 of 20 keys, one weight exactly 0 (0 · ln 0 counts as "
                "0): H = ln 19 = 98 % of ln 20, True",
            ),
            Case(
                (_zeros_sharp, 0.9),
                "exact zeros in a half-empty row (H = ln 2, 50 % of ln 4) with threshold=0.9: "
                "False",
            ),
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
                "NaN entropy at a zero weight",
                "-(w * np.log(w)).sum() is NaN where a weight is exactly 0 (0 · ln 0 = 0 · (−∞)), "
                "and every comparison with NaN is False; a zero weight contributes 0 to the "
                "entropy: use helpers.entropy or np.log(np.where(w > 0, w, 1.0)).",
                "notebook 01 §10 and notebook 02 §12",
                lambda w, t=0.95: bool(np.all(_nan_entropy(w) >= t * math.log(w.shape[-1]))),
                hint="Look at one row that contains an exact 0: what is 0 * np.log(0) in NumPy?",
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
