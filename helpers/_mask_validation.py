"""The one mask validator behind every attention entry point.

A mask is one of two kinds (the convention of PyTorch's
``scaled_dot_product_attention``):

* **boolean** -- ``True`` where a query *may attend* to a key;
* **floating** -- *added* to the scaled scores; it may hold finite values and
  ``-inf`` (which removes a key), never NaN or ``+inf``. It is cast to the
  scores' dtype.

Anything else is rejected with a ``TypeError``. Integer masks in particular:
a 0/1 integer mask (the ``attention_mask`` convention of some libraries) would
be *added* to the scores as 0 or 1 and hide nothing.

Single-head attention broadcasts the mask against its scores ``(..., L_q, L_k)``.
Multi-head attention accepts a stricter set of shapes, so that a per-sequence
mask can never be read as a per-head one (:func:`check_multihead_mask`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from helpers._validate import FloatArray


def mask_array(mask: ArrayLike, name: str = "mask") -> np.ndarray:
    """``mask`` as a boolean or floating array; ``TypeError`` for every other dtype."""
    try:
        m = np.asarray(mask)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a boolean or floating array: {err}") from None
    if m.dtype.kind in "iu":
        raise TypeError(
            f"{name} must be boolean (True = may attend) or floating (added to the scores), "
            f"got {m.dtype}: an integer 0/1 mask would be added to the scores and hide nothing; "
            f"use {name}.astype(bool) if 1 means keep"
        )
    if m.dtype.kind not in "bf":
        raise TypeError(
            f"{name} must be boolean (True = may attend) or floating (added to the scores), "
            f"got dtype {m.dtype}"
        )
    return m


def check_mask(
    mask: ArrayLike,
    scores_shape: tuple[int, ...],
    dtype: np.dtype | type | None = None,
    *,
    name: str = "mask",
) -> np.ndarray:
    """Validate a mask against the scores' shape; return it as a bool or float array.

    Parameters
    ----------
    mask : array_like, boolean or floating, broadcastable to ``scores_shape``
    scores_shape : tuple of int, ``(..., L_q, L_k)``
    dtype : numpy floating dtype, optional
        The scores' dtype: a float mask is cast to it (NaN- and overflow-checked).

    Raises
    ------
    TypeError
        If the mask is neither boolean nor floating (an integer mask, for instance).
    ValueError
        If it does not broadcast to the scores, or a float mask holds NaN or +inf.
    """
    m = mask_array(mask, name)
    try:
        broadcast = np.broadcast_shapes(m.shape, tuple(scores_shape))
    except ValueError:
        broadcast = None
    if broadcast != tuple(scores_shape):
        raise ValueError(
            f"{name} of shape {m.shape} does not broadcast to the scores' shape "
            f"{tuple(scores_shape)} (..., L_q, L_k)"
        )
    if m.dtype.kind == "b":
        return m
    if np.isnan(m).any() or np.isposinf(m).any():
        raise ValueError("a float mask may hold finite values and -inf, not NaN or +inf")
    if dtype is not None and m.dtype != dtype:
        with np.errstate(over="ignore"):  # -1e300 becomes -inf in float32: still "removed"
            m = m.astype(dtype)
        if np.isposinf(m).any():
            raise ValueError(
                f"a float mask's values exceed the range of the scores' dtype {np.dtype(dtype)}"
            )
    return m


def apply_mask(scores: FloatArray, mask: np.ndarray) -> FloatArray:
    """Return ``scores`` with a checked ``mask`` applied (boolean: keep where True; float: add)."""
    if mask.dtype.kind == "b":
        return np.where(mask, scores, -np.inf).astype(scores.dtype, copy=False)
    # Cast the float mask to the scores' dtype first: float32 + float64 would promote.
    with np.errstate(over="ignore"):  # a sum beyond the range is +inf: softmax reports it
        return scores + mask.astype(scores.dtype, copy=False)


def check_multihead_mask(
    mask: ArrayLike,
    *,
    batched: bool,
    batch: int,
    num_heads: int,
    L_q: int,
    L_k: int,
    dtype: np.dtype | type | None = None,
    name: str = "mask",
) -> np.ndarray:
    """Validate the mask of a multi-head attention call (scores ``(B, h, L_q, L_k)``).

    Accepted shapes, each axis either its full size or 1:

    * batched tokens ``(B, L, d)``: ``(L_q, L_k)`` (the same mask everywhere) or
      4-D ``(B, h, L_q, L_k)``. A 3-D mask is rejected: ``(B, L_q, L_k)`` (one
      mask per sequence) and ``(h, L_q, L_k)`` (one per head) would both
      broadcast when ``B == h``, with different meanings.
    * unbatched tokens ``(L, d)``: ``(L_q, L_k)`` or ``(h, L_q, L_k)``.

    Returns the mask as from :func:`check_mask`.
    """
    m = mask_array(mask, name)
    scores_shape = (batch, num_heads, L_q, L_k) if batched else (num_heads, L_q, L_k)
    if batched and m.ndim == 3:
        raise ValueError(
            f"a 3-D {name} of shape {m.shape} is ambiguous for multi-head attention with scores "
            f"{scores_shape} (batch, heads, L_q, L_k): for one mask per sequence (batch, L_q, "
            f"L_k) write {name}[:, None]; for one mask per head (heads, L_q, L_k) write "
            f"{name}[None]. (PyTorch's nn.MultiheadAttention reads a 3-D mask as "
            f"(batch * heads, L_q, L_k): that one is {name}.reshape({batch}, {num_heads}, "
            f"{L_q}, {L_k}).)"
        )
    allowed = (2, 4) if batched else (2, 3)
    if m.ndim not in allowed:
        doc = ("(L_q, L_k) or (batch, heads, L_q, L_k)" if batched
               else "(L_q, L_k) or (heads, L_q, L_k)")
        raise ValueError(
            f"{name} must have shape {doc}, each axis of full size or 1, for scores "
            f"{scores_shape}; got shape {m.shape} ({m.ndim}-D)"
        )
    return check_mask(m, scores_shape, dtype, name=name)


def top_left_causal_mask(L_q: int, L_k: int) -> np.ndarray:
    """``is_causal``'s mask, top-left aligned as in PyTorch: ``[i, j]`` True iff ``j <= i``."""
    return np.tril(np.ones((L_q, L_k), dtype=bool))
