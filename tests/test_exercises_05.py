"""Notebook 05's exercises 05.1-05.4 (05.5 and 05.6 are in test_exercises_05_practical.py): each
known mistake, written as a learner would, is caught and named; wrong attempts outside the catalogue
are caught too."""

import math

import numpy as np
from exercise_catalogue import catalogue_tests

from helpers import combine_heads, split_heads
from helpers.exercises import check
from helpers.exercises.ex05 import cross_attention_layer

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
    out_bias=True,
    blocked=-np.inf,
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
        if mask_mode == "isfinite":  # a float mask turned boolean: keeps only what is finite
            s = np.where(m if m.dtype == bool else np.isfinite(m), s, -np.inf)
        elif mask_mode == "bool" or (mask_mode == "dtype" and m.dtype == bool):
            s = np.where(~m if invert else m, s, blocked)
        else:
            s = s + m
    w = (soft or softmax)(s)
    y = combine_heads(w @ V)
    return (lin(y, layer.W_o, layer.b_o if out_bias else None) if out else y), w


def softmax_nan_on_masked_rows(z):  # the usual stable softmax, without a guard
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def softmax_global_max(z):  # one maximum for everything
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=-1, keepdims=True)


def softmax_global_max_guarded(z):  # one maximum for everything, with notebook 01's guard
    e = np.exp(z - z.max())
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


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
        "scaled by √d_model": lambda target, source: forward(ex_layer, target, source, d_scale=16),
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
        "one maximum for the whole array, with the guarded division": (
            lambda layer, query, key=None, value=None, mask=None: forward(
                layer, query, key, value, mask, soft=softmax_global_max_guarded
            )
        ),
        "left out b_o": lambda layer, query, key=None, value=None, mask=None: forward(
            layer, query, key, value, mask, out_bias=False
        ),
        "a float mask turned boolean with np.isfinite": (
            lambda layer, query, key=None, value=None, mask=None: forward(
                layer, query, key, value, mask, mask_mode="isfinite"
            )
        ),
        "−1e9 instead of −∞": lambda layer, query, key=None, value=None, mask=None: forward(
            layer, query, key, value, mask, blocked=-1e9
        ),
    },
}


def batch_only(layer, query, key=None, value=None, mask=None):  # fails on unbatched tokens
    _batch, _length, _width = query.shape
    return forward(layer, query, key, value, mask)


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
        lambda target, source: forward(ex_layer, target, source, d_scale=1),  # no scale
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
        lambda layer, query, key=None, value=None, mask=None: forward(
            layer, query, key, value,
            None if mask is None or np.asarray(mask).dtype == bool else np.asarray(mask) == 0,
        ),  # a float mask turned boolean with == 0: its biases block keys
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


def test_05_4_catches_a_float_mask_turned_boolean_with_isfinite_only_on_its_biases():
    result = check("05.4", CATALOGUED["05.4"]["a float mask turned boolean with np.isfinite"])
    assert not result.passed and result.failed_cases == (11,), result.report
    assert "ALiBi-style float mask" in result.report


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
