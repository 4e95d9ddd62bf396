"""Exercise 05.6 of notebook 05: inverted dropout on the attention weights (imported by ``ex05``).

The keep-mask is an argument, drawn by the caller as ``rng.random(P.shape) >= p`` (True = kept),
so every case has one exact answer: a wrong scaling cannot pass by luck of the draw.
"""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import _softmax

rng = np.random.default_rng(565)


def attention_dropout(P, p, keep, training):
    if not training:
        return P  # evaluation: nothing dropped, nothing rescaled
    return np.where(keep, P * (1.0 / (1.0 - p)), 0.0)  # kept: P / (1 - p); dropped: 0


def _weights(*shape, dtype=np.float64):
    return _softmax(rng.standard_normal(shape) * 2.0).astype(dtype)


def _keep(shape, p):
    return rng.random(shape) >= p  # True (kept) with probability 1 - p


def _case(shape, p, training, *, dtype=np.float64):
    return (_weights(*shape, dtype=dtype), p, _keep(shape, p), training)


def _expectation_case(p):
    """Each weight twice, kept in one copy and dropped in the other."""
    half = _weights(3, 3)  # (3, 3)
    P = np.concatenate([half, half], axis=-1) / 2.0  # (3, 6), rows sum to 1
    keep = np.concatenate([np.ones((3, 3), bool), np.zeros((3, 3), bool)], axis=-1)
    return (P, p, keep, True)


def _zero_row_case(p):
    P = _weights(4, 5)
    P[2] = 0.0  # a fully masked query row: attention gave it no weight at all
    return (P, p, _keep(P.shape, p), True)


def _variant(train, evaluate):
    return lambda P, p, keep, training: train(P, p, keep) if training else evaluate(P, p)


def _inverted(P, p, keep):
    return np.where(keep, P / (1.0 - p), 0.0)


def _unchanged(P, p):
    return P


def _in_place(P, p, keep, training):
    """As a learner writes it to save memory: P itself is zeroed and divided."""
    if training:
        P[~keep] = 0.0
        P /= 1.0 - p
    return P


def _zeros_float64(P, p, keep):
    """np.zeros(P.shape) is float64: filled from float32 weights, it promotes the result."""
    out = np.zeros(P.shape)
    out[keep] = P[keep] / (1.0 - p)
    return out


def _renormalised(P, p, keep):
    dropped = np.where(keep, P, 0.0)
    return dropped / dropped.sum(axis=-1, keepdims=True)


register(
    Exercise(
        id="05.6",
        reference=attention_dropout,
        taught="notebook 05 §7",
        compare=arrays(rtol=1e-6, atol=1e-12, dtype="same"),
        difficulty=1,
        minutes=10,
        hints=(
            "In training each weight is either dropped (0) or kept and made larger, so that on "
            "average it is unchanged; at evaluation nothing happens at all.",
            "A kept weight becomes P / (1 − p): with probability 1 − p you get P/(1 − p), with "
            "probability p you get 0, and the average is P. Which value of keep means kept?",
            "In training, choose with keep between the rescaled weight and 0 (np.where); with "
            "training False, return P as it is. Compute 1/(1 − p) as a Python float, so that "
            "float32 weights stay float32, and build a new array instead of writing into P.",
        ),
        cases=(
            Case(_case((2, 4, 4), 0.1, True), "training, p = 0.1, weights (2 heads, 4, 4)"),
            Case(_case((3, 5), 0.5, True), "training, p = 0.5: each kept weight is doubled"),
            Case(
                _case((2, 4, 4), 0.1, False),
                "evaluation (training=False), p = 0.1: the weights unchanged, keep ignored",
            ),
            Case(_case((3, 5), 0.5, False), "evaluation, p = 0.5"),
            Case(_case((4, 4), 0.0, True), "training with p = 0: nothing dropped or rescaled"),
            Case(
                _expectation_case(0.25),
                "the expectation: each weight appears twice, kept in one copy and dropped in "
                "the other, so (1 − p)·kept + p·dropped must give back P",
            ),
            Case(_zero_row_case(0.2), "a fully masked query row (all-zero weights) stays zero"),
            Case(
                _case((2, 3, 5, 5), 0.3, True),
                "a batch of heads (2, 3, 5, 5), p = 0.3",
            ),
            Case(
                _case((3, 4), 0.25, True, dtype=np.float32),
                "float32 weights: the result stays float32",
            ),
        ),
        mistakes=(
            Mistake(
                "no rescaling",
                "dropping alone shrinks each weight's expectation to (1 − p)·P; inverted "
                "dropout divides the kept weights by 1 − p so the expectation stays P.",
                "notebook 05 §7",
                _variant(lambda P, p, keep: np.where(keep, P, 0.0), _unchanged),
                hint="Average your training output over the two outcomes of one weight (kept "
                "with probability 1 − p, dropped with probability p). Is it P?",
            ),
            Mistake(
                "multiplied by 1 − p",
                "multiplying the kept weights by 1 − p makes the expectation (1 − p)²·P; "
                "divide by 1 − p instead.",
                "notebook 05 §7",
                _variant(lambda P, p, keep: np.where(keep, P * (1.0 - p), 0.0), _unchanged),
                hint="With p = 0.5, should a kept weight get larger or smaller?",
            ),
            Mistake(
                "divided by p",
                "the kept fraction is 1 − p, so the kept weights are divided by 1 − p, not by p.",
                "notebook 05 §7",
                _variant(lambda P, p, keep: np.where(keep, P / p, 0.0), _unchanged),
            ),
            Mistake(
                "keep mask read as dropped",
                "keep is True for the weights that are kept (probability 1 − p).",
                "notebook 05 §7",
                _variant(lambda P, p, keep: np.where(keep, 0.0, P / (1.0 - p)), _unchanged),
                hint="Which value of keep marks a weight that is kept?",
            ),
            Mistake(
                "dropout at evaluation too",
                "with training=False nothing is dropped and nothing is rescaled: return P.",
                "notebook 05 §7",
                lambda P, p, keep, training: _inverted(P, p, keep),
                hint="What must the function do with keep when training is False?",
            ),
            Mistake(
                "divided by 1 − p at evaluation",
                "the rescaling happens in training only; at evaluation the weights are used as "
                "they are (their expectation in training is already P).",
                "notebook 05 §7",
                _variant(_inverted, lambda P, p: P / (1.0 - p)),
            ),
            Mistake(
                "scaled at evaluation instead (the original dropout)",
                "the original dropout kept the weights unscaled in training and multiplied by "
                "1 − p at evaluation; inverted dropout divides by 1 − p in training and leaves "
                "evaluation alone.",
                "notebook 05 §7",
                _variant(lambda P, p, keep: np.where(keep, P, 0.0), lambda P, p: P * (1.0 - p)),
            ),
            Mistake(
                "rows renormalised after dropping",
                "dropout does not make the rows sum to 1 again: each kept weight is divided by "
                "the same 1 − p, so each weight keeps its expectation (and an all-zero row "
                "stays zero instead of 0/0).",
                "notebook 05 §7",
                _variant(_renormalised, _unchanged),
            ),
            Mistake(
                "changed P in place",
                "P[~keep] = 0 and P /= 1 - p overwrite the caller's weights (the layer still "
                "needs them, e.g. for the backward pass); build a new array, for example with "
                "np.where.",
                "notebook 05 §7",
                _in_place,
                hint="Call your function on an array, then print that array: is it what it "
                "was before the call?",
            ),
            Mistake(
                "float32 became float64",
                "float32 weights must stay float32. np.zeros(P.shape) is float64 (as is any "
                "NumPy float64 scalar such as np.float64(1 - p)), and filling it or dividing by "
                "it promotes the result; use np.zeros_like(P), np.where or a Python float.",
                "notebook 01 §6",
                _variant(_zeros_float64, _unchanged),
                hint="Print the dtype of your result for float32 weights, and of every array "
                "you create inside the function.",
            ),
        ),
    )
)
