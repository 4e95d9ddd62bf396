"""Exercises of notebook 09 (positions and long sequences): rotary position embeddings (09.1,
``my_apply_rope``: the learner's function must not shadow the library's ``apply_rope``, which the
notebook keeps using), the check that a score depends only on the offset (09.2), and, in
``ex09_linear``, causal linear attention as a recurrence (09.3) and Performer's random features
(09.4)."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import Comparison, arrays, real
from helpers.exercises._core import Case, Exercise, Mistake, register

rng = np.random.default_rng(909)
n = rng.standard_normal


# --------------------------------------------------------------------------- 09.1
def my_apply_rope(x, positions, base=10000.0):
    d = x.shape[-1]
    omega = base ** (-np.arange(0, d, 2) / d)  # (d/2,): omega_i = base^(-2i/d)
    angles = np.asarray(positions, dtype=np.float64)[:, None] * omega  # (L, d/2)
    cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)
    a, b = x[..., 0::2], x[..., 1::2]  # pair i = features (2i, 2i + 1)
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def _rope(*, half=False, backwards=False, exponent=2, ignore_positions=False, fixed_base=False,
          promote=False):
    """my_apply_rope with one detail changed."""

    def wrong(x, positions, base=10000.0):
        d = x.shape[-1]
        base = 10000.0 if fixed_base else base
        omega = base ** (-exponent * np.arange(d // 2) / d)
        pos = np.arange(x.shape[-2]) if ignore_positions else np.asarray(positions)
        angles = pos[:, None] * omega
        cos, sin = np.cos(angles), np.sin(angles)
        if not promote:
            cos, sin = cos.astype(x.dtype), sin.astype(x.dtype)
        first, second = (slice(0, d // 2), slice(d // 2, d)) if half else (slice(0, d, 2),
                                                                          slice(1, d, 2))
        a, b = x[..., first], x[..., second]
        out = np.empty(x.shape, dtype=np.result_type(x, cos))
        sign = -1.0 if backwards else 1.0
        out[..., first] = a * cos - sign * b * sin
        out[..., second] = sign * a * sin + b * cos
        return out

    return wrong


def same_dtype_in_answer_precision(rtol32: float = 1e-5, atol32: float = 1e-5) -> Comparison:
    """The answer must keep the input's dtype; float32 is compared within float32's tolerance."""
    dtype_rule, exact, single = arrays(dtype="same"), arrays(1e-9, 1e-12), arrays(rtol32, atol32)

    def compare(got, want):
        if isinstance(got, np.ndarray) and got.dtype != np.asarray(want).dtype:
            return dtype_rule(got, want)
        return (single if np.asarray(want).dtype == np.float32 else exact)(got, want)

    return compare


_TAUGHT_ROPE = "notebook 09 §2"
register(Exercise(
    id="09.1",
    reference=my_apply_rope,
    taught=_TAUGHT_ROPE,
    compare=same_dtype_in_answer_precision(),
    difficulty=2,
    minutes=20,
    hints=(
        "Work pair by pair: pair i is features (2i, 2i + 1), turned by the angle "
        "positions[t] · ω_i with ω_i = base^(-2i/d). Build the (L, d/2) table of angles first.",
        "A 2-D rotation by θ sends (a, b) to (a cos θ − b sin θ, a sin θ + b cos θ): that is "
        "the row form x @ M_p of notebook 06's M_k. The slices x[..., 0::2] and x[..., 1::2] "
        "hold every a and every b at once.",
        "The (L, d/2) tables of cosines and sines broadcast over any leading axes. Cast them to "
        "x.dtype before multiplying, so float32 stays float32, and write the two results into "
        "the even and odd columns of a new array.",
    ),
    cases=(
        Case((n((4, 2)), np.arange(4)), "d = 2: one pair, positions 0-3"),
        Case((n((6, 8)), np.arange(6)), "six vectors of d = 8 at positions 0-5"),
        Case((n((2, 3, 5, 6)), np.arange(5)), "batch and heads: x (2, 3, 5, 6)"),
        Case((n((4, 8)), np.array([7, 3, 0, 12])), "positions not 0 .. L - 1: [7, 3, 0, 12]"),
        Case((n((1, 8)), np.array([1000])), "one token at position 1000, as in a KV cache"),
        Case((n((5, 4)), np.arange(5)), "another base: base = 100", {"base": 100.0}),
        Case((n((3, 6)).astype(np.float32), np.arange(3)), "float32 stays float32"),
    ),
    mistakes=(
        Mistake("the 'rotate half' layout",
                "pair i is features (2i, 2i + 1), the interleaved layout of the notebook; "
                "(i, i + d/2) is the other convention.", "notebook 09 §5", _rope(half=True)),
        Mistake("rotated backwards (x Mᵀ)",
                "(a, b) goes to (a cos θ − b sin θ, a sin θ + b cos θ); with the signs of the "
                "sines swapped every pair turns by −θ.", _TAUGHT_ROPE, _rope(backwards=True),
                hint="Check one pair at position 1 against x @ positional_shift_matrix(1, d)."),
        Mistake("exponent i/d", "ω_i = base^(-2i/d) with i the pair index: the exponent "
                "uses 2i.", _TAUGHT_ROPE, _rope(exponent=1)),
        Mistake("positions replaced by 0 .. L - 1",
                "row t turns by positions[t]: a token decoded at step 1000 is at position "
                "1000, not 0.", _TAUGHT_ROPE, _rope(ignore_positions=True)),
        Mistake("base fixed at 10000", "use the base argument; 10000 is only its default.",
                _TAUGHT_ROPE, _rope(fixed_base=True)),
        Mistake("float32 became float64",
                "cosines and sines computed in float64 promote a float32 x: cast them to "
                "x.dtype first.", _TAUGHT_ROPE, _rope(promote=True)),
    ),
))


# --------------------------------------------------------------------------- 09.2
def offset_spread(scores):
    L_q, L_k = scores.shape
    return max(float(np.ptp(np.diagonal(scores, offset))) for offset in range(-L_q + 1, L_k))


def _spread(diagonals, reduce=np.ptp):
    def wrong(scores):
        return max(float(reduce(np.diagonal(scores, k))) for k in diagonals(*scores.shape))

    return wrong


def _from_first(d):
    return np.abs(d - d[0]).max()


def _shift_gap(scores):  # notebook 09 §3's shift_gap, handed in as offset_spread
    return float(np.abs(scores[1:, 1:] - scores[:-1, :-1]).max())


def _toeplitz(L_q, L_k, values=None):
    """A table whose entry [m, n] depends on m - n only."""
    values = n(L_q + L_k - 1) if values is None else values
    return values[np.subtract.outer(np.arange(L_q), np.arange(L_k)) + L_k - 1]


def _poke(table, m, k, by):
    out = table.copy()
    out[m, k] += by
    return out


_TAUGHT_OFFSET = "notebook 09 §3"
register(Exercise(
    id="09.2",
    reference=offset_spread,
    taught=_TAUGHT_OFFSET,
    compare=real(rtol=1e-9, atol=1e-12),
    difficulty=1,
    minutes=15,
    hints=(
        "Entries with the same offset m − n lie on one diagonal of the table. How many "
        "diagonals does an (L_q, L_k) table have?",
        "np.diagonal(scores, offset) returns one diagonal; offsets run from −(L_q − 1) (bottom "
        "left) to L_k − 1 (top right), negative ones included.",
        "The spread of one diagonal is its largest minus its smallest entry (np.ptp); return "
        "the largest spread over all diagonals, as a float.",
    ),
    cases=(
        Case((_toeplitz(5, 5),), "a 5 × 5 table that depends on m - n only: spread 0"),
        Case((n((4, 4)),), "a random 4 × 4 table"),
        Case((_poke(_toeplitz(5, 5), 1, 4, 0.5),), "one entry above the main diagonal differs"),
        Case((_poke(_toeplitz(5, 5), 4, 1, -0.25),), "one entry below the main diagonal differs"),
        Case((_poke(_toeplitz(3, 6), 0, 4, 2.0),), "3 queries, 6 keys"),
        Case((_poke(_toeplitz(6, 3), 4, 0, 1.5),), "6 queries, 3 keys"),
        Case((n((1, 5)),), "one query: every diagonal holds one entry"),
        Case((_poke(_poke(_toeplitz(4, 4), 2, 1, 1.0), 3, 2, -1.0),), "on the diagonal of "
             "offset 1, one entry 1 above the first and one 1 below it"),
    ),
    mistakes=(
        Mistake("the main diagonal only",
                "every offset m − n has its own diagonal; the main one is offset 0.",
                _TAUGHT_OFFSET, _spread(lambda L_q, L_k: [0])),
        Mistake("negative offsets forgotten",
                "np.diagonal's offsets run from −(L_q − 1) to L_k − 1: the diagonals below the "
                "main one count too.", _TAUGHT_OFFSET, _spread(lambda L_q, L_k: range(L_k))),
        Mistake("a square table assumed",
                "a table of L_q queries and L_k keys has L_q + L_k − 1 diagonals; with "
                "range(-L + 1, L) for L = len(scores) some are missed or empty.", _TAUGHT_OFFSET,
                _spread(lambda L_q, L_k: range(-L_q + 1, L_q))),
        Mistake("rows instead of diagonals",
                "a row is one query against every key, at every offset; entries with one "
                "offset lie on a diagonal.", _TAUGHT_OFFSET,
                lambda scores: float(np.ptp(scores, axis=1).max())),
        Mistake("distance from the first entry",
                "the spread is max − min of each diagonal, not the largest distance from its "
                "first entry.", _TAUGHT_OFFSET,
                _spread(lambda L_q, L_k: range(-L_q + 1, L_k), reduce=_from_first)),
        Mistake("spread of the whole table",
                "the scores may differ between offsets; only entries with the same offset must "
                "agree.", _TAUGHT_OFFSET, lambda scores: float(np.ptp(scores))),
        Mistake("§3's shift_gap instead of the spread",
                "shift_gap is the largest change between neighbours along a diagonal, the "
                "spread its max − min: a diagonal 0, 1, 2 has shift gap 1 but spread 2. Both are 0 "
                "for the same tables, but they are different numbers.", _TAUGHT_OFFSET,
                _shift_gap,
                hint="Take the diagonal 0, 1, 2: what is its largest step between neighbours, "
                     "and what is its max − min?"),
    ),
))

from helpers.exercises import ex09_linear  # noqa: E402, F401  (registers 09.3 and 09.4)
