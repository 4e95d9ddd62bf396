"""Exercise 03.5 of notebook 03: attention with any mask, boolean or float, float32 or float64
(imported by ``ex03``)."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import INF, _attend, _softmax, _t, softmax_one_max_guarded
from helpers.exercises.ex01_softmax import NOT_THE_MAX, NOT_THE_MAX_EXPLAINED, shifted_by_mean
from helpers.exercises.ex03_common import pair_in_input_dtype, plain_softmax, promoted

rng = np.random.default_rng(335)
n = rng.standard_normal


# --------------------------------------------------------------------------- 03.5
def masked_attention(Q, K, V, mask=None):
    if mask is None:
        return _attend(Q, K, V)
    mask = np.asarray(mask)
    if mask.dtype == np.bool_:
        return _attend(Q, K, V, keep=mask)
    # a float mask in the scores' dtype: float32 scores + a float64 mask would become float64
    return _attend(Q, K, V, bias=mask.astype(np.result_type(Q.dtype, K.dtype)))


def _mask_variant(how):
    """masked_attention with one wrong way of applying the mask (or a wrong scale or softmax)."""

    def wrong(Q, K, V, mask=None):
        d = math.sqrt(Q.shape[-1])
        s = Q @ _t(K) / (1.0 if how == "no scale" else d)
        if mask is not None and how != "ignored":
            m = np.asarray(mask)
            float64_only = how == "float64 only" and m.dtype not in (np.bool_, float)
            if m.dtype != np.bool_ and how != "float64 mask kept":
                m = m.astype(s.dtype)  # every variant but that one casts the mask as it should
            if float64_only:  # `if mask.dtype == float`: np.dtype("float32") == float is False
                s = np.where(m, s, -INF)
            elif m.dtype != np.bool_:  # a float mask
                if how == "float as bool":
                    s = np.where(m, s, -INF)
                elif how == "before scale":
                    s = (s * d + m) / d
                else:
                    s = s + m
            elif how == "bool added":
                s = s + m
            elif how == "inverted":
                s = np.where(m, -INF, s)
            elif how == "-1e9":
                s = np.where(m, s, -1e9)
            elif how == "after softmax":
                w = _softmax(s) * m
                return w @ V, w
            else:
                s = np.where(m, s, -INF)
        softmax = {
            "NaN": plain_softmax,
            "global max": softmax_one_max_guarded,
            "mean shift": lambda z: shifted_by_mean(z, guarded=True, finite_only=True),
        }.get(how, _softmax)
        w = softmax(s)
        return w @ V, w

    return wrong


_causal4 = np.tril(np.ones((4, 4), dtype=bool))
_pad = np.arange(5) < np.array([5, 2])[:, None, None]  # (2, 1, 5)
_bias = np.array([[0.0, -1.5, 0.5, -INF], [1.0, 0.0, -INF, -2.0], [0.0, 0.0, 1.0, 0.0]])
_empty = np.ones((3, 5), dtype=bool)
_empty[1] = False
_empty_f = np.zeros((3, 5))
_empty_f[2] = -INF
_heads_pad = (np.arange(4) < np.array([4, 3])[:, None])[:, None, None, :]  # (2, 1, 1, 4)
_far_rows = 2.0 * np.array(  # Q = 2 S and K = I with d_k = 4: the scaled scores are S
    [[1000.0, 999.0, 0.0, 0.0], [0.0, -1.0, 0.5, 0.2], [-800.0, -801.0, -799.0, -802.0]]
)
# float32 inputs on a grid of quarters: Q Kᵀ / 2 is exact in float32 and in float64
_q32, _k32 = (rng.integers(-4, 5, size=s).astype(np.float32) / 4 for s in ((3, 4), (5, 4)))
_v32 = n((5, 3)).astype(np.float32)
_q32b, _k32b = (rng.integers(-4, 5, size=(4, 4)).astype(np.float32) / 4 for _ in range(2))
_causal32 = np.where(_causal4, 0.0, -INF).astype(np.float32)  # a float32 0/-inf mask
# a float64 0/-inf mask, no row empty: for float32 scores only the dtype is at stake here
_keep_f64 = np.where(np.array([[1, 0, 1, 1], [1, 1, 0, 1], [0, 1, 1, 1]], bool), 0.0, -INF)
_mean_far = 2.0 * np.array(  # row 1's max lies 1000 above its mean
    [[0.5, -0.2, 0.1, 0.3], [1000.0, -1000.0, 0.5, -0.5], [0.2, 0.4, -0.1, 0.0]]
)
register(
    Exercise(
        id="03.5",
        reference=masked_attention,
        taught="notebook 03 §1, §6 and §8",
        compare=pair_in_input_dtype,
        no_warnings=True,
        difficulty=3,
        minutes=25,
        hints=(
            "Three steps after the scaled scores: apply the mask (a boolean one with "
            "`np.where(mask, scores, -np.inf)`, a float one by adding it; `mask.dtype == bool` "
            "tells them apart), a softmax over the last axis, then `weights @ V`.",
            "A row whose every score is -inf breaks the usual softmax: its maximum is -inf, and "
            "-inf - (-inf) is NaN. Shift such a row by 0 instead (a safe max), then divide with "
            "`np.divide(e, total, out=np.zeros_like(e), where=total > 0)`: the empty row stays "
            "0 and NumPy does not warn (section 8, from notebook 01 §8).",
            "Subtract each row's own maximum (`axis=-1, keepdims=True`), never one maximum for "
            "the whole array. Keep float32 in float32: divide by `math.sqrt(d_k)`, a Python "
            "float; `np.sqrt(d_k)` is a NumPy float64 and promotes the whole array (notebook 01 "
            "§6).",
        ),
        cases=(
            Case((n((3, 4)), n((5, 4)), n((5, 2))), "no mask; L_q = 3, L_k = 5, d_k = 4, d_v = 2"),
            Case((n((4, 6)), n((4, 6)), n((4, 3)), _causal4), "a boolean causal mask (4, 4)"),
            Case(
                (n((2, 3, 4)), n((2, 5, 4)), n((2, 5, 6)), _pad),
                "a boolean padding mask (2, 1, 5): lengths 5 and 2",
            ),
            Case(
                (n((3, 4)), n((4, 4)), n((4, 2)), _bias),
                "a float mask: biases 0, ±1, ±2 and -inf, added to the scaled scores",
            ),
            Case(
                (n((3, 4)), n((5, 4)), n((5, 3)), _empty),
                "row 1 fully masked (boolean): zero weights "
                "and a zero output row, no NaN, no warning",
            ),
            Case(
                (n((3, 4)), n((5, 4)), n((5, 3)), _empty_f),
                "row 2 fully masked by a float -inf mask",
            ),
            Case(
                (n((4, 8)) * 6, n((4, 8)) * 6, n((4, 2)), _causal4),
                "large scores with a causal mask: exp overflows without the max shift",
            ),
            Case(
                (n((2, 2, 4, 3)), n((2, 2, 4, 3)), n((2, 2, 4, 5)), _heads_pad),
                "batch and heads with a padding mask (2, 1, 1, 4)",
            ),
            Case(
                (n((4, 6)), n((4, 6)), n((4, 3)), np.where(_causal4, 0.0, -INF)),
                "a float 0/-inf causal mask (4, 4): 0 keeps a key, -inf removes it",
            ),
            Case(
                (_far_rows, np.eye(4), n((4, 2))),
                "no mask; rows whose scores differ by about 1000 (row 0 near 1000, row 2 near "
                "-800): each row needs its own maximum",
            ),
            Case(
                (_q32, _k32, _v32, _empty),
                "float32 Q, K, V with a boolean mask, row 1 fully masked: float32 results",
            ),
            Case(
                (_q32b, _k32b, n((4, 3)).astype(np.float32), _causal32),
                "float32 Q, K, V with a float32 0/-inf causal mask: a float mask, added, even "
                "though its dtype is not float64",
            ),
            Case(
                (_q32[:, :4], _k32[:4], _v32[:4, :2], _keep_f64),
                "float32 Q, K, V with a float64 0/-inf mask: the results stay float32 (cast the "
                "mask to the scores' dtype)",
            ),
            Case(
                (_mean_far, np.eye(4), n((4, 2))),
                "no mask; row 1's max lies 1000 above its mean: only a shift by each row's max "
                "keeps exp finite",
            ),
        ),
        mistakes=(
            Mistake(
                "boolean mask added as numbers",
                "scores + mask adds 1 where True and 0 where False: "
                "nothing is masked. Use np.where(mask, scores, -inf) for a boolean mask.",
                "notebook 03 §1",
                _mask_variant("bool added"),
            ),
            Mistake(
                "True = blocked",
                "in this course a boolean True means may attend.",
                "notebook 03 §8",
                _mask_variant("inverted"),
            ),
            Mistake(
                "float mask used as a boolean",
                "a float mask is added to the scores: 0.0 changes "
                "nothing and -inf hides the key; np.where treats 0.0 as masked and -inf as kept.",
                "notebook 03 §1",
                _mask_variant("float as bool"),
            ),
            Mistake(
                "masked after the softmax",
                "zeroed weights must be renormalised; mask the scores before the softmax.",
                "notebook 03 §1",
                _mask_variant("after softmax"),
            ),
            Mistake(
                "NaN on a fully masked row",
                "a row of -inf has max -inf and -inf - (-inf) = NaN; the "
                "row must get zero weights and a zero output.",
                "notebook 03 §8",
                _mask_variant("NaN"),
            ),
            Mistake(
                "-1e9 instead of -inf",
                "with -1e9 a fully masked row becomes uniform: a query that "
                "may see nothing averages every value. It must get zeros.",
                "notebook 03 §8",
                _mask_variant("-1e9"),
            ),
            Mistake(
                "float mask added before the scale",
                "the mask is added to QKᵀ/√d_k, after the division.",
                "notebook 03 (introduction)",
                _mask_variant("before scale"),
            ),
            Mistake(
                "no scale",
                "the scores must be divided by √d_k.",
                "notebook 02 §11",
                _mask_variant("no scale"),
            ),
            Mistake(
                "float32 became float64",
                "float32 inputs must give float32 results. A NumPy float64 scalar such as "
                "np.sqrt(d_k), or any float64 array in the computation, promotes the whole "
                "result; divide by math.sqrt(d_k), a Python float.",
                "notebook 01 §6",
                promoted(masked_attention),
            ),
            Mistake(
                "ignored the mask",
                "the mask argument is never used.",
                "notebook 03 §1",
                _mask_variant("ignored"),
            ),
            Mistake(
                "a float32 mask taken for a boolean one",
                "mask.dtype == float is True for float64 only (np.dtype('float32') == float is "
                "False), so a float32 0/-inf mask went to the boolean branch, where np.where "
                "keeps the -inf keys and drops the 0 ones: the mask is inverted. Test "
                "mask.dtype == bool instead.",
                "notebook 03 §8",
                _mask_variant("float64 only"),
            ),
            Mistake(
                "a float64 mask made the scores float64",
                "float32 scores + a float64 mask is float64 (NumPy promotes to the wider dtype): "
                "cast the mask first, mask.astype(scores.dtype).",
                "notebook 03 §8",
                _mask_variant("float64 mask kept"),
            ),
            Mistake(
                "one maximum for the whole array",
                "scores.max() without axis shifts every row by the largest score of the whole "
                "array: a row far below it underflows to all zeros. Take each row's own max "
                "(axis=-1, keepdims=True).",
                "notebook 01 §8–9",
                _mask_variant("global max"),
            ),
            Mistake(
                NOT_THE_MAX,
                NOT_THE_MAX_EXPLAINED,
                "notebook 01 §8",
                _mask_variant("mean shift"),
            ),
        ),
    )
)
