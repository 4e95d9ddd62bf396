"""Train a :class:`TinyTransformer` through the learner's own attention backward pass (notebook 08,
section 9): the pieces written in the exercises are the pieces that train the model.

Inside ``with use_attention_functions(model, forward, backward):`` every block's attention layer
computes

* ``out, cache = forward(x, params, num_heads, mask)`` — notebook 08 §6's ``mha_forward``;
* ``dx, grads = backward(d_out, cache, params)`` — exercise 08.4's ``mha_backward``;

where ``params`` are the layer's own arrays (``W_q .. W_o``, and zeros for the biases the layer does
not have), and the gradients are added to the layer's ``grads`` as its own backward pass would.
The layers are put back on leaving the block, also after an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from helpers.attention import FloatArray
from helpers.mha import MultiHeadAttention
from helpers.training.tiny_transformer import TinyTransformer

__all__ = ["use_attention_functions"]


class _OwnAttention:
    """Stands in for a block's ``MultiHeadAttention``; parameters and gradients stay the layer's."""

    def __init__(self, layer: MultiHeadAttention, forward: Callable[..., Any],
                 backward: Callable[..., Any]) -> None:
        if (layer.dropout and layer.training) or layer.rope_base is not None:
            raise ValueError("use_attention_functions needs layers without dropout and RoPE")
        self.layer, self._forward, self._backward = layer, forward, backward
        self._saved: tuple[dict[str, FloatArray], Any] | None = None

    def _params(self) -> dict[str, FloatArray]:
        params = dict(self.layer.parameters())
        for name in ("b_q", "b_k", "b_v", "b_o"):  # a layer without biases: zeros in their place
            params.setdefault(name, np.zeros(self.layer.d_model, dtype=self.layer.dtype))
        return params

    def forward(self, x: FloatArray, mask: np.ndarray | None = None) -> tuple[FloatArray, Any]:
        params = self._params()
        out, cache = self._forward(x, params, self.layer.num_heads, mask)
        self._saved = (params, cache)
        return out, cache["P"]

    def backward(self, d_out: FloatArray) -> FloatArray:
        if self._saved is None:
            raise RuntimeError("backward() needs a forward pass first")
        params, cache = self._saved
        self._saved = None
        dx, grads = self._backward(d_out, cache, params)
        for name, g in self.layer.grads.items():
            g += grads[name]
        return dx

    def parameters(self) -> dict[str, FloatArray]:
        return self.layer.parameters()

    @property
    def grads(self) -> dict[str, FloatArray]:
        return self.layer.grads

    def zero_grad(self) -> None:
        self.layer.zero_grad()


@contextmanager
def use_attention_functions(model: TinyTransformer, forward: Callable[..., Any],
                            backward: Callable[..., Any]) -> Iterator[TinyTransformer]:
    """Within the block, ``model``'s attention layers run ``forward`` and ``backward`` (above)."""
    layers = [block.attn for block in model.blocks]
    try:
        for block, layer in zip(model.blocks, layers, strict=True):
            block.attn = _OwnAttention(layer, forward, backward)
        yield model
    finally:
        for block, layer in zip(model.blocks, layers, strict=True):
            block.attn = layer
