"""Notebook 03's exercises: each known mistake, written as a learner would, is caught and named;
wrong attempts outside the catalogue are caught too."""

import math

import numpy as np
from exercise_catalogue import catalogue_tests

import helpers
from helpers.exercises import check
from helpers.exercises._core import get


def softmax(z):  # the course's softmax: an all -inf row gives zeros
    m = z.max(axis=-1, keepdims=True)
    e = np.exp(z - np.where(np.isfinite(m), m, 0.0))
    s = e.sum(axis=-1, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


def plain_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def scores(Q, K, scale=True):
    return Q @ np.swapaxes(K, -1, -2) / (math.sqrt(Q.shape[-1]) if scale else 1.0)


def global_max_softmax(z):  # one maximum for the whole array instead of one per row
    e = np.exp(z - z.max())
    s = e.sum(axis=-1, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


def mean_of_kept(z):  # the mean of each row's finite (unmasked) scores
    kept = np.isfinite(z)
    return np.where(kept, z, 0).sum(-1, keepdims=True) / kept.sum(-1, keepdims=True).astype(z.dtype)


def own_softmax_causal(Q, K, V, shift):  # causal attention with notebook 01 §8's softmax
    L = Q.shape[-2]
    s = scores(Q, K) + np.triu(np.full((L, L), -np.inf), k=1)
    e = np.exp(s - shift(s))
    w = e / e.sum(axis=-1, keepdims=True)
    return w @ V, w


def mean_shift_masked(Q, K, V, mask=None):  # shifted by the mean of the kept scores
    s = scores(Q, K)
    if mask is not None:
        m = np.asarray(mask)
        s = np.where(m, s, -np.inf) if m.dtype == bool else s + m.astype(s.dtype)
    kept = np.isfinite(s)
    c = np.where(kept, s, 0).sum(-1, keepdims=True) / np.maximum(
        kept.sum(-1, keepdims=True), 1).astype(s.dtype)
    e = np.where(kept, np.exp(np.where(kept, s, 0) - c), 0).astype(s.dtype)
    t = e.sum(-1, keepdims=True)
    w = np.divide(e, t, out=np.zeros_like(e), where=t > 0)
    return w @ V, w


def dtype_eq_float(Q, K, V, mask=None):  # "is it a float mask?": True for float64 only
    s = scores(Q, K)
    if mask is not None:
        if mask.dtype == float:
            s = s + mask.astype(s.dtype)
        else:
            s = np.where(mask, s, -np.inf)
    w = softmax(s)
    return w @ V, w


def dtype_eq_float_uncast(Q, K, V, mask=None):  # the same, and a float64 mask kept float64
    s = scores(Q, K)
    if mask is not None:
        s = s + mask if mask.dtype == np.float64 else np.where(mask, s, -np.inf)
    w = softmax(s)
    return w @ V, w


def mask_uncast(Q, K, V, mask=None):  # right, except that float32 scores + a float64 mask
    s = scores(Q, K)
    if mask is not None:
        m = np.asarray(mask)
        s = np.where(m, s, -np.inf) if m.dtype == bool else s + m
    w = softmax(s)
    return w @ V, w


def nan_mask_attention(Q, K, V, sm=plain_softmax):
    L = Q.shape[-2]
    mask = np.triu(np.ones((L, L)), k=1) * -np.inf  # 0 * -inf = NaN below the diagonal
    w = sm(scores(Q, K) + mask)
    return w @ V, w


def causal(Q, K, V, *, add=None, sm=softmax, scale=True, after=False, times=False):
    L = Q.shape[-2]
    s = scores(Q, K, scale)
    if times:
        s = s * np.tril(np.ones((L, L)))
    elif add is not None:
        s = s + add(L)
    w = sm(s)
    if after:
        w = w * np.tril(np.ones((L, L)))
    return w @ V, w


def attend(Q, K, V, mask=None, *, how="right", sm=softmax):
    if how == "np.sqrt":
        s = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])  # a NumPy float64
    else:
        s = scores(Q, K, scale=how != "no scale")
    if mask is not None and how != "ignored":
        m = np.asarray(mask)
        if m.dtype != bool:
            m = m.astype(s.dtype)  # cast as the statement asks: only the named mistake is made
            s = {
                "float as bool": lambda: np.where(m, s, -np.inf),
                "before scale": lambda: (
                    scores(Q, K, scale=False) / math.sqrt(Q.shape[-1]) + m / math.sqrt(Q.shape[-1])
                ),
            }.get(how, lambda: s + m)()
        elif how == "bool added":
            s = s + m
        elif how == "inverted":
            s = np.where(m, -np.inf, s)
        elif how == "-1e9":
            s = np.where(m, s, -1e9)
        elif how == "after softmax":
            w = softmax(s) * m
            return w @ V, w
        else:
            s = np.where(m, s, -np.inf)
    w = plain_softmax(s) if how == "NaN" else sm(s)
    return w @ V, w


def padding(lengths, max_len, *, le=False):
    lengths = np.asarray(lengths)[:, None]
    keep = np.arange(max_len) <= lengths if le else np.arange(max_len) < lengths
    return keep[:, None, :]


def alibi(L, H, *, first=1, sign=-1, signed=False, slopes=None):
    m = 2.0 ** (-8 * np.arange(first, first + H) / H) if slopes is None else slopes(H)
    d = np.arange(L)[:, None] - np.arange(L)
    return sign * m[:, None, None] * (d if signed else abs(d))


CATALOGUED = {
    "03.2": {
        "0·(-inf) = NaN in the mask": nan_mask_attention,
        "0·(-inf) = NaN in the mask, refused by the softmax": lambda Q, K, V: nan_mask_attention(
            Q, K, V, sm=helpers.softmax
        ),
        "triu with k=0 (NaN row)": lambda Q, K, V: causal(
            Q, K, V, add=lambda L: np.triu(np.full((L, L), -np.inf)), sm=plain_softmax
        ),
        "triu with k=0": lambda Q, K, V: causal(
            Q, K, V, add=lambda L: np.triu(np.full((L, L), -np.inf))
        ),
        "future kept, past masked": lambda Q, K, V: causal(
            Q, K, V, add=lambda L: np.tril(np.full((L, L), -np.inf), k=-1)
        ),
        "+1e9 instead of -inf": lambda Q, K, V: causal(
            Q, K, V, add=lambda L: np.triu(np.ones((L, L)), 1) * 1e9
        ),
        "no mask": lambda Q, K, V: causal(Q, K, V),
        "masked after the softmax": lambda Q, K, V: causal(Q, K, V, after=True),
        "multiplied by a 0/1 mask": lambda Q, K, V: causal(Q, K, V, times=True),
        "no scale": lambda Q, K, V: causal(
            Q, K, V, add=lambda L: np.triu(np.full((L, L), -np.inf), 1), scale=False
        ),
        "boolean mask added as numbers": lambda Q, K, V: causal(
            Q, K, V, add=lambda L: np.tril(np.ones((L, L), dtype=bool)), sm=plain_softmax
        ),
        "one maximum for the whole array": lambda Q, K, V: own_softmax_causal(
            Q, K, V, lambda s: s.max()
        ),
        "shifted by something other than the max": lambda Q, K, V: own_softmax_causal(
            Q, K, V, mean_of_kept
        ),
    },
    "03.3": {
        "off by one": lambda lengths, max_len: padding(lengths, max_len, le=True),
        "True marks padding": lambda lengths, max_len: ~padding(lengths, max_len),
        "missing the query axis": lambda lengths, max_len: (
            np.arange(max_len) < np.asarray(lengths)[:, None]
        ),
        "the 1 on the wrong side": lambda lengths, max_len: np.swapaxes(
            padding(lengths, max_len), 1, 2
        ),
        "notebook 04's four axes": lambda lengths, max_len: padding(lengths, max_len)[:, None],
        "float 0/1 mask": lambda lengths, max_len: padding(lengths, max_len).astype(np.float64),
        "integer 0/1 mask": lambda lengths, max_len: padding(lengths, max_len).astype(int),
        "the additive form": lambda lengths, max_len: np.where(
            padding(lengths, max_len), 0.0, -np.inf
        ),
    },
    "03.4": {
        "heads counted from 0": lambda seq_len, num_heads: alibi(seq_len, num_heads, first=0),
        "positive bias": lambda seq_len, num_heads: alibi(seq_len, num_heads, sign=1),
        "signed distance": lambda seq_len, num_heads: alibi(seq_len, num_heads, signed=True),
        "slopes 2^-h": lambda seq_len, num_heads: alibi(
            seq_len, num_heads, slopes=lambda H: 2.0 ** -np.arange(1, H + 1)
        ),
        "heads on the last axis": lambda seq_len, num_heads: np.transpose(
            alibi(seq_len, num_heads), (1, 2, 0)
        ),
        "the causal form": lambda seq_len, num_heads: np.where(  # section 9's paper form
            np.arange(seq_len)[None, :] <= np.arange(seq_len)[:, None],
            alibi(seq_len, num_heads),
            -np.inf,
        ),
    },
    "03.1": {
        "float 0/1 mask": lambda size: np.tril(np.ones((size, size))),
        "the additive form": lambda size: np.where(
            np.tril(np.ones((size, size))) == 1, 0.0, -np.inf
        ),
        "True = blocked": lambda size: np.triu(np.ones((size, size), dtype=bool), k=1),
        "diagonal excluded": lambda size: np.arange(size)[None, :] < np.arange(size)[:, None],
        "one future token allowed": lambda size: (
            np.arange(size)[None, :] <= np.arange(size)[:, None] + 1
        ),
        "upper triangle": lambda size: np.triu(np.ones((size, size), dtype=bool)),
        "integer 0/1 mask": lambda size: np.tril(np.ones((size, size), dtype=int)),
    },
    "03.5": {
        "boolean mask added as numbers": lambda Q, K, V, mask=None: attend(
            Q, K, V, mask, how="bool added"
        ),
        "True = blocked": lambda Q, K, V, mask=None: attend(Q, K, V, mask, how="inverted"),
        "float mask used as a boolean": lambda Q, K, V, mask=None: attend(
            Q, K, V, mask, how="float as bool"
        ),
        "masked after the softmax": lambda Q, K, V, mask=None: attend(
            Q, K, V, mask, how="after softmax"
        ),
        "NaN on a fully masked row": lambda Q, K, V, mask=None: attend(Q, K, V, mask, how="NaN"),
        "-1e9 instead of -inf": lambda Q, K, V, mask=None: attend(Q, K, V, mask, how="-1e9"),
        "float mask added before the scale": lambda Q, K, V, mask=None: attend(
            Q, K, V, mask, how="before scale"
        ),
        "no scale": lambda Q, K, V, mask=None: attend(Q, K, V, mask, how="no scale"),
        "ignored the mask": lambda Q, K, V, mask=None: attend(Q, K, V, mask, how="ignored"),
        "float32 became float64": lambda Q, K, V, mask=None: attend(Q, K, V, mask, how="np.sqrt"),
        "a float32 mask taken for a boolean one": dtype_eq_float,
        "a float64 mask made the scores float64": mask_uncast,
        "one maximum for the whole array": lambda Q, K, V, mask=None: attend(
            Q, K, V, mask, sm=global_max_softmax
        ),
        "shifted by something other than the max": mean_shift_masked,
    },
}


def mask_zeroed_weights(Q, K, V, mask=None):  # multiplies the weights by the mask, renormalises
    w = softmax(scores(Q, K))
    if mask is not None:
        m = np.asarray(mask)
        w = w * (m if m.dtype == bool else np.exp(m))
        w = w / w.sum(-1, keepdims=True)  # 0/0 on a fully masked row
    return w @ V, w


UNLISTED = {
    "03.2": [
        lambda Q, K, V: causal(Q, K, V, add=lambda L: np.triu(np.full((L, L), -1e9), 1).T),
        lambda Q, K, V: causal(Q, K, V, add=lambda L: np.triu(np.full((L, L), -np.inf), 2)),
        lambda Q, K, V: causal(
            Q, K, V, add=lambda L: np.triu(np.full((L, L), -1.0), 1)
        ),  # -1, not -inf
        lambda Q, K, V: causal(Q, K, V, add=lambda L: np.triu(np.full((L, L), -np.inf), 1))[1],
        lambda Q, K, V: (lambda o, w: (o, np.tril(w)))(*causal(Q, K, V)),
        lambda Q, K, V: causal(  # one maximum for the whole array
            Q, K, V, add=lambda L: np.triu(np.full((L, L), -np.inf), 1), sm=global_max_softmax
        ),
    ],
    "03.3": [
        lambda lengths, max_len: padding(lengths, max_len)[:, :, ::-1],  # left padding
        lambda lengths, max_len: padding(lengths, max_len)[:, None, None],  # five axes
        lambda lengths, max_len: np.ones((len(lengths), 1, max_len), dtype=bool),
        lambda lengths, max_len: padding(lengths, max_len)[..., :-1],  # one key short
        lambda lengths, max_len: padding(np.max(lengths) * np.ones(len(lengths), int), max_len),
        lambda lengths, max_len: padding(lengths, int(np.max(lengths))),  # max_len ignored
    ],
    "03.4": [
        lambda seq_len, num_heads: alibi(seq_len, num_heads) / num_heads,
        lambda seq_len, num_heads: alibi(
            seq_len, num_heads, slopes=lambda H: 2.0 ** (-8 * np.arange(H, 0, -1) / H)
        ),
        lambda seq_len, num_heads: alibi(
            seq_len, num_heads, slopes=lambda H: 1 / np.arange(1, H + 1)
        ),
        lambda seq_len, num_heads: np.tril(alibi(seq_len, num_heads)),
        lambda seq_len, num_heads: alibi(seq_len, num_heads)[:, ::-1],
    ],
    "03.1": [
        lambda size: np.tril(np.ones((size, size), dtype=bool)).T,
        lambda size: np.eye(size, dtype=bool),
        lambda size: np.ones((size, size), dtype=bool),
        lambda size: np.tril(np.ones((size, size), dtype=bool))[None, None],
        lambda size: np.tril(np.ones((size + 1, size + 1), dtype=bool))[1:, 1:][::-1],
        lambda size: np.tril(np.ones((size, size), dtype=np.uint8)).view(bool).T.T[::1, ::-1],
    ],
    "03.5": [
        mask_zeroed_weights,
        lambda Q, K, V, mask=None: attend(Q, K, V, None if mask is None else np.asarray(mask).T),
        lambda Q, K, V, mask=None: attend(
            Q, K, V, None if mask is None else np.asarray(mask, dtype=float)
        ),
        lambda Q, K, V, mask=None: (lambda o, w: (np.nan_to_num(o), np.nan_to_num(w)))(
            *attend(Q, K, V, mask, how="NaN")
        ),
        lambda Q, K, V, mask=None: attend(
            Q, K, V, mask if mask is None or np.asarray(mask).dtype == bool else None
        ),
        lambda Q, K, V, mask=None: attend(Q, K, V, mask, sm=global_max_softmax)[::-1],
        dtype_eq_float_uncast,
        lambda Q, K, V, mask=None: mask_uncast(  # every float mask taken for float64
            Q, K, V, None if mask is None else np.asarray(mask, dtype=np.float64)
            if np.asarray(mask).dtype != bool else mask
        ),
    ],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


def test_a_float_padding_mask_is_named_for_what_it_does():
    result = check("03.3", CATALOGUED["03.3"]["float 0/1 mask"])
    assert (
        "returned a float64 array" in result.report and "expected a boolean array" in result.report
    )
    assert "1.0 and 0.0 mask nothing" in result.report


def test_one_maximum_for_the_whole_array_is_caught_by_its_own_case():
    for exercise_id in ("03.2", "03.5"):
        result = check(exercise_id, CATALOGUED[exercise_id]["one maximum for the whole array"])
        assert not result.passed and result.mistake == "one maximum for the whole array"
        assert "each row needs its own maximum" in result.report
    guarded = check("03.2", UNLISTED["03.2"][-1])  # the guarded division hides the NaN ...
    assert not guarded.passed and "each row needs its own maximum" in guarded.report


def test_a_float32_mask_tested_with_dtype_equals_float_is_caught_and_named():
    """The worst finding of the review: `if mask.dtype == float` passed all 11 cases, because
    every float mask was float64; on a float32 0/-inf causal mask it inverts the mask."""
    result = check("03.5", dtype_eq_float)
    assert result.mistakes == ("a float32 mask taken for a boolean one",), result.report
    both = check("03.5", dtype_eq_float_uncast)  # ... and a float64 mask kept float64 too
    assert both.mistakes == (
        "a float32 mask taken for a boolean one", "a float64 mask made the scores float64"
    ), both.report


def test_float32_inputs_with_a_float64_mask_give_float32_as_the_statement_promises():
    ex = get("03.5")
    (case,) = [c for c in ex.cases if len(c.args) > 3 and np.asarray(c.args[0]).dtype
               == np.float32 and np.asarray(c.args[3]).dtype == np.float64]
    out, w = ex.reference(*case.args)
    assert out.dtype == w.dtype == np.float32
    lib_out, lib_w = helpers.attention(*case.args)
    assert lib_out.dtype == np.float32 and np.allclose(w, lib_w, atol=1e-6)
    assert check("03.5", mask_uncast).mistakes == ("a float64 mask made the scores float64",)


def logsumexp_attention(Q, K, V, mask=None):
    # a right answer computed another way: weights = exp(s - logsumexp(s)), in the input's dtype
    s = scores(Q, K)
    if mask is not None:
        m = np.asarray(mask)
        s = np.where(m, s, -np.inf) if m.dtype == bool else s + m.astype(s.dtype)
    peak = s.max(axis=-1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    total = np.exp(s - peak).sum(axis=-1, keepdims=True)
    lse = peak + np.log(np.where(total > 0, total, 1.0))
    w = np.where(total > 0, np.exp(s - lse), 0.0).astype(s.dtype)
    return w @ V, w


def test_a_right_answer_computed_another_way_passes_in_float64_and_float32():
    result = check("03.5", logsumexp_attention)
    assert result.passed, result.report
    assert any(np.asarray(c.args[0]).dtype == np.float32 for c in get("03.5").cases)


def test_every_mask_exercise_has_float_masks_and_fully_masked_rows():
    cases = get("03.5").cases
    masks = [np.asarray(c.args[3]) for c in cases if len(c.args) > 3]
    floats = [m for m in masks if m.dtype.kind == "f"]
    assert any(set(np.unique(m)) == {0.0, -np.inf} for m in floats)
    assert any((~m).all(axis=-1).any() for m in masks if m.dtype == bool)
    assert any(np.isneginf(m).all(axis=-1).any() for m in floats)


