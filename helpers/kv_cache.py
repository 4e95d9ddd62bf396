"""Autoregressive decoding with a key/value cache (notebook 05, section 6).

When a decoder generates text one token at a time, the keys and values of the
tokens already seen never change (causal attention never lets an earlier token
look at a later one). A :class:`KVCache` keeps them, so each new token costs one
projection of itself plus one row of attention, instead of recomputing the
whole prefix.

Several new tokens may enter at once (*chunked prefill*: a prompt fed a few
tokens at a time). They sit at the **end** of the keys, so their causal mask is
bottom-right aligned, :func:`helpers.create_causal_mask(L_new, L_total)
<helpers.create_causal_mask>`: new token ``i`` sees every cached token and the
new tokens up to itself.
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import ArrayLike

from helpers._validate import positive_int
from helpers.attention import FloatArray, attention, combine_heads, split_heads
from helpers.masks import create_causal_mask
from helpers.mha import MultiHeadAttention
from helpers.mha.inputs import check_tokens
from helpers.rope import apply_rope

__all__ = ["KVCache", "decode_incrementally", "decode_step", "decoding_macs"]


class KVCache:
    """Keys and values of the tokens seen so far, split into heads.

    They live in preallocated arrays whose capacity doubles when full, so
    appending ``t_new`` tokens copies ``O(t_new)`` numbers (amortised) however
    long the cache already is; growing by concatenation would copy the whole
    cache on every step. :meth:`append` copies what it is given: later changes
    to the caller's arrays never reach the cache.

    Attributes
    ----------
    keys, values : ndarray, shape (batch, h, t, d_k) or (h, t, d_k), or None before any append
        Read-only views of the ``t`` cached tokens (the storage grows behind them).
    """

    def __init__(self) -> None:
        self._k: FloatArray | None = None  # (..., h, capacity, d_k)
        self._v: FloatArray | None = None
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        shape = None if self._k is None else self.keys.shape
        capacity = 0 if self._k is None else self._k.shape[-2]
        return f"KVCache(tokens={len(self)}, keys shape={shape}, capacity={capacity})"

    @property
    def keys(self) -> FloatArray | None:
        return None if self._k is None else _read_only(self._k[..., :self._len, :])

    @property
    def values(self) -> FloatArray | None:
        return None if self._v is None else _read_only(self._v[..., :self._len, :])

    def append(self, k_new: FloatArray, v_new: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Copy the keys and values ``(..., h, t_new, d_k)`` of new tokens in; return all of them.

        Raises
        ------
        TypeError
            If ``k_new`` or ``v_new`` is not a floating NumPy array.
        ValueError
            If they have fewer than 3 axes ``(h, t, d_k)``, different shapes or
            dtypes, or do not match the cached tokens outside the ``t`` axis.
        """
        for name, a in (("k_new", k_new), ("v_new", v_new)):
            if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
                what = type(a).__name__ if not isinstance(a, np.ndarray) else f"dtype {a.dtype}"
                raise TypeError(
                    f"{name} must be a floating NumPy array (..., h, t_new, d_k), got {what}"
                )
            if a.ndim < 3:
                raise ValueError(
                    f"{name} must have shape (batch, h, t_new, d_k) or (h, t_new, d_k), "
                    f"got shape {a.shape}"
                )
        if k_new.shape != v_new.shape or k_new.dtype != v_new.dtype:
            raise ValueError(
                f"new keys and values must have the same shape and dtype, got {k_new.shape} "
                f"{k_new.dtype} and {v_new.shape} {v_new.dtype}"
            )
        t_new = k_new.shape[-2]
        if self._k is None or self._v is None:
            capacity = max(16, t_new)
            shape = (*k_new.shape[:-2], capacity, k_new.shape[-1])
            self._k, self._v = np.empty(shape, k_new.dtype), np.empty(shape, k_new.dtype)
        elif (k_new.shape[:-2] != self._k.shape[:-2] or k_new.shape[-1] != self._k.shape[-1]
              or k_new.dtype != self._k.dtype):
            raise ValueError(
                f"new keys of shape {k_new.shape} and dtype {k_new.dtype} do not match the "
                f"cache's {self.keys.shape} {self._k.dtype} (..., h, t, d_k) outside the t axis"
            )
        end = self._len + t_new
        if end > self._k.shape[-2]:  # full: double the capacity (at least what is needed)
            capacity = max(end, 2 * self._k.shape[-2])
            self._k = _grown(self._k, self._len, capacity)
            self._v = _grown(self._v, self._len, capacity)
        self._k[..., self._len:end, :] = k_new
        self._v[..., self._len:end, :] = v_new
        self._len = end
        return self.keys, self.values


def _grown(buffer: FloatArray, used: int, capacity: int) -> FloatArray:
    new = np.empty((*buffer.shape[:-2], capacity, buffer.shape[-1]), buffer.dtype)
    new[..., :used, :] = buffer[..., :used, :]
    return new


def _read_only(view: FloatArray) -> FloatArray:
    view.flags.writeable = False
    return view


def decode_step(
    layer: MultiHeadAttention, x_new: ArrayLike, cache: KVCache
) -> tuple[FloatArray, FloatArray]:
    """Causal self-attention output for new tokens, attending to the cache and to themselves.

    Parameters
    ----------
    layer : MultiHeadAttention
        Supplies the weights and biases (and ``rope_base``); it must be a
        self-attention layer (``kdim = vdim = d_model``) in evaluation mode if
        it has dropout.
    x_new : array_like, shape (batch, L_new, d_model) or (L_new, d_model)
        The next ``L_new >= 0`` tokens of each sequence: one when generating,
        several for a chunk of a prompt.
    cache : KVCache
        Keys and values of the ``t`` earlier tokens; these tokens' are appended.

    Returns
    -------
    output : ndarray, shape of ``x_new``
        Equal to rows ``t .. t + L_new - 1`` of causal self-attention over the
        whole sequence (the new tokens are at positions ``t, t+1, ...``: that is
        where RoPE rotates their queries and keys).
    weights : ndarray, shape (batch, h, L_new, t + L_new) or (h, L_new, t + L_new)
        With the bottom-right causal mask ``create_causal_mask(L_new, t + L_new)``.
    """
    if not isinstance(layer, MultiHeadAttention):
        raise TypeError(f"layer must be a MultiHeadAttention, got {type(layer).__name__}")
    if not layer.kdim == layer.vdim == layer.d_model:
        raise ValueError(f"decoding is self-attention: the layer needs kdim = vdim = d_model, "
                         f"got kdim={layer.kdim}, vdim={layer.vdim}, d_model={layer.d_model}")
    if layer.training and layer.dropout > 0:
        raise ValueError(
            f"the layer is in training mode with dropout={layer.dropout}: decoding would drop "
            "attention weights at random; call layer.eval() first"
        )
    x_new = check_tokens(layer, x_new, "x_new", "d_model")
    p = layer._checked_params()
    h, t0, L_new = layer.num_heads, len(cache), x_new.shape[-2]
    q = split_heads(_linear(x_new, p["W_q"], p["b_q"]), h)  # (..., h, L_new, d_k)
    k = split_heads(_linear(x_new, p["W_k"], p["b_k"]), h)
    v = split_heads(_linear(x_new, p["W_v"], p["b_v"]), h)
    if layer.rope_base is not None:  # absolute positions t0 .. t0 + L_new - 1
        positions = np.arange(t0, t0 + L_new)
        q, k = apply_rope(q, positions, layer.rope_base), apply_rope(k, positions, layer.rope_base)
    K, V = cache.append(np.ascontiguousarray(k), np.ascontiguousarray(v))  # (..., h, t, d_k)
    # One new token sees every cached key: its mask would be all True.
    mask = None if L_new <= 1 else create_causal_mask(L_new, t0 + L_new)
    heads, weights = attention(q, K, V, mask)  # (..., h, L_new, d_k), (..., h, L_new, t)
    return _linear(combine_heads(heads), p["W_o"], p["b_o"]), weights  # (..., L_new, d_model)


def _linear(x: FloatArray, W: FloatArray, b: FloatArray | None) -> FloatArray:
    y = x @ W
    return y if b is None else y + b


def decode_incrementally(
    layer: MultiHeadAttention, x: ArrayLike, chunks: list[int] | None = None
) -> FloatArray:
    """Run :func:`decode_step` over ``x`` with a fresh cache, one token or one chunk at a time.

    Parameters
    ----------
    x : array_like, shape (batch, L, d_model) or (L, d_model)
    chunks : list of int, optional
        Sizes of the consecutive pieces fed to :func:`decode_step` (summing to
        ``L``; e.g. ``[3, 1, 4]``); default one token at a time.

    Returns
    -------
    ndarray, shape of ``x``
        Equal to ``layer(x, mask=create_causal_mask(L))[0]`` up to rounding.
    """
    x = check_tokens(layer, x, "x", "d_model")
    L = x.shape[-2]
    chunks = [1] * L if chunks is None else [int(c) for c in chunks]
    if any(c < 0 for c in chunks) or sum(chunks) != L:
        raise ValueError(f"chunks must be non-negative sizes summing to L={L}, got {chunks}")
    cache = KVCache()
    starts = np.cumsum([0, *chunks]).tolist()
    rows = [decode_step(layer, x[..., a:b, :], cache)[0] for a, b in itertools.pairwise(starts)]
    return np.concatenate(rows, axis=-2) if rows else np.empty_like(x)


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
