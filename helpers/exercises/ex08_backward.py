"""Exercise 08.4 of notebook 08: the backward pass of the whole self-attention layer, from the
forward pass's cache (registered when :mod:`helpers.exercises.ex08` is imported).

The cases are built by :func:`mha_forward`, the plain-NumPy forward pass whose cache notebook 08
§6 shows (the tests check that the notebook's version builds the same cache)."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._compare import arrays
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import _softmax

rng = np.random.default_rng(8084)
n = rng.standard_normal
NAMES = ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")


def _split(X, h):  # (B, L, d) -> (B, h, L, d_k)
    B, L, d = X.shape
    return X.reshape(B, L, h, d // h).transpose(0, 2, 1, 3)


def _merge(X):  # (B, h, L, d_k) -> (B, L, d)
    B, h, L, d_k = X.shape
    return X.transpose(0, 2, 1, 3).reshape(B, L, h * d_k)


def mha_forward(x, params, num_heads, mask=None):
    """Self-attention of ``x (B, L, d)`` and the cache its backward pass reads (boolean
    ``mask`` (L, L), True = may attend; a fully masked row gets zero weights)."""
    s = 1.0 / math.sqrt(x.shape[-1] // num_heads)
    Q = _split(s * (x @ params["W_q"] + params["b_q"]), num_heads)  # scale folded into Q
    K = _split(x @ params["W_k"] + params["b_k"], num_heads)
    V = _split(x @ params["W_v"] + params["b_v"], num_heads)
    S = Q @ K.transpose(0, 1, 3, 2)  # (B, h, L, L)
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    P = _softmax(S)
    H = _merge(P @ V)  # (B, L, d)
    out = H @ params["W_o"] + params["b_o"]
    return out, {"x": x, "Q": Q, "K": K, "V": V, "P": P, "H": H}


def _backward(d_out, cache, params, *, q_scales=(1.0, 1.0, 1.0), k_scale=1.0, paths="qkv",
              split_t=True, merge_t=True, dW_t=False, bias_axes=(0, 1), softmax="full",
              mask_kept=True):
    """The reference, or a mistake: q_scales multiply s in (dW_q, db_q, the query path of dx);
    the other flags switch one step of the table to its wrong form."""
    x, Q, K, V, P, H = (cache[k] for k in ("x", "Q", "K", "V", "P", "H"))
    B, h, L, d_k = Q.shape
    d = h * d_k
    s = 1.0 / math.sqrt(d_k)

    def dW(inp, dy):  # sum over batch and positions of inp^T dy
        a, g = inp.reshape(-1, inp.shape[-1]), dy.reshape(-1, dy.shape[-1])
        return g.T @ a if dW_t else a.T @ g

    grads = {"W_o": dW(H, d_out), "b_o": d_out.sum(axis=bias_axes)}
    dH = d_out @ params["W_o"].T  # (B, L, d)
    dO = _split(dH, h) if split_t else dH.reshape(B, h, L, d_k)  # (B, h, L, d_k)
    if not mask_kept:  # P recomputed from Q and K, the mask forgotten
        P = _softmax(Q @ K.transpose(0, 1, 3, 2))
    dV = P.transpose(0, 1, 3, 2) @ dO
    dP = dO @ V.transpose(0, 1, 3, 2)  # (B, h, L, L)
    if softmax == "full":
        dS = P * (dP - (dP * P).sum(axis=-1, keepdims=True))
    else:  # the Jacobian's diagonal only
        dS = P * (1 - P) * dP
    dQ = dS @ K  # w.r.t. the scaled Q: S = Q K^T
    dK = k_scale * dS.transpose(0, 1, 3, 2) @ Q
    merge = _merge if merge_t else (lambda X: X.reshape(B, L, d))
    dQ, dK, dV = merge(dQ), merge(dK), merge(dV)  # (B, L, d) each
    q_w, q_b, q_x = (s * f for f in q_scales)  # Q = s (x W_q + b_q)
    grads.update(W_q=q_w * dW(x, dQ), b_q=q_b * dQ.sum(axis=bias_axes),
                 W_k=dW(x, dK), b_k=dK.sum(axis=bias_axes),
                 W_v=dW(x, dV), b_v=dV.sum(axis=bias_axes))
    paths_to_x = {"q": q_x * dQ @ params["W_q"].T, "k": dK @ params["W_k"].T,
                  "v": dV @ params["W_v"].T}
    dx = sum(paths_to_x[p] for p in paths)
    return dx, {name: grads[name] for name in NAMES}


def mha_backward(d_out, cache, params):
    return _backward(d_out, cache, params)


_dx = arrays(rtol=1e-8, atol=1e-11)


def _compare(got, want):
    """(dx, grads): dx an array, grads a dict with the eight parameter names."""
    if not isinstance(got, tuple | list) or len(got) != 2:
        return "returned something else; expected a pair (dx, grads)"
    dx, grads = got
    if not isinstance(grads, dict):
        return f"grads is a {type(grads).__name__}; expected a dict name -> gradient"
    missing = [k for k in NAMES if k not in grads]
    if missing:
        return f"grads has no {', '.join(missing)}; expected the eight names of params"
    problems = {"dx": _dx(dx, want[0])}
    problems.update({f"grads[{k!r}]": _dx(grads[k], want[1][k]) for k in NAMES})
    wrong = [k for k, p in problems.items() if p is not None]
    if not wrong:
        return None
    right = [k for k in problems if k not in wrong]
    text = f"wrong: {', '.join(wrong)}" + (f" (right: {', '.join(right)})" if right else "")
    return f"{text}\n  {wrong[0]}: {problems[wrong[0]]}"


def _case(B, L, d, h, note, mask=None):
    params = {k: n((d, d)) / math.sqrt(d) for k in NAMES[:4]}
    params.update({k: 0.5 * n(d) for k in NAMES[4:]})
    x = n((B, L, d))
    _, cache = mha_forward(x, params, h, mask)
    return Case((n((B, L, d)), cache, params), note)


_causal_no_first = np.tril(np.ones((5, 5), dtype=bool))
_causal_no_first[0] = False  # query 0 may attend to nothing: a fully masked row
_CASES = (
    _case(2, 5, 6, 2, "B = 2, L = 5, d = 6, two heads (d_k = 3)"),
    _case(2, 5, 6, 3, "a causal mask, query 0 fully masked (its weights are all 0)",
          mask=_causal_no_first),
    _case(1, 3, 4, 1, "one sequence, one head"),
    _case(3, 4, 8, 4, "B = 3, L = 4, four heads of d_k = 2"),
)
_T = "notebook 08 §6"


def _with_scales(*factors_of_root_dk):
    """The backward pass with s multiplied by (√d_k)^f in dW_q, db_q and dx's query path."""
    def wrong(d_out, cache, params):
        root = math.sqrt(cache["Q"].shape[-1])
        return _backward(d_out, cache, params, q_scales=tuple(root**f for f in factors_of_root_dk))
    return wrong


_SCALE_HINT = ("Where does the forward pass multiply by s = 1/√d_k, and what does that factor do "
               "to every gradient taken through it?")
_SCALE_MISTAKES = (  # Q = s (x W_q + b_q): dW_q, db_q and dx's query path carry s once each
    Mistake("the scale missing from the query path", "Q = s(x W_q + b_q) with s = 1/√d_k: "
            "dW_q, db_q and the query path to dx each carry the factor s.", _T,
            _with_scales(1, 1, 1), hint=_SCALE_HINT),
    Mistake("the scale missing from dW_q and db_q", "Q = s(x W_q + b_q): the gradients of "
            "W_q and b_q carry the factor s = 1/√d_k, as the query path to dx does.", _T,
            _with_scales(1, 1, 0), hint=_SCALE_HINT),
    Mistake("the scale missing from db_q", "b_q sits inside Q = s(x W_q + b_q): its gradient "
            "carries s = 1/√d_k, as dW_q's does.", _T, _with_scales(0, 1, 0), hint=_SCALE_HINT),
    Mistake("the scale missing from dx's query path", "x reaches Q through s(x W_q + b_q): "
            "the query path to dx is s·dQ̂ W_qᵀ.", _T, _with_scales(0, 0, 1), hint=_SCALE_HINT),
    Mistake("07 §8's dQ on the scaled Q", "the cache's Q already holds s, so dQ̂ = dS K; "
            "notebook 07 §8's s·dS·K is the gradient of an unscaled Q, and with the s of "
            "dW_q, db_q and dx's query path it counts s twice (s² instead of s).", _T,
            _with_scales(-1, -1, -1), hint="Does the cache's Q already carry s? Count the "
            "factors of s between the scores and W_q."),
)

_PATHS = {"q": "query", "k": "key", "v": "value"}


def _path_mistake(paths):
    """dx summed over ``paths`` only (a proper, non-empty subset of "qkv")."""
    if len(paths) == 1:
        name = f"dx from the {_PATHS[paths]} path only"
    else:
        name = f"dx without the {_PATHS[next(p for p in 'qkv' if p not in paths)]} path"
    return Mistake(name, "x feeds the queries, the keys and the values: dx is the sum of the "
                   "three paths, s·dQ̂ W_qᵀ + dK W_kᵀ + dV W_vᵀ.", _T,
                   lambda d_out, cache, params: _backward(d_out, cache, params, paths=paths),
                   hint="How many of the layer's products read x, and how does the chain rule "
                        "combine several paths from one input?")


_PATH_MISTAKES = tuple(_path_mistake(p) for p in ("q", "k", "v", "kv", "qv", "qk"))

register(Exercise(
    id="08.4",
    reference=mha_backward,
    taught=_T,
    compare=_compare,
    cases=_CASES,
    mistakes=(
        *_SCALE_MISTAKES,
        Mistake("07 §8's dK on the scaled Q", "the cache's Q already holds s, so dK = dSᵀ Q; "
                "notebook 07 §8's s·dSᵀQ starts from an unscaled Q and here counts s twice.",
                _T, lambda d_out, cache, params: _backward(
                    d_out, cache, params, k_scale=1 / math.sqrt(cache["Q"].shape[-1]))),
        *_PATH_MISTAKES,
        Mistake("combine-heads backward without the transpose", "combining heads was a "
                "transpose then a reshape; its backward is the reshape to (B, L, h, d_k) then "
                "the transpose to (B, h, L, d_k). dH.reshape(B, h, L, d_k) mixes positions "
                "and heads.", "notebook 08 §6 and notebook 04 §3",
                lambda d_out, cache, params: _backward(d_out, cache, params, split_t=False)),
        Mistake("dQ, dK, dV merged by reshape alone", "splitting heads was a reshape to (B, L, "
                "h, d_k) then a transpose; merging dQ, dK, dV back needs the transpose to (B, L, "
                "h, d_k) before the reshape to (B, L, d), as combine_heads does.",
                "notebook 08 §6 and notebook 04 §3",
                lambda d_out, cache, params: _backward(d_out, cache, params, merge_t=False)),
        Mistake("heads split and merged by reshape alone", "both the split of dH and the merge "
                "of dQ, dK, dV need the transpose between (B, L, h, d_k) and (B, h, L, d_k).",
                "notebook 08 §6 and notebook 04 §3",
                lambda d_out, cache, params: _backward(d_out, cache, params, split_t=False,
                                                       merge_t=False)),
        Mistake("dW transposed", "for y = x W the gradient is dW = xᵀ dy (shape (d_in, d_out)); "
                "dyᵀ x is its transpose, which has the same shape for these square weights.",
                _T, lambda d_out, cache, params: _backward(d_out, cache, params, dW_t=True)),
        Mistake("bias gradients summed over the batch axis only", "a bias is added at every "
                "position of every sequence: sum over axes (0, 1), giving shape (d,).", _T,
                lambda d_out, cache, params: _backward(d_out, cache, params, bias_axes=0)),
        Mistake("dS = P(1 − P)·dP", "that is only the diagonal of the softmax Jacobian; every "
                "weight of a row depends on every score: dS = P ⊙ (dP − rowsum(dP ⊙ P)).",
                "notebook 07 §8",
                lambda d_out, cache, params: _backward(d_out, cache, params, softmax="diag")),
        Mistake("P recomputed without the mask", "use the cache's P: softmax(Q Kᵀ) recomputed "
                "without the mask puts weight on masked keys.", _T,
                lambda d_out, cache, params: _backward(d_out, cache, params, mask_kept=False)),
    ),
    difficulty=3,
    minutes=45,
    hints=(
        "Walk §6's backward table from step 6 to step 1, one line per row, each array's shape "
        "written beside it.",
        "dW = xᵀ·dy on the (B·L, d) arrays; db = dy.sum(axis=(0, 1)). Split dH: reshape to (B, "
        "L, h, d_k), then transpose(0, 2, 1, 3); merge back in reverse.",
        "The cache's Q already carries s: dQ = dS K and dK = dSᵀ Q. s appears only in dW_q, "
        "db_q and the query path of dx; dx adds three paths.",
    ),
))
