"""Exercises of notebook 06 (validation with real inputs): sinusoidal positional encodings, the
shift matrix M_k, the memory of the attention weights (here); loading a BERT layer into the class
(``ex06_real_model``) and classifying a head from its weights (``ex06_heads``)."""

from __future__ import annotations

import numpy as np

from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import in_answer_precision
from helpers.exercises.ex04 import byte_count


# --------------------------------------------------------------------------- 06.1
def positional_encoding(seq_len, d_model):
    pos = np.arange(seq_len)[:, None]  # (L, 1)
    angles = pos / 10000.0 ** (np.arange(0, d_model, 2) / d_model)  # (L, d/2)
    pe = np.zeros((seq_len, d_model))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles)
    return pe


def _pe(seq_len, d_model, *, start=0, exponent=2, swap=False, halves=False, times=False,
        column_exponent=False):
    """Sinusoidal encodings with one detail changed."""
    pos = np.arange(start, start + seq_len)[:, None]
    if column_exponent:  # every column j uses 10000^(j/d): a pair's cosine gets the next frequency
        angles = pos / 10000.0 ** (np.arange(d_model) / d_model)
        return np.where(np.arange(d_model) % 2 == 0, np.sin(angles), np.cos(angles))
    freq = 10000.0 ** (exponent * np.arange(d_model // 2) / d_model)
    angles = pos * freq if times else pos / freq
    first, second = (np.cos, np.sin) if swap else (np.sin, np.cos)
    if halves:
        return np.concatenate([first(angles), second(angles)], axis=1)
    pe = np.zeros((seq_len, d_model))
    pe[:, 0::2], pe[:, 1::2] = first(angles), second(angles)
    return pe


_TAUGHT_PE = "notebook 06 §4"
register(Exercise(
    id="06.1",
    allowed_dtypes=("float32",),
    reference=positional_encoding,
    taught=_TAUGHT_PE,
    compare=in_answer_precision(),
    difficulty=1,
    minutes=10,
    hints=(
        "Build the table of angles first: one row per position, one column per pair, shape "
        "(seq_len, d_model / 2). Sines and cosines come after.",
        "Pair i turns at 10000^(-2i/d): np.arange(0, d_model, 2) gives the values 2i directly; "
        "the positions 0 .. seq_len - 1 go down a column (shape (seq_len, 1)) so the division "
        "broadcasts.",
        "Fill the even columns (slice 0::2) of a zero array with the sines of the angles and the "
        "odd columns (1::2) with their cosines: both columns of a pair share one angle.",
    ),
    cases=(
        Case((1, 2), "one position, d_model = 2: [sin 0, cos 0] = [0, 1]"),
        Case((6, 8), "6 positions, d_model = 8"),
        Case((50, 64), "50 positions, d_model = 64"),
        Case((9, 10), "d_model = 10, not a power of two"),
        Case((3, 4), "3 positions, d_model = 4"),
    ),
    mistakes=(
        Mistake("sin and cos swapped",
                "even columns 2i take the sine, odd columns 2i + 1 the cosine.", _TAUGHT_PE,
                lambda seq_len, d_model: _pe(seq_len, d_model, swap=True),
                hint="Row 0 must read [0, 1, 0, 1, ...]: sin 0 = 0 in the even columns."),
        Mistake("sines and cosines in two halves",
                "the pairs interleave: column 2i is a sine, column 2i + 1 its cosine "
                "(pe[:, 0::2] and pe[:, 1::2]).", _TAUGHT_PE,
                lambda seq_len, d_model: _pe(seq_len, d_model, halves=True),
                hint="Concatenating the sines and the cosines puts them in two halves; assign "
                     "to the slices 0::2 and 1::2 instead."),
        Mistake("exponent i/d with the pair index",
                "the frequency of pair i is 10000^(-2i/d): the exponent uses 2i (the even "
                "column), not i.", _TAUGHT_PE,
                lambda seq_len, d_model: _pe(seq_len, d_model, exponent=1),
                hint="For d_model = 8, which exponents 2i/d should the four pairs use? Print "
                     "yours."),
        Mistake("2i doubled",
                "np.arange(0, d_model, 2) already holds the values 2i; multiplying them by 2 "
                "again gives the exponent 4i/d, so every pair after the first turns too slowly.",
                _TAUGHT_PE, lambda seq_len, d_model: _pe(seq_len, d_model, exponent=4),
                hint="Print the exponents your code uses for d_model = 8: they should be "
                     "0, 0.25, 0.5, 0.75."),
        Mistake("positions start at 1", "the first row is position 0 (sin 0 = 0, cos 0 = 1).",
                _TAUGHT_PE, lambda seq_len, d_model: _pe(seq_len, d_model, start=1)),
        Mistake("multiplied by the frequency term",
                "the angle is pos / 10000^(2i/d), not pos · 10000^(2i/d).", _TAUGHT_PE,
                lambda seq_len, d_model: _pe(seq_len, d_model, times=True)),
        Mistake("exponent from the column index",
                "both columns of a pair share one frequency: with 10000^(j/d) per column j "
                "the cosine gets another angle than its sine.", _TAUGHT_PE,
                lambda seq_len, d_model: _pe(seq_len, d_model, column_exponent=True)),
    ),
))


# --------------------------------------------------------------------------- 06.2
def shift_matrix(k, d_model):
    M = np.zeros((d_model, d_model))
    for i in range(d_model // 2):
        angle = k * 10000.0 ** (-2 * i / d_model)
        c, s = np.cos(angle), np.sin(angle)
        M[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[c, s], [-s, c]]
    return M


def _blocks(k, d_model, exponent=2):
    M = np.zeros((d_model, d_model))
    for i in range(d_model // 2):
        angle = k * 10000.0 ** (-exponent * i / d_model)
        M[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [[np.cos(angle), np.sin(angle)],
                                                   [-np.sin(angle), np.cos(angle)]]
    return M


_TAUGHT_M = "notebook 06 §4 (Moving k positions is a fixed rotation)"
register(Exercise(
    id="06.2",
    allowed_dtypes=("float32",),
    reference=shift_matrix,
    taught=_TAUGHT_M,
    compare=in_answer_precision(),
    difficulty=2,
    minutes=15,
    hints=(
        "Work on one pair first: write (sin, cos) at pos + k in terms of (sin, cos) at pos, "
        "with the angle-addition formulas, and read off the 2 × 2 matrix.",
        "sin(a + b) = sin a cos b + cos a sin b and cos(a + b) = cos a cos b − sin a sin b, "
        "with b = k·ω_i: the first row of the block is (cos kω_i, sin kω_i).",
        "Put block i at rows and columns 2i, 2i + 1 of a zero (d, d) matrix. The exercise asks "
        "for M_k in the column form PE(pos + k) = M_k PE(pos); test it in the row form the "
        "notebook uses: pe[k:] equals pe[:-k] @ M.T.",
    ),
    cases=(
        Case((1, 2), "k = 1, d_model = 2"),
        Case((3, 8), "k = 3, d_model = 8"),
        Case((-2, 8), "a negative shift k = -2"),
        Case((10, 64), "k = 10, d_model = 64"),
        Case((0, 4), "k = 0: the identity"),
    ),
    mistakes=(
        # M_k transposed = M_{-k}: one mistake, named by the transpose a learner hands in.
        Mistake("M_k transposed (= M_{-k})",
                "this is M_kᵀ = M_{-k}, the transpose of M_k, which rotates backwards. The "
                "exercise asks for M_k in the column form PE(pos + k) = M_k PE(pos); in the "
                "row form of the notebook's cells you multiply by its transpose, "
                "pe[k:] = pe[:-k] @ M_k.T, so return M_k itself, not the matrix that "
                "multiplies the rows.", _TAUGHT_M,
                lambda k, d_model: shift_matrix(-k, d_model),
                hint="Check with the column form: M @ pe[pos] must equal pe[pos + k]. If "
                     "pe[:-k] @ M equals pe[k:], you have built M_kᵀ."),
        Mistake("angle ω_i instead of k·ω_i",
                "block i turns by k·ω_i; without k every matrix is M_1.", _TAUGHT_M,
                lambda k, d_model: shift_matrix(1, d_model)),
        Mistake("one frequency for every block", "each pair turns at its own ω_i = "
                "10000^(-2i/d).", _TAUGHT_M,
                lambda k, d_model: np.kron(np.eye(d_model // 2), shift_matrix(k, 2))),
        Mistake("exponent i/d", "ω_i = 10000^(-2i/d): the exponent uses 2i.", _TAUGHT_M,
                lambda k, d_model: _blocks(k, d_model, exponent=1)),
    ),
))


# --------------------------------------------------------------------------- 06.3
def attention_matrix_bytes(batch, heads, seq_len, itemsize):
    return batch * heads * seq_len * seq_len * itemsize  # Python ints: no overflow


_TAUGHT_MEM = "notebook 06 §7"
register(Exercise(
    id="06.3",
    reference=attention_matrix_bytes,
    taught=_TAUGHT_MEM,
    compare=byte_count(),  # an int, exactly: a float is refused (see notebook 04's 04.3)
    difficulty=1,
    minutes=5,
    hints=(
        "How many numbers does an array of shape (batch, heads, L, L) hold?",
        "Multiply that count by the bytes per number. Keep Python integers: a fixed-width "
        "np.int32 wraps around above 2³¹ − 1 ≈ 2.1 × 10⁹, which long sequences exceed.",
    ),
    cases=(
        Case((1, 1, 6, 8), "one 6 × 6 float64 matrix"),
        Case((2, 8, 64, 4), "batch 2, 8 heads, 64 tokens, float32"),
        Case((3, 12, 128, 2), "batch 3, 12 heads, 128 tokens, float16"),
        Case((4, 2, 100, 8), "batch 4, 2 heads, 100 tokens, float64"),
        Case((1, 1, 1, 1), "one number of one byte"),
        Case((1, 32, 8192, 1), "32 heads of 8192 tokens, 1 byte each: 2³¹ bytes, one more "
             "than a 32-bit integer holds"),
        Case((3, 7, 4097, 2), "odd sizes (batch 3, 7 heads, 4097 tokens, float16): "
             "704 987 178 bytes, a whole number float32 cannot hold"),
    ),
    mistakes=(
        Mistake("forgot the heads", "every head has its own L × L matrix.", _TAUGHT_MEM,
                lambda batch, heads, seq_len, itemsize: batch * seq_len**2 * itemsize),
        Mistake("L instead of L²", "the weights are L × L per head and sequence.", _TAUGHT_MEM,
                lambda batch, heads, seq_len, itemsize: batch * heads * seq_len * itemsize,
                hint="How many weights does one head hold for one sequence of L tokens: one per "
                     "token, or one per (query, key) pair?"),
        Mistake("bits instead of bytes", "itemsize is in bytes already; no factor 8.",
                _TAUGHT_MEM,
                lambda batch, heads, seq_len, itemsize: 8 * batch * heads * seq_len**2 * itemsize),
        Mistake("forgot the batch", "every sequence of the batch has its own weights.",
                _TAUGHT_MEM, lambda batch, heads, seq_len, itemsize: heads * seq_len**2 * itemsize),
        Mistake("forgot itemsize", "count bytes: multiply the number of entries by itemsize.",
                _TAUGHT_MEM, lambda batch, heads, seq_len, itemsize: batch * heads * seq_len**2),
        Mistake("int32 overflow",
                "the product of the sizes wrapped around: a 32-bit integer holds at most "
                "2³¹ − 1 ≈ 2.1 × 10⁹, and np.prod(..., dtype=np.int32) (or sizes read from an "
                "int32 array) keeps only the last 32 bits. Multiply Python ints.", _TAUGHT_MEM,
                lambda batch, heads, seq_len, itemsize: np.prod(
                    [batch, heads, seq_len, seq_len, itemsize], dtype=np.int32),
                hint="Print the result for 32 heads of 8192 tokens: a negative number of bytes "
                     "means an integer type ran out of bits."),
    ),
))

from helpers.exercises import ex06_heads, ex06_real_model  # noqa: E402, F401  (06.4, 06.5)
