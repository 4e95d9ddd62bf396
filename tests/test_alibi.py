"""ALiBi: slopes, the distance bias, its causal form and its use as a float mask."""

import math

import numpy as np
import pytest

from helpers import attention, create_causal_mask, softmax
from helpers.alibi import alibi_bias, alibi_slopes


def _paper_slopes(n):
    # The rule of the ALiBi reference code (Press et al.), written with math only:
    # a power of two n gives the geometric sequence start, start^2, ..., start = 2^(-8/n);
    # otherwise the largest power of two below n, then every other slope of twice that many.
    if math.log2(n).is_integer():
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]
    low = 2 ** math.floor(math.log2(n))
    return _paper_slopes(low) + _paper_slopes(2 * low)[0::2][: n - low]


def test_power_of_two_slopes_are_the_formula():
    assert np.allclose(alibi_slopes(8), [2.0**-k for k in range(1, 9)])
    assert np.allclose(alibi_slopes(4), [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8])
    for H in (1, 2, 4, 8, 16, 32):
        assert np.allclose(alibi_slopes(H), 2.0 ** (-8.0 * np.arange(1, H + 1) / H))


def test_non_power_of_two_slopes_interleave():
    assert np.allclose(
        alibi_slopes(6), [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3]
    )
    assert np.allclose(
        alibi_slopes(12),
        [2.0**-k for k in range(1, 9)] + [2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5],
    )
    assert np.allclose(alibi_slopes(3), [2.0**-4, 2.0**-8, 2.0**-2])
    # the single formula would give other slopes for H = 6
    assert not np.allclose(alibi_slopes(6), 2.0 ** (-8.0 * np.arange(1, 7) / 6))


@pytest.mark.parametrize("H", range(1, 41))
def test_slopes_follow_the_reference_rule(H):
    s = alibi_slopes(H)
    assert s.shape == (H,) and s.dtype == np.float64
    assert np.all(s > 0) and np.all(s < 1)
    assert len(set(s.tolist())) == H  # every head its own slope
    np.testing.assert_allclose(s, _paper_slopes(H), rtol=1e-12)


def test_bias_values_and_shape():
    b = alibi_bias(5, 2)
    assert b.shape == (2, 5, 5)
    m = alibi_slopes(2)
    i, j = np.meshgrid(np.arange(5), np.arange(5), indexing="ij")
    for h in range(2):
        assert np.allclose(b[h], -m[h] * np.abs(i - j))
    assert np.all(np.diagonal(b, axis1=-2, axis2=-1) == 0)
    assert np.allclose(b, np.swapaxes(b, -1, -2))  # symmetric form


def test_causal_bias_blocks_the_future():
    b = alibi_bias(6, 3, causal=True)
    future = ~create_causal_mask(6)
    assert np.all(np.isneginf(b[:, future]))
    assert np.allclose(b[:, ~future], alibi_bias(6, 3)[:, ~future])


def test_causal_bias_is_the_published_form():
    L, H = 7, 6
    b = alibi_bias(L, H, causal=True)
    m = alibi_slopes(H)
    i, j = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
    past = j <= i
    for h in range(H):
        assert np.allclose(b[h][past], -m[h] * (i - j)[past])  # -m (i - j), j <= i
    with pytest.raises(TypeError):
        alibi_bias(4, 2, causal=1)


def test_bias_is_a_float_mask_for_attention():
    rng = np.random.default_rng(0)
    Q, K, V = (rng.standard_normal((2, 3, 5, 4)) for _ in range(3))  # (batch, heads, L, d)
    for causal in (False, True):
        bias = alibi_bias(5, 3, causal=causal)
        out, w = attention(Q, K, V, bias)
        manual = softmax(Q @ np.swapaxes(K, -1, -2) / 2.0 + bias)
        assert np.allclose(w, manual) and np.allclose(out, manual @ V)
        if causal:
            assert np.allclose(np.triu(w, k=1), 0.0)


def test_steeper_heads_look_more_locally():
    w = softmax(alibi_bias(8, 4))  # equal content scores: only the bias decides
    local_weight = np.array([np.trace(w[h]) for h in range(4)])
    assert np.all(np.diff(local_weight) < 0)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_rejects_bad_sizes(bad):
    with pytest.raises((ValueError, TypeError)):
        alibi_bias(bad, 2)
    with pytest.raises((ValueError, TypeError)):
        alibi_slopes(bad)
