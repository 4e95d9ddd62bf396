"""Masks, head splitting and multi-head attention."""

import numpy as np
import pytest

from helpers import (
    attention,
    combine_heads,
    create_causal_mask,
    create_padding_mask,
    multi_head_attention,
    split_heads,
)


def test_causal_mask_is_lower_triangle():
    m = create_causal_mask(4)
    assert m.dtype == bool and m.shape == (4, 4)
    np.testing.assert_array_equal(m, np.tri(4, dtype=bool))
    assert create_causal_mask(1).tolist() == [[True]]


def test_padding_mask_blocks_padded_keys():
    m = create_padding_mask([3, 1, 4], max_len=4)
    assert m.shape == (3, 1, 1, 4)
    np.testing.assert_array_equal(
        m[:, 0, 0], [[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]]
    )
    rng = np.random.default_rng(0)
    Q, K, V = (rng.standard_normal((3, 2, 4, 8)) for _ in range(3))
    out, w = attention(Q, K, V, mask=m)
    assert np.all(w[0, :, :, 3] == 0) and np.all(w[1, :, :, 1:] == 0)
    # Changing what sits in a padded slot changes nothing.
    K2, V2 = K.copy(), V.copy()
    K2[1, :, 1:], V2[1, :, 1:] = 99.0, -99.0
    out2, _ = attention(Q, K2, V2, mask=m)
    np.testing.assert_array_equal(out, out2)


def test_padding_and_causal_combine():
    m = create_padding_mask([2, 3], 3) & create_causal_mask(3)
    assert m.shape == (2, 1, 3, 3)
    np.testing.assert_array_equal(m[0, 0], [[1, 0, 0], [1, 1, 0], [1, 1, 0]])


def test_split_heads_layout_and_round_trip():
    x = np.arange(2 * 3 * 8, dtype=float).reshape(2, 3, 8)
    h = split_heads(x, 4)
    assert h.shape == (2, 4, 3, 2)
    for head in range(4):
        for j in range(2):
            np.testing.assert_array_equal(h[:, head, :, j], x[:, :, head * 2 + j])
    np.testing.assert_array_equal(combine_heads(h), x)
    assert split_heads(x[0], 2).shape == (2, 3, 4)


def test_reshape_without_transpose_is_wrong():
    x = np.arange(3 * 8, dtype=float).reshape(1, 3, 8)
    wrong = x.reshape(1, 4, 3, 2)
    assert not np.array_equal(wrong, split_heads(x, 4))


def _loop_mha(x, W_q, W_k, W_v, W_o, h, mask=None):
    d = x.shape[-1] // h
    Q, K, V = x @ W_q, x @ W_k, x @ W_v
    outs, ws = [], []
    for i in range(h):
        sl = slice(i * d, (i + 1) * d)
        o, w = attention(Q[..., sl], K[..., sl], V[..., sl], mask)
        outs.append(o)
        ws.append(w)
    return np.concatenate(outs, axis=-1) @ W_o, np.stack(ws, axis=-3)


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_multi_head_matches_per_head_loop(batched, dtype):
    rng = np.random.default_rng(1)
    shape = (2, 5, 12) if batched else (5, 12)
    x = rng.standard_normal(shape).astype(dtype)
    Ws = [(rng.standard_normal((12, 12)) / 4).astype(dtype) for _ in range(4)]
    mask = create_causal_mask(5)
    out, w = multi_head_attention(x, *Ws, num_heads=3, mask=mask)
    ref_out, ref_w = _loop_mha(x, *Ws, 3, mask)
    assert out.shape == x.shape and out.dtype == dtype
    assert w.shape == ((2, 3, 5, 5) if batched else (3, 5, 5))
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out, ref_out, rtol=tol, atol=tol)
    np.testing.assert_allclose(w, ref_w, rtol=tol, atol=tol)
    assert np.all(np.triu(w, 1) == 0)


def test_multi_head_with_padding_mask():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 8))
    Ws = [rng.standard_normal((8, 8)) for _ in range(4)]
    _, w = multi_head_attention(x, *Ws, num_heads=2, mask=create_padding_mask([4, 2], 4))
    assert np.all(w[1, :, :, 2:] == 0)
    np.testing.assert_allclose(w.sum(-1), 1.0)
