"""Uniform-attention diagnostics: normalized entropy and the uniformity report."""

import math

import numpy as np
import pytest

from helpers import attention, create_causal_mask, softmax
from helpers.diagnostics import UniformityReport, diagnose_uniform_attention, normalized_entropy


def test_normalized_entropy_extremes():
    uniform = np.full((3, 5), 0.2)
    one_hot = np.eye(5)[:3]
    assert np.allclose(normalized_entropy(uniform), 1.0)
    assert np.allclose(normalized_entropy(one_hot), 0.0)
    assert normalized_entropy(np.ones((2, 4, 6)) / 6).shape == (2, 4)


def test_normalized_entropy_counts_only_allowed_keys():
    mask = create_causal_mask(4)
    w = attention(np.zeros((4, 3)), np.ones((4, 3)), np.ones((4, 2)), mask)[1]
    # Row i spreads 1/(i+1) over i+1 allowed keys: uniform over what it may see.
    ratio = normalized_entropy(w, mask)
    assert ratio[0] == 0.0  # one allowed key: no choice
    assert np.allclose(ratio[1:], 1.0)
    # Without the mask the same rows look far from uniform (ln 4 in the denominator).
    assert np.all(normalized_entropy(w)[1:3] < 0.9)


def test_normalized_entropy_between_zero_and_one():
    rng = np.random.default_rng(0)
    w = softmax(3 * rng.standard_normal((10, 7)))
    r = normalized_entropy(w)
    assert np.all((r > 0) & (r < 1))
    assert np.allclose(r, -(w * np.log(w)).sum(-1) / math.log(7))


def test_report_flags_uniform_and_peaked_heads():
    uniform = diagnose_uniform_attention(np.full((4, 8), 1 / 8))
    assert isinstance(uniform, UniformityReport)
    assert uniform.num_rows == 4 and uniform.num_uniform_rows == 4
    assert uniform.fraction_uniform == 1.0
    assert math.isclose(uniform.mean_peak_weight, 1 / 8)
    assert math.isclose(uniform.mean_uniform_weight, 1 / 8)
    assert "UNIFORM" in str(uniform)

    peaked = diagnose_uniform_attention(softmax(10 * np.eye(4)))
    assert peaked.num_uniform_rows == 0 and "ok" in str(peaked)


def test_report_threshold_and_masked_rows():
    w = np.array([[0.5, 0.5, 0.0], [0.3, 0.3, 0.4]])
    mask = np.array([[True, True, False], [True, True, True]])
    rep = diagnose_uniform_attention(w, mask, threshold=0.99)
    assert rep.num_rows == 2 and rep.num_uniform_rows == 2  # row 0 is uniform over its 2 keys
    assert math.isclose(rep.mean_uniform_weight, (1 / 2 + 1 / 3) / 2)
    # A row with a single allowed key is left out; no rows at all gives an empty report.
    empty = diagnose_uniform_attention(np.array([[1.0, 0.0]]), np.array([[True, False]]))
    assert empty.num_rows == 0 and empty.fraction_uniform == 0.0


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5])
def test_report_rejects_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold"):
        diagnose_uniform_attention(np.full((2, 2), 0.5), threshold=threshold)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(\.\.\., L_q, L_k\)"):
        normalized_entropy(np.full(4, 0.25))
    with pytest.raises(ValueError, match=r"does not broadcast"):
        normalized_entropy(np.full((3, 4), 0.25), np.ones((3, 5), dtype=bool))
    with pytest.raises(TypeError, match="boolean"):
        normalized_entropy(np.full((3, 4), 0.25), np.zeros((3, 4)))
