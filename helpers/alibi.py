r"""ALiBi (Attention with Linear Biases): a per-head penalty that grows with distance.

Instead of adding position embeddings to the tokens, ALiBi adds a fixed bias to
the attention scores: head ``h`` (1-based, of ``H``) subtracts
:math:`m_h\,|i - j|` from the score of query ``i`` and key ``j``, with slope
:math:`m_h = 2^{-8h/H}`. Steep heads look locally, shallow heads look far.
The bias is an ordinary float mask, so :func:`helpers.attention` takes it as is.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from helpers._validate import positive_int
from helpers.masks import create_causal_mask


def alibi_slopes(num_heads: int) -> NDArray[np.float64]:
    r"""Slopes :math:`m_h = 2^{-8h/H}` for ``h = 1..H``, shape ``(num_heads,)``.

    For a power-of-two ``H`` these are the slopes of the ALiBi paper
    (``H = 8``: 1/2, 1/4, ..., 1/256). The paper treats other ``H`` by
    interleaving two such sequences; this course keeps the single formula.
    """
    num_heads = positive_int(num_heads, "num_heads")
    return 2.0 ** (-8.0 * np.arange(1, num_heads + 1) / num_heads)


def alibi_bias(seq_len: int, num_heads: int, *, causal: bool = False) -> NDArray[np.float64]:
    r"""ALiBi bias of shape ``(num_heads, seq_len, seq_len)``, to add to the scaled scores.

    Parameters
    ----------
    seq_len : int
        Number of positions ``L`` (queries and keys).
    num_heads : int
        Number of heads ``H``; head ``h`` uses slope ``alibi_slopes(H)[h]``.
    causal : bool
        If true, entries above the diagonal (keys in the future) are ``-inf``,
        so the bias is also a causal mask.

    Returns
    -------
    ndarray of float64, shape (num_heads, seq_len, seq_len)
        ``bias[h, i, j] = -m_h * |i - j|`` (0 on the diagonal, more negative
        with distance). It broadcasts over a leading batch axis of the scores
        ``(batch, num_heads, L, L)``.
    """
    seq_len = positive_int(seq_len, "seq_len")
    pos = np.arange(seq_len)
    distance = np.abs(pos[:, np.newaxis] - pos[np.newaxis, :])  # (L, L)
    # -distance is an integer array, so the diagonal is +0.0, not -0.0
    bias = alibi_slopes(num_heads)[:, np.newaxis, np.newaxis] * -distance  # (H, L, L)
    if causal:
        bias = np.where(create_causal_mask(seq_len), bias, -np.inf)  # future keys: -inf
    return bias
