"""Grouped-query and multi-query attention, and the size of a key/value cache.

In grouped-query attention (GQA) the ``h`` query heads share ``h_kv`` key/value
heads: ``h / h_kv`` consecutive query heads form a group that reads the same
keys and values. ``h_kv == h`` is ordinary multi-head attention; ``h_kv == 1``
is multi-query attention (MQA). Query head ``i`` uses key/value head
``i // (h / h_kv)``, the order of PyTorch's
``scaled_dot_product_attention(..., enable_gqa=True)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from helpers._mask_validation import check_multihead_mask
from helpers._validate import (
    FloatArray,
    as_float_array,
    as_float_arrays,
    positive_int,
    require_finite,
    require_ndim,
)
from helpers.attention import attention
from helpers.heads import combine_heads, split_heads


def repeat_kv(x: ArrayLike, num_groups: int) -> FloatArray:
    """Repeat each key/value head for its group: ``(..., h_kv, L, d_k) -> (..., h_kv * g, L, d_k)``.

    Head ``j`` of the input becomes heads ``j * g, ..., j * g + g - 1`` of the
    output (``np.repeat``, not ``np.tile``), so query head ``i`` meets key/value
    head ``i // g``.

    Parameters
    ----------
    x : array_like, shape (..., h_kv, L, d_k)
        Keys or values split into heads.
    num_groups : int
        ``g = h / h_kv``, the number of query heads that share one key/value head.

    Returns
    -------
    ndarray, shape (..., h_kv * g, L, d_k)
    """
    x = as_float_array(x, "x")
    num_groups = positive_int(num_groups, "num_groups")
    require_ndim(x, "x", "(..., h_kv, L, d_k)", min_ndim=3)
    return np.repeat(x, num_groups, axis=-3)


def grouped_query_attention(
    x: ArrayLike,
    W_q: ArrayLike,
    W_k: ArrayLike,
    W_v: ArrayLike,
    W_o: ArrayLike,
    num_heads: int,
    num_kv_heads: int,
    mask: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Grouped-query self-attention with ``x @ W`` projections and no biases.

    Parameters
    ----------
    x : array_like, shape (batch, seq, d_model) or (seq, d_model)
        Token embeddings.
    W_q, W_o : array_like, shape (d_model, d_model)
        Query and output projections, as in multi-head attention.
    W_k, W_v : array_like, shape (d_model, num_kv_heads * d_k)
        Key and value projections, narrower by ``num_heads / num_kv_heads``;
        ``d_k = d_model // num_heads``.
    num_heads : int
        Number of query heads ``h``; must divide ``d_model``.
    num_kv_heads : int
        Number of key/value heads ``h_kv``; must divide ``num_heads``.
    mask : array_like, optional
        As in :func:`helpers.multi_head_attention`: boolean (True = may attend)
        or float (added to the scores), of shape ``(seq, seq)`` or
        ``(batch, h, seq, seq)`` (each axis full or 1), or ``(h, seq, seq)``
        for 2-D ``x``; a 3-D mask with batched ``x`` is rejected as ambiguous.

    Returns
    -------
    output : ndarray, shape of ``x``
    weights : ndarray, shape (batch, h, seq, seq), or (h, seq, seq) for 2-D ``x``

    Raises
    ------
    ValueError
        If a head count does not divide what it must, a weight has the wrong
        shape, an input holds NaN or infinity, a projection or the scores
        overflow, or the mask has the wrong shape.
    TypeError
        If the inputs' dtypes differ, or the mask is neither boolean nor floating.
    """
    arrays = as_float_arrays(x=x, W_q=W_q, W_k=W_k, W_v=W_v, W_o=W_o)
    x = arrays["x"]
    require_ndim(x, "x", "(batch, seq, d_model) or (seq, d_model)", min_ndim=2, max_ndim=3)
    num_heads = positive_int(num_heads, "num_heads")
    num_kv_heads = positive_int(num_kv_heads, "num_kv_heads")
    d_model = x.shape[-1]
    if d_model == 0:
        raise ValueError(f"x has d_model = 0 features (shape {x.shape}): d_k must be >= 1")
    if d_model % num_heads:
        raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
    if num_heads % num_kv_heads:
        raise ValueError(
            f"num_heads={num_heads} is not divisible by num_kv_heads={num_kv_heads}"
        )
    d_k = d_model // num_heads
    shapes = {
        "W_q": (d_model, d_model),
        "W_k": (d_model, num_kv_heads * d_k),
        "W_v": (d_model, num_kv_heads * d_k),
        "W_o": (d_model, d_model),
    }
    W = {name: arrays[name] for name in shapes}
    for name, shape in shapes.items():
        if W[name].shape != shape:
            raise ValueError(
                f"{name} must have shape {shape} for d_model={d_model}, "
                f"num_heads={num_heads}, num_kv_heads={num_kv_heads}; got {W[name].shape}"
            )
    for name, arr in arrays.items():
        require_finite(arr, name)
    if mask is not None:
        batched = x.ndim == 3
        mask = check_multihead_mask(mask, batched=batched, batch=x.shape[0] if batched else 1,
                                    num_heads=num_heads, L_q=x.shape[-2], L_k=x.shape[-2],
                                    dtype=x.dtype)
    group = num_heads // num_kv_heads
    with np.errstate(over="ignore", invalid="ignore"):
        projected = {name: x @ W[name] for name in ("W_q", "W_k", "W_v")}
    for name, arr in projected.items():
        if not np.isfinite(arr).all():
            raise ValueError(f"the projection x @ {name} overflows {arr.dtype}: it is not "
                             "finite; scale the inputs down or compute in float64")
    Q = split_heads(projected["W_q"], num_heads)  # (..., h, seq, d_k)
    K = split_heads(projected["W_k"], num_kv_heads)  # (..., h_kv, seq, d_k)
    V = split_heads(projected["W_v"], num_kv_heads)  # (..., h_kv, seq, d_k)
    heads, weights = attention(Q, repeat_kv(K, group), repeat_kv(V, group), mask)
    with np.errstate(over="ignore", invalid="ignore"):
        out = combine_heads(heads) @ W["W_o"]  # (..., seq, d_model)
    if not np.isfinite(out).all():
        raise ValueError(f"the output projection overflows {out.dtype}: it is not finite; "
                         "scale the inputs down or compute in float64")
    return out, weights  # (..., seq, d_model), (..., h, seq, seq)


def kv_cache_bytes(
    num_layers: int,
    num_kv_heads: int,
    d_k: int,
    seq_len: int,
    *,
    batch: int = 1,
    bytes_per_value: int = 2,
) -> int:
    """Memory of a key/value cache: ``2 * layers * h_kv * d_k * seq_len * batch * bytes``.

    The factor 2 counts keys and values. ``bytes_per_value`` is 2 for
    float16/bfloat16, 4 for float32.
    """
    values = [
        positive_int(v, n)
        for v, n in (
            (num_layers, "num_layers"), (num_kv_heads, "num_kv_heads"), (d_k, "d_k"),
            (seq_len, "seq_len"), (batch, "batch"), (bytes_per_value, "bytes_per_value"),
        )
    ]
    total = 2
    for v in values:
        total *= v
    return total
