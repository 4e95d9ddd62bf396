"""Exercises of notebook 06 (validation with real inputs): sinusoidal positional encodings, the
shift matrix M_k, and the memory of the attention weights."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays, integer
from helpers.exercises._core import Case, Exercise, Mistake, register


# --------------------------------------------------------------------------- 06.1
def positional_encoding(seq_len, d_model):
    pos = np.arange(seq_len)[:, None]  # (L, 1)
    angles = pos / 10000.0 ** (np.arange(0, d_model, 2) / d_model)  # (L, d/2)
    pe = np.zeros((seq_len, d_model))
    pe[:, 0::2] = np.sin(angles)
    pe[:, 1::2] = np.cos(angles)
    return pe


def _pe(
    seq_len,
    d_model,
    *,
    start=0,
    exponent=2,
    swap=False,
    halves=False,
    times=False,
    column_exponent=False,
):
    """Sinusoidal encodings with one detail changed."""
    pos = np.arange(start, start + seq_len)[:, None]
    if (
        column_exponent
    ):  # every column j uses 10000^(j/d), so a pair's cosine gets the next frequency
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


register(
    Exercise(
        id="06.1",
        reference=positional_encoding,
        taught="notebook 06 §4",
        compare=arrays(rtol=1e-9, atol=1e-12),
        cases=(
            Case((1, 2), "one position, d_model = 2: [sin 0, cos 0] = [0, 1]"),
            Case((6, 8), "6 positions, d_model = 8"),
            Case((50, 64), "50 positions, d_model = 64"),
            Case((9, 10), "d_model = 10, not a power of two"),
            Case((3, 4), "3 positions, d_model = 4"),
        ),
        mistakes=(
            Mistake(
                "sin and cos swapped",
                "even columns 2i take the sine, odd columns 2i + 1 the cosine.",
                "notebook 06 §4",
                lambda seq_len, d_model: _pe(seq_len, d_model, swap=True),
            ),
            Mistake(
                "sines and cosines in two halves",
                "the pairs interleave: column 2i is a sine, "
                "column 2i + 1 its cosine (pe[:, 0::2] and pe[:, 1::2]).",
                "notebook 06 §4",
                lambda seq_len, d_model: _pe(seq_len, d_model, halves=True),
            ),
            Mistake(
                "exponent i/d with the pair index",
                "the frequency of pair i is 10000^(-2i/d): the "
                "exponent uses 2i (the even column), not i.",
                "notebook 06 §4",
                lambda seq_len, d_model: _pe(seq_len, d_model, exponent=1),
            ),
            Mistake(
                "positions start at 1",
                "the first row is position 0 (sin 0 = 0, cos 0 = 1).",
                "notebook 06 §4",
                lambda seq_len, d_model: _pe(seq_len, d_model, start=1),
            ),
            Mistake(
                "multiplied by the frequency term",
                "the angle is pos / 10000^(2i/d), not pos · 10000^(2i/d).",
                "notebook 06 §4",
                lambda seq_len, d_model: _pe(seq_len, d_model, times=True),
            ),
            Mistake(
                "exponent from the column index",
                "both columns of a pair share one frequency: with "
                "10000^(j/d) per column j the cosine gets another angle than its sine.",
                "notebook 06 §4",
                lambda seq_len, d_model: _pe(seq_len, d_model, column_exponent=True),
            ),
        ),
    )
)


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
        M[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [
            [np.cos(angle), np.sin(angle)],
            [-np.sin(angle), np.cos(angle)],
        ]
    return M


register(
    Exercise(
        id="06.2",
        reference=shift_matrix,
        taught="notebook 06 §4 (Moving k positions is a fixed rotation)",
        compare=arrays(rtol=1e-9, atol=1e-12),
        cases=(
            Case((1, 2), "k = 1, d_model = 2"),
            Case((3, 8), "k = 3, d_model = 8"),
            Case((-2, 8), "a negative shift k = -2"),
            Case((10, 64), "k = 10, d_model = 64"),
            Case((0, 4), "k = 0: the identity"),
        ),
        mistakes=(
            Mistake(
                "signs of the sines swapped",
                "[[cos, -sin], [sin, cos]] rotates backwards: that is M_{-k}.",
                "notebook 06 §4",
                lambda k, d_model: shift_matrix(-k, d_model),
            ),
            Mistake(
                "angle ω_i instead of k·ω_i",
                "block i turns by k·ω_i; without k every matrix is M_1.",
                "notebook 06 §4",
                lambda k, d_model: shift_matrix(1, d_model),
            ),
            Mistake(
                "one frequency for every block",
                "each pair turns at its own ω_i = 10000^(-2i/d).",
                "notebook 06 §4",
                lambda k, d_model: np.kron(np.eye(d_model // 2), shift_matrix(k, 2)),
            ),
            Mistake(
                "exponent i/d",
                "ω_i = 10000^(-2i/d): the exponent uses 2i.",
                "notebook 06 §4",
                lambda k, d_model: _blocks(k, d_model, exponent=1),
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 06.3
def attention_matrix_bytes(batch, heads, seq_len, itemsize):
    return batch * heads * seq_len * seq_len * itemsize


register(
    Exercise(
        id="06.3",
        reference=attention_matrix_bytes,
        taught="notebook 06 §7",
        compare=integer(),
        cases=(
            Case((1, 1, 6, 8), "one 6 × 6 float64 matrix"),
            Case((2, 8, 64, 4), "batch 2, 8 heads, 64 tokens, float32"),
            Case((3, 12, 128, 2), "batch 3, 12 heads, 128 tokens, float16"),
            Case((4, 2, 100, 8), "batch 4, 2 heads, 100 tokens, float64"),
            Case((1, 1, 1, 1), "one number of one byte"),
        ),
        mistakes=(
            Mistake(
                "forgot the heads",
                "every head has its own L × L matrix.",
                "notebook 06 §7",
                lambda batch, heads, seq_len, itemsize: batch * seq_len**2 * itemsize,
            ),
            Mistake(
                "L instead of L²",
                "the weights are L × L per head and sequence.",
                "notebook 06 §7",
                lambda batch, heads, seq_len, itemsize: batch * heads * seq_len * itemsize,
            ),
            Mistake(
                "bits instead of bytes",
                "itemsize is in bytes already; no factor 8.",
                "notebook 06 §7",
                lambda batch, heads, seq_len, itemsize: 8 * batch * heads * seq_len**2 * itemsize,
            ),
            Mistake(
                "forgot the batch",
                "every sequence of the batch has its own weights.",
                "notebook 06 §7",
                lambda batch, heads, seq_len, itemsize: heads * seq_len**2 * itemsize,
            ),
            Mistake(
                "forgot itemsize",
                "count bytes: multiply the number of entries by itemsize.",
                "notebook 06 §7",
                lambda batch, heads, seq_len, itemsize: batch * heads * seq_len**2,
            ),
        ),
    )
)
