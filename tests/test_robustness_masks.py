"""Masks at every entry point: integer masks rejected, multi-head mask shapes unambiguous,
``is_causal`` exactly as PyTorch's (top-left), ``create_causal_mask(L_q, L_k)`` bottom-right."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import attention, create_causal_mask, multi_head_attention, tiled_attention
from helpers.alibi import alibi_bias
from helpers.attention_backward import attention_backward
from helpers.diagnostics import normalized_entropy
from helpers.gqa import grouped_query_attention
from helpers.multihead import project_and_attend, project_and_attend_reference

NAMES = ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")


def params_for(rng, d, dtype=np.float64, kdim=None, vdim=None):
    shapes = {"W_q": (d, d), "W_k": (kdim or d, d), "W_v": (vdim or d, d), "W_o": (d, d)}
    p = {n: (rng.standard_normal(s) / np.sqrt(s[0])).astype(dtype) for n, s in shapes.items()}
    return p | {n: rng.standard_normal(d).astype(dtype) for n in NAMES[4:]}


# ------------------------------------------------------------------- integer masks
def _entry_points():
    """(name, call(mask)) for every function a mask enters; scores are (2, 2, 4, 4)."""
    rng = np.random.default_rng(0)
    Q, K, V = (rng.standard_normal((2, 2, 4, 3)) for _ in range(3))
    x = rng.standard_normal((2, 4, 8))
    W = [rng.standard_normal((8, 8)) / 3 for _ in range(4)]
    p = params_for(rng, 8)
    W_kv = [rng.standard_normal((8, 4)) / 3 for _ in range(2)]
    weights = attention(Q, K, V)[1]
    return {
        "attention": lambda m: attention(Q, K, V, m),
        "attention, one query": lambda m: attention(Q[0, 0, 0], K[0, 0], V[0, 0], m[-1]),
        "attention_backward": lambda m: attention_backward(Q, K, V, np.ones((2, 2, 4, 3)), m),
        "multi_head_attention": lambda m: multi_head_attention(x, *W, 2, m),
        "project_and_attend": lambda m: project_and_attend(x, x, x, p, 2, m),
        "project_and_attend_reference": lambda m: project_and_attend_reference(x, x, x, p, 2, m),
        "grouped_query_attention": lambda m: grouped_query_attention(x, W[0], *W_kv, W[3], 2, 1,
                                                                     m),
        "normalized_entropy": lambda m: normalized_entropy(weights, m),
    }


ENTRY_POINTS = _entry_points()


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_integer_masks_are_rejected_everywhere(name, dtype):
    # A 0/1 integer causal mask would be *added* to the scores: nothing masked, the future
    # visible. Every entry point refuses it and says what to pass instead.
    mask = np.tril(np.ones((4, 4), dtype=dtype))
    with pytest.raises(TypeError, match=rf"got {np.dtype(dtype)}.*astype\(bool\)"):
        ENTRY_POINTS[name](mask)
    # The same mask as booleans is accepted and hides the future.
    result = ENTRY_POINTS[name](mask.astype(bool))
    if name == "attention":
        assert np.all(result[1][..., np.triu_indices(4, 1)[0], np.triu_indices(4, 1)[1]] == 0)


def test_integer_mask_message_explains_both_kinds():
    with pytest.raises(TypeError) as err:
        attention(np.ones((3, 2)), np.ones((3, 2)), np.ones((3, 2)), [[1, 0, 0], [1, 1, 0],
                                                                      [1, 1, 1]])
    message = str(err.value)
    assert "boolean (True = may attend)" in message and "added to the scores" in message
    assert "mask.astype(bool) if 1 means keep" in message


def test_causal_mask_as_int_in_multi_head_attention_is_rejected():
    # The reproduction of the issue: create_causal_mask(L).astype(int).
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 8))
    W = [rng.standard_normal((8, 8)) for _ in range(4)]
    with pytest.raises(TypeError, match="int64"):
        multi_head_attention(x, *W, 2, create_causal_mask(5).astype(int))


def test_float_masks_are_cast_to_the_scores_dtype():
    rng = np.random.default_rng(2)
    Q, K, V = (rng.standard_normal((2, 5, 4)).astype(np.float32) for _ in range(3))
    for mask in (alibi_bias(5, 2), alibi_bias(5, 2).astype(np.float16)):  # float64, float16
        out, w = attention(Q, K, V, mask)
        assert out.dtype == w.dtype == np.float32
        expected = attention(*(a.astype(np.float64) for a in (Q, K, V)), alibi_bias(5, 2))[1]
        np.testing.assert_allclose(w, expected, atol=1e-3 if mask.dtype == np.float16 else 1e-6)


def test_float_mask_beyond_the_float32_range_is_rejected():
    Q = np.ones((2, 3), dtype=np.float32)
    huge = np.full((2, 2), 1e300)  # +inf in float32
    with pytest.raises(ValueError, match="exceed the range"):
        attention(Q, Q, Q, huge)
    # -1e300 becomes -inf in float32: it still removes the key, which is what it means.
    tiny = np.array([[0.0, -1e300], [0.0, 0.0]])
    w = attention(Q, Q, Q, tiny)[1]
    assert w[0, 1] == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_float_masks_with_nan_or_plus_inf_are_rejected_everywhere(bad):
    mask = np.zeros((4, 4))
    mask[1, 2] = mask[3, 1] = bad  # row 3 is the one-query case's mask
    for name, call in ENTRY_POINTS.items():
        if name == "normalized_entropy":
            continue  # takes boolean masks only
        with pytest.raises(ValueError, match="NaN or \\+inf"):
            call(mask)


# ------------------------------------------------------------------- multi-head mask shapes
@pytest.mark.parametrize("run", [project_and_attend, project_and_attend_reference])
def test_a_3d_mask_with_batch_equal_to_heads_is_rejected(run):
    # (2, 4, 4) with batch = heads = 2 used to be read as per-head: sequence 0 got a causal
    # head 0 and a full head 1. Now it is an error that explains both readings.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 8))
    p = params_for(rng, 8)
    per_sequence = np.stack([create_causal_mask(4), np.ones((4, 4), dtype=bool)])  # (2, 4, 4)
    with pytest.raises(ValueError, match=r"ambiguous.*mask\[:, None\].*mask\[None\]"):
        run(x, x, x, p, 2, per_sequence)
    out, w = run(x, x, x, p, 2, per_sequence[:, None])  # (B, 1, L, L): one mask per sequence
    for b in range(2):
        out_b, w_b = run(x[b], x[b], x[b], p, 2, per_sequence[b])
        np.testing.assert_allclose(out[b], out_b, atol=1e-12)
        np.testing.assert_allclose(w[b], w_b, atol=1e-12)
    future = ~create_causal_mask(4)
    assert np.all(w[0][:, future] == 0) and np.all(w[1][:, future] > 0)
    _, w_heads = run(x, x, x, p, 2, per_sequence[None])  # (1, h, L, L): one mask per head
    assert np.all(w_heads[:, 0][:, future] == 0) and np.all(w_heads[:, 1][:, future] > 0)


def test_multi_head_mask_shapes():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 8))
    p = params_for(rng, 8)
    for ok in [(4, 4), (1, 4), (4, 1), (3, 2, 4, 4), (3, 1, 1, 4), (1, 2, 4, 4), (1, 1, 1, 1)]:
        project_and_attend(x, x, x, p, 2, np.ones(ok, dtype=bool))
    for bad, pattern in [((3, 4, 4), "ambiguous"), ((4,), r"\(L_q, L_k\) or \(batch, heads"),
                         ((1, 3, 2, 4, 4), "5-D"), ((), "0-D")]:
        with pytest.raises(ValueError, match=pattern):
            project_and_attend(x, x, x, p, 2, np.ones(bad, dtype=bool))
    with pytest.raises(ValueError, match=r"does not broadcast to the scores' shape \(3, 2, 4, 4\)"):
        project_and_attend(x, x, x, p, 2, np.ones((2, 2, 4, 4), dtype=bool))
    # Unbatched tokens: (L_q, L_k) or (h, L_q, L_k).
    project_and_attend(x[0], x[0], x[0], p, 2, np.ones((2, 4, 4), dtype=bool))
    with pytest.raises(ValueError, match=r"\(L_q, L_k\) or \(heads, L_q, L_k\)"):
        project_and_attend(x[0], x[0], x[0], p, 2, np.ones((1, 2, 4, 4), dtype=bool))


def test_grouped_query_attention_follows_the_multi_head_mask_rule():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 8))
    W = [rng.standard_normal(s) for s in ((8, 8), (8, 4), (8, 4), (8, 8))]
    with pytest.raises(ValueError, match="ambiguous"):
        grouped_query_attention(x, *W, 2, 1, np.ones((2, 4, 4), dtype=bool))


# ------------------------------------------------------------------- is_causal and scale
SHAPES = [(5, 5), (4, 9), (9, 4), (1, 6)]


@pytest.mark.parametrize(("L_q", "L_k"), SHAPES)
def test_is_causal_matches_sdpa_top_left(L_q, L_k):
    rng = np.random.default_rng(L_q * 10 + L_k)
    Q = rng.standard_normal((2, 3, L_q, 8))
    K, V = rng.standard_normal((2, 3, L_k, 8)), rng.standard_normal((2, 3, L_k, 5))
    out, w = attention(Q, K, V, is_causal=True)
    expected = F.scaled_dot_product_attention(*map(torch.from_numpy, (Q, K, V)), is_causal=True)
    np.testing.assert_allclose(out, expected.numpy(), rtol=0, atol=1e-12)
    assert np.all(w[..., ~np.tril(np.ones((L_q, L_k), dtype=bool))] == 0)


def test_is_causal_cannot_be_combined_with_a_mask():
    Q = np.ones((3, 2))
    with pytest.raises(ValueError, match="either mask or is_causal"):
        attention(Q, Q, Q, create_causal_mask(3), is_causal=True)
    with pytest.raises(ValueError, match="either mask or is_causal"):
        attention_backward(Q, Q, Q, Q, create_causal_mask(3), is_causal=True)
    with pytest.raises(TypeError, match="is_causal must be True or False"):
        attention(Q, Q, Q, is_causal="yes")


@pytest.mark.parametrize("scale", [0.1, 1.0, 2.5])
def test_scale_matches_sdpa(scale):
    rng = np.random.default_rng(6)
    Q, K, V = (rng.standard_normal((2, 4, 6)) for _ in range(3))
    mask = rng.random((4, 4)) < 0.7
    out, _ = attention(Q, K, V, mask, scale=scale)
    expected = F.scaled_dot_product_attention(*map(torch.from_numpy, (Q, K, V)),
                                              attn_mask=torch.from_numpy(mask), scale=scale)
    np.testing.assert_allclose(out, expected.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(attention(Q, K, V, scale=None)[0],
                                  attention(Q, K, V, scale=1 / np.sqrt(6))[0])


@pytest.mark.parametrize(("scale", "error"), [(True, TypeError), ("x", TypeError),
                                              (np.nan, ValueError), (np.inf, ValueError)])
def test_bad_scale_is_a_clear_error_everywhere(scale, error):
    Q = np.ones((3, 2))
    for call in (lambda: attention(Q, Q, Q, scale=scale),
                 lambda: tiled_attention(Q, Q, Q, scale=scale),
                 lambda: attention_backward(Q, Q, Q, Q, scale=scale)):
        with pytest.raises(error, match="scale must be"):
            call()


def test_tiled_is_causal_and_causal_are_the_same_switch():
    rng = np.random.default_rng(12)
    Q = rng.standard_normal((2, 9, 4))
    K, V = rng.standard_normal((2, 13, 4)), rng.standard_normal((2, 13, 3))
    a = tiled_attention(Q, K, V, is_causal=True, block_size=4)
    b = tiled_attention(Q, K, V, causal=True, block_size=4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, attention(Q, K, V, is_causal=True)[0], rtol=1e-12, atol=1e-12)
    assert not np.allclose(a, tiled_attention(Q, K, V, block_size=4))


@pytest.mark.parametrize("scale", [1.0, 0.05, 3.0, -0.5])
def test_tiled_scale_matches_attention(scale):
    rng = np.random.default_rng(13)
    Q = rng.standard_normal((2, 11, 6))
    K, V = rng.standard_normal((2, 17, 6)), rng.standard_normal((2, 17, 3))
    for causal in (False, True):
        np.testing.assert_allclose(
            tiled_attention(Q, K, V, scale=scale, is_causal=causal, block_size=(4, 5)),
            attention(Q, K, V, scale=scale, is_causal=causal)[0], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- create_causal_mask(L_q, L_k)
@pytest.mark.parametrize(("L_q", "L_k"), [(3, 5), (5, 5), (1, 7), (5, 3), (0, 4), (2, 0)])
def test_two_argument_causal_mask_is_bottom_right(L_q, L_k):
    from torch.nn.attention.bias import causal_lower_right

    m = create_causal_mask(L_q, L_k)
    assert m.shape == (L_q, L_k) and m.dtype == bool
    i, j = np.indices((L_q, L_k))
    np.testing.assert_array_equal(m, j <= i + (L_k - L_q))
    if L_q <= L_k and L_k:
        np.testing.assert_array_equal(m, create_causal_mask(L_k)[L_k - L_q:])  # the last rows
    if L_q and L_k:
        # PyTorch's lower-right causal bias, used as SDPA's attn_mask, gives the same attention
        # (rows without keys included: zeros on both sides).
        rng = np.random.default_rng(L_q * 10 + L_k)
        Q = rng.standard_normal((2, L_q, 4))
        K, V = rng.standard_normal((2, L_k, 4)), rng.standard_normal((2, L_k, 3))
        with warnings.catch_warnings():  # PyTorch warns that rows may be empty for L_q > L_k
            warnings.simplefilter("ignore", UserWarning)
            expected = F.scaled_dot_product_attention(
                *map(torch.from_numpy, (Q, K, V)), attn_mask=causal_lower_right(L_q, L_k))
        np.testing.assert_allclose(attention(Q, K, V, m)[0], expected.numpy(), rtol=0,
                                   atol=1e-12)


def test_one_argument_causal_mask_is_unchanged_and_differs_from_is_causal():
    np.testing.assert_array_equal(create_causal_mask(4), np.tri(4, dtype=bool))
    np.testing.assert_array_equal(create_causal_mask(4, 4), create_causal_mask(4))
    top_left = np.tril(np.ones((2, 5), dtype=bool))
    assert not np.array_equal(create_causal_mask(2, 5), top_left)  # the two alignments


def test_chunked_prefill_equals_full_causal_attention():
    # Feed 10 tokens in chunks of 4, 4, 2: each chunk's queries attend to every key so far
    # through create_causal_mask(chunk, keys so far), as with a KV cache.
    rng = np.random.default_rng(7)
    Q, K, V = (rng.standard_normal((2, 10, 8)) for _ in range(3))
    full, _ = attention(Q, K, V, create_causal_mask(10))
    rows, start = [], 0
    for chunk in (4, 4, 2):
        stop = start + chunk
        out, _ = attention(Q[:, start:stop], K[:, :stop], V[:, :stop],
                           create_causal_mask(chunk, stop))
        rows.append(out)
        start = stop
    np.testing.assert_allclose(np.concatenate(rows, axis=1), full, rtol=0, atol=1e-12)


def test_rows_without_keys_get_zero_weights():
    w = attention(np.ones((5, 2)), np.ones((3, 2)), np.ones((3, 2)), create_causal_mask(5, 3))[1]
    assert np.all(w[:2] == 0) and np.allclose(w[2:].sum(-1), 1.0)


@pytest.mark.parametrize("bad", [-1, 2.0, None])
def test_causal_mask_sizes_are_checked(bad):
    with pytest.raises((TypeError, ValueError), match="L_q"):
        create_causal_mask(bad, 3)
    if bad is not None:
        with pytest.raises((TypeError, ValueError), match="L_k"):
            create_causal_mask(3, bad)
