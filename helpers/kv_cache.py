"""Autoregressive decoding with a key/value cache.

When a decoder generates text one token at a time, the keys and values of the
tokens already seen never change (causal attention never lets an earlier token
look at a later one). A :class:`KVCache` keeps them, so each new token costs one
projection of itself plus one row of attention, instead of recomputing the
whole prefix.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from helpers._validate import positive_int
from helpers.attention import (
    FloatArray,
    _check_tokens,
    attention,
    combine_heads,
    linear,
    split_heads,
)
from helpers.mha import MultiHeadAttention


class KVCache:
    """Keys and values of the tokens seen so far, split into heads.

    Attributes
    ----------
    keys, values : ndarray, shape (batch, h, t, d_k) or (h, t, d_k), or None while empty
        ``t`` is the number of cached tokens.
    """

    def __init__(self) -> None:
        self.keys: FloatArray | None = None
        self.values: FloatArray | None = None

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.shape[-2]

    def __repr__(self) -> str:
        shape = None if self.keys is None else self.keys.shape
        return f"KVCache(tokens={len(self)}, keys shape={shape})"

    def append(self, k_new: FloatArray, v_new: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Add the keys and values ``(..., h, t_new, d_k)`` of new tokens; return all of them."""
        if k_new.shape != v_new.shape:
            raise ValueError(
                f"new keys and values must have the same shape, got {k_new.shape} and {v_new.shape}"
            )
        if self.keys is None or self.values is None:
            self.keys, self.values = k_new, v_new
        else:
            if k_new.shape[:-2] != self.keys.shape[:-2] or k_new.shape[-1] != self.keys.shape[-1]:
                raise ValueError(
                    f"new keys of shape {k_new.shape} do not match the cache's "
                    f"{self.keys.shape} (..., h, t, d_k) outside the t axis"
                )
            self.keys = np.concatenate([self.keys, k_new], axis=-2)
            self.values = np.concatenate([self.values, v_new], axis=-2)
        return self.keys, self.values


def decode_step(
    layer: MultiHeadAttention, x_new: ArrayLike, cache: KVCache
) -> tuple[FloatArray, FloatArray]:
    """Self-attention output for new token(s), attending to the cache and to themselves.

    Parameters
    ----------
    layer : MultiHeadAttention
        Supplies the weights and biases.
    x_new : array_like, shape (batch, 1, d_model) or (1, d_model)
        The newest token of each sequence.
    cache : KVCache
        Keys and values of the earlier tokens; this token's are appended to it.

    Returns
    -------
    output : ndarray, shape of ``x_new``
        Equal to the last row of causal self-attention over the whole prefix.
    weights : ndarray, shape (batch, h, 1, t) or (h, 1, t)
        ``t = len(cache)`` after the append.
    """
    x_new = _check_tokens(x_new, "x_new", layer.d_model)
    if x_new.shape[-2] != 1:
        raise ValueError(
            f"x_new must hold one token, shape (batch, 1, {layer.d_model}); got {x_new.shape}"
        )
    L = layer
    q = split_heads(linear(x_new, L.W_q, L.b_q), layer.num_heads)  # (..., h, 1, d_k)
    k = split_heads(linear(x_new, L.W_k, L.b_k), layer.num_heads)  # (..., h, 1, d_k)
    v = split_heads(linear(x_new, L.W_v, L.b_v), layer.num_heads)  # (..., h, 1, d_k)
    K, V = cache.append(k, v)  # (..., h, t, d_k): no mask needed, the cache holds only the past
    heads, weights = attention(q, K, V)  # (..., h, 1, d_k), (..., h, 1, t)
    return linear(combine_heads(heads), L.W_o, L.b_o), weights  # (..., 1, d_model)


def decode_incrementally(layer: MultiHeadAttention, x: ArrayLike) -> FloatArray:
    """Run :func:`decode_step` over ``x`` one token at a time with a fresh cache.

    Parameters
    ----------
    x : array_like, shape (batch, L, d_model) or (L, d_model)

    Returns
    -------
    ndarray, shape of ``x``
        Equal to ``layer(x, mask=create_causal_mask(L))[0]`` up to rounding.
    """
    x = _check_tokens(x, "x", layer.d_model)
    cache = KVCache()
    rows = [decode_step(layer, x[..., t:t + 1, :], cache)[0] for t in range(x.shape[-2])]
    return np.concatenate(rows, axis=-2)


def decoding_macs(seq_len: int, d_model: int, *, cache: bool) -> int:
    r"""Multiply-adds of one attention layer generating ``seq_len`` tokens one by one.

    Step ``t`` (``t = 1 .. L``) with a cache projects the new token
    (:math:`4 d^2`: queries, keys, values, output) and attends over ``t`` keys
    (:math:`2 t d`: scores and weighted sum, all heads together). Without a
    cache it reruns the layer on the ``t``-token prefix
    (:math:`4 t d^2 + 2 t^2 d`). Summed over the steps:

    * with cache: :math:`4 L d^2 + d L (L + 1)`
    * without: :math:`2 d^2 L (L + 1) + d L (L + 1)(2L + 1) / 3`

    Softmax, scaling and biases are not counted.
    """
    L = positive_int(seq_len, "seq_len")
    d = positive_int(d_model, "d_model")
    if cache:
        return 4 * L * d * d + d * L * (L + 1)
    return 2 * d * d * L * (L + 1) + d * L * (L + 1) * (2 * L + 1) // 3
