"""Notebook 09's exercises: each known mistake, written as a learner would, is caught and named;
wrong attempts outside the catalogue are caught too; the references equal the library."""

import numpy as np
import pytest
from exercise_catalogue import catalogue_tests

import helpers
from helpers.exercises import check, reference
from helpers.exercises._core import get
from helpers.feature_maps import RandomFeatureMap


# --------------------------------------------------------------------------- 09.1
def rope(x, positions, base=10000.0, *, pairs="interleaved", turn=1.0, two=2, keep_dtype=True,
         pos_override=None):
    d = x.shape[-1]
    freqs = 1.0 / base ** (two * np.arange(d // 2) / d)
    pos = np.asarray(positions if pos_override is None else pos_override(x))
    theta = np.outer(pos, freqs)
    c, s = np.cos(theta), np.sin(theta)
    if keep_dtype:
        c, s = c.astype(x.dtype), s.astype(x.dtype)
    if pairs == "interleaved":
        a, b = x[..., ::2], x[..., 1::2]
    else:
        a, b = x[..., : d // 2], x[..., d // 2 :]
    first, second = a * c - turn * b * s, turn * a * s + b * c
    if pairs == "interleaved":
        return np.stack([first, second], axis=-1).reshape(*first.shape[:-1], d)
    return np.concatenate([first, second], axis=-1)


# --------------------------------------------------------------------------- 09.2
def spread(scores, offsets=None, measure=lambda d: d.max() - d.min()):
    rows, cols = scores.shape
    ks = range(1 - rows, cols) if offsets is None else offsets(rows, cols)
    return max(float(measure(np.diagonal(scores, k))) for k in ks)


# --------------------------------------------------------------------------- 09.3
def rnn(phi_q, phi_k, V, *, read_first=False, divide=True, future=False, z_future=False,
        vk=False, eps=0.0):
    L = len(phi_q)
    S = np.zeros((V.shape[1], phi_k.shape[1]) if vk else (phi_k.shape[1], V.shape[1]))
    z = np.zeros(phi_k.shape[1])
    out = []
    for i in range(L):
        if read_first:
            num, den = phi_q[i] @ S, phi_q[i] @ z
        S = S + (np.outer(V[i], phi_k[i]) if vk else np.outer(phi_k[i], V[i]))
        z = z + phi_k[i]
        if not read_first:
            num = phi_q[i] @ (phi_k.T @ V if future else S)
            den = phi_q[i] @ (phi_k.sum(0) if future or z_future else z)
        out.append(num / (den + eps) if divide else num)
    return np.array(out)


# --------------------------------------------------------------------------- 09.4
def features(x, W, *, power=-0.25, by_r=True, subtract=True, square=True, halve=True, Wt=True,
             norm_of_x=False):
    xs = x * x.shape[-1] ** power
    sq = ((x if norm_of_x else xs) ** 2).sum(-1, keepdims=True)
    term = (sq if square else np.sqrt(sq)) * (0.5 if halve else 1.0)
    proj = xs @ W.T if Wt else xs @ W
    phi = np.exp(proj - term if subtract else proj)
    return phi / np.sqrt(W.shape[0]) if by_r else phi


CATALOGUED = {
    "09.1": {
        "the 'rotate half' layout": lambda x, positions, base=10000.0: rope(
            x, positions, base, pairs="half"),
        "rotated backwards (x Mᵀ)": lambda x, positions, base=10000.0: rope(
            x, positions, base, turn=-1.0),
        "exponent i/d": lambda x, positions, base=10000.0: rope(x, positions, base, two=1),
        "positions replaced by 0 .. L - 1": lambda x, positions, base=10000.0: rope(
            x, positions, base, pos_override=lambda x: np.arange(x.shape[-2])),
        "base fixed at 10000": lambda x, positions, base=10000.0: rope(x, positions),
        "float32 became float64": lambda x, positions, base=10000.0: rope(
            x, positions, base, keep_dtype=False),
    },
    "09.2": {
        "the main diagonal only": lambda scores: float(np.ptp(np.diag(scores))),
        "negative offsets forgotten": lambda scores: spread(scores, lambda r, c: range(c)),
        "a square table assumed": lambda scores: spread(
            scores, lambda r, c: range(-len(scores) + 1, len(scores))),
        "rows instead of diagonals": lambda scores: float(
            (scores.max(axis=1) - scores.min(axis=1)).max()),
        "distance from the first entry": lambda scores: spread(
            scores, measure=lambda d: np.abs(d - d[0]).max()),
        "spread of the whole table": lambda scores: float(scores.max() - scores.min()),
        "§3's shift_gap instead of the spread": lambda scores: float(  # the notebook's shift_gap
            np.abs(scores[1:, 1:] - scores[:-1, :-1]).max()),
    },
    "09.3": {
        "state updated after the output": lambda phi_q, phi_k, V: rnn(
            phi_q, phi_k, V, read_first=True),
        "not normalised": lambda phi_q, phi_k, V: rnn(phi_q, phi_k, V, divide=False),
        "not causal": lambda phi_q, phi_k, V: rnn(phi_q, phi_k, V, future=True),
        "normaliser over every key": lambda phi_q, phi_k, V: rnn(phi_q, phi_k, V, z_future=True),
        "S built as v φ(k)ᵀ": lambda phi_q, phi_k, V: rnn(phi_q, phi_k, V, vk=True),
        "eps in the denominator": lambda phi_q, phi_k, V: rnn(phi_q, phi_k, V, eps=1e-6),
    },
    "09.4": {
        "d^(-1/4) scaling left out": lambda x, W: features(x, W, power=0.0),
        "x scaled by 1/√d": lambda x, W: features(x, W, power=-0.5),
        "1/√r left out": lambda x, W: features(x, W, by_r=False),
        "‖x‖²/2 left out": lambda x, W: features(x, W, subtract=False),
        "‖x‖ not squared": lambda x, W: features(x, W, square=False),
        "‖x‖² without the 1/2": lambda x, W: features(x, W, halve=False),
        "W not transposed": lambda x, W: features(x, W, Wt=False),
        "‖x‖²/2 of the unscaled x": lambda x, W: features(x, W, norm_of_x=True),
    },
}

UNLISTED = {
    "09.1": [
        lambda x, positions, base=10000.0: rope(x, positions, base).astype(np.float64),
        lambda x, positions, base=10000.0: rope(x, np.asarray(positions) + 1, base),  # from 1
        lambda x, positions, base=10000.0: rope(x, positions, base)[..., ::-1],
        lambda x, positions, base=10000.0: x @ helpers.positional_shift_matrix(1, x.shape[-1]),
        lambda x, positions, base=10000.0: rope(x, positions, base * 2),
        lambda x, positions, base=10000.0: x.copy(),  # no rotation at all
    ],
    "09.2": [
        lambda scores: spread(scores, lambda r, c: range(1 - r, c - 2)),  # two diagonals missed
        lambda scores: spread(scores, measure=np.std),
        lambda scores: float(np.abs(scores - scores.T).max()) if scores.shape[0] == scores.shape[
            1] else 0.0,  # symmetry instead of offsets
        lambda scores: spread(scores.T),  # offsets n - m: the same (a transposed table) ...
        lambda scores: spread(scores) / 2,
        lambda scores: bool(spread(scores) < 1e-9),  # the verdict, not the number
    ],
    "09.3": [
        lambda phi_q, phi_k, V: rnn(phi_k, phi_q, V),  # queries and keys swapped
        lambda phi_q, phi_k, V: rnn(phi_q, phi_k, V)[::-1],
        lambda phi_q, phi_k, V: np.cumsum(V, axis=0) / np.arange(1, len(V) + 1)[:, None],
        lambda phi_q, phi_k, V: rnn(phi_q[::-1], phi_k[::-1], V[::-1])[::-1],  # anti-causal
        lambda phi_q, phi_k, V: (phi_q @ phi_k.T * np.tri(len(V))) @ V,  # no normaliser, no sum
        lambda phi_q, phi_k, V: rnn(phi_q, phi_k, V, read_first=True)[1:],
    ],
    "09.4": [
        lambda x, W: features(x, W).T,
        lambda x, W: np.exp(x @ W.T) / np.sqrt(W.shape[0]),
        lambda x, W: features(x, W, power=-0.25)[..., : W.shape[0] // 2],
        lambda x, W: np.log(features(x, W)),
        lambda x, W: features(x, W) / np.sqrt(x.shape[-1]),  # 1/√d instead of 1/√r
        lambda x, W: features(x, W, power=0.25),
    ],
}

# 09.2's fourth unlisted attempt is in fact right (a diagonal of the transposed table is a
# diagonal of the original): keep the list to truly wrong attempts.
UNLISTED["09.2"].pop(3)

(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


@pytest.mark.parametrize("exercise_id", ["09.1", "09.2", "09.3", "09.4"])
def test_every_exercise_has_difficulty_minutes_and_graded_hints(exercise_id):
    ex = get(exercise_id)
    assert ex.difficulty in (1, 2, 3) and ex.minutes > 0
    assert 2 <= len(ex.hints) <= 3 and all(len(h) > 20 for h in ex.hints)


def test_w_scaled_instead_of_x_is_named_as_the_unscaled_norm():
    """x (W d^(-1/4))ᵀ = (x d^(-1/4)) Wᵀ: the projection is right, the norm term is not."""
    def random_features(x, W):
        d = x.shape[-1]
        return np.exp(x @ (W * d**-0.25).T - 0.5 * (x**2).sum(-1, keepdims=True)) / np.sqrt(
            W.shape[0])

    assert check("09.4", random_features).mistake == "‖x‖²/2 of the unscaled x"


def test_09_1_is_my_apply_rope_so_the_stub_never_shadows_the_library():
    assert get("09.1").name == "my_apply_rope" and helpers.apply_rope.__name__ == "apply_rope"


def test_other_right_answers_pass():
    # 09.2 on the transposed table: its diagonals are the same sets of numbers
    assert check("09.2", lambda scores: spread(scores.T)).passed
    # 09.3 written with cumulative sums instead of a loop: the same numbers
    assert check("09.3", lambda phi_q, phi_k, V: (
        np.einsum("ir,ird->id", phi_q, np.cumsum(np.einsum("ir,id->ird", phi_k, V), axis=0))
        / np.einsum("ir,ir->i", phi_q, np.cumsum(phi_k, axis=0))[:, None])).passed
    # 09.3 and 09.4 computed in float32 for float32 inputs
    assert check("09.3", lambda phi_q, phi_k, V: rnn(phi_q, phi_k, V).astype(V.dtype)).passed
    assert check("09.4", lambda x, W: features(x, W.astype(x.dtype))).passed


# --------------------------------------------------------------------------- library
def test_09_1_reference_equals_apply_rope():
    for case in get("09.1").cases:
        want = helpers.apply_rope(*case.args, **case.kwargs)
        got = reference("09.1")(*case.args, **case.kwargs)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6 if want.dtype == np.float32 else 1e-12,
                                   atol=1e-7 if want.dtype == np.float32 else 1e-14)


def test_09_2_reference_on_rope_and_added_scores():
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((2, 1, 16))
    pos = np.arange(30)
    rope_table = (helpers.apply_rope(np.repeat(q, 30, 0), pos)
                  @ helpers.apply_rope(np.repeat(k, 30, 0), pos).T)
    pe = helpers.sinusoidal_positional_encoding(30, 16)
    added = (np.repeat(q, 30, 0) + pe) @ (np.repeat(k, 30, 0) + pe).T
    assert reference("09.2")(rope_table) < 1e-12
    assert reference("09.2")(added) > 1.0


def test_09_3_reference_equals_linear_attention_with_the_identity_map():
    for case in get("09.3").cases:
        phi_q, phi_k, V = case.args
        want = helpers.linear_attention(phi_q, phi_k, V, is_causal=True,
                                        feature_map=lambda x: x)
        np.testing.assert_allclose(reference("09.3")(*case.args), want,
                                   rtol=1e-5 if V.dtype == np.float32 else 1e-10)


def test_09_4_reference_equals_the_random_feature_map():
    for case in get("09.4").cases:
        x, W = case.args
        want = RandomFeatureMap(projection=W)(x)
        np.testing.assert_allclose(reference("09.4")(x, W), want,
                                   rtol=1e-5 if x.dtype == np.float32 else 1e-12)
