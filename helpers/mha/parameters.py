"""Validated parameters of :class:`~helpers.MultiHeadAttention`.

Every weight and bias of the layer is a :class:`Parameter` descriptor: an
assignment such as ``layer.b_o = np.ones(1)`` or ``layer.W_q = np.zeros((8, 4))``
is checked at once (shape, dtype, finite values, presence of the bias) and
refused with an error that names the attribute and what it must be, instead
of broadcasting silently or failing later inside a reshape.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from helpers.attention import FloatArray

WEIGHT_NAMES = ("W_q", "W_k", "W_v", "W_o")
BIAS_NAMES = ("b_q", "b_k", "b_v", "b_o")
PARAMETER_NAMES = WEIGHT_NAMES + BIAS_NAMES


def expected_shape(layer: Any, name: str) -> tuple[int, ...]:
    """Shape of parameter ``name``: W_k (kdim, d), W_v (vdim, d), biases (d,), else (d, d)."""
    d = layer.d_model
    if name == "W_k":
        return (layer.kdim, d)
    if name == "W_v":
        return (layer.vdim, d)
    if name in WEIGHT_NAMES:
        return (d, d)
    return (d,)


def check_parameter(layer: Any, name: str, value: object) -> FloatArray | None:
    """Return ``value`` as parameter ``name`` of ``layer``, or raise a clear error.

    Rules: a weight is a real array of exactly the expected shape and of the
    layer's dtype, with finite entries; a bias likewise with shape
    ``(d_model,)``, and it is ``None`` exactly when the layer was built with
    ``bias=False``. Integer/boolean arrays and lists are converted to float64
    first (so they suit a float64 layer; a float32 layer asks for
    ``.astype(np.float32)``). The array is kept as given, not copied.
    """
    is_bias = name in BIAS_NAMES
    if is_bias and not layer.has_bias:
        if value is None:
            return None
        raise ValueError(
            f"{name}: this layer was built with bias=False and has no biases; "
            "build it with bias=True to use them"
        )
    shape = expected_shape(layer, name)
    if value is None:
        raise ValueError(
            f"{name} must be an array of shape {shape}, got None (biases cannot be removed "
            "from a layer built with bias=True; set them to zeros instead)"
        )
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric array, could not convert it: {err}") from None
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must be a real floating-point array, got dtype {arr.dtype}")
    if arr.dtype != layer.dtype:
        raise TypeError(
            f"{name} must have the layer's dtype {layer.dtype.name}, got {arr.dtype.name}; "
            f"convert it with .astype(np.{layer.dtype.name})"
        )
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} (shape {arr.shape}) contains NaN or infinity")
    return arr


class Parameter:
    """Descriptor for one weight or bias: reads the stored array, validates assignments."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, layer: Any, owner: type | None = None) -> Any:
        if layer is None:
            return self
        return layer._params[self.name]

    def __set__(self, layer: Any, value: object) -> None:
        layer._params[self.name] = check_parameter(layer, self.name, value)


def init_parameters(layer: Any, seed: int | None) -> None:
    """Give ``layer`` its initial parameters from ``np.random.default_rng(seed)``.

    Weights: Xavier/Glorot-uniform, entries uniform in ``±sqrt(6 / (fan_in + fan_out))``
    (drawn in the order W_q, W_k, W_v, W_o), which keeps the variance of
    ``x @ W`` close to that of ``x``. Biases: zeros, or None without bias.
    """
    rng = np.random.default_rng(seed)
    for name in WEIGHT_NAMES:
        fan_in, fan_out = expected_shape(layer, name)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        W = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        setattr(layer, name, W.astype(layer.dtype))
    for name in BIAS_NAMES:
        setattr(layer, name, np.zeros(layer.d_model, layer.dtype) if layer.has_bias else None)
