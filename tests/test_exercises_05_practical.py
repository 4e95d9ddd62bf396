"""Notebook 05's practical exercises, 05.5 (a decoding step with a key/value cache) and 05.6
(inverted dropout): each known mistake, written as a learner would, is caught and named; wrong
attempts outside the catalogue are caught; the references are full causal attention and the layer's
dropout."""

import math

import numpy as np
from exercise_catalogue import catalogue_tests

from helpers import attention, create_causal_mask
from helpers.exercises import check, reference
from helpers.exercises._core import get
from helpers.mha.dropout import dropout_keep_mask, dropout_scale


def softmax(z):
    m = z.max(axis=-1, keepdims=True)
    e = np.exp(z - np.where(np.isfinite(m), m, 0.0))
    s = e.sum(axis=-1, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


def softmax_global_max(z):  # one maximum for everything
    e = np.exp(z - np.max(z))
    return e / np.sum(e, axis=-1, keepdims=True)


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
    elif align == "shifted":  # the diagonal left out: a new token cannot see itself
        s = np.where(np.tril(np.ones((n, total), dtype=bool), k=total - n - 1), s, -np.inf)
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
        "attended before appending": lambda q_new, k_new, v_new, K_cache, V_cache: (
            cache_only(q_new, k_new, v_new, K_cache, V_cache)
        ),
        "causal mask shifted by one": lambda q_new, k_new, v_new, K_cache, V_cache: cached_step(
            q_new, k_new, v_new, K_cache, V_cache, align="shifted"
        ),
        "new tokens put before the cache": lambda q_new, k_new, v_new, K_cache, V_cache: (
            new_before_cache(q_new, k_new, v_new, K_cache, V_cache)
        ),
        "float32 became float64": lambda q_new, k_new, v_new, K_cache, V_cache: (
            promoted_to_float64(q_new, k_new, v_new, K_cache, V_cache)
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
        "changed P in place": lambda P, p, keep, training: drops_in_place(P, p, keep, training),
        "float32 became float64": lambda P, p, keep, training: (
            np.where(keep, P * np.float64(1 / (1 - p)), 0.0) if training else P
        ),  # a NumPy float64 scalar promotes float32 weights
    },
}


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


def last_query_only(q_new, k_new, v_new, K_cache, V_cache):  # a chunk treated as one token
    K, V = np.concatenate([K_cache, k_new], -2), np.concatenate([V_cache, v_new], -2)
    out, _ = attention(q_new[..., -1:, :], K, V)
    return out, K, V


UNLISTED = {
    "05.5": [
        nan_triangle,
        last_query_only,
        lambda q_new, k_new, v_new, K_cache, V_cache: cached_step(
            q_new, k_new, v_new, K_cache, V_cache, scale=q_new.shape[-1]
        ),  # divided by d_k, not its square root
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
        lambda P, p, keep, training: P * keep / keep.mean() if training else P,  # kept share
        lambda P, p, keep, training: (
            np.where(P >= p, P / (1 - p), 0.0) if training else P
        ),  # p used as a threshold on the weights
        lambda P, p, keep, training: np.where(keep, P / (1 - p), P) if training else P,
        lambda P, p, keep, training: np.where(keep, P / (1 - p), 0.0) if training else P * keep,
    ],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


def test_a_float64_zeros_array_in_05_6_is_named_like_a_float64_scalar():
    def zeros_then_fill(P, p, keep, training):
        if not training:
            return P
        out = np.zeros(P.shape)  # float64, whatever P is
        out[keep] = P[keep] / (1 - p)
        return out

    result = check("05.6", zeros_then_fill)
    assert not result.passed and result.failed_cases == (9,)
    assert result.mistake == "float32 became float64", result.report


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
