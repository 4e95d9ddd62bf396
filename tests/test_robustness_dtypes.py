"""The dtype contract of every attention entry point: one float dtype per call (float32 or
float64), data converted to float64 first, float16 rejected, float32 in and float32 out."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import attention, multi_head_attention, softmax, tiled_attention
from helpers.attention_backward import attention_backward
from helpers.gqa import grouped_query_attention
from helpers.multihead import project_and_attend, project_and_attend_reference

NAMES = ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")
PATHS = [project_and_attend, project_and_attend_reference]


def params_for(rng, d, dtype=np.float64):
    p = {n: (rng.standard_normal((d, d)) / np.sqrt(d)).astype(dtype) for n in NAMES[:4]}
    return p | {n: rng.standard_normal(d).astype(dtype) for n in NAMES[4:]}


def single_head_calls(Q, K, V):
    """attention, tiled_attention and attention_backward on the same inputs."""
    dO = np.ones((*np.shape(Q)[:-1], np.shape(V)[-1]), dtype=np.asarray(Q).dtype)
    return {
        "attention": lambda: attention(Q, K, V),
        "tiled_attention": lambda: tiled_attention(Q, K, V, block_size=2),
        "attention_backward": lambda: attention_backward(Q, K, V, dO),
    }


def test_mixed_float_dtypes_raise_naming_both():
    a32, a64 = np.ones((3, 4), np.float32), np.ones((3, 4))
    for call in single_head_calls(a32, a64, a32).values():
        with pytest.raises(TypeError, match=r"Q is float32 but K is float64.*K\.astype\(np\."
                                            r"float32\)"):
            call()


@pytest.mark.parametrize(("other", "origin"), [
    (np.ones((3, 4), dtype=np.int64), "K was int64 data, converted to float64"),
    (np.ones((3, 4), dtype=bool), "K was bool data, converted to float64"),
    ([[1.0] * 4] * 3, "K was a Python list, read as float64"),
])
def test_data_converted_to_float64_cannot_meet_float32(other, origin):
    a32 = np.ones((3, 4), np.float32)
    for call in single_head_calls(a32, other, a32).values():
        with pytest.raises(TypeError, match=rf"{origin}.*K\.astype\(np\.float32\)"):
            call()
    out, w = attention(other, other, other)  # on their own they are float64
    assert out.dtype == w.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble])
def test_other_float_widths_are_rejected(dtype):
    a = np.ones((3, 4), dtype=dtype)
    for call in [*single_head_calls(a, a, a).values(), lambda: softmax(a),
                 lambda: multi_head_attention(a, *[np.eye(4, dtype=dtype)] * 4, 2)]:
        with pytest.raises(TypeError, match=rf"{np.dtype(dtype)}.*float32 or float64 only"):
            call()


def test_float32_in_float32_out_everywhere():
    rng = np.random.default_rng(2)
    Q, K, V = (rng.standard_normal((2, 5, 4)).astype(np.float32) for _ in range(3))
    mask64 = np.where(np.tri(5, dtype=bool), 0.0, -np.inf)  # float64 mask: cast, not promoted
    assert all(a.dtype == np.float32 for a in attention(Q, K, V, mask64))
    assert tiled_attention(Q, K, V).dtype == np.float32
    assert all(g.dtype == np.float32 for g in attention_backward(Q, K, V, Q, mask64))
    p = params_for(rng, 4, np.float32)
    for path in PATHS:
        assert all(a.dtype == np.float32 for a in path(Q, K, V, p, 2, mask64))


def test_backward_and_multi_head_name_the_odd_array():
    rng = np.random.default_rng(3)
    Q = rng.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(TypeError, match="Q is float32 but dO is float64"):
        attention_backward(Q, Q, Q, Q.astype(np.float64))
    p = params_for(rng, 4, np.float32)
    p["b_o"] = p["b_o"].astype(np.float64)
    with pytest.raises(TypeError, match="query is float32 but b_o is float64"):
        project_and_attend(Q, Q, Q, p, 2)
    W = [np.eye(4)] * 4
    with pytest.raises(TypeError, match="x is float32 but W_q is float64"):
        multi_head_attention(Q, *W, 2)
    with pytest.raises(TypeError, match="x is float32 but W_q is float64"):
        grouped_query_attention(Q, W[0], W[1], W[2][:, :2], W[3], 2, 1)
