r"""ALiBi (Attention with Linear Biases, Press et al. 2022): a per-head distance penalty.

Instead of adding position embeddings to the tokens, ALiBi adds a fixed bias to
the attention scores. The published form is **causal**: head ``h`` (1-based, of
``H``) adds :math:`-m_h\,(i - j)` to the score of query ``i`` and key ``j <= i``,
and future keys are masked. The symmetric form :math:`-m_h\,|i - j|` is a
variant for bidirectional encoders. Steep heads (large :math:`m_h`) look
locally, shallow heads look far. The bias is an ordinary float mask, so
:func:`helpers.attention` takes it as is.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from helpers._validate import check_bool, positive_int
from helpers.masks import create_causal_mask


def _power_of_two_slopes(n: int) -> NDArray[np.float64]:
    # m_h = 2^(-8h/n), h = 1..n: a geometric sequence from 2^(-8/n) down to 2^-8
    return 2.0 ** (-8.0 * np.arange(1, n + 1) / n)


def alibi_slopes(num_heads: int) -> NDArray[np.float64]:
    r"""The ALiBi slope of every head, shape ``(num_heads,)``, by the rule of Press et al.

    For ``H`` a power of two, :math:`m_h = 2^{-8h/H}`, ``h = 1..H`` (``H = 8``:
    1/2, 1/4, ..., 1/256). For any other ``H`` the reference code takes the
    ``n`` slopes of the largest power of two ``n < H`` and appends every other
    slope (the 1st, 3rd, ...) of the ``2n``-slope sequence until there are ``H``
    (``H = 6``: :math:`2^{-2}, 2^{-4}, 2^{-6}, 2^{-8}` then :math:`2^{-1}, 2^{-3}`).
    The result is not sorted then; every slope lies in :math:`(0, 1)`.
    """
    num_heads = positive_int(num_heads, "num_heads")
    n = 1 << (num_heads.bit_length() - 1)  # largest power of two <= num_heads
    if n == num_heads:
        return _power_of_two_slopes(n)
    extra = alibi_slopes(2 * n)[0::2][: num_heads - n]
    return np.concatenate([_power_of_two_slopes(n), extra])


def alibi_bias(seq_len: int, num_heads: int, *, causal: bool = False) -> NDArray[np.float64]:
    r"""ALiBi bias of shape ``(num_heads, seq_len, seq_len)``, to add to the scaled scores.

    Parameters
    ----------
    seq_len : int
        Number of positions ``L`` (queries and keys).
    num_heads : int
        Number of heads ``H``; head ``h`` uses slope ``alibi_slopes(H)[h]``.
    causal : bool
        True: the published (decoder) form, ``-m_h (i - j)`` for ``j <= i`` and
        ``-inf`` above the diagonal, so the bias is also the causal mask.
        False (default): the symmetric variant ``-m_h |i - j|`` for
        bidirectional attention.

    Returns
    -------
    ndarray of float64, shape (num_heads, seq_len, seq_len)
        0 on the diagonal, more negative with distance. It broadcasts over a
        leading batch axis of the scores ``(batch, num_heads, L, L)``.
    """
    seq_len = positive_int(seq_len, "seq_len")
    causal = check_bool(causal, "causal")
    pos = np.arange(seq_len)
    distance = np.abs(pos[:, np.newaxis] - pos[np.newaxis, :])  # (L, L)
    # -distance is an integer array, so the diagonal is +0.0, not -0.0
    bias = alibi_slopes(num_heads)[:, np.newaxis, np.newaxis] * -distance  # (H, L, L)
    if causal:
        bias = np.where(create_causal_mask(seq_len), bias, -np.inf)  # future keys: -inf
    return bias
