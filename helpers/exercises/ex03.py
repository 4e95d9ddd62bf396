"""Exercises of notebook 03 (masking), in the order the notebook shows them: the boolean causal
mask (03.1, here), causal attention with a mask you build (03.2, ``ex03_causal``), a padding mask
(03.3, here), the ALiBi bias (03.4, ``ex03_alibi``) and attention with any mask (03.5,
``ex03_masked``)."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import INF


# --------------------------------------------------------------------------- 03.1
def my_causal_mask(size):
    return np.tril(np.ones((size, size), dtype=bool))


register(
    Exercise(
        id="03.1",
        reference=my_causal_mask,
        taught="notebook 03 §1",
        compare=arrays(dtype="bool"),
        difficulty=1,
        minutes=5,
        hints=(
            "Query i may attend to key j when j ≤ i: the lower triangle, diagonal included.",
            "`np.tril` keeps the lower triangle of a matrix. Start from a matrix of ones with "
            "`dtype=bool`, so that the result is a boolean mask, not a float 0/1 array.",
        ),
        cases=(
            Case((1,), "one token"),
            Case((2,), "two tokens"),
            Case((4,), "four tokens"),
            Case((7,), "seven tokens"),
        ),
        mistakes=(
            Mistake(
                "float 0/1 mask",
                "np.tril(np.ones((n, n))) is float: attention would add 1.0 and 0.0 "
                "to the scores and mask nothing. Use dtype=bool.",
                "notebook 03 §1 and §8",
                lambda s: np.tril(np.ones((s, s))),
            ),
            Mistake(
                "the additive form",
                "0 / -inf is the additive mask; this exercise asks for the "
                "boolean one (True = may attend).",
                "notebook 03 §1",
                lambda s: np.triu(np.full((s, s), -INF), k=1),
            ),
            Mistake(
                "True = blocked",
                "in this course True = may attend; ~mask is the convention of "
                "nn.MultiheadAttention.",
                "notebook 03 §8",
                lambda s: ~my_causal_mask(s),
            ),
            Mistake(
                "diagonal excluded",
                "a token may attend to itself: j <= i, so tril with k=0.",
                "notebook 03 §1",
                lambda s: np.tril(np.ones((s, s), dtype=bool), k=-1),
            ),
            Mistake(
                "one future token allowed",
                "tril(k=1) lets query i see key i + 1.",
                "notebook 03 §1",
                lambda s: np.tril(np.ones((s, s), dtype=bool), k=1),
            ),
            Mistake(
                "integer 0/1 mask",
                "np.tril(np.ones((n, n), dtype=int)) is an integer array, not a boolean one: "
                "helpers.attention refuses it, and code that adds masks would add 1 and 0 and "
                "mask nothing. Use dtype=bool.",
                "notebook 03 §8",
                lambda s: np.tril(np.ones((s, s), dtype=int)),
            ),
            Mistake(
                "upper triangle",
                "np.triu keeps j >= i, the future; the past is the lower triangle.",
                "notebook 03 §1",
                lambda s: np.triu(np.ones((s, s), dtype=bool)),
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 03.3
def padding_mask(lengths, max_len):
    keep = np.arange(max_len) < np.asarray(lengths)[:, None]  # (batch, max_len)
    return keep[:, None, :]  # (batch, 1, max_len): the 1 broadcasts over the queries


def _keep(lengths, max_len):
    return np.arange(max_len) < np.asarray(lengths)[:, None]  # (batch, max_len)


register(
    Exercise(
        id="03.3",
        reference=padding_mask,
        taught="notebook 03 §6",
        compare=arrays(dtype="bool"),
        difficulty=1,
        minutes=10,
        hints=(
            "Entry `[b, 0, j]` answers one question: is key j a real token of sequence b, that "
            "is j < `lengths[b]`? Answer it for every b and j at once, with one comparison.",
            "`np.arange(max_len)` has shape (max_len,); the lengths as a column have shape "
            "(batch, 1); compared, they broadcast to (batch, max_len). Then insert the query "
            "axis in the middle: (batch, 1, max_len), whose 1 broadcasts over the queries of "
            "the scores (section 6).",
        ),
        cases=(
            Case((np.array([3, 1, 4]), 4), "lengths [3, 1, 4], max_len 4"),
            Case((np.array([2]), 5), "one sequence of 2 tokens padded to 5"),
            Case((np.array([0, 5, 2]), 5), "an empty sequence (length 0) in the batch"),
            Case((np.array([4, 4]), 4), "no padding at all"),
            Case(([1, 3, 2],), "lengths given as a Python list", {"max_len": 3}),
            Case((np.array([2, 6, 1, 3]), 7), "4 sequences padded to 7"),
        ),
        mistakes=(
            Mistake(
                "off by one",
                "j <= length counts the first pad slot as a real token; the real "
                "tokens are j < length.",
                "notebook 03 §6",
                lambda lengths, max_len: (np.arange(max_len) <= np.asarray(lengths)[:, None])[
                    :, None, :
                ],
            ),
            Mistake(
                "True marks padding",
                "in this course True = may attend (a real token); True = pad is "
                "nn.MultiheadAttention's key_padding_mask convention.",
                "notebook 03 §8",
                lambda lengths, max_len: ~padding_mask(lengths, max_len),
            ),
            Mistake(
                "missing the query axis",
                "(batch, max_len) lines up with (L_q, L_k) of the scores (batch, L_q, L_k): "
                "row b of the mask would land on query b. Return (batch, 1, max_len).",
                "notebook 03 §8",
                _keep,
            ),
            Mistake(
                "the 1 on the wrong side",
                "(batch, max_len, 1) broadcasts along the keys: it would hide the rows of the pad "
                "queries and no key at all. The keys are the last axis: (batch, 1, max_len).",
                "notebook 03 §6",
                lambda lengths, max_len: _keep(lengths, max_len)[:, :, None],
            ),
            Mistake(
                "notebook 04's four axes",
                "(batch, 1, 1, max_len) is the form for scores with a heads axis (notebook 04 "
                "§6); against this notebook's scores (batch, L_q, L_k) it would broadcast to "
                "(batch, batch, L_q, L_k). Return (batch, 1, max_len).",
                "notebook 03 §6",
                lambda lengths, max_len: _keep(lengths, max_len)[:, None, None, :],
            ),
            Mistake(
                "float 0/1 mask",
                "a float mask is added to the scores: 1.0 and 0.0 mask nothing. "
                "Return a boolean array (dtype bool).",
                "notebook 03 §1 and §8",
                lambda lengths, max_len: padding_mask(lengths, max_len).astype(float),
            ),
            Mistake(
                "integer 0/1 mask",
                "an integer mask is not boolean: helpers.attention rejects it "
                "and PyTorch would add it. Return dtype bool.",
                "notebook 03 §8",
                lambda lengths, max_len: padding_mask(lengths, max_len).astype(np.int64),
            ),
            Mistake(
                "the additive form",
                "0 / -inf is the additive (float) form of the mask, which attention adds to the "
                "scores; this exercise asks for the boolean one, True = a real token.",
                "notebook 03 §1 and §6",
                lambda lengths, max_len: np.where(padding_mask(lengths, max_len), 0.0, -INF),
            ),
        ),
    )
)


# 03.2, 03.4 and 03.5 register themselves on import
from helpers.exercises import ex03_alibi, ex03_causal, ex03_masked  # noqa: E402, F401
