"""Exercise 03.4 of notebook 03: the ALiBi bias (imported by ``ex03``)."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays
from helpers.exercises._core import Case, Exercise, Mistake, register


# --------------------------------------------------------------------------- 03.4
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
        id="03.4",
        reference=my_alibi,
        taught="notebook 03 §9",
        compare=arrays(rtol=1e-12, atol=1e-12),
        difficulty=1,
        minutes=10,
        hints=(
            "Build the distances first: |i - j| for positions 0 … L-1 is an (L, L) array made "
            "from two broadcast aranges, a column and a row.",
            "The slopes are one number per head, m_h = 2^(-8h/H) for h = 1 … H (not 0 … H-1). "
            "Shaped (H, 1, 1) they broadcast against the (L, L) distances; the bias is minus "
            "their product, (H, L, L), steepest head first.",
        ),
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
                "the causal form",
                "-inf above the diagonal is the paper's causal form (section 9); this exercise "
                "asks for the symmetric encoder variant -m_h |i - j|, finite everywhere.",
                "notebook 03 §9",
                lambda L, H: np.where(np.tri(L, dtype=bool), my_alibi(L, H), -np.inf),
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
