"""Bad input gets a ValueError/TypeError that names the expected and the actual shapes."""

import numpy as np
import pytest

from helpers import (
    MultiHeadAttention,
    attention,
    combine_heads,
    create_causal_mask,
    create_padding_mask,
    multi_head_attention,
    softmax,
    split_heads,
)

Q = np.zeros((3, 4))


@pytest.mark.parametrize(
    "args, kwargs, error, pattern",
    [
        ((Q, np.zeros((3, 5)), np.zeros((3, 5))), {}, ValueError, r"\(3, 4\).*\(3, 5\)"),
        ((Q, np.zeros((3, 4)), np.zeros((2, 4))), {}, ValueError, r"L_k.*\(3, 4\).*\(2, 4\)"),
        ((Q, np.zeros((3, 4)), np.zeros((3, 4))), {"mask": np.ones((2, 2), bool)}, ValueError,
         r"\(2, 2\).*\(3, 3\)"),
        ((np.zeros((2, 3, 4)), np.zeros((5, 3, 4)), np.zeros((5, 3, 4))), {}, ValueError,
         r"\(2, 3, 4\).*\(5, 3, 4\)"),
        ((Q, np.zeros(4), np.zeros((3, 4))), {}, ValueError, r"K must have shape.*\(4,\)"),
        ((Q, Q, Q), {"mask": np.full((3, 3), np.nan)}, ValueError, "NaN"),
        ((Q, Q, Q), {"mask": np.array([["a"] * 3] * 3)}, TypeError, "mask"),
        ((np.array([["a", "b"]]), Q, Q), {}, TypeError, "numeric"),
        ((Q.astype(complex), Q, Q), {}, TypeError, "complex"),
    ],
)
def test_attention_bad_input(args, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        attention(*args, **kwargs)


def test_softmax_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        softmax([1.0, np.nan])
    with pytest.raises(TypeError):
        softmax(["a"])


def test_mask_constructors_bad_input():
    for bad in (0, -3):
        with pytest.raises(ValueError, match=">= 1"):
            create_causal_mask(bad)
    with pytest.raises(TypeError):
        create_causal_mask(2.5)
    with pytest.raises(ValueError, match=r"max_len=4.*\[2, 5\]"):
        create_padding_mask([2, 5], 4)
    with pytest.raises(ValueError, match=r"\(batch,\).*\(2, 2\)"):
        create_padding_mask([[1, 2], [1, 2]], 4)
    with pytest.raises(TypeError):
        create_padding_mask([1.5], 4)


def test_head_functions_bad_input():
    with pytest.raises(ValueError, match=r"d_model=6.*\(2, 6\).*num_heads=4"):
        split_heads(np.zeros((2, 6)), 4)
    with pytest.raises(ValueError, match=">= 1"):
        split_heads(np.zeros((2, 6)), 0)
    with pytest.raises(ValueError, match=r"\(6,\)"):
        split_heads(np.zeros(6), 2)
    with pytest.raises(ValueError, match=r"\(\.\.\., h, seq, d_k\).*\(2, 6\)"):
        combine_heads(np.zeros((2, 6)))


def test_multi_head_attention_bad_input():
    x = np.zeros((2, 3, 8))
    W = np.zeros((8, 8))
    with pytest.raises(ValueError, match=r"W_k must have shape \(8, 8\), got \(8, 4\)"):
        multi_head_attention(x, W, np.zeros((8, 4)), W, W, 2)
    with pytest.raises(ValueError, match="d_model=8 is not divisible by num_heads=3"):
        multi_head_attention(x, W, W, W, W, 3)
    with pytest.raises(ValueError, match=r"\(batch, seq, d_model\).*\(1, 2, 3, 8\)"):
        multi_head_attention(np.zeros((1, 2, 3, 8)), W, W, W, W, 2)
    with pytest.raises(ValueError, match=">= 1"):
        multi_head_attention(x, W, W, W, W, 0)
    with pytest.raises(ValueError, match=r"\(2, 2, 3, 3\)"):
        multi_head_attention(x, W, W, W, W, 2, mask=np.ones((4, 4), bool))


def test_layer_bad_input():
    with pytest.raises(ValueError, match="not divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ValueError, match=">= 1"):
        MultiHeadAttention(8, 0)
    with pytest.raises(TypeError, match="floating"):
        MultiHeadAttention(8, 2, dtype=np.int32)
    layer = MultiHeadAttention(8, 2, seed=0)
    with pytest.raises(ValueError, match=r"d_model=8.*\(2, 3, 6\)"):
        layer(np.zeros((2, 3, 6)))
    with pytest.raises(ValueError, match=r"\(2, 4, 8\).*\(2, 5, 8\)"):
        layer(np.zeros((2, 3, 8)), np.zeros((2, 4, 8)), np.zeros((2, 5, 8)))
    with pytest.raises(ValueError, match="same batch"):
        layer(np.zeros((2, 3, 8)), np.zeros((3, 4, 8)))
