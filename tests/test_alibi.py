"""ALiBi: slopes, the distance bias, its causal form and its use as a float mask."""

import numpy as np
import pytest

from helpers import attention, create_causal_mask, softmax
from helpers.alibi import alibi_bias, alibi_slopes


def test_slopes_match_the_paper_for_eight_heads():
    assert np.allclose(alibi_slopes(8), [2.0**-k for k in range(1, 9)])
    assert np.allclose(alibi_slopes(4), [2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8])
    s = alibi_slopes(12)
    assert s.shape == (12,) and np.all(np.diff(s) < 0) and np.isclose(s[-1], 2.0**-8)


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
