"""Notebook 05's exercises: each known mistake, written as a learner would, is caught and named;
wrong attempts outside the catalogue are caught too."""

import math

import numpy as np
from exercise_catalogue import catalogue_tests

from helpers import attention, combine_heads, create_causal_mask, split_heads
from helpers.exercises import check, reference
from helpers.exercises._core import get
from helpers.exercises.ex05 import cross_attention_layer
from helpers.mha.dropout import dropout_keep_mask, dropout_scale

ex_layer = cross_attention_layer()  # what the notebook's cross_attend reads


def softmax(z):
    m = z.max(axis=-1, keepdims=True)
    e = np.exp(z - np.where(np.isfinite(m), m, 0.0))
    s = e.sum(axis=-1, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


def forward(
    layer,
    query,
    key=None,
    value=None,
    mask=None,
    *,
    v_default="key",
    biases=True,
    out=True,
    d_scale=None,
    invert=False,
    no_transpose=False,
    torch_layout=False,
    mask_mode="dtype",
    soft=None,
):
    key = query if key is None else key
    value = (key if v_default == "key" else query) if value is None else value
    h = layer.num_heads

    def lin(x, W, b):
        W = W.T if torch_layout else W
        return x @ W + b if biases and b is not None else x @ W

    def heads(y):
        if no_transpose:
            return y.reshape(*y.shape[:-2], h, y.shape[-2], -1)
        return split_heads(y, h)

    Q = heads(lin(query, layer.W_q, layer.b_q))
    K = heads(lin(key, layer.W_k, layer.b_k))
    V = heads(lin(value, layer.W_v, layer.b_v))
    s = Q @ np.swapaxes(K, -1, -2) / math.sqrt(d_scale or Q.shape[-1])
    if mask is not None:
        m = np.asarray(mask)
        if mask_mode == "bool" or (mask_mode == "dtype" and m.dtype == bool):
            s = np.where(~m if invert else m, s, -np.inf)
        else:
            s = s + m
    w = (soft or softmax)(s)
    y = combine_heads(w @ V)
    return (lin(y, layer.W_o, layer.b_o) if out else y), w


def softmax_nan_on_masked_rows(z):  # the usual stable softmax, without a guard
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def softmax_global_max(z):  # one maximum for everything
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=-1, keepdims=True)


def with_biases_assumed(layer, query, key=None, value=None, mask=None):
    key = query if key is None else key
    value = key if value is None else value
    Q = split_heads(query @ layer.W_q + layer.b_q, layer.num_heads)  # TypeError without biases
    K = split_heads(key @ layer.W_k + layer.b_k, layer.num_heads)
    V = split_heads(value @ layer.W_v + layer.b_v, layer.num_heads)
    s = Q @ np.swapaxes(K, -1, -2) / math.sqrt(layer.d_k)
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    w = softmax(s)
    return combine_heads(w @ V) @ layer.W_o + layer.b_o, w


def cached_step(
    q_new, k_new, v_new, K_cache, V_cache, *, align="bottom-right", axis=-2, add_mask=False,
    scale=None, soft=None,
):
    """The decoding step as a learner writes it, with helpers' mask and NumPy."""
    K = np.concatenate((K_cache, k_new), axis=axis)
    V = np.concatenate((V_cache, v_new), axis=axis)
    n, total = q_new.shape[-2], K.shape[-2]
    s = q_new @ np.swapaxes(K, -1, -2) / (scale or math.sqrt(q_new.shape[-1]))
    if align == "bottom-right":
        m = create_causal_mask(n, total)
        s = s + m if add_mask else np.where(m, s, -np.inf)
    elif align == "top-left":
        s = np.where(np.tril(np.ones((n, total), dtype=bool)), s, -np.inf)
    return (soft or softmax)(s) @ V, K, V


def new_tokens_only(q_new, k_new, v_new, K_cache, V_cache):
    out, _ = attention(q_new, k_new, v_new, create_causal_mask(q_new.shape[-2]))
    return out, np.concatenate([K_cache, k_new], -2), np.concatenate([V_cache, v_new], -2)


def renormalising_dropout(P, p, keep, training):
    if not training:
        return P
    kept = P * keep
    return kept / kept.sum(axis=-1, keepdims=True)


CATALOGUED = {
    "05.1": {
        "forgot the biases": lambda d_model, bias: 4 * d_model**2,
        "forgot W_o and its bias": lambda d_model, bias: (
            3 * d_model**2 + (3 * d_model if bias else 0)
        ),
        "ignored bias=False": lambda d_model, bias: 4 * d_model**2 + 4 * d_model,
        "one bias vector": lambda d_model, bias: 4 * d_model**2 + (d_model if bias else 0),
        "4 · bias instead of 4 · d_model": lambda d_model, bias: 4 * d_model * d_model + 4 * bias,
    },
    "05.2": {
        "keys and values from the target": lambda target, source: forward(ex_layer, target),
        "queries from the source": lambda target, source: forward(ex_layer, source, target),
        "left out the biases": lambda target, source: forward(
            ex_layer, target, source, biases=False
        ),
        "left out b_o": lambda target, source: (
            forward(ex_layer, target, source, out=False)[0] @ ex_layer.W_o,
            forward(ex_layer, target, source)[1],
        ),
        "no output projection": lambda target, source: forward(ex_layer, target, source, out=False),
        "PyTorch's (out, in) layout": lambda target, source: forward(
            ex_layer, target, source, torch_layout=True
        ),
        "one maximum for the whole array": lambda target, source: forward(
            ex_layer, target, source, soft=softmax_global_max
        ),
    },
    "05.3": {
        "the standard deviation as the bound": lambda fan_in, fan_out: (
            (2 / (fan_in + fan_out)) ** 0.5
        ),
        "no square root": lambda fan_in, fan_out: 6 / (fan_in + fan_out),
        "fan_in only": lambda fan_in, fan_out: fan_in**-0.5,
        "√(6/fan_in)": lambda fan_in, fan_out: math.sqrt(6 / fan_in),
        "variance 1/(fan_in+fan_out)": lambda fan_in, fan_out: math.sqrt(3 / (fan_in + fan_out)),
    },
    "05.4": {
        "value defaulted to the query": lambda layer, query, key=None, value=None, mask=None: (
            forward(layer, query, key, value, mask, v_default="query")
        ),
        "left out the biases": lambda layer, query, key=None, value=None, mask=None: forward(
            layer, query, key, value, mask, biases=False
        ),
        "no output projection": lambda layer, query, key=None, value=None, mask=None: forward(
            layer, query, key, value, mask, out=False
        ),
        "scaled by √d_model": lambda layer, query, key=None, value=None, mask=None: forward(
            layer, query, key, value, mask, d_scale=layer.d_model
        ),
        "True = blocked": lambda layer, query, key=None, value=None, mask=None: forward(
            layer, query, key, value, mask, invert=True
        ),
        "split without the transpose": lambda layer, query, key=None, value=None, mask=None: (
            forward(layer, query, key, value, mask, no_transpose=True)
        ),
        "assumed the layer has biases": with_biases_assumed,
        "PyTorch's (out, in) layout": lambda layer, query, key=None, value=None, mask=None: (
            forward(layer, query, key, value, mask, torch_layout=True)
        ),
        "a float mask used as a boolean": lambda layer, query, key=None, value=None, mask=None: (
            forward(layer, query, key, value, mask, mask_mode="bool")
        ),
        "a boolean mask added to the scores": (
            lambda layer, query, key=None, value=None, mask=None: forward(
                layer, query, key, value, mask, mask_mode="add"
            )
        ),
        "NaN on a fully masked row": lambda layer, query, key=None, value=None, mask=None: (
            forward(layer, query, key, value, mask, soft=softmax_nan_on_masked_rows)
        ),
        "one maximum for the whole array": lambda layer, query, key=None, value=None, mask=None: (
            forward(layer, query, key, value, mask, soft=softmax_global_max)
        ),
    },
    "05.5": {
        "top-left causal mask": lambda q_new, k_new, v_new, K_cache, V_cache: cached_step(
            q_new, k_new, v_new, K_cache, V_cache, align="top-left"
        ),
        "no mask for a chunk": lambda q_new, k_new, v_new, K_cache, V_cache: cached_step(
            q_new, k_new, v_new, K_cache, V_cache, align=None
        ),
        "attended to the new tokens only": new_tokens_only,
        "returned the old cache": lambda q_new, k_new, v_new, K_cache, V_cache: (
            cached_step(q_new, k_new, v_new, K_cache, V_cache)[0],
            K_cache,
            V_cache,
        ),
        "appended along axis 1": lambda q_new, k_new, v_new, K_cache, V_cache: cached_step(
            q_new, k_new, v_new, K_cache, V_cache, axis=1
        ),
        "a boolean mask added to the scores": lambda q_new, k_new, v_new, K_cache, V_cache: (
            cached_step(q_new, k_new, v_new, K_cache, V_cache, add_mask=True)
        ),
        "no 1/√d_k scale": lambda q_new, k_new, v_new, K_cache, V_cache: cached_step(
            q_new, k_new, v_new, K_cache, V_cache, scale=1.0
        ),
        "one maximum for the whole array": lambda q_new, k_new, v_new, K_cache, V_cache: (
            cached_step(q_new, k_new, v_new, K_cache, V_cache, soft=softmax_global_max)
        ),
    },
    "05.6": {
        "no rescaling": lambda P, p, keep, training: P * keep if training else P,
        "multiplied by 1 − p": lambda P, p, keep, training: (
            np.where(keep, P * (1 - p), 0.0) if training else P
        ),
        "divided by p": lambda P, p, keep, training: np.where(keep, P / p, 0.0) if training else P,
        "keep mask read as dropped": lambda P, p, keep, training: (
            np.where(~keep, P / (1 - p), 0.0) if training else P
        ),
        "dropout at evaluation too": lambda P, p, keep, training: np.where(keep, P / (1 - p), 0.0),
        "divided by 1 − p at evaluation": lambda P, p, keep, training: (
            np.where(keep, P / (1 - p), 0.0) if training else P / (1 - p)
        ),
        "scaled at evaluation instead (the original dropout)": lambda P, p, keep, training: (
            P * keep if training else P * (1 - p)
        ),
        "rows renormalised after dropping": renormalising_dropout,
    },
}


def batch_only(layer, query, key=None, value=None, mask=None):  # fails on unbatched tokens
    _batch, _length, _width = query.shape
    return forward(layer, query, key, value, mask)


def cache_only(q_new, k_new, v_new, K_cache, V_cache):  # forgot to append before attending
    out, _ = attention(q_new, K_cache, V_cache)
    return out, np.concatenate([K_cache, k_new], -2), np.concatenate([V_cache, v_new], -2)


def new_before_cache(q_new, k_new, v_new, K_cache, V_cache):
    K, V = np.concatenate([k_new, K_cache], -2), np.concatenate([v_new, V_cache], -2)
    n, total = q_new.shape[-2], K.shape[-2]
    return attention(q_new, K, V, create_causal_mask(n, total))[0], K, V


def nan_triangle(q_new, k_new, v_new, K_cache, V_cache):  # 0 * -inf = NaN below the diagonal
    K, V = np.concatenate([K_cache, k_new], -2), np.concatenate([V_cache, v_new], -2)
    n, total = q_new.shape[-2], K.shape[-2]
    blocked = np.triu(np.ones((n, total)), k=total - n + 1) * -np.inf
    return attention(q_new, K, V, blocked)[0], K, V


def promoted_to_float64(q_new, k_new, v_new, K_cache, V_cache):
    K, V = np.concatenate([K_cache, k_new], -2), np.concatenate([V_cache, v_new], -2)
    n, total = q_new.shape[-2], K.shape[-2]
    s = q_new @ np.swapaxes(K, -1, -2) / np.sqrt(np.float64(q_new.shape[-1]))
    w = softmax(np.where(create_causal_mask(n, total), s, -np.inf))
    return w @ V, K, V


def drops_in_place(P, p, keep, training):
    if training:
        P[~keep] = 0.0
        P /= 1 - p
    return P


UNLISTED = {
    "05.1": [
        lambda d_model, bias: 4 * d_model * d_model + 4 * d_model * d_model * bias,  # d×d biases
        lambda d_model, bias: 4 * d_model + (4 * d_model if bias else 0),
        lambda d_model, bias: float(4 * d_model**2 + 4 * d_model * bias) + 0.5,
        lambda d_model, bias: (4 * d_model**2, 4 * d_model * bias),
        lambda d_model, bias: 3 * d_model**2 + 4 * d_model * bias,
    ],
    "05.2": [
        lambda target, source: forward(ex_layer, target, source)[0],  # no weights
        lambda target, source: forward(ex_layer, target, source, d_scale=16),
        lambda target, source: forward(
            ex_layer, target, source, invert=True, mask=np.ones(1, bool)
        ),
        lambda target, source: (lambda o, w: (o, w.mean(1)))(*forward(ex_layer, target, source)),
        lambda target, source: forward(
            ex_layer, target, source, value=target[:, :1].repeat(source.shape[1], 1)
        ),
    ],
    "05.3": [
        lambda fan_in, fan_out: math.sqrt(6 / (fan_in * fan_out)),
        lambda fan_in, fan_out: math.sqrt(6) / (fan_in + fan_out),
        lambda fan_in, fan_out: math.sqrt(12 / (fan_in + fan_out)),
        lambda fan_in, fan_out: np.array([math.sqrt(6 / (fan_in + fan_out))] * 2),
        lambda fan_in, fan_out: round(math.sqrt(6 / (fan_in + fan_out)), 3),
    ],
    "05.4": [
        batch_only,
        lambda layer, query, key=None, value=None, mask=None: forward(
            layer, query, query, query, mask
        ),
        lambda layer, query, key=None, value=None, mask=None: forward(layer, query, key, value),
        lambda layer, query, key=None, value=None, mask=None: forward(
            layer, query, key, value, None if mask is None else ~np.asarray(mask), invert=True
        )[::-1],
        lambda layer, query, key=None, value=None, mask=None: (
            layer.forward(query, key, value, mask)
            if query.ndim == 3 and key is None
            else forward(layer, query, value, key, mask)
        ),
        lambda layer, query, key=None, value=None, mask=None: (
            forward(layer, query, key, value, None if mask is None else np.asarray(mask) != 0)
        ),  # every mask turned into a boolean with != 0
        lambda layer, query, key=None, value=None, mask=None: forward(
            layer, query, key, value, mask, soft=lambda z: softmax(np.swapaxes(z, -1, -2))
        ),  # softmax over the queries
    ],
    "05.5": [
        cache_only,
        new_before_cache,
        nan_triangle,
        promoted_to_float64,
        lambda q_new, k_new, v_new, K_cache, V_cache: cached_step(
            q_new, k_new, v_new, K_cache, V_cache
        )[0],  # only the output
        lambda q_new, k_new, v_new, K_cache, V_cache: attention(
            q_new,
            np.concatenate([K_cache, k_new], -2),
            np.concatenate([V_cache, v_new], -2),
            create_causal_mask(q_new.shape[-2]),
        ),  # a square (n, n) mask: does not fit (n, t + n)
    ],
    "05.6": [
        lambda P, p, keep, training: P / (1 - p) if training else P,  # keep ignored
        lambda P, p, keep, training: (
            np.where(np.random.default_rng(0).random(P.shape) >= p, P / (1 - p), 0.0)
            if training
            else P
        ),  # draws its own mask
        lambda P, p, keep, training: np.where(keep, P * np.float64(1 / (1 - p)), 0.0)
        if training
        else P,  # float32 promoted to float64
        drops_in_place,
        lambda P, p, keep, training: np.where(keep, P / (1 - p), P) if training else P,
        lambda P, p, keep, training: np.where(keep, P / (1 - p), 0.0) if training else P * keep,
    ],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


def test_a_learner_who_mutates_the_layer_is_told():
    def rescales_weights(layer, query, key=None, value=None, mask=None):
        layer.W_q *= 2.0
        return forward(layer, query, key, value, mask)

    assert "it changed its argument layer in place" in check("05.4", rescales_weights).report


def test_the_05_5_cases_are_rows_of_full_causal_attention():
    """The reference equals rows t … t+n-1 of causal attention over the whole sequence."""
    check_rng = np.random.default_rng(0)
    for case in get("05.5").cases:
        q_new, k_new, v_new, K_cache, V_cache = case.args
        t, n = K_cache.shape[-2], q_new.shape[-2]
        earlier = check_rng.standard_normal((*q_new.shape[:-2], t, q_new.shape[-1]))
        Q = np.concatenate([earlier.astype(q_new.dtype), q_new], -2)  # queries of all t + n tokens
        K, V = np.concatenate([K_cache, k_new], -2), np.concatenate([V_cache, v_new], -2)
        full, _ = attention(Q, K, V, create_causal_mask(t + n))  # square: no alignment question
        out, K_got, V_got = reference("05.5")(*case.args)
        tol = 1e-5 if q_new.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(out, full[..., t:, :], rtol=tol, atol=tol, err_msg=case.note)
        np.testing.assert_array_equal(K_got, K)
        np.testing.assert_array_equal(V_got, V)
        assert out.dtype == q_new.dtype, case.note


def test_the_05_6_reference_is_the_layers_dropout_and_keeps_the_expectation():
    for case in get("05.6").cases:
        P, p, keep, training = case.args
        want = np.where(keep, P * dropout_scale(p), 0.0) if training else P
        np.testing.assert_array_equal(reference("05.6")(*case.args), want)
    P = get("05.6").cases[0].args[0]  # (2, 4, 4), p = 0.1
    draws = np.random.default_rng(1)
    n_draws, p = 20_000, 0.1
    total = np.zeros_like(P)
    for _ in range(n_draws):
        total += reference("05.6")(P, p, dropout_keep_mask(P.shape, p, draws), True)
    sigma = P * math.sqrt(p / ((1 - p) * n_draws))  # standard deviation of each average
    assert np.all(np.abs(total / n_draws - P) < 5 * sigma)


def test_05_4_names_the_fooling_attempts_of_issue_20():
    """The float-mask-as-boolean forward pass and the NaN softmax, as the learner reads were."""

    def every_mask_boolean(layer, query, key=None, value=None, mask=None):
        key = query if key is None else key
        value = key if value is None else value
        h = layer.num_heads

        def b(v):
            return 0.0 if v is None else v

        Q = split_heads(query @ layer.W_q + b(layer.b_q), h)
        K = split_heads(key @ layer.W_k + b(layer.b_k), h)
        V = split_heads(value @ layer.W_v + b(layer.b_v), h)
        s = Q @ np.swapaxes(K, -1, -2) / math.sqrt(Q.shape[-1])
        if mask is not None:
            s = np.where(mask, s, -np.inf)
        w = softmax(s)
        return combine_heads(w @ V) @ layer.W_o + b(layer.b_o), w

    result = check("05.4", every_mask_boolean)
    assert not result.passed and result.mistake == "a float mask used as a boolean", result.report
    assert "float causal mask" in result.report
