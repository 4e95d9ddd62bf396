"""Exercises of notebook 03 (masking): causal attention, a padding mask, the ALiBi bias (and, in
ex03_masked, a causal mask and attention with any mask)."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._compare import arrays
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import INF, _attend, _naive, _softmax, _t, pair

rng = np.random.default_rng(303)
n = rng.standard_normal


# --------------------------------------------------------------------------- 03.1
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


register(
    Exercise(
        id="03.1",
        reference=causal_attention,
        taught="notebook 03 §1",
        compare=pair,
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
        ),
        mistakes=(
            Mistake(
                "triu with k=0 (NaN row)",
                "np.triu(..., k=0) masks the diagonal too: token 0 has no "
                "key left (NaN with a plain softmax) and every token loses itself. Use k=1.",
                "notebook 03 §1",
                lambda Q, K, V: _attend(Q, K, V, bias=_triu(Q, 0, -INF), softmax=_naive),
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
                "notebook 02 §10",
                lambda Q, K, V: _attend(Q, K, V, bias=_triu(Q, 1, -INF), scale=False),
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 03.2
def padding_mask(lengths, max_len):
    keep = np.arange(max_len) < np.asarray(lengths)[:, None]  # (batch, max_len)
    return keep[:, None, None, :]


register(
    Exercise(
        id="03.2",
        reference=padding_mask,
        taught="notebook 03 §6",
        compare=arrays(dtype="bool"),
        cases=(
            Case((np.array([3, 1, 4]), 4), "lengths [3, 1, 4], max_len 4"),
            Case((np.array([2]), 5), "one sequence of 2 tokens padded to 5"),
            Case((np.array([0, 5, 2]), 5), "an empty sequence (length 0) in the batch"),
            Case((np.array([4, 4]), 4), "no padding at all"),
            Case(([1, 3, 2],), "lengths given as a Python list", {"max_len": 3}),
        ),
        mistakes=(
            Mistake(
                "off by one",
                "j <= length counts the first pad slot as a real token; the real "
                "tokens are j < length.",
                "notebook 03 §6",
                lambda lengths, max_len: (np.arange(max_len) <= np.asarray(lengths)[:, None])[
                    :, None, None, :
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
                "missing the broadcast axes",
                "(batch, max_len) lines up with (L_q, L_k) of the "
                "scores; return (batch, 1, 1, max_len).",
                "notebook 03 §8",
                lambda lengths, max_len: padding_mask(lengths, max_len)[:, 0, 0],
            ),
            Mistake(
                "one broadcast axis only",
                "(batch, 1, max_len) fits scores without a heads axis; "
                "this mask is (batch, 1, 1, max_len).",
                "notebook 03 §6",
                lambda lengths, max_len: padding_mask(lengths, max_len)[:, 0],
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
        ),
    )
)


# --------------------------------------------------------------------------- 03.3
def my_alibi(seq_len, num_heads):
    # num_heads a power of two: then m_h = 2^(-8h/H) is the published rule (helpers.alibi)
    slopes = 2.0 ** (-8.0 * np.arange(1, num_heads + 1) / num_heads)  # (H,)
    pos = np.arange(seq_len)
    return -slopes[:, None, None] * np.abs(pos[:, None] - pos[None, :])  # (H, L, L)


def _alibi(L, H, first=1, sign=-1.0, signed=False, exponent=None):
    h = np.arange(first, first + H)
    slopes = 2.0 ** (-(8.0 * h / H if exponent is None else exponent * h))
    d = np.arange(L)[:, None] - np.arange(L)[None, :]
    return sign * slopes[:, None, None] * (d if signed else np.abs(d))


register(
    Exercise(
        id="03.3",
        reference=my_alibi,
        taught="notebook 03 §9",
        compare=arrays(rtol=1e-12, atol=1e-12),
        cases=(
            Case((5, 8), "5 positions, 8 heads"),
            Case((6, 4), "6 positions, 4 heads"),
            Case((3, 2), "3 positions, 2 heads"),
            Case((4, 1), "a single head: m_1 = 2^-8"),
            Case((7, 16), "16 heads: slopes 2^-0.5 down to 2^-8"),
        ),
        mistakes=(
            Mistake(
                "heads counted from 0",
                "h runs from 1 to H: the first slope is 2^(-8/H), not 1.",
                "notebook 03 §9",
                lambda L, H: _alibi(L, H, first=0),
            ),
            Mistake(
                "positive bias",
                "distance must be penalised: B = -m_h |i - j|.",
                "notebook 03 §9",
                lambda L, H: _alibi(L, H, sign=1.0),
            ),
            Mistake(
                "signed distance",
                "the symmetric bias uses |i - j|; i - j rewards one side.",
                "notebook 03 §9",
                lambda L, H: _alibi(L, H, signed=True),
            ),
            Mistake(
                "slopes 2^-h",
                "m_h = 2^(-8h/H); 2^-h is the same only for H = 8.",
                "notebook 03 §9",
                lambda L, H: _alibi(L, H, exponent=1.0),
            ),
            Mistake(
                "heads on the last axis",
                "return (num_heads, seq_len, seq_len): heads first.",
                "notebook 03 §9",
                lambda L, H: np.moveaxis(my_alibi(L, H), 0, -1),
            ),
        ),
    )
)


from helpers.exercises import ex03_masked  # noqa: E402, F401  (registers 03.4 and 03.5)
