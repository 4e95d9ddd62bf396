"""The protocol of every trainable piece of :mod:`helpers.training` (notebook 08, section 5).

A piece computes ``forward(x)`` and keeps what its backward pass needs; ``backward(dy)`` adds
the gradients of its parameters to ``grads`` (they accumulate until ``zero_grad()``, as
PyTorch's ``.grad`` does) and returns the gradient with respect to its input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from helpers._validate import as_float_array
from helpers.attention import FloatArray

__all__ = ["Module", "check_tokens"]


class Module:
    """Base of the trainable pieces: parameters by name, accumulated gradients, zero_grad.

    A subclass lists its own arrays in ``own_parameters()`` and the pieces it is made of
    in ``children()``; ``parameters()`` and ``grads`` name a child's arrays
    ``"<child>.<name>"``. A child may also be a :class:`helpers.MultiHeadAttention`
    (its ``parameters()`` holds None for absent biases, which are skipped).
    """

    def __init__(self) -> None:
        self._grads: dict[str, FloatArray] = {}
        self._saved: dict[str, object] | None = None

    def own_parameters(self) -> dict[str, FloatArray]:
        """This piece's own trainable arrays by name (not its children's)."""
        return {}

    def children(self) -> dict[str, Any]:
        """The pieces this one is made of, by name."""
        return {}

    def parameters(self) -> dict[str, FloatArray]:
        """Every trainable array by name: the arrays themselves, not copies."""
        out = dict(self.own_parameters())
        for prefix, child in self.children().items():
            for name, p in child.parameters().items():
                if p is not None:
                    out[f"{prefix}.{name}"] = p
        return out

    @property
    def grads(self) -> dict[str, FloatArray]:
        """The accumulated gradient of every parameter, under the names of ``parameters()``."""
        out = {name: self._grads.get(name, np.zeros_like(p))
               for name, p in self.own_parameters().items()}
        for prefix, child in self.children().items():
            child_grads = child.grads
            for name, p in child.parameters().items():
                if p is not None:
                    out[f"{prefix}.{name}"] = child_grads.get(name, np.zeros_like(p))
        return out

    def zero_grad(self) -> None:
        """Reset every gradient to zero, this piece's and its children's."""
        self._grads = {name: np.zeros_like(p) for name, p in self.own_parameters().items()}
        for child in self.children().values():
            child.zero_grad()

    def _accumulate(self, name: str, g: FloatArray) -> None:
        p = self.own_parameters()[name]
        if name not in self._grads:
            self._grads[name] = np.zeros_like(p)
        self._grads[name] += g.astype(p.dtype, copy=False)

    def _saved_or_raise(self) -> dict[str, object]:
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._saved

    def _check_dy(self, dy: ArrayLike, shape: tuple[int, ...]) -> FloatArray:
        dy = as_float_array(dy, "dy")
        if dy.shape != shape:
            raise ValueError(
                f"{type(self).__name__}.backward: dy must have the output's shape {shape}, "
                f"got {dy.shape}"
            )
        return dy


def check_tokens(tokens: ArrayLike, vocab_size: int, name: str = "tokens") -> np.ndarray:
    """``tokens`` as an integer array with every id in ``[0, vocab_size)``, or a clear error."""
    arr = np.asarray(tokens)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer token ids, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(
            f"{name} must lie in [0, {vocab_size}), got values from {arr.min()} to {arr.max()}"
        )
    return arr
