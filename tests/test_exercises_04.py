"""Notebook 04's exercises: each known mistake, written as a learner would, is caught and named;
wrong attempts outside the catalogue are caught too."""

import math

import numpy as np
from exercise_catalogue import catalogue_tests

from helpers.exercises import check
from helpers.exercises._core import get


def softmax(z, axis=-1):
    m = z.max(axis=axis, keepdims=True)
    e = np.exp(z - np.where(np.isfinite(m), m, 0.0))
    s = e.sum(axis=axis, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


def unsafe_softmax(z, axis=-1):  # stable, but 0/0 = NaN on a row of -inf
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def global_max_softmax(z, axis=-1):  # one maximum for the whole array instead of one per row
    e = np.exp(z - z.max())
    s = e.sum(axis=axis, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


def global_max_unguarded(z, axis=-1):  # one maximum for the whole array, no guard: 0/0 = NaN
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=axis, keepdims=True)


def split(x, h):
    b, L, d = x.shape
    return x.reshape(b, L, h, d // h).transpose(0, 2, 1, 3)


def combine(x):
    b, h, L, d_k = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, L, h * d_k)


def mha(
    x,
    W_q,
    W_k,
    W_v,
    W_o,
    num_heads,
    mask=None,
    *,
    sp=split,
    co=combine,
    d_scale=None,
    out=True,
    axis=-1,
    invert=False,
    mean=False,
    sm=softmax,
    add_any_mask=False,
    where_any_mask=False,
    finite_as_keep=False,
    blocked=-np.inf,
):
    Q, K, V = sp(x @ W_q, num_heads), sp(x @ W_k, num_heads), sp(x @ W_v, num_heads)
    s = Q @ K.transpose(0, 1, 3, 2) / math.sqrt(d_scale or Q.shape[-1])
    if mask is not None:
        m = np.asarray(mask)
        if add_any_mask:
            s = s + m
        elif where_any_mask:
            s = np.where(m, s, -np.inf)
        elif finite_as_keep and m.dtype != bool:
            s = np.where(np.isfinite(m), s, -np.inf)
        elif m.dtype == bool:
            s = np.where(~m if invert else m, s, blocked)
        else:
            s = s + m
    w = sm(s, axis)
    y = co(w @ V)
    return (y @ W_o if out else y), (w.mean(axis=1) if mean else w)


def reshape_both_ways(x, W_q, W_k, W_v, W_o, num_heads, mask=None):
    # the headline pitfall done in both directions: no transpose in the split nor the combine
    b, L, d = x.shape
    Q, K, V = ((x @ W).reshape(b, num_heads, L, d // num_heads) for W in (W_q, W_k, W_v))
    s = Q @ K.transpose(0, 1, 3, 2) / math.sqrt(d // num_heads)
    if mask is not None:
        m = np.asarray(mask)
        s = np.where(m, s, -np.inf) if m.dtype == bool else s + m
    w = softmax(s)
    return (w @ V).reshape(b, L, d) @ W_o, w


def np_sqrt_scale(x, W_q, W_k, W_v, W_o, num_heads, mask=None):
    d_k = x.shape[-1] // num_heads
    Q, K, V = (split(x @ W, num_heads) for W in (W_q, W_k, W_v))
    s = Q @ K.transpose(0, 1, 3, 2) / np.sqrt(d_k)  # a NumPy float64: float32 becomes float64
    if mask is not None:
        m = np.asarray(mask)
        s = np.where(m, s, -np.inf) if m.dtype == bool else s + m
    w = softmax(s)
    return combine(w @ V) @ W_o, w


CATALOGUED = {
    "04.1": {
        "reshape without the transpose": lambda x, num_heads: x.reshape(
            x.shape[0], num_heads, x.shape[1], x.shape[2] // num_heads
        ),
        "(d_k, heads) order": lambda x, num_heads: x.reshape(
            x.shape[0], x.shape[1], x.shape[2] // num_heads, num_heads
        ).transpose(0, 3, 1, 2),
        "no transpose at all": lambda x, num_heads: x.reshape(*x.shape[:2], num_heads, -1),
        "heads in front of the batch": lambda x, num_heads: x.reshape(
            *x.shape[:2], num_heads, -1
        ).transpose(2, 0, 1, 3),
    },
    "04.2": {
        "np.tile": lambda kv, num_groups: np.tile(kv, (1, num_groups, 1, 1)),
        "repeated along the sequence": lambda kv, num_groups: kv.repeat(num_groups, axis=2),
        "repeated along the features": lambda kv, num_groups: kv.repeat(num_groups, axis=3),
    },
    "04.3": {  # written with int(), as the statement asks, except for the overflow itself
        "forgot the factor 2": lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            int(num_layers) * int(num_kv_heads) * int(d_k) * int(seq_len) * int(bytes_per_value)
        ),
        "numbers, not bytes": lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * math.prod(int(v) for v in (num_layers, num_kv_heads, d_k, seq_len))
        ),
        "bits, not bytes": lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * math.prod(map(int, (num_layers, num_kv_heads, d_k, seq_len, bytes_per_value))) * 8
        ),
        "int32 overflow": lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * num_layers * num_kv_heads * d_k * seq_len * bytes_per_value
        ),
        "np.prod in int32": lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: int(
            np.prod(
                np.array([num_layers, num_kv_heads, d_k, seq_len, bytes_per_value]),
                dtype=np.int32,
            )
        ) * 2,
        "seq_len squared": lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * int(num_layers) * int(num_kv_heads) * int(d_k) * int(seq_len) ** 2
            * int(bytes_per_value)
        ),
    },
    "04.4": {
        "reshape without the transpose": lambda x: x.reshape(x.shape[0], x.shape[2], -1),
        "(d_k, heads) order": lambda x: np.transpose(x, (0, 2, 3, 1)).reshape(
            x.shape[0], x.shape[2], -1
        ),
        "heads stacked along the sequence": lambda x: np.concatenate(
            [x[:, i] for i in range(x.shape[1])], axis=1
        ),
        "summed the heads": lambda x: np.sum(x, axis=1),
    },
    "04.5": {
        "split without the transpose": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x,
            W_q,
            W_k,
            W_v,
            W_o,
            num_heads,
            mask,
            sp=lambda y, h: y.reshape(y.shape[0], h, y.shape[1], -1),
        ),
        "combine without the transpose": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x,
            W_q,
            W_k,
            W_v,
            W_o,
            num_heads,
            mask,
            co=lambda y: y.reshape(y.shape[0], y.shape[2], -1),
        ),
        "scaled by √d_model": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, d_scale=x.shape[-1]
        ),
        "forgot W_o": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, out=False
        ),
        "softmax over the query axis": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, axis=-2
        ),
        "True = blocked": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, invert=True
        ),
        "weights averaged over the heads": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, mean=True
        ),
        "split and combine without the transpose": reshape_both_ways,
        "boolean mask added as numbers": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, add_any_mask=True
        ),
        "float mask used as a boolean": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, where_any_mask=True
        ),
        "NaN on a fully masked row": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, sm=unsafe_softmax
        ),
        "float32 became float64": np_sqrt_scale,
        "float mask turned boolean with np.isfinite": (
            lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
                x, W_q, W_k, W_v, W_o, num_heads, mask, finite_as_keep=True
            )
        ),
        "-1e9 instead of -inf": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, blocked=-1e9
        ),
        "one maximum for the whole array": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, sm=global_max_unguarded
        ),
        "one maximum for the whole array, with the guarded division": (
            lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
                x, W_q, W_k, W_v, W_o, num_heads, mask, sm=global_max_softmax
            )
        ),
    },
}


def heads_loop_wrong_columns(x, W_q, W_k, W_v, W_o, num_heads, mask=None):
    d_k = x.shape[-1] // num_heads
    outs, ws = [], []
    for i in range(num_heads):  # takes every num_heads-th column instead of a block
        cols = slice(i, None, num_heads)
        Q, K, V = x @ W_q[:, cols], x @ W_k[:, cols], x @ W_v[:, cols]
        s = Q @ K.transpose(0, 2, 1) / np.sqrt(d_k)
        if mask is not None:
            m = np.asarray(mask)
            s = (
                np.where(m[:, 0] if m.ndim == 4 else m, s, -np.inf)
                if m.dtype == bool
                else s + (m[:, 0] if m.ndim == 4 else m)
            )
        w = softmax(s)
        outs.append(w @ V)
        ws.append(w)
    return np.concatenate(outs, -1) @ W_o, np.stack(ws, 1)


UNLISTED = {
    "04.1": [
        lambda x, num_heads: split(x, num_heads).copy()[:, ::-1],  # heads reversed
        lambda x, num_heads: x.reshape(x.shape[0], x.shape[1], num_heads, -1).swapaxes(2, 3),
        lambda x, num_heads: split(x, num_heads).transpose(0, 1, 3, 2),
        lambda x, num_heads: np.stack(np.split(x, num_heads, axis=1), axis=1),  # split positions
        lambda x, num_heads: split(x, num_heads)[:, :, :, : x.shape[2] // num_heads - 1],
    ],
    "04.2": [
        lambda kv, num_groups: np.concatenate([kv] * num_groups, axis=1),  # = tile
        lambda kv, num_groups: (
            kv[:, None].repeat(num_groups, 1).reshape(kv.shape[0], -1, *kv.shape[2:])
        ),
        lambda kv, num_groups: np.repeat(kv, num_groups, axis=0),
        lambda kv, num_groups: kv * num_groups,
        lambda kv, num_groups: (
            np.broadcast_to(kv, (kv.shape[0], num_groups * kv.shape[1], *kv.shape[2:]))
            if kv.shape[1] == 1
            else kv
        ),
    ],
    "04.3": [
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * num_kv_heads * d_k * seq_len * bytes_per_value
        ),  # one layer
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * num_layers * num_kv_heads * d_k * seq_len * bytes_per_value / 2**30
        ),  # GiB
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * num_layers * d_k * seq_len * bytes_per_value
        ),
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            3 * num_layers * num_kv_heads * d_k * seq_len * bytes_per_value
        ),  # q, k and v
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: str(
            2 * num_layers * num_kv_heads * d_k * seq_len * bytes_per_value
        ),
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: float(  # a float
            2 * int(num_layers) * int(num_kv_heads) * int(d_k) * int(seq_len) * int(bytes_per_value)
        ),
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: int(  # float32 rounding
            np.prod(np.array([2, num_layers, num_kv_heads, d_k, seq_len, bytes_per_value],
                             dtype=np.float32))
        ),
    ],
    "04.4": [
        lambda x: combine(x)[..., ::-1],
        lambda x: x.transpose(0, 2, 1, 3),  # forgot the reshape
        lambda x: x.swapaxes(1, 3).reshape(x.shape[0], x.shape[2], -1),
        lambda x: x.mean(axis=1),
        lambda x: combine(x[:, ::-1]),
    ],
    "04.5": [
        heads_loop_wrong_columns,
        lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_k, W_q, W_v, W_o, num_heads, mask
        ),
        lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o.T, num_heads, mask
        ),
        lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(x, W_q, W_k, W_v, W_o, num_heads),
        lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(x, W_q, W_k, W_v, W_o, 1, mask),
        lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(  # mask multiplied into scores
            x, W_q, W_k, W_v, W_o, num_heads, None if mask is None else 0 * np.asarray(mask)
        ),
    ],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


def einsum_heads(x, W_q, W_k, W_v, W_o, num_heads, mask=None):
    # a right answer written another way (named axes, notebook 04 §4), in the input's dtype
    d = x.shape[-1]
    d_k = d // num_heads
    Q, K, V = (np.einsum("bsd,dhk->bhsk", x, W.reshape(d, num_heads, d_k)) for W in (W_q, W_k, W_v))
    s = np.einsum("bhqk,bhsk->bhqs", Q, K) / math.sqrt(d_k)
    if mask is not None:
        m = np.asarray(mask)
        s = np.where(m, s, -np.inf) if m.dtype == bool else s + m
    w = softmax(s)
    out = np.einsum("bhqs,bhsk->bqhk", w, V)
    return np.einsum("bqhk,hkd->bqd", out, W_o.reshape(num_heads, d_k, d)), w


def test_a_right_answer_written_with_einsum_passes_in_float64_and_float32():
    result = check("04.5", einsum_heads)
    assert result.passed, result.report


def test_one_maximum_for_the_whole_array_is_caught_by_its_own_case():
    name = "one maximum for the whole array, with the guarded division"
    result = check("04.5", CATALOGUED["04.5"][name])
    assert not result.passed and result.failed_cases == (9,)
    assert "each row needs its own maximum" in result.report


def test_04_3_refuses_a_float_and_says_a_rounded_product_is_rounded():
    as_float = check("04.3", UNLISTED["04.3"][5])
    assert not as_float.passed and as_float.failed_cases == tuple(range(1, 8))
    assert "a float; expected the int 2147483648" in as_float.report
    rounded = check("04.3", UNLISTED["04.3"][6])
    assert not rounded.passed and rounded.failed_cases == (7,)
    assert "expected 4477556160: off by 64, a rounding error" in rounded.report


def test_a_numpy_integer_answer_is_accepted_and_int32_sizes_must_not_overflow():
    def with_numpy(num_layers, num_kv_heads, d_k, seq_len, bytes_per_value):
        sizes = np.array([num_layers, num_kv_heads, d_k, seq_len, bytes_per_value], dtype=np.int64)
        return 2 * np.prod(sizes)  # an np.int64: accepted

    assert check("04.3", with_numpy).passed
    result = check("04.3", CATALOGUED["04.3"]["int32 overflow"])
    assert "expected 4294967296" in result.report and result.mistake == "int32 overflow"


def test_every_case_of_04_1_and_04_4_has_four_different_sizes():
    for exercise_id in ("04.1", "04.4"):
        for case in get(exercise_id).cases:
            x = case.args[0]
            sizes = (*x.shape[:2], case.args[1], x.shape[2] // case.args[1]) if len(
                case.args
            ) == 2 else x.shape
            assert len(set(sizes)) == 4, (exercise_id, case.note, sizes)


