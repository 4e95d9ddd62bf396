"""The ``MultiHeadAttention`` layer: weights, biases and a ``forward`` pass."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from helpers._validate import positive_int
from helpers.attention import FloatArray, _check_tokens, project_and_attend

_WEIGHTS = ("W_q", "W_k", "W_v", "W_o")
_BIASES = ("b_q", "b_k", "b_v", "b_o")


class MultiHeadAttention:
    """Multi-head attention with its own parameters, in the ``x @ W + b`` convention.

    Parameters
    ----------
    d_model : int
        Width of the token vectors (``embed_dim`` in PyTorch).
    num_heads : int
        Number of heads ``h``; each works in ``d_k = d_model // h`` dimensions.
    bias : bool, keyword-only
        Whether the four projections have biases (initialised to zero).
    seed : int or None, keyword-only
        Seed of ``np.random.default_rng`` for the weights; the same seed gives
        the same layer.
    dtype : numpy dtype, keyword-only
        ``np.float64`` (default) or ``np.float32``.

    Attributes
    ----------
    W_q, W_k, W_v, W_o : ndarray, shape (d_model, d_model)
        Xavier/Glorot-uniform: entries uniform in ``±sqrt(6 / (d_model + d_model))``,
        which keeps the variance of ``x @ W`` close to that of ``x``.
    b_q, b_k, b_v, b_o : ndarray, shape (d_model,), or None without bias
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        *,
        bias: bool = True,
        seed: int | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        self.d_model = positive_int(d_model, "d_model")
        self.num_heads = positive_int(num_heads, "num_heads")
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}"
            )
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"dtype must be a floating type, got {self.dtype}")
        self.d_k = self.d_model // self.num_heads
        rng = np.random.default_rng(seed)
        limit = math.sqrt(6.0 / (self.d_model + self.d_model))
        for name in _WEIGHTS:
            W = rng.uniform(-limit, limit, size=(self.d_model, self.d_model))
            setattr(self, name, W.astype(self.dtype))
        for name in _BIASES:
            setattr(self, name, np.zeros(self.d_model, dtype=self.dtype) if bias else None)

    # ------------------------------------------------------------------ info
    @property
    def num_parameters(self) -> int:
        """Number of trainable numbers: 4 d_model² weights plus 4 d_model biases."""
        return sum(a.size for a in self.parameters().values() if a is not None)

    def parameters(self) -> dict[str, FloatArray | None]:
        """The weights and biases by name (the arrays themselves, not copies)."""
        return {name: getattr(self, name) for name in _WEIGHTS + _BIASES}

    def __repr__(self) -> str:
        return (
            f"MultiHeadAttention(d_model={self.d_model}, num_heads={self.num_heads}, "
            f"d_k={self.d_k}, bias={self.b_q is not None}, dtype={self.dtype.name}, "
            f"parameters={self.num_parameters:,})"
        )

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        query: ArrayLike,
        key: ArrayLike | None = None,
        value: ArrayLike | None = None,
        mask: ArrayLike | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Attend from ``query`` to ``key``/``value``.

        Parameters
        ----------
        query : array_like, shape (batch, L_q, d_model) or (L_q, d_model)
        key : array_like, shape (batch, L_k, d_model) or (L_k, d_model), optional
            Defaults to ``query`` (self-attention). A different sequence, of
            any length ``L_k``, gives cross-attention.
        value : array_like, same shape as ``key``, optional
            Defaults to ``key``.
        mask : array_like, optional, broadcastable to (batch, h, L_q, L_k)
            Boolean True = may attend, or float added to the scores.

        Returns
        -------
        output : ndarray, shape (batch, L_q, d_model) (no batch axis for 2-D query)
        weights : ndarray, shape (batch, h, L_q, L_k) (no batch axis for 2-D query)
        """
        q = _check_tokens(query, "query", self.d_model)
        k = q if key is None else _check_tokens(key, "key", self.d_model)
        v = k if value is None else _check_tokens(value, "value", self.d_model)
        if k.shape != v.shape:
            raise ValueError(f"key and value must have the same shape, got {k.shape} and {v.shape}")
        if k.ndim != q.ndim or (q.ndim == 3 and k.shape[0] != q.shape[0]):
            raise ValueError(
                f"query {q.shape} and key {k.shape} must both be (batch, L, d_model) with the "
                f"same batch, or both (L, d_model)"
            )
        return project_and_attend(q, k, v, self.parameters(), self.num_heads, mask)

    __call__ = forward

    # ------------------------------------------------------------------ PyTorch
    @classmethod
    def from_torch(cls, module: Any, *, dtype: DTypeLike = np.float64) -> MultiHeadAttention:
        """Copy the parameters of a ``torch.nn.MultiheadAttention``.

        PyTorch computes ``x @ W.T + b`` and stacks ``W_q, W_k, W_v`` as the
        rows of ``in_proj_weight`` ``(3 d_model, d_model)``; here each block is
        transposed into the ``x @ W`` convention. ``batch_first`` only changes
        the layout of PyTorch's inputs, not its weights; this class always takes
        batch-first input. Modules with ``kdim``/``vdim`` different from
        ``embed_dim``, ``add_bias_kv`` or ``add_zero_attn`` are not supported.
        """
        import torch  # imported here so that the rest of the library never needs torch

        if not isinstance(module, torch.nn.MultiheadAttention):
            raise TypeError(f"expected torch.nn.MultiheadAttention, got {type(module).__name__}")
        if not module._qkv_same_embed_dim:
            raise ValueError("kdim/vdim different from embed_dim are not supported")
        if module.bias_k is not None or module.add_zero_attn:
            raise ValueError("add_bias_kv and add_zero_attn are not supported")
        d = module.embed_dim

        def numpy_of(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().to(torch.float64).numpy().astype(dtype)

        has_bias = module.in_proj_bias is not None
        layer = cls(d, module.num_heads, bias=has_bias, dtype=dtype)
        W_in = numpy_of(module.in_proj_weight)  # (3d, d): rows = W_q; W_k; W_v (out x in)
        layer.W_q, layer.W_k, layer.W_v = (W_in[i * d:(i + 1) * d].T.copy() for i in range(3))
        layer.W_o = numpy_of(module.out_proj.weight).T.copy()
        if has_bias:
            b_in = numpy_of(module.in_proj_bias)
            layer.b_q, layer.b_k, layer.b_v = (b_in[i * d:(i + 1) * d].copy() for i in range(3))
            layer.b_o = numpy_of(module.out_proj.bias)
        return layer
