"""Checks of the token arguments of :class:`~helpers.MultiHeadAttention` (notebook 05).

Every call gets a clear ``ValueError``/``TypeError`` naming the argument and the
expected and actual shapes or dtypes, before any work is done.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from helpers._validate import FloatArray, as_float_array, require_ndim

__all__ = ["check_call", "check_d_out", "check_rope_base", "check_tokens"]


def check_tokens(layer: Any, x: ArrayLike, name: str, width_name: str) -> FloatArray:
    """Check one token argument: 2-D or 3-D, ``layer.<width_name>`` features, the layer's dtype,
    finite. Integers and lists are read as float64 (so they suit a float64 layer only)."""
    width = getattr(layer, width_name)
    arr = as_float_array(x, name)
    require_ndim(arr, name, f"(batch, L, {width}) or (L, {width})", min_ndim=2, max_ndim=3)
    if arr.shape[-1] != width:
        raise ValueError(
            f"{name} must have {width_name}={width} features, shape (batch, L, {width}) or "
            f"(L, {width}); got shape {arr.shape}"
        )
    if arr.dtype != layer.dtype:
        raise TypeError(
            f"{name} has dtype {arr.dtype.name} but the layer is {layer.dtype.name}: convert "
            f"with .astype(np.{layer.dtype.name}) (integers and lists count as float64)"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} (shape {arr.shape}) contains NaN or infinity")
    return arr


def check_call(
    layer: Any, query: ArrayLike, key: ArrayLike | None, value: ArrayLike | None
) -> tuple[str, FloatArray, FloatArray, FloatArray]:
    """Check the token arguments of ``layer(query, key, value)``.

    Returns ``kind`` (``"self"`` for ``layer(x)``, ``"kv"`` for ``layer(q, kv)``,
    ``"qkv"`` for three arguments) and the arrays ``q, k, v`` (the same object
    where an argument was omitted).
    """
    if value is not None and key is None:
        raise ValueError("value was given without key: pass key as well (or neither)")
    kind = "self" if key is None else "kv" if value is None else "qkv"
    if kind == "self" and not layer.kdim == layer.vdim == layer.d_model:
        raise ValueError(
            f"self-attention layer(x) feeds x to every projection, but this layer has "
            f"kdim={layer.kdim}, vdim={layer.vdim} (d_model={layer.d_model}): pass key and value"
        )
    q = check_tokens(layer, query, "query", "d_model")
    k = q if key is None else check_tokens(layer, key, "key", "kdim")
    if kind == "kv" and layer.kdim != layer.vdim:
        raise ValueError(
            f"layer(query, key) uses key as the values too, but kdim={layer.kdim} != "
            f"vdim={layer.vdim}: pass value explicitly"
        )
    v = k if value is None else check_tokens(layer, value, "value", "vdim")
    if not q.ndim == k.ndim == v.ndim or (q.ndim == 3 and not q.shape[0] == k.shape[0]
                                            == v.shape[0]):
        raise ValueError(
            f"query {q.shape}, key {k.shape} and value {v.shape} must all be (batch, L, "
            f"features) with the same batch, or all (L, features)"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"key {k.shape} and value {v.shape} must have the same length L_k"
        )
    return kind, q, k, v


def check_d_out(
    layer: Any, d_out: ArrayLike, lead: tuple[int, int], batched: bool
) -> FloatArray:
    """Check the gradient ``d_out`` given to ``layer.backward``: the output's shape
    ``(B, L_q, d_model)`` (``lead = (B, L_q)``; no ``B`` unbatched), dtype, finite."""
    d = as_float_array(d_out, "d_out")
    B, L_q = lead
    shape = (B, L_q, layer.d_model) if batched else (L_q, layer.d_model)
    if d.shape != shape:
        raise ValueError(f"d_out must have the output's shape {shape}, got {d.shape}")
    if d.dtype != layer.dtype:
        raise TypeError(
            f"d_out has dtype {d.dtype.name} but the layer is {layer.dtype.name}: convert "
            f"with .astype(np.{layer.dtype.name})"
        )
    if not np.isfinite(d).all():
        raise ValueError(f"d_out (shape {d.shape}) contains NaN or infinity")
    return d


def check_rope_base(base: object, d_k: int) -> float | None:
    if base is None:
        return None
    if isinstance(base, bool) or not isinstance(base, (int, float, np.integer, np.floating)):
        raise TypeError(f"rope_base must be a float > 1 or None, got {base!r}")
    if not math.isfinite(float(base)) or float(base) <= 1.0:
        raise ValueError(f"rope_base must be a finite float > 1, got {base}")
    if d_k % 2:
        raise ValueError(f"rope_base needs an even head width d_k (pairs rotate), got d_k={d_k}")
    return float(base)
