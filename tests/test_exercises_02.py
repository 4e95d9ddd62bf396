"""Notebook 02's exercises: each known mistake, written as a learner would, is caught and named;
wrong attempts outside the catalogue are caught too."""

import math

import numpy as np
from exercise_catalogue import catalogue_tests

from helpers.exercises import check


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def kT(K):
    return np.swapaxes(K, -1, -2)


def head(X, W_q, W_k, W_v, *, scale=None, axis=-1, naive=False):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    s = Q @ kT(K) / (math.sqrt(Q.shape[-1]) if scale is None else scale)
    w = np.exp(s) / np.exp(s).sum(axis, keepdims=True) if naive else softmax(s, axis)
    return w @ V, w


def entropy(w, axis=-1):
    return -np.sum(w * np.log(np.where(w > 0, w, 1.0)), axis=axis)


def head_global_max(X, W_q, W_k, W_v):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    s = Q @ kT(K) / math.sqrt(Q.shape[-1])
    e = np.exp(s - s.max())  # one max for the whole array
    w = e / e.sum(axis=-1, keepdims=True)
    return w @ V, w


def head_global_max_nan_to_num(X, W_q, W_k, W_v):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    s = Q @ kT(K) / math.sqrt(Q.shape[-1])
    with np.errstate(all="ignore"):
        e = np.exp(s - s.max())
        w = np.nan_to_num(e / e.sum(axis=-1, keepdims=True))
    return w @ V, w


def head_mean_shift(X, W_q, W_k, W_v):  # shifted by each row's mean, not its max
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    s = Q @ kT(K) / math.sqrt(Q.shape[-1])
    e = np.exp(s - s.mean(axis=-1, keepdims=True))
    w = e / e.sum(axis=-1, keepdims=True)
    return w @ V, w


def head_axis0(X, W_q, W_k, W_v):  # notebook 02 §13's pitfall, as written there
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    w = softmax(Q @ kT(K) / math.sqrt(Q.shape[-1]), axis=0)
    return w @ V, w


def head_K_Qt(X, W_q, W_k, W_v):  # keys down, queries across
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    w = softmax(K @ kT(Q) / math.sqrt(W_q.shape[1]))
    return w @ V, w


CATALOGUED = {
    "02.1": {
        "no scale": lambda Q, K: Q @ kT(K),
        "divided by d_k": lambda Q, K: Q @ kT(K) / Q.shape[-1],
        "multiplied by √d_k": lambda Q, K: Q @ kT(K) * math.sqrt(Q.shape[-1]),
        "scaled by √L_k": lambda Q, K: Q @ kT(K) / math.sqrt(K.shape[-2]),
        "computed K Qᵀ": lambda Q, K: K @ kT(Q) / math.sqrt(Q.shape[-1]),
        "K.T on a batch": lambda Q, K: Q @ K.T / math.sqrt(Q.shape[-1]),
        "Q @ K without the transpose": lambda Q, K: Q @ K / math.sqrt(Q.shape[-1]),
        "float32 became float64": lambda Q, K: Q @ kT(K) / np.sqrt(Q.shape[-1]),
    },
    "02.2": {
        "softmax over the query axis": lambda X, W_q, W_k, W_v: head(X, W_q, W_k, W_v, axis=-2),
        "no scale": lambda X, W_q, W_k, W_v: head(X, W_q, W_k, W_v, scale=1.0),
        "scaled by √d_model": lambda X, W_q, W_k, W_v: head(
            X, W_q, W_k, W_v, scale=math.sqrt(X.shape[-1])
        ),
        "W_q used for the keys": lambda X, W_q, W_k, W_v: head(X, W_q, W_q, W_v),
        "no max shift": lambda X, W_q, W_k, W_v: head(X, W_q, W_k, W_v, naive=True),
        "weighted the tokens, not the values": lambda X, W_q, W_k, W_v: (
            head(X, W_q, W_k, W_v)[1] @ X,
            head(X, W_q, W_k, W_v)[1],
        ),
        "returned (weights, output)": lambda X, W_q, W_k, W_v: head(X, W_q, W_k, W_v)[::-1],
        "one maximum for the whole array": head_global_max,
        "shifted by something other than the max": head_mean_shift,
        "softmax with axis=0": head_axis0,
        "computed K Qᵀ": head_K_Qt,
    },
    "02.3": {
        "ln L_q instead of ln L_k": lambda weights, threshold=0.95: bool(
            np.all(entropy(weights) >= threshold * np.log(len(weights)))
        ),
        "any row instead of every row": lambda weights, threshold=0.95: bool(
            np.any(entropy(weights) >= threshold * np.log(weights.shape[1]))
        ),
        "mean of the row entropies": lambda weights, threshold=0.95: bool(
            entropy(weights).mean() >= threshold * np.log(weights.shape[1])
        ),
        "hard-coded threshold": lambda weights, threshold=0.95: bool(
            np.all(entropy(weights) >= 0.95 * np.log(weights.shape[1]))
        ),
        "peak equal to 1/L_k": lambda weights, threshold=0.95: bool(
            np.allclose(weights.max(axis=1), 1 / weights.shape[1])
        ),
        "entropy of the columns": lambda weights, threshold=0.95: bool(
            np.all(entropy(weights, axis=0) >= threshold * np.log(weights.shape[1]))
        ),
        "entropy in bits against ln L_k": lambda weights, threshold=0.95: bool(
            np.all(entropy(weights) / np.log(2) >= threshold * np.log(weights.shape[1]))
        ),
        "returned one bool per row": lambda weights, threshold=0.95: (
            entropy(weights) >= threshold * np.log(weights.shape[1])
        ),
        "NaN entropy at a zero weight": lambda weights, threshold=0.95: bool(
            np.all(
                -np.sum(weights * np.log(weights), axis=-1) >= threshold * np.log(weights.shape[1])
            )
        ),
    },
}

UNLISTED = {
    "02.1": [
        lambda Q, K: Q @ kT(K) / np.sqrt(Q.shape[-2]),  # √L_q
        lambda Q, K: (Q / np.sqrt(Q.shape[-1])) @ (kT(K) / np.sqrt(Q.shape[-1])),  # scaled twice
        lambda Q, K: np.einsum("...qc,...kc->...qk", Q, K) / np.sqrt(K.shape[0]),
        lambda Q, K: Q @ np.transpose(K) / np.sqrt(Q.shape[-1]),
        lambda Q, K: (Q * K).sum(-1) / np.sqrt(Q.shape[-1]),  # element-wise
        lambda Q, K: softmax(Q @ kT(K) / np.sqrt(Q.shape[-1])),  # went on to the softmax
        lambda Q, K: np.asarray(Q, float) @ kT(np.asarray(K, float)) / math.sqrt(Q.shape[-1]),
    ],
    "02.2": [
        lambda X, W_q, W_k, W_v: head(X, W_q, W_k, W_v, scale=math.sqrt(W_v.shape[1])),  # √d_v
        lambda X, W_q, W_k, W_v: (head(X, W_q, W_k, W_v)[0],),  # only the output
        lambda X, W_q, W_k, W_v: head(X, W_k, W_q, W_v),  # W_q and W_k swapped
        lambda X, W_q, W_k, W_v: head(X, W_q, W_k, W_v)[0],  # no tuple
        lambda X, W_q, W_k, W_v: (lambda o, w: (o, w.T))(*head(X, W_q, W_k, W_v)),
        lambda X, W_q, W_k, W_v: (X @ W_v, softmax(X @ W_q @ kT(X @ W_k))),
        head_global_max_nan_to_num,
        lambda X, W_q, W_k, W_v: tuple(  # computed in float32: the statement asks for float64
            a.astype(np.float32) for a in head(X, W_q, W_k, W_v)
        ),
        lambda X, W_q, W_k, W_v: head(X, W_q, W_k, W_v, scale=math.sqrt(X.shape[-2])),  # √L
    ],
    "02.3": [
        lambda weights, threshold=0.95: bool(np.all(weights.std(axis=-1) < 1 - threshold)),
        lambda weights, threshold=0.95: bool(entropy(weights).min() > threshold),  # no ln L_k
        lambda weights, threshold=0.95: bool(
            np.all(weights.max(-1) <= 1 / threshold / weights.shape[1])
        ),
        lambda weights, threshold=0.95: np.all(
            entropy(weights) >= threshold * np.log(weights.size)
        ),
        lambda weights, threshold=0.95: int(
            np.all(entropy(weights) >= threshold * np.log(weights.shape[1]))
        ),
        lambda weights, threshold=0.95: bool(  # hand-written entropy, mean over rows
            np.mean(-np.sum(weights * np.log(weights), axis=-1))
            >= threshold * np.log(weights.shape[1])
        ),
    ],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


def test_booleans_print_as_true_and_false():
    result = check("02.3", CATALOGUED["02.3"]["mean of the row entropies"])
    assert "returned True; expected False" in result.report


def test_a_float32_answer_to_02_2_is_rejected_on_every_case():
    """It used to pass 2 of 6 cases by tolerance luck and fail the rest by about 1.8e-6."""
    result = check("02.2", UNLISTED["02.2"][-2])
    assert result.cases_passed == 0, result.report
    assert "expected float64 (the input's dtype)" in result.report
    assert "The values are right to float32 precision" in result.report


def test_the_axis_0_pitfall_of_section_13_is_named_not_the_axis_minus_2_one():
    assert check("02.2", head_axis0).mistakes == ("softmax with axis=0",)
    axis_m2 = CATALOGUED["02.2"]["softmax over the query axis"]
    assert check("02.2", axis_m2).mistakes == ("softmax over the query axis",)
