"""Attention masks. Boolean masks use True = "may attend" (PyTorch SDPA's convention)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from helpers._validate import positive_int


def create_causal_mask(size: int) -> NDArray[np.bool_]:
    """Boolean causal mask of shape ``(size, size)``.

    Entry ``[i, j]`` is True when ``j <= i``: query ``i`` may attend to keys
    at its own position and before, never to the future. It broadcasts over
    any leading ``(batch, heads)`` axes of the scores.
    """
    size = positive_int(size, "size")
    return np.tril(np.ones((size, size), dtype=bool))


def create_padding_mask(lengths: ArrayLike, max_len: int) -> NDArray[np.bool_]:
    """Boolean key-padding mask of shape ``(batch, 1, 1, max_len)``.

    Parameters
    ----------
    lengths : array_like of int, shape (batch,)
        Number of real (non-padding) tokens of each sequence; the padding
        comes after them.
    max_len : int
        Padded sequence length ``L_k``.

    Returns
    -------
    ndarray of bool, shape (batch, 1, 1, max_len)
        ``[b, 0, 0, j]`` is True when key ``j`` of sequence ``b`` is a real
        token. It broadcasts against scores ``(batch, heads, L_q, L_k)``; for
        scores without a heads axis, ``mask[:, 0]`` has shape ``(batch, 1, L_k)``.
    """
    max_len = positive_int(max_len, "max_len")
    lengths = np.asarray(lengths)
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    if lengths.ndim != 1:
        raise ValueError(f"lengths must have shape (batch,), got shape {lengths.shape}")
    if (lengths < 0).any() or (lengths > max_len).any():
        raise ValueError(
            f"every length must lie in [0, max_len={max_len}], got {lengths.tolist()}"
        )
    keep = np.arange(max_len) < lengths[:, np.newaxis]  # (batch, max_len)
    return keep[:, np.newaxis, np.newaxis, :]
