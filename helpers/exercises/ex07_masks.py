"""Exercise 07.4 of notebook 07: nn.MultiheadAttention's two masks as the course's one mask
(imported by ``ex07``).

PyTorch's ``attn_mask`` (bool True = *blocked*, or float added to the scores; ``(L_q, L_k)`` or
``(B·h, L_q, L_k)``, batch-major) and ``key_padding_mask`` (bool ``(B, L_k)``, True = padding)
become the mask of ``helpers.MultiHeadAttention``: boolean True = *may attend*, or float added,
4-D ``(B or 1, h or 1, L_q or 1, L_k)``. Answers are compared by what they do to the scores
(``same_mask``), so a boolean mask and its float 0/−∞ form are the same answer.
``tests/test_exercises_07_masks.py`` checks the reference against ``nn.MultiheadAttention``.
"""

from __future__ import annotations

import numpy as np

from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises.ex07_mask_compare import same_mask

rng = np.random.default_rng(774)
INF = np.inf


def torch_masks_to_course(attn_mask, key_padding_mask, num_heads):
    if attn_mask is None and key_padding_mask is None:
        return None
    mask = None
    if attn_mask is not None:
        if attn_mask.ndim == 3:  # (B·h, L_q, L_k), sequence b and head n at index b·h + n
            mask = attn_mask.reshape(-1, num_heads, *attn_mask.shape[1:])
        else:  # (L_q, L_k): the same for every sequence and head
            mask = attn_mask[None, None]
        if mask.dtype == np.bool_:
            mask = ~mask  # True = blocked  ->  True = may attend
    if key_padding_mask is None:
        return mask
    pad = key_padding_mask[:, None, None, :]  # (B, 1, 1, L_k): the keys are the last axis
    if mask is None:
        return ~pad
    if mask.dtype == np.bool_:
        return mask & ~pad  # may attend only where both masks allow it
    return mask + np.where(pad, -INF, 0.0)  # a float mask stays additive


def _convert(
    attn_mask,
    key_padding_mask,
    num_heads,
    *,
    flip_attn=True,
    flip_pad=True,
    pad_axes=(slice(None), None, None, slice(None)),
    combine="and",
    float_attn="keep",
    heads="batch-major",
    pad_as_float="where",
):
    """The conversion as a learner writes it, with one switch per mistake."""
    if attn_mask is None and key_padding_mask is None:
        return None
    mask = None
    if attn_mask is not None:
        if attn_mask.ndim == 3 and heads == "batch-major":
            mask = attn_mask.reshape(-1, num_heads, *attn_mask.shape[1:])
        elif attn_mask.ndim == 3 and heads == "head-major":
            mask = attn_mask.reshape(num_heads, -1, *attn_mask.shape[1:]).transpose(1, 0, 2, 3)
        elif attn_mask.ndim == 3:  # used as it is
            mask = attn_mask
        else:
            mask = attn_mask[None, None]
        if mask.dtype == np.bool_:
            mask = ~mask if flip_attn else mask
        elif float_attn == "isfinite":  # -inf -> blocked, every other value -> may attend
            mask = np.isfinite(mask)
        elif float_attn == "zero":  # only 0 -> may attend
            mask = mask == 0
    if key_padding_mask is None:
        return mask
    pad = key_padding_mask[pad_axes]
    keep = ~pad if flip_pad else pad
    if mask is None:
        return keep
    if mask.dtype == np.bool_:
        return mask & keep if combine == "and" else mask | keep
    if pad_as_float == "add 0/1":
        return mask + pad
    if pad_as_float == "times -inf":
        return mask + pad * -INF
    blocked = -1e9 if pad_as_float == "-1e9" else -INF
    return mask + np.where(keep, 0.0, blocked)


# --------------------------------------------------------------------------- the cases
def _blocked(shape, p):
    return rng.random(shape) < p


def _bias(L_q, L_k):
    """An ALiBi-like float mask: -0.5·|i - j|, with -inf at a few entries."""
    bias = -0.5 * np.abs(np.arange(L_q)[:, None] - np.arange(L_k))
    return np.where(_blocked((L_q, L_k), 0.25), -INF, bias)


_causal_blocked = np.triu(np.ones((4, 4), dtype=bool), k=1)  # PyTorch polarity: True = future
_attn_row_blocked = _blocked((3, 5), 0.3)
_attn_row_blocked[1] = True  # query 1 may attend to no key
_float_rows = _bias(3, 4)
_float_rows[2, :2] = -INF  # with keys 2, 3 of sequence 1 padded, its query 2 sees nothing
_float_3d = np.where(_blocked((6, 2, 3), 0.25), -INF, 0.5 * rng.standard_normal((6, 2, 3)))
F, T = False, True

CASES = (
    Case((None, None, 2), "no mask at all"),
    Case(
        (_attn_row_blocked, None, 2),
        "only a boolean attn_mask (L_q = 3, L_k = 5); query 1 is blocked from every key",
    ),
    Case(
        (None, np.array([[F, F, F, T], [F, F, T, T], [F, F, F, F]]), 2),
        "only a key_padding_mask: 3 sequences padded differently, L_k = 4",
    ),
    Case(
        (_causal_blocked, np.array([[F, F, F, T], [T, F, F, F]]), 2),
        "a causal attn_mask (L = 4) and key padding; sequence 1 is left-padded, so its query 0 "
        "may attend to no key",
    ),
    Case(
        (_blocked((2, 5), 0.3), np.array([[F, F, F, T, T], [F, F, F, F, F], [F, T, T, T, T]]), 4),
        "a boolean attn_mask (L_q = 2 ≠ L_k = 5) and key padding (B = 3), h = 4",
    ),
    Case(
        (_bias(3, 4), None, 2),
        "only a float attn_mask: biases -0.5·|i - j| and some -inf (it stays additive)",
    ),
    Case(
        (_float_rows, np.array([[F, F, F, F], [F, F, T, T]]), 2),
        "a float attn_mask and key padding; query 2 of sequence 1 is left with no key",
    ),
    Case(
        (_float_3d, np.array([[F, F, T], [F, F, F]]), 3),
        "a float (B·h, L_q, L_k) = (6, 2, 3) attn_mask, B = 2, h = 3, and key padding",
    ),
    Case(
        (_blocked((6, 3, 3), 0.4), None, 2),
        "a boolean (B·h, L_q, L_k) = (6, 3, 3) attn_mask: B = 3 sequences, h = 2 heads",
    ),
)


def _mistake(name, explanation, taught, hint="", **switches):
    return Mistake(
        name,
        explanation,
        taught,
        lambda attn_mask, key_padding_mask, num_heads: _convert(
            attn_mask, key_padding_mask, num_heads, **switches
        ),
        hint=hint,
    )


MISTAKES = (
    _mistake(
        "attn_mask's polarity not flipped",
        "in nn.MultiheadAttention a boolean attn_mask is True where a query is blocked; the "
        "course's mask is True where it may attend: flip it with ~.",
        "notebook 07 §4",
        "What does True mean in nn.MultiheadAttention's attn_mask, and in the course's mask?",
        flip_attn=False,
    ),
    _mistake(
        "key_padding_mask's polarity not flipped",
        "key_padding_mask is True at padding, which no query may attend to: ~key_padding_mask "
        "is what may be attended.",
        "notebook 07 §4",
        "What does True mean in key_padding_mask?",
        flip_pad=False,
    ),
    _mistake(
        "neither polarity flipped",
        "both of nn.MultiheadAttention's boolean masks are True where attention is blocked "
        "(attn_mask) or the key is padding (key_padding_mask); the course's True means may "
        "attend: flip both with ~.",
        "notebook 07 §4",
        "Read section 4's table again: what does True mean in each of PyTorch's two masks?",
        flip_attn=False,
        flip_pad=False,
    ),
    _mistake(
        "key padding broadcast over the queries",
        "key_padding_mask[b, j] is about key j, and the keys are the last axis of (B, h, L_q, "
        "L_k): use key_padding_mask[:, None, None, :], not [:, None, :, None].",
        "notebook 07 §4",
        "key_padding_mask has one entry per key: which axis of the scores (B, h, L_q, L_k) "
        "holds the keys?",
        pad_axes=(slice(None), None, slice(None), None),
    ),
    _mistake(
        "masks combined with OR",
        "with True = may attend, a query may attend to a key only when both masks allow it: "
        "combine with & (AND), not | (OR), which lets through what either mask allows.",
        "notebook 07 §4",
        "A key is open only when both masks open it: which logical operator says both?",
        combine="or",
    ),
    _mistake(
        "float attn_mask turned into a boolean (its biases dropped)",
        "a float attn_mask is added to the scores: its finite values shift them, so "
        "np.isfinite(attn_mask) keeps the -inf but loses every bias; keep it float.",
        "notebook 07 §4",
        "What does a float mask entry of -0.5 do to a score, and what is left of it after your "
        "conversion?",
        float_attn="isfinite",
    ),
    _mistake(
        "float attn_mask turned into a boolean (non-zero entries blocked)",
        "a float attn_mask is added to the scores: a finite value such as -0.5 shifts a score, "
        "it does not block it, so attn_mask == 0 (or ~attn_mask.astype(bool)) is wrong; keep "
        "it float.",
        "notebook 07 §4",
        "What does a float mask entry of -0.5 do to a score: block it, or shift it?",
        float_attn="zero",
    ),
    _mistake(
        "(B·h) axis not reshaped",
        "a 3-D attn_mask is (B·h, L_q, L_k); the course's layer needs (B, h, L_q, L_k): "
        "reshape it (MultiHeadAttention refuses a 3-D mask).",
        "notebook 07 §4",
        "PyTorch stacks (sequence, head) pairs on one axis of length B·h. Which 4-D shape does "
        "the course's layer take?",
        heads="as it is",
    ),
    _mistake(
        "(B·h) axis split as (h, B)",
        "PyTorch stacks the 3-D attn_mask batch-major: sequence b, head n is at index b·h + n, "
        "so reshape(B, h, L_q, L_k); reshape(h, B, …) and a transpose pair the wrong heads.",
        "notebook 07 §4",
        "Which index holds sequence 1, head 0 in a (B·h, L_q, L_k) mask: h or 1?",
        heads="head-major",
    ),
    _mistake(
        "boolean key_padding_mask added as 0/1",
        "a boolean added to a float mask counts as 0 or 1: padded keys get +1 instead of "
        "being blocked; add -inf where the key is padding (np.where).",
        "notebook 03 §8",
        "What does adding True (that is 1.0) to a score do?",
        pad_as_float="add 0/1",
    ),
    _mistake(
        "padding made additive as pad · (-inf)",
        "0 · (-inf) is NaN, so every key that is not padding gets NaN; use np.where(pad, -inf, "
        "0.0).",
        "notebook 03 §1",
        "What is 0 · (-inf) in floating point?",
        pad_as_float="times -inf",
    ),
    _mistake(
        "-1e9 instead of -inf",
        "a padded key must be removed with -inf, as PyTorch does: with -1e9 a query left "
        "with no key gets uniform weights over the padding instead of zero weights.",
        "notebook 03 §8",
        pad_as_float="-1e9",
    ),
)

register(
    Exercise(
        id="07.4",
        reference=torch_masks_to_course,
        taught="notebook 07 §4–5",
        compare=same_mask,
        difficulty=2,
        minutes=15,
        hints=(
            "Take one sequence b, head n, query i and key j: may the query attend to the key "
            "under PyTorch's two masks? Your mask must give the same answer at [b, n, i, j], "
            "and section 4's table gives each mask's polarity.",
            "Bring each mask to four axes first: key_padding_mask (B, L_k) is about keys, so "
            "(B, 1, 1, L_k); a 2-D attn_mask is (1, 1, L_q, L_k); a 3-D one stacks sequence b, "
            "head n at index b·h + n, which one reshape undoes.",
            "Then flip the booleans to 'may attend' and let a key through only where both masks "
            "do. A float attn_mask stays float: add -inf where the key is padding (np.where), "
            "and leave its own values alone.",
        ),
        cases=CASES,
        mistakes=MISTAKES,
    )
)
