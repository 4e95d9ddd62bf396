"""Exercise 07.4 (nn.MultiheadAttention's masks in the course's convention): the reference gives
nn.MultiheadAttention's own outputs through MultiHeadAttention.from_torch; every known mistake,
written as a learner would, is caught and named; other wrong attempts are caught; right answers
in another allowed form pass."""

import warnings

import numpy as np
import pytest
import torch
from exercise_catalogue import catalogue_tests

from helpers import MultiHeadAttention
from helpers.exercises import check, reference
from helpers.exercises._core import get

INF = np.inf


def to4(attn_mask, num_heads, head_major=False):
    """The learner's first step: attn_mask on four axes."""
    if attn_mask.ndim == 2:
        return attn_mask[np.newaxis, np.newaxis]
    B = attn_mask.shape[0] // num_heads
    if head_major:
        return np.transpose(attn_mask.reshape(num_heads, B, *attn_mask.shape[1:]), (1, 0, 2, 3))
    return attn_mask.reshape(B, num_heads, *attn_mask.shape[1:])


def learner(attn_mask, key_padding_mask, num_heads, *, flip_a=True, flip_p=True, keys=True,
            op="and", as_float=None, head_major=False, reshape=True, pad_float="where"):
    """One learner's conversion, written without the module's helper; switches make mistakes."""
    if attn_mask is None and key_padding_mask is None:
        return None
    m = None
    if attn_mask is not None:
        m = to4(attn_mask, num_heads, head_major) if reshape or attn_mask.ndim == 2 else attn_mask
        if m.dtype == bool:
            m = np.logical_not(m) if flip_a else m
        elif as_float == "isfinite":
            m = np.isfinite(m)
        elif as_float == "nonzero":
            m = ~m.astype(bool)
    if key_padding_mask is None:
        return m
    B, L_k = key_padding_mask.shape
    p = key_padding_mask.reshape(B, 1, 1, L_k) if keys else key_padding_mask.reshape(B, 1, L_k, 1)
    ok = ~p if flip_p else p
    if m is None:
        return ok
    if m.dtype == bool:
        return np.logical_and(m, ok) if op == "and" else np.logical_or(m, ok)
    if pad_float == "0/1":
        return m + p
    if pad_float == "times":
        return m + p * -np.inf
    return m + np.where(ok, 0.0, -1e9 if pad_float == "-1e9" else -np.inf)


def mistake(**switches):
    return lambda attn_mask, key_padding_mask, num_heads: learner(
        attn_mask, key_padding_mask, num_heads, **switches
    )


CATALOGUED = {
    "07.4": {
        "attn_mask's polarity not flipped": mistake(flip_a=False),
        "key_padding_mask's polarity not flipped": mistake(flip_p=False),
        "neither polarity flipped": mistake(flip_a=False, flip_p=False),
        "key padding broadcast over the queries": mistake(keys=False),
        "masks combined with OR": mistake(op="or"),
        "float attn_mask turned into a boolean (its biases dropped)": mistake(as_float="isfinite"),
        "float attn_mask turned into a boolean (non-zero entries blocked)": mistake(
            as_float="nonzero"
        ),
        "(B·h) axis not reshaped": mistake(reshape=False),
        "(B·h) axis split as (h, B)": mistake(head_major=True),
        "boolean key_padding_mask added as 0/1": mistake(pad_float="0/1"),
        "padding made additive as pad · (-inf)": mistake(pad_float="times"),
        "-1e9 instead of -inf": mistake(pad_float="-1e9"),
    }
}


def ignores_padding(attn_mask, key_padding_mask, num_heads):
    return None if attn_mask is None else learner(attn_mask, None, num_heads)


def flips_in_place(attn_mask, key_padding_mask, num_heads):
    if attn_mask is not None and attn_mask.dtype == bool:
        np.logical_not(attn_mask, out=attn_mask)  # the right values, but the caller's mask changed
        attn_mask = ~attn_mask
    return learner(attn_mask, key_padding_mask, num_heads)


def negates_float(attn_mask, key_padding_mask, num_heads):
    if attn_mask is not None and attn_mask.dtype != bool:
        attn_mask = -attn_mask  # "flips" a float mask too: -inf becomes +inf
    return learner(attn_mask, key_padding_mask, num_heads)


def transposed(attn_mask, key_padding_mask, num_heads):
    if attn_mask is not None:
        attn_mask = np.swapaxes(attn_mask, -1, -2)
    return learner(attn_mask, key_padding_mask, num_heads)


def heads_first_without_transpose(attn_mask, key_padding_mask, num_heads):
    if attn_mask is None or attn_mask.ndim == 2:
        return learner(attn_mask, key_padding_mask, num_heads)
    m = attn_mask.reshape(num_heads, -1, *attn_mask.shape[1:])  # (h, B, L_q, L_k)
    m = ~m if m.dtype == bool else m
    if key_padding_mask is None:
        return m
    return m + np.where(key_padding_mask[:, None, None, :], -np.inf, 0.0)


def three_axis_padding(attn_mask, key_padding_mask, num_heads):
    if key_padding_mask is not None and attn_mask is None:
        return ~key_padding_mask[:, None, :]  # notebook 03's (B, 1, L_k)
    return learner(attn_mask, key_padding_mask, num_heads)


def everything_float_max(attn_mask, key_padding_mask, num_heads):
    out = learner(attn_mask, key_padding_mask, num_heads)
    if out is None or out.dtype == bool:
        return out
    return np.maximum(out, -1e4)  # clips -inf to a finite value


UNLISTED = {
    "07.4": [
        ignores_padding,
        flips_in_place,
        negates_float,
        transposed,
        heads_first_without_transpose,
        three_axis_padding,
        everything_float_max,
    ]
}

(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


# --------------------------------------------------------------------------- against PyTorch
def _torch_and_ours(attn_mask, key_padding_mask, num_heads, seed):
    """nn.MultiheadAttention given PyTorch's masks; its from_torch copy given the converted one."""
    g = np.random.default_rng(seed)
    if attn_mask is not None:
        L_q, L_k = attn_mask.shape[-2:]
    else:
        L_q, L_k = 3, key_padding_mask.shape[1]
    if key_padding_mask is not None:
        B = key_padding_mask.shape[0]
    else:
        B = attn_mask.shape[0] // num_heads if attn_mask.ndim == 3 else 2
    E = 4 * num_heads
    torch.manual_seed(seed)
    module = torch.nn.MultiheadAttention(E, num_heads, batch_first=True, dtype=torch.float64)
    module.requires_grad_(False)
    module.in_proj_bias.normal_(std=0.5)
    module.out_proj.bias.normal_(std=0.5)
    xq, xk = g.standard_normal((B, L_q, E)), g.standard_normal((B, L_k, E))
    kwargs = {
        name: None if m is None else torch.from_numpy(m)
        for name, m in (("attn_mask", attn_mask), ("key_padding_mask", key_padding_mask))
    }
    with warnings.catch_warnings():  # a float attn_mask with a bool key_padding_mask: deprecated
        warnings.filterwarnings("ignore", "Support for mismatched", UserWarning)
        out_t, w_t = module(*map(torch.from_numpy, (xq, xk, xk)), **kwargs,
                            average_attn_weights=False)
    mask = reference("07.4")(attn_mask, key_padding_mask, num_heads)
    out, w = MultiHeadAttention.from_torch(module)(xq, xk, mask=mask)
    return (out_t.numpy(), w_t.numpy()), (out, w)


def _assert_same_attention(torch_result, ours):
    (out_t, w_t), (out, w) = torch_result, ours
    assert out.shape == out_t.shape and w.shape == w_t.shape
    empty = np.isnan(w_t).all(axis=-1)  # (B, h, L_q): PyTorch's NaN rows, no key left
    assert np.array_equal(np.isnan(w_t).any(axis=-1), empty)
    assert (w[empty] == 0).all()  # the course's layer: zero weights there
    assert np.allclose(w[~empty], w_t[~empty], rtol=0, atol=1e-12)
    nan_rows = empty.any(axis=1)  # (B, L_q): a head with no key makes PyTorch's output NaN
    assert np.array_equal(np.isnan(out_t).any(axis=-1), nan_rows)
    assert np.allclose(out[~nan_rows], out_t[~nan_rows], rtol=0, atol=1e-12)
    return int(empty.sum())


def test_the_reference_gives_nn_multiheadattention_on_every_case():
    empty_rows = 0
    for n, case in enumerate(get("07.4").cases):
        if case.args[0] is None and case.args[1] is None:
            continue
        empty_rows += _assert_same_attention(*_torch_and_ours(*case.args, seed=n))
    assert empty_rows > 0  # the cases have queries left with no key


def _random_masks(g, kind, with_padding):
    B, h, L_q, L_k = int(g.integers(1, 4)), int(g.integers(1, 4)), int(g.integers(1, 6)), 5
    shape = (B * h, L_q, L_k) if kind.endswith("3-D") else (L_q, L_k)
    attn = None
    if kind.startswith("bool"):
        attn = g.random(shape) < 0.3
    elif kind.startswith("float"):
        attn = np.where(g.random(shape) < 0.3, -INF, g.standard_normal(shape))
    pad = g.random((B, L_k)) < 0.3 if with_padding or attn is None else None
    return attn, pad, h


KINDS = ["bool 2-D", "bool 3-D", "float 2-D", "float 3-D", "none"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_padding", [True, False])
def test_the_reference_gives_nn_multiheadattention_on_random_masks(kind, with_padding):
    g = np.random.default_rng([KINDS.index(kind), with_padding])
    for seed in range(8):
        attn, pad, h = _random_masks(g, kind, with_padding)
        _assert_same_attention(*_torch_and_ours(attn, pad, h, seed))


# --------------------------------------------------------------------------- the comparison
def test_a_right_mask_in_another_allowed_form_passes():
    def float_everywhere(attn_mask, key_padding_mask, num_heads):
        out = learner(attn_mask, key_padding_mask, num_heads)
        return out if out is None or out.dtype != bool else np.where(out, 0.0, -np.inf)

    def two_axes_when_it_can(attn_mask, key_padding_mask, num_heads):
        if key_padding_mask is None and attn_mask is not None and attn_mask.ndim == 2:
            return ~attn_mask if attn_mask.dtype == bool else attn_mask.copy()
        return learner(attn_mask, key_padding_mask, num_heads)

    for right in (learner, float_everywhere, two_axes_when_it_can):
        assert check("07.4", right).passed


def test_a_mask_broadcast_further_than_asked_is_told_so():
    def tiled(attn_mask, key_padding_mask, num_heads):
        out = learner(attn_mask, key_padding_mask, num_heads)
        if out is None:
            return None
        return np.broadcast_to(out, (out.shape[0], num_heads, *out.shape[2:])).copy()

    result = check("07.4", tiled)
    assert not result.passed and result.mistake is None
    assert "the same mask, broadcast further than asked" in result.report


def test_none_is_right_only_where_no_mask_is_given():
    result = check("07.4", lambda attn_mask, key_padding_mask, num_heads: None)
    assert result.cases_passed == 1 and result.failed_cases[0] == 2
    assert "it returned None: is the return statement missing?" in result.report

    def a_mask_for_no_mask(attn_mask, key_padding_mask, num_heads):
        out = learner(attn_mask, key_padding_mask, num_heads)
        return np.ones((1, 1, 1, 1), dtype=bool) if out is None else out

    result = check("07.4", a_mask_for_no_mask)
    assert result.failed_cases == (1,)
    assert "expected None: with no mask given there is nothing to convert" in result.report


def test_the_report_says_which_sequence_head_query_and_key_differ():
    report = check("07.4", CATALOGUED["07.4"]["attn_mask's polarity not flipped"]).report
    assert "(sequence 0, head 0, query 0, key " in report
    assert "expected True (may attend), got False (blocked)" in report or (
        "expected False (blocked), got True (may attend)" in report
    )


def test_a_nan_in_the_mask_is_reported_as_such():
    report = check("07.4", CATALOGUED["07.4"]["padding made additive as pad · (-inf)"]).report
    assert "entries are NaN, the first at [0, 0, 0, 0]: a mask holds 0, finite values" in report


def test_a_float32_answer_is_told_it_is_right_only_to_float32_precision():
    def in_float32(attn_mask, key_padding_mask, num_heads):
        out = learner(attn_mask, key_padding_mask, num_heads)
        return out if out is None or out.dtype == bool else out.astype(np.float32)

    result = check("07.4", in_float32)
    assert result.failed_cases == (8,)  # the other float cases hold multiples of 0.5: exact
    assert "expected -0.31807404, got -0.31807405" in result.report  # digits that differ
    assert "right to float32 precision, but this exercise asks for float64" in result.report
