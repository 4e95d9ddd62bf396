"""Attention masks (notebook 03). Boolean masks: True = "may attend" (PyTorch SDPA's convention)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from helpers._validate import positive_int


def _non_negative_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{name} must be a non-negative integer, got {value!r} ({type(value).__name__})"
        )
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def create_causal_mask(L_q: int, L_k: int | None = None) -> NDArray[np.bool_]:
    """Boolean causal mask: ``(size, size)`` from one argument, ``(L_q, L_k)`` from two.

    One argument, ``create_causal_mask(size)`` (``size >= 1``): entry ``[i, j]``
    is True when ``j <= i``. Query ``i`` may attend to keys at its own position
    and before, never to the future.

    Two arguments, ``create_causal_mask(L_q, L_k)`` (both ``>= 0``): the queries
    are the **last** ``L_q`` positions of a sequence of ``L_k`` keys, as when new
    tokens attend to a key/value cache (or a prompt is fed in chunks). Entry
    ``[i, j]`` is True when ``j <= i + (L_k - L_q)``: *bottom-right* alignment,
    equal to the last ``L_q`` rows of the square ``(L_k, L_k)`` mask when
    ``L_q <= L_k``, and to PyTorch's ``torch.nn.attention.bias.causal_lower_right``.
    When ``L_q > L_k`` the first ``L_q - L_k`` rows allow no key at all; attention
    gives such a query zero weights and a zero output.

    PyTorch's ``scaled_dot_product_attention(is_causal=True)`` (and
    :func:`helpers.attention`'s ``is_causal``) is instead *top-left* aligned,
    ``np.tril(np.ones((L_q, L_k), bool))``; the two agree only when ``L_q == L_k``.

    The mask broadcasts over any leading ``(batch, heads)`` axes of the scores.
    """
    if L_k is None:
        size = positive_int(L_q, "size")
        return np.tril(np.ones((size, size), dtype=bool))
    L_q = _non_negative_int(L_q, "L_q")
    L_k = _non_negative_int(L_k, "L_k")
    return np.tril(np.ones((L_q, L_k), dtype=bool), k=L_k - L_q)


def create_padding_mask(lengths: ArrayLike, max_len: int) -> NDArray[np.bool_]:
    """Boolean key-padding mask of shape ``(batch, 1, 1, max_len)``.

    Parameters
    ----------
    lengths : array_like of int, shape (batch,)
        Number of real (non-padding) tokens of each sequence; the padding
        comes after them. An empty sequence of lengths gives a mask for a
        batch of 0 sequences, shape ``(0, 1, 1, max_len)``.
    max_len : int
        Padded sequence length ``L_k``.

    Returns
    -------
    ndarray of bool, shape (batch, 1, 1, max_len)
        ``[b, 0, 0, j]`` is True when key ``j`` of sequence ``b`` is a real
        token. It broadcasts against scores ``(batch, heads, L_q, L_k)``; for
        scores without a heads axis, ``mask[:, 0]`` has shape ``(batch, 1, L_k)``.

    Taught in notebook 04 §6; notebook 03 §6 builds the ``(batch, 1, L_k)`` form by hand.
    """
    max_len = positive_int(max_len, "max_len")
    try:
        lengths = np.asarray(lengths)
    except (TypeError, ValueError) as err:
        raise TypeError(f"lengths must be a sequence of integers: {err}") from None
    if lengths.ndim != 1:
        raise ValueError(f"lengths must have shape (batch,), got shape {lengths.shape}")
    if lengths.size == 0:  # [] has no integer dtype of its own; a batch of no sequences
        lengths = lengths.astype(np.int64)
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    if (lengths < 0).any() or (lengths > max_len).any():
        raise ValueError(
            f"every length must lie in [0, max_len={max_len}], got {lengths.tolist()}"
        )
    keep = np.arange(max_len) < lengths[:, np.newaxis]  # (batch, max_len)
    return keep[:, np.newaxis, np.newaxis, :]
