"""Exercises of notebook 07 (comparison with PyTorch): unpack ``in_proj_weight``, the softmax
backward step, the backward pass of one head; PyTorch's masks in the course's convention in
ex07_masks (imported here)."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._compare import arrays, tuple_of
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import one_max_mistake, softmax_one_max
from helpers.exercises.ex01 import _softmax
from helpers.exercises.ex07_masks import torch_masks_to_course  # noqa: F401  (registers 07.4)

rng = np.random.default_rng(707)
n = rng.standard_normal


# --------------------------------------------------------------------------- 07.1
def split_in_proj(in_proj_weight, in_proj_bias):
    E = in_proj_weight.shape[1]
    W_q, W_k, W_v = (
        in_proj_weight[i * E : (i + 1) * E].T for i in range(3)
    )  # torch stores (out, in)
    b_q, b_k, b_v = (in_proj_bias[i * E : (i + 1) * E] for i in range(3))
    return W_q, W_k, W_v, b_q, b_k, b_v


def _blocks(w, b, order=(0, 1, 2), transpose=True, columns=False):
    E = w.shape[1]
    if columns:
        Ws = [w[:, i * E : (i + 1) * E] for i in range(3)]
    else:
        Ws = [w[i * E : (i + 1) * E].T if transpose else w[i * E : (i + 1) * E] for i in range(3)]
    bs = [b[i * E : (i + 1) * E] for i in range(3)]
    return (*(Ws[i] for i in order), *(bs[i] for i in order))


register(
    Exercise(
        id="07.1",
        reference=split_in_proj,
        taught="notebook 07 §1",
        compare=tuple_of(
            *[arrays(rtol=0.0, atol=0.0)] * 6, names=("W_q", "W_k", "W_v", "b_q", "b_k", "b_v")
        ),
        difficulty=1,
        minutes=10,
        hints=(
            "in_proj_weight stacks three (E, E) blocks: along which axis, and in which order? "
            "The table of section 1 says.",
            "PyTorch computes x @ W.T + b with W stored (out, in); the course computes x @ W + b. "
            "What must happen to each block?",
        ),
        cases=tuple(
            Case(
                (n((3 * e, e)), n(3 * e)),
                f"E = {e}: in_proj_weight ({3 * e}, {e}), in_proj_bias ({3 * e},)",
            )
            for e in (4, 6, 1, 5)
        ),
        mistakes=(
            Mistake(
                "no transpose",
                "PyTorch stores each block as (out, in) and computes x @ W.T; the "
                "course's x @ W needs each block transposed.",
                "notebook 07 §1",
                lambda in_proj_weight, in_proj_bias: _blocks(
                    in_proj_weight, in_proj_bias, transpose=False
                ),
            ),
            Mistake(
                "order k, q, v",
                "the rows are stacked q, k, v.",
                "notebook 07 §1",
                lambda in_proj_weight, in_proj_bias: _blocks(
                    in_proj_weight, in_proj_bias, order=(1, 0, 2)
                ),
            ),
            Mistake(
                "order q, v, k",
                "the rows are stacked q, k, v.",
                "notebook 07 §1",
                lambda in_proj_weight, in_proj_bias: _blocks(
                    in_proj_weight, in_proj_bias, order=(0, 2, 1)
                ),
            ),
            Mistake(
                "sliced the columns",
                "the three blocks are stacked along the rows (3E, E): slice rows i·E … (i+1)·E.",
                "notebook 07 §1",
                lambda in_proj_weight, in_proj_bias: _blocks(
                    in_proj_weight, in_proj_bias, columns=True
                ),
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 07.2
def my_softmax_backward(P, dP):
    return P * (dP - (dP * P).sum(axis=-1, keepdims=True))


_zero_row = _softmax(n((4, 5)))
_zero_row[2] = 0.0
register(
    Exercise(
        id="07.2",
        reference=my_softmax_backward,
        taught="notebook 07 §8",
        compare=arrays(rtol=1e-9, atol=1e-12),
        difficulty=2,
        minutes=10,
        hints=(
            "Start from one row: ∂L/∂s_k = Σ_j dp_j ∂p_j/∂s_k, with the softmax Jacobian "
            "∂p_j/∂s_k = p_j(δ_jk − p_k) of notebook 01 §11. Keep the off-diagonal terms.",
            "The sum splits into p_k·dp_k and −p_k·Σ_j dp_j p_j: the second term has one number "
            "per row, broadcast across the row.",
            "One row sum per row over the last axis, kept as a column (keepdims=True), subtracted "
            "from dP, then multiplied by P.",
        ),
        cases=(
            Case((_softmax(n((3, 5))), n((3, 5))), "P and dP (3, 5)"),
            Case((_softmax(n((2, 4, 6))), n((2, 4, 6))), "leading axes (2, 4, 6)"),
            Case((_zero_row, n((4, 5))), "a fully masked (all-zero) row of P: its gradient is 0"),
            Case(
                (_softmax(n((4, 4)) * 4), n((4, 4))),
                "a square P, where summing over the wrong axis does not change the shape",
            ),
        ),
        mistakes=(
            Mistake(
                "rowsum term missing",
                "P ⊙ dP is only the diagonal of the Jacobian; subtract rowsum(dP ⊙ P).",
                "notebook 07 §8",
                lambda P, dP: P * dP,
            ),
            Mistake(
                "rowsum(dP) instead of rowsum(dP ⊙ P)",
                "the subtracted term weights dP by P.",
                "notebook 07 §8",
                lambda P, dP: P * (dP - dP.sum(axis=-1, keepdims=True)),
            ),
            Mistake(
                "sum over the wrong axis",
                "axis=-2 sums over the queries; each row's sum runs over its keys (axis=-1).",
                "notebook 07 §8",
                lambda P, dP: P * (dP - (dP * P).sum(axis=-2, keepdims=True)),
            ),
            Mistake(
                "not multiplied by P",
                "dS = P ⊙ (dP - rowsum(dP ⊙ P)): the factor P is missing.",
                "notebook 07 §8",
                lambda P, dP: dP - (dP * P).sum(axis=-1, keepdims=True),
            ),
            Mistake(
                "sum without keepdims",
                "(dP * P).sum(-1) drops the axis, so it broadcasts along the "
                "wrong one (or fails); use keepdims=True.",
                "notebook 01 §14",
                lambda P, dP: P * (dP - (dP * P).sum(axis=-1)),
            ),
            Mistake(
                "P(1 − P) ⊙ dP",
                "p_k(1 − p_k) is only the diagonal of the softmax Jacobian, ∂p_k/∂s_k; each "
                "score also moves every other weight (∂p_j/∂s_k = −p_j p_k), which gives the "
                "term −P ⊙ rowsum(dP ⊙ P).",
                "notebook 07 §8",
                lambda P, dP: P * (1 - P) * dP,
                hint="Does raising one score change only its own weight, or the other weights of "
                "the row too? Write ∂p_j/∂s_k for j ≠ k.",
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 07.3
def _backward(
    Q,
    K,
    V,
    dO,
    *,
    scale_grads=True,
    softmax_step="full",
    dK_transpose=True,
    dV_transpose=True,
    softmax=_softmax,
):
    s = 1.0 / math.sqrt(Q.shape[1])
    P = softmax(Q @ K.T * s)  # (L_q, L_k)
    dV = (P.T if dV_transpose else P) @ dO  # (L_k, d_v)
    dP = dO @ V.T  # (L_q, L_k)
    if softmax_step == "full":
        dS = P * (dP - (dP * P).sum(axis=1, keepdims=True))
    elif softmax_step == "diagonal":  # P(1 - P) dP: the Jacobian's diagonal only
        dS = P * (1 - P) * dP
    else:
        dS = dP
    g = s if scale_grads else 1.0
    return g * dS @ K, g * (dS.T if dK_transpose else dS) @ Q, dV


def my_attention_backward(Q, K, V, dO):
    return _backward(Q, K, V, dO)


def _far_rows():
    """Q, K, V, dO where query 0's scaled score with key 1 is 2000 and the others' are O(1)."""
    Q, K, V, dO = n((3, 4)), n((5, 4)), n((5, 2)), n((3, 2))
    Q[0] = 2000.0 * 2.0 * K[1] / (K[1] ** 2).sum()  # s·q·k_1 = 2000 with s = 1/√4
    return Q, K, V, dO


register(
    Exercise(
        id="07.3",
        reference=my_attention_backward,
        taught="notebook 07 §8",
        compare=tuple_of(arrays(), arrays(), arrays(), names=("dQ", "dK", "dV")),
        difficulty=3,
        minutes=30,
        hints=(
            "Write the forward pass as three steps, S = s·QKᵀ, P = softmax(S), O = PV, and walk "
            "back one step at a time, starting from dO.",
            "For C = AB: dA = dC Bᵀ and dB = Aᵀ dC. That gives dV and dP from O = PV, and dQ "
            "and dK from S = s·QKᵀ (keep the s).",
            "Between them sits the softmax step of exercise 07.2: dS = P ⊙ (dP − rowsum(dP ⊙ "
            "P)). Check each gradient's shape against its input's.",
        ),
        cases=(
            Case((n((5, 4)), n((5, 4)), n((5, 3)), n((5, 3))), "L_q = L_k = 5, d_k = 4, d_v = 3"),
            Case(
                (n((3, 8)), n((6, 8)), n((6, 2)), n((3, 2))), "L_q = 3, L_k = 6, d_k = 8, d_v = 2"
            ),
            Case((n((4, 3)), n((2, 3)), n((2, 5)), n((4, 5))), "L_q = 4 > L_k = 2, d_v = 5"),
            Case(
                (n((4, 4)), n((4, 4)), n((4, 4)), n((4, 4))),
                "everything 4 × 4: transposes cannot be told apart by shape",
            ),
            Case(
                _far_rows(),
                "query 0 scores 2000 against key 1, the other queries about 1: rows far apart",
            ),
        ),
        mistakes=(
            Mistake(
                "1/√d_k missing from dQ and dK",
                "S = s·QKᵀ, so dQ = s·dS K and dK = s·dSᵀ Q.",
                "notebook 07 §8",
                lambda Q, K, V, dO: _backward(Q, K, V, dO, scale_grads=False),
            ),
            Mistake(
                "dP used as dS",
                "the softmax backward step dS = P ⊙ (dP - rowsum(dP ⊙ P)) is missing.",
                "notebook 07 §8",
                lambda Q, K, V, dO: _backward(Q, K, V, dO, softmax_step=None),
            ),
            Mistake(
                "dK without the transpose",
                "keys are the columns of the scores: dK = s·dSᵀ Q.",
                "notebook 07 §8",
                lambda Q, K, V, dO: _backward(Q, K, V, dO, dK_transpose=False),
            ),
            Mistake(
                "dV = P dO",
                "O = P V, so dV = Pᵀ dO.",
                "notebook 07 §8",
                lambda Q, K, V, dO: _backward(Q, K, V, dO, dV_transpose=False),
            ),
            Mistake(
                "P(1 − P) ⊙ dP as the softmax step",
                "p_k(1 − p_k) is only the diagonal of the softmax Jacobian; the off-diagonal "
                "terms −p_j p_k give dS = P ⊙ (dP − rowsum(dP ⊙ P)).",
                "notebook 07 §8",
                lambda Q, K, V, dO: _backward(Q, K, V, dO, softmax_step="diagonal"),
                hint="Does raising one score change only its own weight, or the other weights of "
                "the row too?",
            ),
            one_max_mistake(
                lambda Q, K, V, dO: _backward(Q, K, V, dO, softmax=softmax_one_max)
            ),
        ),
    )
)
