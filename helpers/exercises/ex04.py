"""Exercises of notebook 04 (multi-head attention): split heads, repeat key/value heads, the size
of a KV cache (and, in ex04_heads, combine heads; in ex04_mha, the whole multi-head attention
function)."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import Comparison, arrays, integer
from helpers.exercises._core import Case, Exercise, Mistake, register

rng = np.random.default_rng(404)
n = rng.standard_normal
_exact = arrays(rtol=0.0, atol=0.0, dtype="same")  # a reshape or a copy changes no value


# --------------------------------------------------------------------------- 04.1
def my_split_heads(x, num_heads):
    batch, seq, d_model = x.shape
    return x.reshape(batch, seq, num_heads, d_model // num_heads).transpose(0, 2, 1, 3)


def _cut(x, h):  # (batch, seq, h, d_k)
    return x.reshape(*x.shape[:2], h, x.shape[2] // h)


register(
    Exercise(
        id="04.1",
        reference=my_split_heads,
        taught="notebook 04 §2–3",
        compare=_exact,
        difficulty=1,
        minutes=10,
        hints=(
            "The head at index i (indices from 0, as in code) must receive the features "
            "i·d_k … (i+1)·d_k - 1 of every position. Which axis do you cut into pieces, and "
            "which two axes must then trade places?",
            "Cut only the feature axis: a reshape to (batch, seq, num_heads, d_k) leaves every "
            "position whole. A transpose then moves the heads axis in front of the positions. "
            "Reshaping straight to the final shape mixes positions (section 3).",
        ),
        cases=(  # batch, seq, heads and d_k all differ, so a wrong axis order changes the shape
            Case((n((2, 5, 12)), 3), "x (2, 5, 12), 3 heads of d_k = 4"),
            Case((n((1, 4, 6)), 2), "x (1, 4, 6), 2 heads of d_k = 3"),
            Case((n((2, 5, 6)), 6), "6 heads of width 1"),
            Case((n((3, 2, 8)), 1), "a single head: d_k = d_model = 8"),
            Case((n((4, 3, 10)), 5), "x (4, 3, 10), 5 heads of d_k = 2"),
            Case(
                (n((2, 3, 20)).astype(np.float32), 4), "float32 x (2, 3, 20): float32 comes back"
            ),
        ),
        mistakes=(
            Mistake(
                "reshape without the transpose",
                "reshaping straight to (batch, heads, seq, d_k) gives the first head whole "
                "positions, not features; reshape to (batch, seq, heads, d_k), then "
                "transpose(0, 2, 1, 3).",
                "notebook 04 §3",
                lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h),
                hint="Split an array whose entries say where they come from (100·b + 10·t + f, "
                "as in section 2) and print the first head: are its rows positions?",
            ),
            Mistake(
                "(d_k, heads) order",
                "cutting the features as (d_k, heads) gives each head every h-th feature; "
                "the head at index i holds features i·d_k … (i+1)·d_k - 1.",
                "notebook 04 §2",
                lambda x, h: x.reshape(*x.shape[:2], x.shape[2] // h, h).transpose(0, 3, 1, 2),
            ),
            Mistake(
                "no transpose at all",
                "(batch, seq, heads, d_k) is the step before the transpose; "
                "heads must come before seq.",
                "notebook 04 §2",
                _cut,
            ),
            Mistake(
                "heads in front of the batch",
                "transpose(2, 0, 1, 3) gives (heads, batch, seq, d_k); the batch stays first.",
                "notebook 04 §2",
                lambda x, h: _cut(x, h).transpose(2, 0, 1, 3),
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 04.2
def my_repeat_kv(kv, num_groups):
    return np.repeat(kv, num_groups, axis=1)


register(
    Exercise(
        id="04.2",
        reference=my_repeat_kv,
        taught="notebook 04 §8",
        compare=_exact,
        difficulty=1,
        minutes=10,
        hints=(
            "With heads indexed from 0 (as in code), query head i reads key/value head i // g: "
            "query heads 0 … g-1 all read key/value head 0, the next g read key/value head 1, "
            "and so on. So the copies of one head must sit next to each other.",
            "`np.repeat` copies each entry along one axis and keeps its copies together; "
            "`np.tile` repeats the whole block in turn. The heads are axis 1.",
        ),
        cases=(
            Case((n((3, 2, 4, 5)), 4), "2 key/value heads, groups of 4"),
            Case((n((1, 4, 5, 2)), 2), "4 key/value heads, groups of 2"),
            Case((n((2, 3, 4, 5)), 1), "groups of 1: nothing to repeat"),
            Case((n((2, 1, 5, 4)), 3), "one key/value head for 3 query heads (multi-query)"),
        ),
        mistakes=(
            Mistake(
                "np.tile",
                "tiling puts the copies of different heads in turn, so the query head at "
                "index i meets key/value head i % h_kv; np.repeat keeps each head's copies "
                "together (i // g).",
                "notebook 04 §8",
                lambda kv, g: np.tile(kv, (1, g, 1, 1)),
                hint="Label two key/value heads 0 and 1 and repeat them for 4 query heads each: "
                "which labels do query heads 0 to 7 get, and which should they get?",
            ),
            Mistake(
                "repeated along the sequence",
                "the copies go along the heads axis (axis 1), not the positions.",
                "notebook 04 §8",
                lambda kv, g: np.repeat(kv, g, axis=2),
            ),
            Mistake(
                "repeated along the features",
                "the copies go along the heads axis (axis 1), not the last axis.",
                "notebook 04 §8",
                lambda kv, g: np.repeat(kv, g, axis=-1),
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 04.3
def byte_count() -> Comparison:
    """Compare a number of bytes: a Python int or a NumPy integer, exactly equal.

    Used by 04.3 and 06.3, whose statements ask for an int. A float is refused even when it holds
    the right value: float64 is exact only up to 2**53, float32 only up to 2**24, and a byte
    count computed in floating point is rounded once the sizes grow (each exercise has a case
    whose exact answer float32 cannot hold). A near miss says that it looks rounded.
    """
    exact = integer()

    def compare(got, want):
        if isinstance(got, float | np.floating):
            return (
                f"returned {float(got):.1f}, a {type(got).__name__}; expected the int "
                f"{int(want)}. A number of bytes is a whole number: return a Python int or a "
                "NumPy integer (a float64 is exact only up to 2**53, a float32 up to 2**24)"
            )
        if isinstance(got, int | np.integer) and not isinstance(got, bool | np.bool_):
            off = int(got) - int(want)
            if 0 < abs(off) <= 1e-6 * abs(int(want)):
                return (
                    f"returned {int(got)}; expected {int(want)}: off by {off}, a rounding "
                    "error. A floating-point product (float32 keeps 24 bits, float64 53) "
                    "cannot hold every whole number this large: multiply Python ints"
                )
        return exact(got, want)

    return Comparison(compare)


def my_kv_cache_bytes(num_layers, num_kv_heads, d_k, seq_len, bytes_per_value):
    sizes = (num_layers, num_kv_heads, d_k, seq_len, bytes_per_value)
    total = 2
    for size in sizes:
        total *= int(size)  # Python ints never overflow; np.int32 wraps past 2**31 - 1
    return total


def _ints(*sizes):  # the sizes as Python ints, as the statement asks the learner to make them
    return [int(size) for size in sizes]


def _times(*sizes):
    total = 1
    for size in sizes:
        total *= size
    return total


register(
    Exercise(
        id="04.3",
        reference=my_kv_cache_bytes,
        taught="notebook 04 §8 (The memory it saves)",
        compare=byte_count(),
        difficulty=1,
        minutes=10,
        hints=(
            "Count what one token leaves in one layer's cache: a key vector and a value vector, "
            "d_k numbers each, for every key/value head. Then scale up by the layers, the "
            "tokens and the bytes of one number.",
            "Sizes read from a NumPy `int32` array multiply in int32 and wrap around past 2³¹ - "
            "1 (about 2.1 billion). Convert each size with `int()` before multiplying: a Python "
            "int is exact at any size.",
        ),
        cases=(
            Case(
                (32, 32, 128, 4096, 2),
                "Llama-2-7B-sized: 32 layers, 32 heads, 4096 tokens, float16",
            ),
            Case((32, 8, 128, 32768, 2), "8 key/value heads, 32 768 tokens, float16"),
            Case((2, 1, 4, 3, 4), "a tiny layer stack in float32"),
            Case((1, 1, 1, 1, 1), "one of everything: one key and one value of one byte"),
            Case((24, 4, 64, 1000, 8), "float64 (8 bytes per value)"),
            Case(
                tuple(np.array([32, 8, 128, 32768, 2], dtype=np.int32)),
                "the sizes as NumPy int32 (read from a config array): 2**32 bytes, beyond int32",
            ),
            Case(
                (61, 7, 80, 32769, 2),
                "odd sizes (61 layers, 7 key/value heads of d_k 80, 32 769 tokens): "
                "4 477 556 160 bytes, a whole number float32 cannot hold",
            ),
        ),
        mistakes=(  # written with int(), as the statement asks: exact at any size
            Mistake(
                "forgot the factor 2",
                "the cache holds keys AND values.",
                "notebook 04 §8",
                lambda L, h, d, s, b: _times(*_ints(L, h, d, s, b)),
                hint="Per token and key/value head, how many vectors of d_k numbers does the "
                "cache keep?",
            ),
            Mistake(
                "numbers, not bytes",
                "multiply by bytes_per_value.",
                "notebook 04 §8",
                lambda L, h, d, s, b: 2 * _times(*_ints(L, h, d, s)),
            ),
            Mistake(
                "bits, not bytes",
                "bytes_per_value is already in bytes; no factor 8.",
                "notebook 04 §8",
                lambda L, h, d, s, b: 16 * _times(*_ints(L, h, d, s, b)),
            ),
            Mistake(
                "seq_len squared",
                "the cache keeps one key and one value per token: linear in "
                "seq_len (L² is the attention matrix).",
                "notebook 04 §8",
                lambda L, h, d, s, b: 2 * _times(*_ints(L, h, d, s, s, b)),
            ),
            Mistake(
                "int32 overflow",
                "the product of NumPy int32 sizes is computed in int32, which wraps around "
                "past 2**31 - 1 (NumPy warns 'overflow encountered'): the 2**32 bytes of that "
                "case come out as 0. Convert each size with int() first.",
                "notebook 04 §8",
                lambda L, h, d, s, b: 2 * L * h * d * s * b,
                hint="What is the largest number an int32 holds, and how large is the answer "
                "of the failing case?",
            ),
            Mistake(
                "np.prod in int32",
                "np.prod(..., dtype=np.int32) multiplies in int32 and wraps around past "
                "2**31 - 1 without a warning (array reductions do not check for overflow): "
                "2**31 comes out as -2**31. Multiply Python ints (int() of each size).",
                "notebook 04 §8",
                lambda L, h, d, s, b: int(np.prod([L, h, d, s, b], dtype=np.int32)) * 2,
                hint="Which dtype did your product use, and what happens to an int32 past "
                "2**31 - 1?",
            ),
        ),
    )
)


from helpers.exercises import ex04_heads, ex04_mha  # noqa: E402, F401  (register 04.4, 04.5)
