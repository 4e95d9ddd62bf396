"""Each exercise's plain-NumPy reference agrees with the library (or PyTorch) on its own cases.

The references are written independently of ``helpers`` so that a change in the library cannot
change what an exercise asks; these tests make sure the two still say the same thing.
"""

import math

import numpy as np
import pytest
import torch

import helpers
from helpers.alibi import alibi_bias
from helpers.attention_backward import attention_backward, softmax_backward
from helpers.diagnostics import diagnose_uniform_attention
from helpers.exercises import reference
from helpers.exercises._core import get
from helpers.exercises.ex05 import cross_attention_layer
from helpers.gqa import kv_cache_bytes, repeat_kv


def _close(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif np.asarray(a).dtype == np.float32 or np.asarray(b).dtype == np.float32:
        assert np.asarray(a).dtype == np.asarray(b).dtype  # float32 in, float32 out
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # float32: about 7 digits
    else:
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _library_mask_attention(Q, K, V, mask=None):
    return helpers.attention(Q, K, V, mask)


LIBRARY = {
    "01.1": lambda x, T, axis=-1: helpers.softmax(x / T, axis=axis),
    "01.2": lambda x, axis=-1: x - np.expand_dims(helpers.logsumexp(x, axis=axis), axis),
    "01.3": lambda p, g: np.einsum("...ij,...j->...i", helpers.softmax_jacobian(p), g),
    "01.4": lambda x, axis=-1: helpers.softmax(x, axis=axis),
    "02.1": lambda Q, K: np.einsum("...qc,...kc->...qk", Q, K) / math.sqrt(Q.shape[-1]),
    "02.2": lambda X, W_q, W_k, W_v: helpers.attention(X @ W_q, X @ W_k, X @ W_v),
    "02.3": lambda w, threshold=0.95: bool(
        diagnose_uniform_attention(w, threshold=threshold).fraction_uniform == 1.0
    ),
    "03.1": lambda size: helpers.create_causal_mask(size),
    "03.2": lambda Q, K, V: helpers.attention(Q, K, V, helpers.create_causal_mask(Q.shape[-2])),
    "03.3": lambda lengths, max_len: helpers.create_padding_mask(np.asarray(lengths), max_len)[
        :, 0
    ],  # notebook 03 asks for (batch, 1, L); the library's mask has a heads axis, (batch, 1, 1, L)
    "03.4": lambda L, H: alibi_bias(L, H),
    "03.5": _library_mask_attention,
    "04.1": lambda x, h: helpers.split_heads(x, h),
    "04.2": lambda kv, g: repeat_kv(kv, g),
    "04.3": lambda L, h, d, s, b: kv_cache_bytes(L, h, d, s, bytes_per_value=b),
    "04.4": lambda x: helpers.combine_heads(x),
    "04.5": lambda x, Wq, Wk, Wv, Wo, h, mask=None: helpers.multi_head_attention(
        x, Wq, Wk, Wv, Wo, h, mask
    ),
    "05.1": lambda d, bias: helpers.MultiHeadAttention(d, 1, bias=bias, seed=0).num_parameters,
    "05.2": lambda target, source: cross_attention_layer()(target, source),
    "05.3": lambda fan_in, fan_out: math.sqrt(3 * 2 / (fan_in + fan_out)),
    "05.4": lambda layer, q, k=None, v=None, mask=None: layer(q, k, v, mask=mask),
    "06.1": lambda L, d: helpers.sinusoidal_positional_encoding(L, d),
    "06.2": lambda k, d: helpers.positional_shift_matrix(k, d),
    "06.3": lambda b, h, L, s: np.zeros((b, h, L, L), dtype=f"V{s}").nbytes,
    "07.2": lambda P, dP: softmax_backward(P, dP),
    "07.3": lambda Q, K, V, dO: attention_backward(Q, K, V, dO),
}


@pytest.mark.parametrize("exercise_id", sorted(LIBRARY))
def test_reference_equals_the_library(exercise_id):
    ex = get(exercise_id)
    for case in ex.cases:
        if case.raises is not None:
            with pytest.raises(case.raises):
                reference(exercise_id)(*case.args, **case.kwargs)
            continue
        want = LIBRARY[exercise_id](*case.args, **case.kwargs)
        got = reference(exercise_id)(*case.args, **case.kwargs)
        if isinstance(want, bool | int):
            assert type(got) is type(want) and got == want, case.note
        else:
            _close(got, want)


def test_split_in_proj_equals_pytorchs_layout():
    for case in get("07.1").cases:
        w, b = case.args
        E = w.shape[1]
        module = torch.nn.MultiheadAttention(E, 1, dtype=torch.float64)
        with torch.no_grad():
            module.in_proj_weight.copy_(torch.from_numpy(w))
            module.in_proj_bias.copy_(torch.from_numpy(b))
        layer = helpers.MultiHeadAttention.from_torch(module)
        mine = reference("07.1")(w, b)
        for got, name in zip(mine, ("W_q", "W_k", "W_v", "b_q", "b_k", "b_v"), strict=True):
            np.testing.assert_array_equal(got, getattr(layer, name))
        x = np.random.default_rng(0).standard_normal((3, E))
        q_torch = torch.nn.functional.linear(
            torch.from_numpy(x), module.in_proj_weight, module.in_proj_bias
        )[:, :E]
        np.testing.assert_allclose(x @ mine[0] + mine[3], q_torch.detach().numpy(), rtol=1e-12)


def test_the_fully_masked_rows_of_03_5_are_zero():
    for case in get("03.5").cases:
        if case.args[3:] and np.asarray(case.args[3]).dtype == bool:
            out, w = reference("03.5")(*case.args)
            blocked = ~np.broadcast_to(case.args[3], w.shape)
            assert np.all(w[blocked] == 0)
            empty = blocked.all(axis=-1)
            assert np.all(out[empty] == 0)
