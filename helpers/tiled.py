r"""Tiled attention: the FlashAttention idea in NumPy.

Dense attention builds the whole ``(L_q, L_k)`` score matrix, so its memory
grows as ``L²``: at ``L = 16384`` one float32 head needs 1 GiB for the weights
alone. :func:`tiled_attention` gives the same output while only ever holding one
``(block_q, block_k)`` tile of scores. It walks over the keys block by block and
keeps, for every query row, three running quantities (the *online softmax*):

* ``m`` -- the largest score seen so far, shape ``(..., block_q, 1)``;
* ``l`` -- the sum of ``exp(score - m)`` seen so far, shape ``(..., block_q, 1)``;
* ``acc`` -- the sum of ``exp(score - m) * v`` seen so far, shape ``(..., block_q, d_v)``.

When a new key block raises the maximum from ``m`` to ``m'``, the old ``l`` and
``acc`` were computed relative to the old ``m``; multiplying both by
``exp(m - m')`` re-expresses them relative to ``m'``. After the last block,
``acc / l`` is exactly ``softmax(Q K^T / sqrt(d_k)) V``:

.. math::

    m' = \max(m, \max_j s_j), \qquad
    l' = e^{m - m'}\, l + \sum_j e^{s_j - m'}, \qquad
    acc' = e^{m - m'}\, acc + \sum_j e^{s_j - m'}\, v_j .

The attention weights themselves are never formed, so the function returns only
the output.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from helpers._validate import (
    FloatArray,
    abs_max,
    check_bool,
    check_qkv,
    check_scale,
    positive_int,
    products_may_overflow,
    scores_overflow_error,
)

DEFAULT_BLOCK_SIZE = (256, 512)
"""Default ``(block_q, block_k)``: one float32 score tile is 512 KiB, big enough
for fast matrix products, small enough to stay in the CPU's cache."""


def _block_sizes(block_size: int | tuple[int, int]) -> tuple[int, int]:
    """Return ``(block_q, block_k)`` from an int (both the same) or a pair."""
    if isinstance(block_size, tuple):
        if len(block_size) != 2:
            raise ValueError(
                f"block_size must be an int or a pair (block_q, block_k), got {block_size!r}"
            )
        return positive_int(block_size[0], "block_q"), positive_int(block_size[1], "block_k")
    size = positive_int(block_size, "block_size")
    return size, size


def tiled_attention(
    Q: ArrayLike,
    K: ArrayLike,
    V: ArrayLike,
    *,
    scale: float | None = None,
    is_causal: bool = False,
    causal: bool = False,
    block_size: int | tuple[int, int] = DEFAULT_BLOCK_SIZE,
) -> FloatArray:
    r"""Scaled dot-product attention computed tile by tile with an online softmax.

    Returns the same output as ``attention(Q, K, V, scale=scale,
    is_causal=is_causal)[0]``, but its memory grows as ``L_q + L_k`` instead
    of ``L_q · L_k``: besides the inputs and the output it holds one
    ``(..., block_q, block_k)`` score tile and ``(..., block_q, d_v)`` running sums.
    It accepts and rejects what :func:`helpers.attention` does (it takes no mask).

    Parameters
    ----------
    Q : array_like, shape (..., L_q, d_k) or (d_k,)
        Queries. A 1-D ``Q`` is a single query; the output then loses the
        ``L_q`` axis.
    K : array_like, shape (..., L_k, d_k)
        Keys. ``L_k = 0`` gives a zero output (nothing to attend to).
    V : array_like, shape (..., L_k, d_v)
        Values; ``d_v`` may differ from ``d_k``. The leading axes of Q, K and V
        broadcast together, as in :func:`helpers.attention`.
    scale : float, keyword-only, optional
        Factor applied to ``Q K^T``; ``None`` means ``1 / sqrt(d_k)``.
    is_causal : bool, keyword-only
        If True, query ``i`` attends only to keys ``j <= i`` (*top-left*
        alignment, PyTorch's ``scaled_dot_product_attention(is_causal=True)``).
        For ``L_q > L_k`` the queries ``i >= L_k`` see every key; for
        ``L_q < L_k`` the keys after ``L_q - 1`` are seen by nobody. Key blocks
        that lie entirely in a query block's future are skipped; blocks that
        straddle the diagonal are masked tile-sized, never with an ``L × L``
        array. Every query sees at least key 0, so no row is empty.
    causal : bool, keyword-only
        The older name of ``is_causal``; either one set to True makes the
        attention causal.
    block_size : int or (int, int), keyword-only
        Tile size ``(block_q, block_k)``; an int sets both. The last blocks may
        be shorter. The result does not depend on it beyond rounding.

    Returns
    -------
    ndarray, shape (..., L_q, d_v) (``(..., d_v)`` for 1-D ``Q``)
        The attention output only; the weights are never materialised. It has
        the inputs' dtype, computed in that dtype throughout (float32 is never
        promoted). Q, K and V must share one dtype, as in :func:`helpers.attention`.

    Raises
    ------
    ValueError
        If the feature sizes of Q and K differ or are 0, K and V have different
        lengths, the leading axes do not broadcast, Q, K or V hold NaN or
        infinity, the scores overflow, or ``block_size`` is not positive.
    TypeError
        If an input is not numeric, the dtypes differ, ``scale`` is not a real
        number, ``causal``/``is_causal`` is not a bool, or ``block_size`` is not
        an integer.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q, K, V = (rng.standard_normal((2, 100, 8)) for _ in range(3))
    >>> from helpers import attention
    >>> dense, _ = attention(Q, K, V, is_causal=True)
    >>> bool(np.allclose(tiled_attention(Q, K, V, is_causal=True, block_size=32), dense))
    True

    Taught in notebook 06 §8.
    """
    causal = check_bool(is_causal, "is_causal") | check_bool(causal, "causal")
    block_q, block_k = _block_sizes(block_size)
    Q, K, V, batch, single_query = check_qkv(Q, K, V)  # the checks and messages of attention
    L_q, d_k = Q.shape[-2:]
    L_k, d_v = V.shape[-2:]
    dtype = Q.dtype  # Q, K and V share it
    s = check_scale(scale, d_k)
    out = np.zeros((*batch, L_q, d_v), dtype=dtype)  # (..., L_q, d_v); stays 0 when L_k = 0
    if L_k == 0 or out.size == 0:
        return out[..., 0, :] if single_query else out
    q_max, k_max = abs_max(Q), abs_max(K)
    check_tiles = products_may_overflow(q_max, k_max, d_k, s, dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        _tiles_into(out, Q, K, V, s, causal, block_q, block_k, check_tiles, (q_max, k_max))
    return out[..., 0, :] if single_query else out


def _tiles_into(out: FloatArray, Q: FloatArray, K: FloatArray, V: FloatArray, s: float,
                causal: bool, block_q: int, block_k: int, check_tiles: bool,
                maxima: tuple[float, float]) -> None:
    """The online-softmax loop over ``(block_q, block_k)`` tiles, writing ``out``."""
    batch = out.shape[:-2]
    L_q, d_v = out.shape[-2:]
    L_k = K.shape[-2]
    dtype = out.dtype
    # Scale the queries once (O(L_q d_k)) rather than every tile; a Python float keeps float32.
    Q = Q * s  # (..., L_q, d_k)
    K_T = np.swapaxes(K, -1, -2)  # (..., d_k, L_k), a view
    for q0 in range(0, L_q, block_q):
        q1 = min(q0 + block_q, L_q)
        Q_blk = Q[..., q0:q1, :]  # (..., bq, d_k)
        m = np.full((*batch, q1 - q0, 1), -np.inf, dtype=dtype)  # running max
        l = np.zeros((*batch, q1 - q0, 1), dtype=dtype)  # running sum of exp
        acc = np.zeros((*batch, q1 - q0, d_v), dtype=dtype)  # running sum of exp * v
        # Causal: keys k >= q1 are in the future of every query of this block.
        k_stop = min(L_k, q1) if causal else L_k
        for k0 in range(0, k_stop, block_k):
            k1 = min(k0 + block_k, k_stop)
            s_tile = Q_blk @ K_T[..., :, k0:k1]  # (..., bq, bk) scaled scores
            if check_tiles and not np.isfinite(s_tile).all():
                raise scores_overflow_error(dtype, "Q and K", *maxima)
            if causal and k1 - 1 > q0:
                # The tile straddles the diagonal: hide key j from query i when j > i.
                future = np.arange(k0, k1) > np.arange(q0, q1)[:, np.newaxis]  # (bq, bk)
                np.copyto(s_tile, -np.inf, where=future)  # broadcasts over the leading axes
            # Key 0 lies in the first tile and is visible to all queries, so m is
            # finite from the first tile on and s - m_new never computes -inf - -inf.
            m_new = np.maximum(m, s_tile.max(axis=-1, keepdims=True))  # (..., bq, 1)
            s_tile -= m_new
            p = np.exp(s_tile, out=s_tile)  # (..., bq, bk), in place: exp(s - m_new)
            rescale = np.exp(m - m_new)  # (..., bq, 1); exp(-inf) = 0 on the first tile
            l *= rescale
            l += p.sum(axis=-1, keepdims=True)
            acc *= rescale
            acc += p @ V[..., k0:k1, :]  # (..., bq, d_v)
            m = m_new
        np.divide(acc, l, out=out[..., q0:q1, :])
