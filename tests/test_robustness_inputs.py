"""Edges of every attention entry point: non-finite and overflowing inputs, the dtype
contract, zero-size and degenerate shapes, kdim/vdim and need_weights."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import helpers.fastpath.fused_mha as fast_mha
import helpers.fastpath.threads as parallel
from helpers import (
    attention,
    create_padding_mask,
    logsumexp,
    multi_head_attention,
    softmax,
    split_heads,
    tiled_attention,
)
from helpers.attention_backward import attention_backward
from helpers.gqa import grouped_query_attention
from helpers.multihead import project_and_attend, project_and_attend_reference

NAMES = ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")
PATHS = [project_and_attend, project_and_attend_reference]


def params_for(rng, d, dtype=np.float64, kdim=None, vdim=None):
    shapes = {"W_q": (d, d), "W_k": (kdim or d, d), "W_v": (vdim or d, d), "W_o": (d, d)}
    p = {n: (rng.standard_normal(s) / np.sqrt(s[0])).astype(dtype) for n, s in shapes.items()}
    return p | {n: rng.standard_normal(d).astype(dtype) for n in NAMES[4:]}


def single_head_calls(Q, K, V):
    """attention, tiled_attention and attention_backward on the same inputs."""
    dO = np.ones((*np.shape(Q)[:-1], np.shape(V)[-1]), dtype=np.asarray(Q).dtype)
    return {
        "attention": lambda: attention(Q, K, V),
        "tiled_attention": lambda: tiled_attention(Q, K, V, block_size=2),
        "attention_backward": lambda: attention_backward(Q, K, V, dO),
    }


# ------------------------------------------------------------------- non-finite inputs
@pytest.mark.parametrize("name", ["Q", "K", "V"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_rejected_naming_the_array(name, bad):
    # -inf in Q used to come back as zeros from attention(), as if the row were masked.
    arrays = {"Q": np.ones((3, 4)), "K": np.ones((5, 4)), "V": np.ones((5, 2))}
    arrays[name][2, 1] = bad
    for call in single_head_calls(**arrays).values():
        with pytest.raises(ValueError, match=rf"{name} contains NaN or infinity .*index \(2, 1\)"):
            call()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_overflowing_scores_raise_everywhere_without_warnings(sign):
    # 1e20 in float32: every score q·k = ±4e40 overflows. With sign -1 the scores are -inf
    # and would silently look masked. Every entry point raises, none warns or returns NaN.
    Q = np.full((3, 4), 1e20, dtype=np.float32)
    K = sign * Q
    V = np.ones((3, 4), dtype=np.float32)
    eye = np.eye(4, dtype=np.float32)
    calls = single_head_calls(Q, K, V) | {
        "multi_head_attention": lambda: multi_head_attention(Q, eye, sign * eye, eye, eye, 2),
        "grouped_query_attention": lambda: grouped_query_attention(Q, eye, sign * eye[:, :2],
                                                                   eye[:, :2], eye, 2, 1),
    } | {path.__name__: (lambda path=path: path(Q, Q, Q, dict(zip(NAMES, (
        eye, sign * eye, eye, eye, None, None, None, None), strict=True)), 2)) for path in PATHS}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, call in calls.items():
            with pytest.raises(ValueError, match="overflow"):
                call()
                pytest.fail(f"{name} accepted scores that overflow")


def test_a_small_scale_rescues_large_inputs_the_same_way_everywhere():
    # Q K^T overflows float32, scale * Q K^T does not: accepted by all, and all agree.
    rng = np.random.default_rng(0)
    Q, K, V = (rng.standard_normal((5, 4)).astype(np.float32) for _ in range(3))
    Q, K = Q * 1e20, K * 1e20
    scale = 1e-40
    expected = attention(*(a.astype(np.float64) for a in (Q, K, V)), scale=scale)[0]
    np.testing.assert_allclose(attention(Q, K, V, scale=scale)[0], expected, atol=1e-5)
    np.testing.assert_allclose(tiled_attention(Q, K, V, scale=scale, block_size=2), expected,
                               atol=1e-5)


def test_overflowing_projections_and_outputs_raise_on_both_paths():
    # Finite parameters whose products are not: 4 · 3e38 or 1e38 + 3e38 exceed float32.
    x = np.ones((2, 3, 4), dtype=np.float32)
    big, eye = np.float32(3e38), np.eye(4, dtype=np.float32)
    base = {"W_q": eye, "W_k": eye, "W_v": eye, "W_o": eye} | dict.fromkeys(NAMES[4:])
    cases = {"W_v": {"W_v": np.full((4, 4), big)}, "W_o": {"W_o": np.full((4, 4), big)},
             "b_v": {"W_v": eye * np.float32(1e38), "b_v": np.full(4, big)},
             "b_o": {"W_o": eye * np.float32(1e38), "b_o": np.full(4, big)}}
    for change in cases.values():
        for path in PATHS:
            with pytest.raises(ValueError, match="overflow"):
                path(x, x, x, base | change, 2)


# ------------------------------------------------------------------- zero sizes, against PyTorch
@settings(max_examples=40, deadline=None)
@given(batch=st.integers(0, 2), L_q=st.integers(0, 4), L_k=st.integers(0, 4),
       d_k=st.integers(1, 4), d_v=st.integers(0, 3), kind=st.sampled_from(["none", "bool",
                                                                         "causal"]),
       seed=st.integers(0, 2**16))
def test_property_attention_matches_sdpa_including_empty_shapes(batch, L_q, L_k, d_k, d_v, kind,
                                                                 seed):
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((batch, L_q, d_k))
    K, V = rng.standard_normal((batch, L_k, d_k)), rng.standard_normal((batch, L_k, d_v))
    dO = rng.standard_normal((batch, L_q, d_v))
    mask = rng.random((L_q, L_k)) < 0.6 if kind == "bool" else None
    causal = kind == "causal"
    tQ, tK, tV = (torch.from_numpy(a).requires_grad_() for a in (Q, K, V))
    t_out = F.scaled_dot_product_attention(
        tQ, tK, tV, attn_mask=None if mask is None else torch.from_numpy(mask), is_causal=causal)
    out, w = attention(Q, K, V, mask, is_causal=causal)
    assert out.shape == tuple(t_out.shape) and w.shape == (batch, L_q, L_k)
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=0, atol=1e-12)
    if mask is None:
        np.testing.assert_allclose(tiled_attention(Q, K, V, is_causal=causal, block_size=3),
                                   out, rtol=0, atol=1e-12)
    if out.size:
        (t_out * torch.from_numpy(dO)).sum().backward()
        grads = attention_backward(Q, K, V, dO, mask, is_causal=causal)
        for ours, t in zip(grads, (tQ, tK, tV), strict=True):
            theirs = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


def torch_layer_and_params(d, h, kdim=None, vdim=None, seed=0):
    """A seeded nn.MultiheadAttention with random biases, and its parameters as x @ W."""
    torch.manual_seed(seed)
    m = torch.nn.MultiheadAttention(d, h, kdim=kdim, vdim=vdim, batch_first=True,
                                    dtype=torch.float64).eval()
    with torch.no_grad():
        m.in_proj_bias.normal_()
        m.out_proj.bias.normal_()
    if m._qkv_same_embed_dim:
        W_q, W_k, W_v = m.in_proj_weight.detach().numpy().reshape(3, d, -1)
    else:
        W_q, W_k, W_v = (getattr(m, f"{n}_proj_weight").detach().numpy() for n in "qkv")
    b = m.in_proj_bias.detach().numpy().reshape(3, d)
    params = {"W_q": W_q.T, "W_k": W_k.T, "W_v": W_v.T,
              "W_o": m.out_proj.weight.detach().numpy().T, "b_q": b[0], "b_k": b[1], "b_v": b[2],
              "b_o": m.out_proj.bias.detach().numpy()}
    return m, params


def torch_forward(m, q, k, v):
    with torch.no_grad():
        out, w = m(*map(torch.from_numpy, (q, k, v)), need_weights=True,
                   average_attn_weights=False)
    return out.numpy(), w.numpy()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("B", "L_q", "L_k"), [(0, 3, 3), (2, 0, 3), (2, 3, 0), (None, 3, 0),
                                               (None, 0, 2), (2, 0, 0)])
def test_empty_multi_head_calls_match_nn_multihead(path, B, L_q, L_k):
    # L_k = 0: zero weights, zero heads, so the output is the out-projection's bias b_o.
    m, p = torch_layer_and_params(8, 2)
    rng = np.random.default_rng(4)
    lead = () if B is None else (B,)
    q, kv = rng.standard_normal((*lead, L_q, 8)), rng.standard_normal((*lead, L_k, 8))
    out, w = path(q, kv, kv, p, 2)
    t_out, t_w = torch_forward(m, q, kv, kv)
    assert out.shape == t_out.shape and w.shape == t_w.shape
    np.testing.assert_allclose(out, t_out, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(w, 0.0)
    if L_k == 0 and L_q and B != 0:
        np.testing.assert_allclose(out, np.broadcast_to(p["b_o"], out.shape), rtol=0, atol=0)


def test_softmax_edges():
    assert softmax(np.zeros((2, 0))).shape == (2, 0)
    assert softmax(np.zeros((0, 3))).shape == (0, 3)
    np.testing.assert_allclose(softmax(np.zeros((2, 3)), axis=0), 0.5)
    with pytest.raises(ValueError, match="0-D"):
        softmax(np.float64(1.0))
    with pytest.raises(ValueError, match=r"axis=2 is out of range for x of shape \(2, 3\)"):
        softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(TypeError, match="axis must be an integer"):
        softmax(np.zeros((2, 3)), axis=1.0)


def test_logsumexp_edges():
    np.testing.assert_array_equal(logsumexp(np.zeros((2, 0))), [-np.inf, -np.inf])
    with pytest.raises(ValueError, match="0-D"):
        logsumexp(np.float64(1.0))
    with pytest.raises(ValueError, match="NaN"):
        logsumexp([1.0, np.nan])


def test_zero_d_k_and_zero_d_inputs_name_the_shape():
    for call in single_head_calls(np.ones((3, 0)), np.ones((2, 0)), np.ones((2, 1))).values():
        with pytest.raises(ValueError, match=r"d_k = 0.*\(3, 0\).*\(2, 0\)"):
            call()
    for call in single_head_calls(np.float64(1.0), np.ones((2, 1)), np.ones((2, 1))).values():
        with pytest.raises(ValueError, match=r"Q must have shape .*got shape \(\) \(0-D\)"):
            call()
    for path in PATHS:
        with pytest.raises(ValueError, match=r"d_model = 0 .*\(2, 3, 0\)"):
            path(np.ones((2, 3, 0)), np.ones((2, 3, 0)), np.ones((2, 3, 0)),
                 dict.fromkeys(NAMES, np.ones((0, 0))) | dict.fromkeys(NAMES[4:]), 1)
    with pytest.raises(ValueError, match=r"d_model = 0 .*\(3, 0\)"):
        grouped_query_attention(np.ones((3, 0)), *[np.ones((0, 0))] * 4, 1, 1)


def test_padding_mask_for_an_empty_batch():
    m = create_padding_mask([], 4)
    assert m.shape == (0, 1, 1, 4) and m.dtype == bool
    Q, K = np.ones((0, 2, 3, 5)), np.ones((0, 2, 4, 5))
    out, w = attention(Q, K, K, m)
    assert out.shape == (0, 2, 3, 5) and w.shape == (0, 2, 3, 4)


def test_run_blocks_with_no_items_and_split_heads_is_a_view():
    seen: list[int] = []
    parallel.run_blocks([lambda a, b: seen.extend(range(a, b))] * 2, [0, 3], workers=2)
    assert sorted(seen) == [0, 1, 2]
    x = np.arange(24.0).reshape(2, 3, 4)
    heads = split_heads(x, 2)
    assert np.shares_memory(heads, x)  # documented: a view, no copy


# ------------------------------------------------------------------- kdim / vdim, need_weights
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("batched", [True, False])
def test_kdim_and_vdim_match_nn_multihead(path, batched):
    m, p = torch_layer_and_params(8, 2, kdim=6, vdim=5, seed=1)
    rng = np.random.default_rng(5)
    lead = (3,) if batched else ()
    q = rng.standard_normal((*lead, 4, 8))
    k, v = rng.standard_normal((*lead, 7, 6)), rng.standard_normal((*lead, 7, 5))
    mask = rng.random((4, 7)) < 0.7
    mask[:, 0] = True
    out, w = path(q, k, v, p, 2, mask)
    with torch.no_grad():
        t_out, t_w = m(*map(torch.from_numpy, (q, k, v)), attn_mask=torch.from_numpy(~mask),
                       need_weights=True, average_attn_weights=False)
    np.testing.assert_allclose(out, t_out.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(w, t_w.numpy(), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"W_k must have shape \(6, 8\), got \(8, 8\)"):
        path(q, k, v, p | {"W_k": np.ones((8, 8))}, 2)


def test_need_weights_false_gives_the_same_output_without_weights(monkeypatch):
    monkeypatch.setattr(fast_mha, "TILE_ELEMENTS", 100)  # ragged tiles in the scores buffer
    rng = np.random.default_rng(6)
    p = params_for(rng, 8, kdim=6, vdim=6)
    q, k = rng.standard_normal((2, 9, 8)), rng.standard_normal((2, 11, 6))
    mask = rng.random((2, 1, 9, 11)) < 0.6
    for workers in (1, 2):
        monkeypatch.setattr(fast_mha, "num_workers", lambda workers=workers: workers)
        out, _ = project_and_attend(q, k, k, p, 2, mask)
        for path in PATHS:
            out_nw, none = path(q, k, k, p, 2, mask, need_weights=False)
            assert none is None
            np.testing.assert_allclose(out_nw, out, rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match="need_weights must be True or False"):
        project_and_attend(q, k, k, p, 2, need_weights="no")
    with pytest.raises(ValueError, match="params is missing"):
        project_and_attend(q, k, k, {"W_q": p["W_q"]}, 2)
