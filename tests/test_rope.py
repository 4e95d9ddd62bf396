"""Rotary position embeddings: the definition, the relative-offset property, layouts, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import apply_rope, attention, positional_shift_matrix, rope_layout_permutation
from helpers.positional import positional_frequencies, sinusoidal_positional_encoding

LAYOUTS = ["interleaved", "half"]


def reference_rope(x: np.ndarray, positions, base: float = 10000.0, layout="interleaved"):
    """The definition, one pair and one token at a time, in Python floats."""
    L, d = x.shape
    out = np.zeros((L, d))
    for t in range(L):
        for i in range(d // 2):
            j1, j2 = (2 * i, 2 * i + 1) if layout == "interleaved" else (i, i + d // 2)
            theta = int(positions[t]) * base ** (-2 * i / d)
            a, b = float(x[t, j1]), float(x[t, j2])
            out[t, j1] = a * math.cos(theta) - b * math.sin(theta)
            out[t, j2] = a * math.sin(theta) + b * math.cos(theta)
    return out


def score(q, k, m, n, layout_q="interleaved", layout_k="interleaved"):
    """Dot product of one query rotated to position m and one key rotated to n."""
    qr = apply_rope(q[np.newaxis], [m], layout=layout_q)[0]
    kr = apply_rope(k[np.newaxis], [n], layout=layout_k)[0]
    return float(qr @ kr)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("L", "d", "base"), [(1, 2, 10000.0), (7, 8, 10000.0), (5, 6, 100.0)])
def test_matches_the_definition(layout, L, d, base):
    rng = np.random.default_rng(L * d)
    x = rng.standard_normal((L, d))
    positions = rng.integers(-50, 5000, size=L)
    out = apply_rope(x, positions, base, layout=layout)
    np.testing.assert_allclose(out, reference_rope(x, positions, base, layout), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(-1000, 1000),
    n=st.integers(-1000, 1000),
    shift=st.integers(-5000, 5000),
    half=st.integers(1, 16),
    seed=st.integers(0, 2**16),
    layout=st.sampled_from(LAYOUTS),
)
def test_score_depends_only_on_the_offset(m, n, shift, half, seed, layout):
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((2, 2 * half))
    s = score(q, k, m, n, layout, layout)
    # Moving both tokens by the same amount changes nothing ...
    assert s == pytest.approx(score(q, k, m + shift, n + shift, layout, layout), abs=1e-9)
    # ... and the score is q^T R_{n-m} k: the query at 0, the key at the offset.
    assert s == pytest.approx(score(q, k, 0, n - m, layout, layout), abs=1e-9)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_norms_kept_and_position_zero_is_identity(layout):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 20, 16))
    out = apply_rope(x, rng.integers(0, 10**6, size=20), layout=layout)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), np.linalg.norm(x, axis=-1),
                               rtol=1e-12)
    first, second = (slice(0, 16, 2), slice(1, 16, 2)) if layout == "interleaved" else (
        slice(0, 8), slice(8, 16))
    # Each pair keeps its own norm, not only the whole vector.
    np.testing.assert_allclose(out[..., first] ** 2 + out[..., second] ** 2,
                               x[..., first] ** 2 + x[..., second] ** 2, rtol=1e-12)
    np.testing.assert_array_equal(apply_rope(x, np.zeros(20, dtype=int), layout=layout), x)


def test_layouts_differ_by_a_fixed_permutation():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 9, 12))
    positions = rng.integers(0, 300, size=9)
    perm = rope_layout_permutation(12)
    np.testing.assert_array_equal(perm, [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11])
    half = apply_rope(x, positions, layout="half")
    inter = apply_rope(x[..., perm], positions, layout="interleaved")
    np.testing.assert_allclose(half[..., perm], inter, atol=1e-12)
    # The two layouts are different functions: the permutation is needed.
    assert np.abs(half - apply_rope(x, positions, layout="interleaved")).max() > 0.1


def test_mixing_layouts_makes_scores_depend_on_absolute_positions():
    rng = np.random.default_rng(3)
    q, k = rng.standard_normal((2, 16))
    for layout_q, layout_k in [("interleaved", "half"), ("half", "interleaved")]:
        scores = [score(q, k, m, m + 2, layout_q, layout_k) for m in range(0, 60, 6)]
        # Same offset 2 every time, yet the score wanders.
        assert max(scores) - min(scores) > 0.5
        # Consistent layouts give the same score at every position.
        same = [score(q, k, m, m + 2, layout_k, layout_k) for m in range(0, 60, 6)]
        assert max(same) - min(same) < 1e-9


def test_relation_to_the_sinusoidal_encoding():
    d, L = 10, 30
    # Same frequencies as the sinusoidal encoding; apply_rope at one position is x @ M_m.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((L, d))
    for m in (0, 1, 7, -3, 250):
        np.testing.assert_allclose(
            apply_rope(x, np.full(L, m)), x @ positional_shift_matrix(m, d), atol=1e-12
        )
    # Rotating the constant vector (1, 0, 1, 0, ...) to positions 0..L-1 writes
    # (cos, sin) pairs: the sinusoidal encoding with each (sin, cos) pair swapped.
    ones = np.tile([1.0, 0.0], d // 2)
    rotated = apply_rope(np.tile(ones, (L, 1)), np.arange(L), 100.0)
    pe = sinusoidal_positional_encoding(L, d, base=100.0)
    np.testing.assert_allclose(rotated[:, 0::2], pe[:, 1::2], atol=1e-12)
    np.testing.assert_allclose(rotated[:, 1::2], pe[:, 0::2], atol=1e-12)
    # Pair i of a token at position 1 turns by exactly omega_i.
    e = np.zeros((1, d))
    e[0, 0::2] = 1.0
    angles = np.arctan2(apply_rope(e, [1])[0, 1::2], apply_rope(e, [1])[0, 0::2])
    np.testing.assert_allclose(angles, positional_frequencies(d), atol=1e-12)


def test_rotate_q_and_k_never_v():
    """Shifting every position by t leaves RoPE attention unchanged, unless v is rotated too."""
    rng = np.random.default_rng(5)
    L, d, t = 12, 8, 37
    q, k, v = rng.standard_normal((3, L, d))
    pos = np.arange(L)

    def rope_attention(offset, rotate_v):
        p = pos + offset
        vv = apply_rope(v, p) if rotate_v else v
        return attention(apply_rope(q, p), apply_rope(k, p), vv)[0]

    np.testing.assert_allclose(rope_attention(t, False), rope_attention(0, False), atol=1e-12)
    assert np.abs(rope_attention(t, True) - rope_attention(0, True)).max() > 0.1


@pytest.mark.parametrize("layout", LAYOUTS)
def test_float32_stays_float32(layout):
    rng = np.random.default_rng(6)
    x64 = rng.standard_normal((4, 50, 32))
    positions = np.arange(100_000, 100_050)  # large angles: computed in float64
    out32 = apply_rope(x64.astype(np.float32), positions, layout=layout)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, apply_rope(x64, positions, layout=layout), atol=2e-6)
    assert apply_rope(np.arange(4).reshape(1, 4), [3]).dtype == np.float64  # integers


def test_broadcast_positions_and_no_mutation():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 5, 4))  # (batch, heads, L, d)
    offsets = np.array([[[0]], [[100]]])  # (batch, 1, 1)
    positions = offsets + np.arange(5)  # (batch, 1, L): a different start per sequence
    before = x.copy()
    out = apply_rope(x, positions)
    np.testing.assert_array_equal(x, before)
    assert not np.shares_memory(out, x)
    for b in range(2):
        np.testing.assert_array_equal(out[b], apply_rope(x[b], positions[b, 0]))
    view = x[..., ::-1, :]  # a non-contiguous input
    np.testing.assert_allclose(apply_rope(view, np.arange(5)),
                               apply_rope(view.copy(), np.arange(5)), atol=0)


def test_empty_sequence():
    out = apply_rope(np.zeros((2, 0, 6), dtype=np.float32), [])
    assert out.shape == (2, 0, 6)
    assert out.dtype == np.float32


@pytest.mark.parametrize(
    ("x_shape", "positions", "kwargs", "error", "match"),
    [
        ((4, 5), np.arange(4), {}, ValueError, r"even feature size.*\(4, 5\).*d=5"),
        ((4, 0), np.arange(4), {}, ValueError, "even feature size"),
        ((6,), np.arange(1), {}, ValueError, r"x must have shape \(\.\.\., L, d\)"),
        ((4, 6), np.arange(3), {}, ValueError, r"one entry per token.*\(4,\).*got shape \(3,\)"),
        ((4, 6), 3, {}, ValueError, "scalar"),
        ((4, 6), np.arange(4.0), {}, TypeError, "positions must be an integer array.*float64"),
        ((4, 6), np.ones(4, dtype=bool), {}, TypeError, "positions must be an integer"),
        ((2, 4, 6), np.zeros((3, 4), dtype=int), {}, ValueError, "do not broadcast"),
        ((4, 6), np.zeros((2, 4), dtype=int), {}, ValueError, "do not broadcast"),
        ((4, 6), np.arange(4), {"base": 1.0}, ValueError, "base must be > 1"),
        ((4, 6), np.arange(4), {"base": "big"}, TypeError, "base must be a real number"),
        ((4, 6), np.arange(4), {"layout": "rotate_half"}, ValueError, "layout must be one of"),
    ],
)
def test_bad_input_raises_clear_errors(x_shape, positions, kwargs, error, match):
    with pytest.raises(error, match=match):
        apply_rope(np.ones(x_shape), positions, **kwargs)


def test_non_numeric_and_non_finite_input():
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        apply_rope(np.array([["a", "b"]]), [0])
    x = np.ones((3, 4))
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="x contains NaN or infinity"):
        apply_rope(x, np.arange(3))
    with pytest.raises(ValueError, match="d_model must be even"):
        rope_layout_permutation(5)
