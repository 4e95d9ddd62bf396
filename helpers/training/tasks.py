"""The training task of notebook 08: reverse a sequence, one token at a time (section 1).

A sequence of ``length`` random symbols ``a_0 .. a_{n-1}`` (ids ``0 .. num_symbols - 1``) is
followed by a separator ``SEP`` (id ``num_symbols``) and then by the same symbols reversed::

    a_0  a_1 ... a_{n-1}  SEP  a_{n-1} ... a_1  a_0        2n + 1 tokens

A causal language model reads the first ``2n`` tokens and predicts each next one. Only the
``n`` predictions after ``SEP`` are determined (the prompt is random), so only they carry a
target. The input at position ``p = n + i`` must produce ``a_{n-1-i}``, which sits at position
``2n - 1 - p``: the attention that solves the task is the **anti-diagonal** of the lower-left
block of the weight matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from helpers._validate import positive_int
from helpers.training.losses import IGNORE_INDEX

__all__ = ["ReversalTask"]


@dataclass(frozen=True)
class ReversalTask:
    """Sequence reversal as next-token prediction.

    Attributes
    ----------
    num_symbols : int
        Number of distinct symbols; the vocabulary adds one separator.
    length : int
        Number of symbols ``n`` to reverse; the model sees ``2n`` tokens.
    """

    num_symbols: int = 10
    length: int = 8

    def __post_init__(self) -> None:
        positive_int(self.num_symbols, "num_symbols")
        positive_int(self.length, "length")

    @property
    def sep(self) -> int:
        """Token id of the separator (the last id of the vocabulary)."""
        return self.num_symbols

    @property
    def vocab_size(self) -> int:
        return self.num_symbols + 1

    @property
    def seq_len(self) -> int:
        """Length of the model's input, ``2n``."""
        return 2 * self.length

    @property
    def answer_positions(self) -> np.ndarray:
        """Input positions ``n .. 2n-1`` whose next token is part of the reversal, shape (n,)."""
        return np.arange(self.length, 2 * self.length)

    def source_positions(self) -> np.ndarray:
        """For each answer position ``p``, the position ``2n - 1 - p`` of its answer, (n,)."""
        return 2 * self.length - 1 - self.answer_positions

    def sequences(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` full sequences, prompt + SEP + reversal, int64 of shape (count, 2n + 1)."""
        count = positive_int(count, "count")
        prompt = rng.integers(0, self.num_symbols, size=(count, self.length))
        sep = np.full((count, 1), self.sep)
        return np.concatenate([prompt, sep, prompt[:, ::-1]], axis=1)

    def inputs_and_targets(self, sequences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split full sequences ``(B, 2n + 1)`` into inputs and next-token targets, each (B, 2n).

        Targets hold ``IGNORE_INDEX`` (-100) before the answer positions.
        """
        seqs = np.asarray(sequences)
        if seqs.ndim != 2 or seqs.shape[1] != 2 * self.length + 1:
            raise ValueError(
                f"sequences must have shape (batch, {2 * self.length + 1}), got {seqs.shape}"
            )
        inputs, targets = seqs[:, :-1].copy(), seqs[:, 1:].copy()
        targets[:, :self.length] = IGNORE_INDEX
        return inputs, targets

    def batch(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """A fresh random batch: inputs and targets of shape (batch_size, 2n)."""
        return self.inputs_and_targets(self.sequences(rng, batch_size))

    def ideal_weights(self) -> np.ndarray:
        """The attention that solves the task, shape (2n, 2n): row ``p`` of an answer position
        puts weight 1 on ``2n - 1 - p``; the prompt rows (no target) are left at 0."""
        ideal = np.zeros((self.seq_len, self.seq_len))
        ideal[self.answer_positions, self.source_positions()] = 1.0
        return ideal

    def weight_on_source(self, weights: np.ndarray) -> np.ndarray:
        """Weight each answer query puts on its source position.

        ``weights (..., 2n, 2n)`` -> ``(..., n)``: entry ``i`` is ``weights[..., n+i, n-1-i]``.
        """
        w = np.asarray(weights)
        if w.shape[-2:] != (self.seq_len, self.seq_len):
            raise ValueError(
                f"weights must have shape (..., {self.seq_len}, {self.seq_len}), got {w.shape}"
            )
        return w[..., self.answer_positions, self.source_positions()]
