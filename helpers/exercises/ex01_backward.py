"""Exercise 01.3 of notebook 01: the gradient through a softmax (imported by ``ex01``)."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import _softmax

rng = np.random.default_rng(103)


# --------------------------------------------------------------------------- 01.3
def softmax_backward(p, g):
    p, g = np.asarray(p, dtype=float), np.asarray(g, dtype=float)
    return p * (g - (p * g).sum(axis=-1, keepdims=True))


_sharp = _softmax(np.array([[9.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0], [1.0, -2.0, 0.5, 0.0]]))
_masked_row = _softmax(rng.normal(size=(3, 5)))
_masked_row[1] = 0.0
register(
    Exercise(
        id="01.3",
        reference=softmax_backward,
        taught="notebook 01 §11",
        compare=arrays(rtol=1e-9, atol=1e-12),
        difficulty=2,
        minutes=25,
        hints=(
            "Write one entry, (Jᵀg)_j = Σ_i J_ij g_i with J_ij = p_i δ_ij − p_i p_j, and split the "
            "sum into the δ term and the rest.",
            "The δ term leaves p_j g_j; the rest is p_j times Σ_i p_i g_i, one number per slice, "
            "the same for every j of that slice.",
            "In code, Σ_i p_i g_i is a sum of p * g over the last axis; keep that axis "
            "(keepdims=True) so the number broadcasts back over its own slice only.",
        ),
        cases=(
            Case(
                (_softmax(rng.normal(size=(4, 5))), rng.normal(size=(4, 5))),
                "p and g of shape (4, 5)",
            ),
            Case(
                (_softmax(rng.normal(size=(2, 3, 6)) * 3), rng.normal(size=(2, 3, 6))),
                "a batch (2, 3, 6)",
            ),
            Case((_softmax(rng.normal(size=7)), rng.normal(size=7)), "one vector (7,)"),
            Case(
                (_sharp, rng.normal(size=(3, 4))), "a sharp row, a uniform row and an ordinary one"
            ),
            Case(
                (_masked_row, rng.normal(size=(3, 5))),
                "a fully masked row: p = 0 there, so the gradient is 0",
            ),
        ),
        mistakes=(
            Mistake(
                "only diag(p)",
                "p * g keeps the diagonal of J and forgets the - p pᵀ part.",
                "notebook 01 §11",
                lambda p, g: p * g,
            ),
            Mistake(
                "P(1−P)·dP",
                "p * (1 - p) * g keeps only the diagonal of J, ∂p_j/∂x_j = p_j(1 − p_j), and "
                "drops the off-diagonal terms −p_i p_j: every other weight moves too when one "
                "score moves.",
                "notebook 01 §11",
                lambda p, g: p * (1 - p) * g,
                hint="∂p_i/∂x_j is not 0 for i ≠ j: write the j-th entry of Jᵀg as a sum over "
                "every i.",
            ),
            Mistake(
                "forgot the factor p",
                "g - (p · g) must still be multiplied by p.",
                "notebook 01 §11",
                lambda p, g: g - (p * g).sum(-1, keepdims=True),
            ),
            Mistake(
                "summed over the whole array",
                "p · g is one number per slice (axis=-1), not one for the whole array.",
                "notebook 01 §9",
                lambda p, g: p * (g - (p * g).sum()),
            ),
            Mistake(
                "summed over the wrong axis",
                "p · g runs over the last axis, the one p sums to 1 over.",
                "notebook 01 §9",
                lambda p, g: p * (g - (p * g).sum(0, keepdims=True)),
            ),
            Mistake(
                "sum of g instead of p · g",
                "the subtracted term is Σ_j p_j g_j, not Σ_j g_j.",
                "notebook 01 §11",
                lambda p, g: p * (g - g.sum(-1, keepdims=True)),
            ),
            Mistake(
                "wrong sign of p pᵀ",
                "J = diag(p) - p pᵀ, so Jᵀg = p ⊙ (g - p · g).",
                "notebook 01 §11",
                lambda p, g: p * (g + (p * g).sum(-1, keepdims=True)),
            ),
            Mistake(
                "sum without keepdims",
                "(p * g).sum(-1) drops the axis, so it broadcasts along the "
                "wrong one (or fails); use keepdims=True.",
                "notebook 01 §14",
                lambda p, g: p * (g - (p * g).sum(-1)),
            ),
        ),
    )
)
