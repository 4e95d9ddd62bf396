"""Linear attention and its feature maps: against the explicit quadratic form, the RNN view,
the softmax kernel (random features), and the library's shape, dtype and error conventions."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from helpers import attention, linear_attention, linear_attention_weights
from helpers.feature_maps import (
    RandomFeatureMap,
    draw_random_features,
    elu_feature_map,
    exp_max_feature_map,
)


def quadratic_reference(Q, K, V, phi, causal=False):
    """(phi(Q) phi(K)^T ⊙ causal) V, each row divided by its sum: the O(N²) definition."""
    A = phi(Q) @ np.swapaxes(phi(K), -1, -2)  # (..., L_q, L_k)
    if causal:
        A = A * np.tril(np.ones(A.shape[-2:]))
    return (A @ V) / A.sum(axis=-1, keepdims=True)


def recurrent_reference(Q, K, V, phi):
    """The RNN view, token by token: S_i = S_{i-1} + phi(k_i) v_i^T, z_i = z_{i-1} + phi(k_i)."""
    fq, fk = phi(Q), phi(K)  # (L, r)
    S = np.zeros((fk.shape[1], V.shape[1]))
    z = np.zeros(fk.shape[1])
    out = np.zeros((Q.shape[0], V.shape[1]))
    for i in range(Q.shape[0]):
        if i < K.shape[0]:
            S += np.outer(fk[i], V[i])
            z += fk[i]
        out[i] = fq[i] @ S / (fq[i] @ z)
    return out


def relative_error(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


RF8 = draw_random_features(8, 32, 0)
MAPS = {"elu": elu_feature_map, "exp_max": exp_max_feature_map, "random": RF8}


def qkv(rng, lead_q, lead_k, L_q, L_k, d=8, d_v=5, scale=1.0, dtype=np.float64):
    Q = (scale * rng.standard_normal((*lead_q, L_q, d))).astype(dtype)
    K = (scale * rng.standard_normal((*lead_k, L_k, d))).astype(dtype)
    V = rng.standard_normal((*lead_k, L_k, d_v)).astype(dtype)
    return Q, K, V


CASES = [
    # (lead_q, lead_k, L_q, L_k, chunk_size)
    ((), (), 1, 1, 64),
    ((), (), 50, 50, 7),  # ragged last chunk
    ((), (), 50, 50, 1),  # one token per chunk: the RNN itself
    ((), (), 64, 64, 1000),  # one chunk holds everything
    ((), (), 30, 45, 8),  # L_q < L_k: keys after L_q - 1 unseen when causal
    ((), (), 45, 30, 8),  # L_q > L_k: late queries see every key
    ((2, 3), (2, 3), 33, 33, 16),  # batch and head axes
    ((2, 1), (1, 3), 19, 23, 5),  # leading axes broadcast
]


@pytest.mark.parametrize("name", list(MAPS))
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("lead_q", "lead_k", "L_q", "L_k", "chunk"), CASES)
def test_equals_the_quadratic_form(name, causal, lead_q, lead_k, L_q, L_k, chunk):
    rng = np.random.default_rng(L_q * 100 + L_k)
    Q, K, V = qkv(rng, lead_q, lead_k, L_q, L_k)
    fmap = "elu" if name == "elu" else MAPS[name]
    out = linear_attention(Q, K, V, causal=causal, feature_map=fmap, chunk_size=chunk)
    expected = quadratic_reference(Q, K, V, MAPS[name], causal)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-11, atol=1e-12)
    weights = linear_attention_weights(Q, K, causal=causal, feature_map=fmap)
    np.testing.assert_allclose(weights @ V, expected, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    if causal:
        assert (np.triu(weights, k=1) == 0).all()


def test_causal_running_sum_is_the_rnn():
    rng = np.random.default_rng(1)
    for L_q, L_k in [(40, 40), (40, 25)]:
        Q, K, V = qkv(rng, (), (), L_q, L_k)
        expected = recurrent_reference(Q, K, V, elu_feature_map)
        for chunk in (1, 6, 64):
            np.testing.assert_allclose(
                linear_attention(Q, K, V, causal=True, chunk_size=chunk), expected, atol=1e-12
            )
    # Causal is not the same as non-causal: the mask matters.
    assert relative_error(linear_attention(Q, K, V), expected) > 0.05


def test_elu_map():
    x = np.array([[-800.0, -1.0, 0.0, 0.5, 1e300]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning from the discarded exp branch
        f = elu_feature_map(x)
    np.testing.assert_array_equal(f, [[0.0, np.exp(-1.0), 1.0, 1.5, 1e300 + 1]])
    assert elu_feature_map(np.float32([[2.0]])).dtype == np.float32


def test_exp_max_map_is_not_the_softmax_kernel():
    rng = np.random.default_rng(2)
    Q, K, V = qkv(rng, (), (), 40, 40, d=6)
    f = exp_max_feature_map(Q)
    np.testing.assert_allclose(f.max(axis=-1), 1.0)
    # Its kernel is a sum over coordinates, times one factor per query and one per key.
    kernel = exp_max_feature_map(Q) @ exp_max_feature_map(K).T
    by_coordinate = np.exp(Q[:, None, :] + K[None, :, :]).sum(axis=-1)  # (L_q, L_k)
    factors = np.exp(-Q.max(axis=1))[:, None] * np.exp(-K.max(axis=1))[None, :]
    np.testing.assert_allclose(kernel, by_coordinate * factors, rtol=1e-12)
    # The query factor cancels in the normalisation; the key factor does not.
    out = linear_attention(Q, K, V, feature_map="exp_max")
    plain_queries = quadratic_reference(Q, K, V, lambda x: np.exp(x) if x is Q else
                                        exp_max_feature_map(x))
    np.testing.assert_allclose(out, plain_queries, atol=1e-12)
    assert relative_error(linear_attention(Q, K, V, feature_map=np.exp), out) > 0.05
    # Softmax weights and the weights this map implies are far apart.
    soft = attention(Q, K, V)[1]
    implied = linear_attention_weights(Q, K, feature_map="exp_max")
    assert np.abs(implied - soft).sum(axis=-1).mean() > 0.3


def test_random_features_estimate_the_softmax_kernel_without_bias():
    rng = np.random.default_rng(3)
    d = 8
    q, k = 0.7 * rng.standard_normal((2, d))
    target = np.exp(q @ k / np.sqrt(d))
    x, y = q * d**-0.25, k * d**-0.25
    rel_var = np.exp(np.sum((x + y) ** 2)) - 1  # variance of one feature's estimate / target²
    r = 2**17
    for orthogonal in (False, True):
        fmap = draw_random_features(d, r, 10, orthogonal=orthogonal)
        estimate = float((fmap(q[None]) @ fmap(k[None]).T)[0, 0])
        assert abs(estimate / target - 1) < 5 * np.sqrt(rel_var / r)  # within 5 standard errors
        # The measured per-feature variance is the theoretical one.
        single = np.exp(fmap.log_features(q[None]) + fmap.log_features(k[None]) + np.log(r))
        assert single.var() / target**2 == pytest.approx(rel_var, rel=0.15)


def test_random_feature_draws():
    a = draw_random_features(8, 20, 5)
    assert isinstance(a, RandomFeatureMap)
    assert a.projection.shape == (20, 8) and (a.num_features, a.d_k) == (20, 8)
    np.testing.assert_array_equal(a.projection, draw_random_features(8, 20, 5).projection)
    assert not np.allclose(a.projection, draw_random_features(8, 20, 6).projection)
    # Within a block of d_k rows the directions are orthogonal; across blocks they are not.
    block = a.projection[:8] / np.linalg.norm(a.projection[:8], axis=1, keepdims=True)
    np.testing.assert_allclose(block @ block.T, np.eye(8), atol=1e-12)
    assert a.projection[16:].shape == (4, 8)  # a shorter last block
    gen = np.random.default_rng(0)
    b, c = draw_random_features(4, 4, gen), draw_random_features(4, 4, gen)
    assert not np.allclose(b.projection, c.projection)  # the generator moves on
    # Rows are marginally N(0, I): squared lengths average d_k.
    many = draw_random_features(16, 16 * 400, 1).projection
    assert np.mean(np.sum(many**2, axis=1)) == pytest.approx(16, rel=0.03)
    iid = draw_random_features(16, 16 * 400, 1, orthogonal=False).projection
    assert np.cov(iid.T) == pytest.approx(np.eye(16), abs=0.08)


def test_error_falls_with_the_number_of_random_features():
    rng = np.random.default_rng(4)
    Q, K, V = qkv(rng, (), (), 64, 64, d=8, d_v=8, scale=0.4)
    exact = attention(Q, K, V)[0]
    errors = [
        np.mean([relative_error(linear_attention(Q, K, V, feature_map=draw_random_features(
            8, r, seed)), exact) for seed in range(4)])
        for r in (16, 256, 4096)
    ]
    # 16x the features: the error should shrink about 4x (1 / sqrt r); demand 2x.
    assert errors[1] < errors[0] / 2 and errors[2] < errors[1] / 2, errors


def test_log_space_shift_cancels_and_prevents_overflow():
    rng = np.random.default_rng(5)
    Q, K, V = qkv(rng, (2,), (2,), 20, 30)
    fmap = draw_random_features(8, 64, 1)
    shifted = linear_attention(Q, K, V, feature_map=fmap, causal=True)
    plain = linear_attention(Q, K, V, feature_map=lambda x: fmap(x), causal=True)
    np.testing.assert_allclose(shifted, plain, rtol=1e-10)
    # Queries of large norm: every plain feature underflows float32 to 0 (log phi ~ -100),
    # so the normalisers vanish; shifted by each row's maximum they stay >= 1.
    big = (10 * Q).astype(np.float32), K.astype(np.float32), V.astype(np.float32)
    out32 = linear_attention(*big, feature_map=fmap)
    out64 = linear_attention(*(a.astype(np.float64) for a in big), feature_map=fmap)
    assert out32.dtype == np.float32 and np.isfinite(out32).all()
    np.testing.assert_allclose(out32, out64, atol=1e-4)
    with pytest.raises(ValueError, match="normaliser"):
        linear_attention(*big, feature_map=lambda x: fmap(x))


@pytest.mark.parametrize("fmap", ["elu", "exp_max", RF8])
@pytest.mark.parametrize("causal", [False, True])
def test_float32_stays_float32(fmap, causal):
    rng = np.random.default_rng(6)
    Q, K, V = qkv(rng, (3,), (3,), 70, 70)
    out32 = linear_attention(*(a.astype(np.float32) for a in (Q, K, V)), causal=causal,
                             feature_map=fmap)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, linear_attention(Q, K, V, causal=causal, feature_map=fmap),
                               atol=2e-5)
    # Mixed float32 / float64 inputs follow helpers.attention's rule, whatever it is.
    mixed = (Q.astype(np.float32), K, V)
    try:
        expected = attention(*mixed)[0].dtype
    except TypeError as err:
        with pytest.raises(TypeError, match=re.escape(str(err)[:20])):
            linear_attention(*mixed, causal=causal, feature_map=fmap)
    else:
        assert linear_attention(*mixed, causal=causal, feature_map=fmap).dtype == expected
    ints = np.arange(24).reshape(3, 8) % 3
    assert linear_attention(ints, ints, ints).dtype == np.float64


def test_shapes_single_query_empty_and_no_mutation():
    rng = np.random.default_rng(7)
    Q, K, V = qkv(rng, (), (), 10, 12)
    before = [a.copy() for a in (Q, K, V)]
    one = linear_attention(Q[3], K, V)
    assert one.shape == (5,)
    np.testing.assert_allclose(one, linear_attention(Q, K, V)[3], atol=1e-14)
    assert linear_attention_weights(Q[3], K).shape == (12,)
    for a, b in zip((Q, K, V), before, strict=True):
        np.testing.assert_array_equal(a, b)
    for causal in (False, True):
        assert linear_attention(Q[:0], K, V, causal=causal).shape == (0, 5)
        assert linear_attention(np.zeros((2, 0, 8)), np.zeros((2, 0, 8)), np.zeros((2, 0, 3)),
                                causal=causal).shape == (2, 0, 3)
    assert linear_attention_weights(np.zeros((0, 8)), K).shape == (0, 12)
    # No keys: nothing to attend to, a zero output, as helpers.attention gives.
    for causal in (False, True):
        empty_keys = linear_attention(Q, K[:0], V[:0], causal=causal)
        np.testing.assert_array_equal(empty_keys, attention(Q, K[:0], V[:0])[0])
        assert empty_keys.shape == (10, 5) and not empty_keys.any()
    assert linear_attention_weights(Q, K[:0]).shape == (10, 0)


def test_is_causal_is_the_name_of_causal():
    rng = np.random.default_rng(9)
    Q, K, V = qkv(rng, (2,), (2,), 20, 20)
    causal = linear_attention(Q, K, V, causal=True)
    np.testing.assert_array_equal(linear_attention(Q, K, V, is_causal=True), causal)
    np.testing.assert_array_equal(linear_attention_weights(Q, K, is_causal=True),
                                  linear_attention_weights(Q, K, causal=True))
    assert relative_error(linear_attention(Q, K, V), causal) > 0.05


def test_bad_input_raises_clear_errors():
    rng = np.random.default_rng(8)
    Q, K, V = qkv(rng, (), (), 6, 6)
    mask = np.ones((6, 6), dtype=bool)
    with pytest.raises(ValueError, match=r"linear attention takes no mask.*causal=True"):
        linear_attention(Q, K, V, mask)
    with pytest.raises(ValueError, match="takes no mask"):
        linear_attention_weights(Q, K, mask=mask)
    with pytest.raises(TypeError, match="causal must be True or False"):
        linear_attention(Q, K, V, causal=1)
    with pytest.raises(TypeError, match="is_causal must be True or False"):
        linear_attention_weights(Q, K, is_causal="yes")
    with pytest.raises(ValueError, match=r"feature_map must be one of \['elu', 'exp_max'\]"):
        linear_attention(Q, K, V, feature_map="relu")
    with pytest.raises(TypeError, match="feature_map must be a name or a callable"):
        linear_attention(Q, K, V, feature_map=3)
    with pytest.raises(ValueError, match=r"feature_map\(Q\) must return shape \(\.\.\., L, r\)"):
        linear_attention(Q, K, V, feature_map=lambda x: x[0])
    with pytest.raises(ValueError, match=rf"feature_map\(Q\).*{(Q < 0).sum()} negative"):
        linear_attention(Q, K, V, feature_map=lambda x: x)
    with pytest.raises(ValueError, match=r"feature_map\(K\).*0 negative and 48 NaN or infinite"):
        linear_attention(Q, K, V, feature_map=lambda x: np.full(x.shape, np.inf if x is K else 1.0))
    with pytest.raises(ValueError, match="different widths r"):
        linear_attention(Q[:2], K, V, feature_map=lambda x: np.ones((*x.shape[:-1], x.shape[-2])))
    with pytest.raises(ValueError, match=r"normaliser .* is 0 for 6 query row"):
        linear_attention(-np.abs(Q), np.abs(K), V, feature_map=lambda x: np.maximum(x, 0))
    with pytest.raises(ValueError, match="Q and K must have the same feature size"):
        linear_attention(Q, K[:, :4], V)
    bad_v = V.copy()
    bad_v[2, 1] = np.nan
    with pytest.raises(ValueError, match="V contains NaN or infinity"):
        linear_attention(Q, K, bad_v)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        linear_attention(Q, K, V, causal=True, chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be a positive integer"):
        linear_attention(Q, K, V, chunk_size=2.5)
    with pytest.raises(ValueError, match="width d_k=16"):
        linear_attention(Q, K, V, feature_map=draw_random_features(16, 8, 0))
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator or an int seed"):
        draw_random_features(8, 8, "seed")
    with pytest.raises(ValueError, match="num_features must be >= 1"):
        draw_random_features(8, 0, 0)
    with pytest.raises(TypeError, match="orthogonal must be True or False"):
        draw_random_features(8, 8, 0, orthogonal="yes")


def test_benchmark_script_quick_run():
    """benchmarks/bench_linear.py runs and reports every method and length (never its speed)."""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_linear.py"
    spec = importlib.util.spec_from_file_location("bench_linear", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--quick"])
    for n in (64, 128, 256):
        assert f"\n| {n} |" in result["report"]
    assert "| slope (N >= 64) |" in result["report"]
    assert set(result["results"]["dense"]) == {64, 128}  # quadratic methods stop early
    assert all(t > 0 for times in result["results"].values() for t in times.values())
