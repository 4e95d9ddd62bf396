"""Exercise 08.4, the attention layer's backward pass: every known mistake, written as a
learner would (head by head, with loops), is caught and named; unlisted wrong attempts are caught;
the reference equals the library layer's backward pass and PyTorch's autograd; notebook 08 shows
the forward pass that builds the check's caches."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from exercise_catalogue import catalogue_tests

from helpers import MultiHeadAttention, combine_heads, split_heads
from helpers import softmax as softmax_lib
from helpers.exercises import check, reference
from helpers.exercises._core import get
from helpers.exercises.ex08_backward import mha_forward

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "08_capstone_training.ipynb"


def softmax(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ------------------------------------------------------------------------------ 08.4
def mha_bwd(d_out, cache, params, *, s_in=("W_q", "b_q", "dx"), q_extra_scale=False,
            k_extra_scale=False, paths="qkv", split="transpose", merge="transpose",
            dW_swapped=False, bias_sum=(0, 1), softmax_backward="full", recompute_P=False,
            dV_transpose=True, dK_transpose=True, W_q_transpose=True):
    """The layer's backward pass written head by head with loops, as a learner might."""
    x, Q, K, V, P, H = (cache[k] for k in ("x", "Q", "K", "V", "P", "H"))
    B, h, L, dk = Q.shape
    d = h * dk
    s = 1 / math.sqrt(dk)

    def dW(a, g):
        a2, g2 = a.reshape(-1, a.shape[-1]), g.reshape(-1, g.shape[-1])
        return g2.T @ a2 if dW_swapped else a2.T @ g2

    grads = {"W_o": dW(H, d_out), "b_o": d_out.sum(axis=bias_sum)}
    dH = d_out @ params["W_o"].T
    dQ, dK, dV = np.zeros((B, L, d)), np.zeros((B, L, d)), np.zeros((B, L, d))
    for b in range(B):
        for i in range(h):
            cols = slice(i * dk, (i + 1) * dk)
            dO_i = dH[b, :, cols] if split == "transpose" else dH[b].reshape(h, L, dk)[i]
            P_i = softmax(Q[b, i] @ K[b, i].T) if recompute_P else P[b, i]
            dV_i = (P_i.T if dV_transpose else P_i) @ dO_i
            dP_i = dO_i @ V[b, i].T
            if softmax_backward == "full":
                dS_i = P_i * (dP_i - (dP_i * P_i).sum(axis=1, keepdims=True))
            else:
                dS_i = P_i * (1 - P_i) * dP_i
            dQ_i = dS_i @ K[b, i] * (s if q_extra_scale else 1.0)
            dK_i = (dS_i.T if dK_transpose else dS_i) @ Q[b, i] * (s if k_extra_scale else 1.0)
            for full, part in ((dQ, dQ_i), (dK, dK_i), (dV, dV_i)):
                if merge == "transpose":
                    full[b, :, cols] = part
                else:
                    full[b].reshape(h, L, dk)[i] = part
    q_w, q_b, q_dx = (s if where in s_in else 1.0 for where in ("W_q", "b_q", "dx"))
    grads.update(W_q=q_w * dW(x, dQ), W_k=dW(x, dK), W_v=dW(x, dV),
                 b_q=q_b * dQ.sum(axis=bias_sum), b_k=dK.sum(axis=bias_sum),
                 b_v=dV.sum(axis=bias_sum))
    W_q_back = params["W_q"].T if W_q_transpose else params["W_q"]
    by_path = {"q": q_dx * dQ @ W_q_back, "k": dK @ params["W_k"].T,
               "v": dV @ params["W_v"].T}
    return sum(by_path[p] for p in paths), grads


CATALOGUED = {
    "08.4": {
        "the scale missing from the query path":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, s_in=()),
        "the scale missing from dW_q and db_q":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, s_in=("dx",)),
        "the scale missing from db_q":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, s_in=("W_q", "dx")),
        "the scale missing from dx's query path":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, s_in=("W_q", "b_q")),
        "07 §8's dQ on the scaled Q":  # dQ = s dS K, then s again in dW_q, db_q and dx
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, q_extra_scale=True),
        "07 §8's dK on the scaled Q":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, k_extra_scale=True),
        "dx from the query path only":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, paths="q"),
        "dx from the key path only":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, paths="k"),
        "dx from the value path only":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, paths="v"),
        "dx without the query path":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, paths="kv"),
        "dx without the key path":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, paths="qv"),
        "dx without the value path":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, paths="qk"),
        "combine-heads backward without the transpose":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, split="reshape"),
        "dQ, dK, dV merged by reshape alone":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, merge="reshape"),
        "heads split and merged by reshape alone":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, split="reshape",
                                                 merge="reshape"),
        "dW transposed": lambda d_out, cache, params: mha_bwd(d_out, cache, params,
                                                              dW_swapped=True),
        "bias gradients summed over the batch axis only":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, bias_sum=0),
        "dS = P(1 − P)·dP":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, softmax_backward="diag"),
        "P recomputed without the mask":
            lambda d_out, cache, params: mha_bwd(d_out, cache, params, recompute_P=True),
    },
}


UNLISTED = {
    "08.4": [
        lambda d_out, cache, params: mha_bwd(d_out, cache, params, dV_transpose=False),
        lambda d_out, cache, params: mha_bwd(d_out, cache, params, dK_transpose=False),
        lambda d_out, cache, params: mha_bwd(d_out, cache, params, W_q_transpose=False),
        lambda d_out, cache, params: (mha_bwd(d_out, cache, params)[0],
                                      {k: g for k, g in mha_bwd(d_out, cache, params)[1].items()
                                       if k.startswith("W")}),  # the biases left out
        lambda d_out, cache, params: (mha_bwd(d_out, cache, params)[0],
                                      {k: g / d_out.shape[0] for k, g in
                                       mha_bwd(d_out, cache, params)[1].items()}),  # averaged
        lambda d_out, cache, params: mha_bwd(d_out, cache, params, paths="qkvv"),  # v twice
        lambda d_out, cache, params: (mha_bwd(d_out, cache, params)[0] * 2,
                                      mha_bwd(d_out, cache, params)[1]),
    ],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


def test_a_right_answer_written_with_loops_passes():
    assert check("08.4", lambda d_out, cache, params: mha_bwd(d_out, cache, params)).passed


def _layer_like(params, num_heads, mask=None):
    d = params["W_q"].shape[0]
    layer = MultiHeadAttention(d, num_heads, seed=0)
    for name, value in params.items():
        setattr(layer, name, value.copy())
    return layer


@pytest.mark.parametrize("k", range(4))
def test_08_4_forward_and_reference_backward_equal_the_library_layer_and_autograd(k):
    d_out, cache, params = get("08.4").cases[k].args
    h = cache["Q"].shape[1]
    x = cache["x"]
    mask = None
    if k == 1:  # the case built with a causal mask whose first query sees nothing
        mask = np.tril(np.ones((5, 5), dtype=bool))
        mask[0] = False
    layer = _layer_like(params, h)
    out, weights = layer(x, mask=mask)
    ours_out, ours_cache = mha_forward(x, params, h, mask)
    np.testing.assert_allclose(ours_out, out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours_cache["P"], weights, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ours_cache["P"], cache["P"], rtol=0, atol=0)
    dx_lib = layer.backward(d_out)
    dx, grads = reference("08.4")(d_out, cache, params)
    np.testing.assert_allclose(dx, dx_lib, rtol=0, atol=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(g, layer.grads[name], rtol=0, atol=1e-12, err_msg=name)
    # autograd through torch's multi_head_attention_forward (weights in its (out, in) layout)
    tx = torch.from_numpy(x.transpose(1, 0, 2).copy()).requires_grad_()  # (L, B, d)
    tp = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
    t_out, _ = torch.nn.functional.multi_head_attention_forward(
        tx, tx, tx, x.shape[-1], h,
        torch.cat([tp["W_q"].T, tp["W_k"].T, tp["W_v"].T]),
        torch.cat([tp["b_q"], tp["b_k"], tp["b_v"]]), None, None, False, 0.0,
        tp["W_o"].T, tp["b_o"], training=False, need_weights=False,
        attn_mask=None if mask is None else torch.from_numpy(~mask))
    (t_out * torch.from_numpy(d_out.transpose(1, 0, 2).copy())).sum().backward()
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(1, 0, 2), rtol=0, atol=1e-10)
    for name, g in grads.items():
        np.testing.assert_allclose(g, tp[name].grad.numpy(), rtol=0, atol=1e-10, err_msg=name)


def test_08_4_the_notebook_shows_the_forward_pass_that_builds_the_cases():
    """The learner reads the cache's layout from notebook 08's mha_forward: it must build the
    same cache as the one the check's cases come from."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    source = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    (cell,) = [s for s in source if "def mha_forward(" in s]
    namespace = {"np": np, "math": math, "softmax": softmax_lib, "split_heads": split_heads,
                 "combine_heads": combine_heads}
    exec(compile(cell, "notebook 08, mha_forward", "exec"), namespace)
    for case in get("08.4").cases:
        _, cache, params = case.args
        h = cache["Q"].shape[1]
        mask = None if cache["P"][0, 0, 0].any() else np.tril(np.ones(cache["P"].shape[-2:],
                                                                      dtype=bool))
        if mask is not None:
            mask[0] = False
        _, shown = namespace["mha_forward"](cache["x"], params, h, mask)
        assert shown.keys() == cache.keys()
        for key, value in cache.items():
            np.testing.assert_allclose(shown[key], value, rtol=0, atol=1e-13, err_msg=key)


