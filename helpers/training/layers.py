r"""The pieces a small Transformer puts around attention, each with its own backward pass.

Every piece is a small class with the same protocol (taught in notebook 08, sections 4 and 5):

* ``forward(x)`` computes the output and keeps what its backward pass needs;
* ``backward(dy)`` takes the gradient of the loss with respect to the output, **adds** the
  gradients of its parameters to ``grads`` (they accumulate until ``zero_grad()``, as
  PyTorch's ``.grad`` does) and returns the gradient with respect to the input;
* ``parameters()`` returns the trainable arrays by name (the arrays themselves, so an
  optimizer can update them in place); ``grads`` holds one array per parameter.

The backward passes, with ``dy`` the incoming gradient and sums over every token::

    Linear     y = x W + b          dW = x^T dy,  db = sum dy,   dx = dy W^T
    Embedding  y = E[tokens]        dE[i] = sum of dy over the tokens equal to i
    LayerNorm  y = g * xh + b       dx = r (dxh - mean(dxh) - xh mean(dxh xh)),  dxh = dy g
    GELU       y = x Phi(x)         dx = dy (Phi(x) + x phi(x))

with ``xh = (x - mean) r`` and ``r = 1 / sqrt(var + eps)`` per token.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from helpers._validate import as_float_array, positive_int
from helpers.attention import FloatArray
from helpers.block_parts import _erf, gelu, layer_norm
from helpers.training.module import Module, check_tokens

__all__ = [
    "Embedding",
    "FeedForward",
    "LayerNorm",
    "Linear",
    "gelu_backward",
    "layer_norm_backward",
]


def _features(x: ArrayLike, d: int, who: str) -> FloatArray:
    x = as_float_array(x, "x")
    if x.ndim < 1 or x.shape[-1] != d:
        raise ValueError(f"{who}: x must have shape (..., {d}), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{who}: x contains NaN or infinity")
    return x


class Linear(Module):
    """``y = x W + b``: ``x (..., d_in)`` -> ``y (..., d_out)``.

    ``W (d_in, d_out)`` and ``b (d_out,)`` start uniform in ``±1/sqrt(d_in)`` (PyTorch's
    ``nn.Linear`` default; its ``weight`` is this ``W`` transposed).
    """

    def __init__(self, d_in: int, d_out: int, *, bias: bool = True,
                 rng: np.random.Generator | None = None, dtype: DTypeLike = np.float64) -> None:
        super().__init__()
        self.d_in, self.d_out = positive_int(d_in, "d_in"), positive_int(d_out, "d_out")
        rng = np.random.default_rng() if rng is None else rng
        bound = 1.0 / math.sqrt(self.d_in)
        self.W = rng.uniform(-bound, bound, (self.d_in, self.d_out)).astype(dtype)
        self.b = rng.uniform(-bound, bound, self.d_out).astype(dtype) if bias else None
        self.zero_grad()

    def own_parameters(self) -> dict[str, FloatArray]:
        return {"W": self.W} if self.b is None else {"W": self.W, "b": self.b}

    def forward(self, x: ArrayLike) -> FloatArray:
        x = _features(x, self.d_in, "Linear")
        self._saved = {"x": x}
        y = x @ self.W
        return y if self.b is None else y + self.b

    def backward(self, dy: ArrayLike) -> FloatArray:
        x = self._saved_or_raise()["x"]
        assert isinstance(x, np.ndarray)
        dy = self._check_dy(dy, (*x.shape[:-1], self.d_out))
        x2, dy2 = x.reshape(-1, self.d_in), dy.reshape(-1, self.d_out)
        self._accumulate("W", x2.T @ dy2)
        if self.b is not None:
            self._accumulate("b", dy2.sum(axis=0))
        return dy @ self.W.T

    __call__ = forward


class Embedding(Module):
    """Token ids ``(...)`` -> their rows of ``weight (vocab_size, d)``, shape ``(..., d)``.

    ``weight`` starts standard normal (PyTorch's ``nn.Embedding`` default). The backward
    pass adds each token's gradient to its row with ``np.add.at``: a plain
    ``grad[tokens] += dy`` would keep only one of the tokens that repeat.
    """

    def __init__(self, vocab_size: int, d: int, *, rng: np.random.Generator | None = None,
                 dtype: DTypeLike = np.float64) -> None:
        super().__init__()
        self.vocab_size, self.d = positive_int(vocab_size, "vocab_size"), positive_int(d, "d")
        rng = np.random.default_rng() if rng is None else rng
        self.weight = rng.standard_normal((self.vocab_size, self.d)).astype(dtype)
        self.zero_grad()

    def own_parameters(self) -> dict[str, FloatArray]:
        return {"weight": self.weight}

    def forward(self, tokens: ArrayLike) -> FloatArray:
        tokens = check_tokens(tokens, self.vocab_size)
        self._saved = {"tokens": tokens}
        return self.weight[tokens]

    def backward(self, dy: ArrayLike) -> None:
        """Accumulate the gradient of ``weight``; token ids have no gradient (returns None)."""
        tokens = self._saved_or_raise()["tokens"]
        assert isinstance(tokens, np.ndarray)
        dy = self._check_dy(dy, (*tokens.shape, self.d))
        g = np.zeros_like(self.weight)
        np.add.at(g, tokens.reshape(-1), dy.reshape(-1, self.d))
        self._accumulate("weight", g)

    __call__ = forward


def layer_norm_backward(x: ArrayLike, dy: ArrayLike, weight: ArrayLike | None = None, *,
                        eps: float = 1e-5) -> tuple[FloatArray, FloatArray, FloatArray]:
    r"""Gradients of :func:`helpers.block_parts.layer_norm` (notebook 08, section 4).

    Recomputes the statistics of ``x`` (as cheap as keeping them) and applies

    .. math::
        dx = r\,\big(\hat g - \overline{\hat g} - \hat x\,\overline{\hat g\,\hat x}\big),
        \quad \hat g = dy\odot\gamma,

    with means over the feature axis: the two mean terms are the gradient flowing back
    through the mean and through the variance that the normalisation subtracted and divided.

    Parameters
    ----------
    x : array_like, shape (..., d)
        The forward pass's input.
    dy : array_like, shape (..., d)
        Gradient of the loss with respect to the output.
    weight : array_like, shape (d,), optional
        The gain :math:`\gamma` (default ones).
    eps : float
        The forward pass's ``eps``.

    Returns
    -------
    dx : ndarray, shape (..., d)
    dweight, dbias : ndarray, shape (d,)
        Summed over every token.
    """
    x = as_float_array(x, "x")
    dy = as_float_array(dy, "dy")
    if dy.shape != x.shape or x.ndim < 1:
        raise ValueError(f"dy must have the shape of x (..., d) {x.shape}, got {dy.shape}")
    d = x.shape[-1]
    xc = x - x.mean(axis=-1, keepdims=True)  # (..., d)
    r = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + float(eps))  # (..., 1)
    xh = xc * r  # (..., d): normalised, before the gain and shift
    g = dy if weight is None else dy * np.asarray(weight, dtype=x.dtype)
    dx = r * (g - g.mean(axis=-1, keepdims=True)
              - xh * (g * xh).mean(axis=-1, keepdims=True))
    dweight = (dy * xh).reshape(-1, d).sum(axis=0)
    dbias = dy.reshape(-1, d).sum(axis=0)
    return dx, dweight, dbias


class LayerNorm(Module):
    """:func:`helpers.block_parts.layer_norm` over the last axis with a learned gain and shift.

    ``weight`` (:math:`\\gamma`) starts at ones and ``bias`` (:math:`\\beta`) at zeros, as
    ``nn.LayerNorm``; shapes ``(..., d) -> (..., d)``.
    """

    def __init__(self, d: int, *, eps: float = 1e-5, dtype: DTypeLike = np.float64) -> None:
        super().__init__()
        self.d, self.eps = positive_int(d, "d"), float(eps)
        self.weight = np.ones(self.d, dtype=dtype)
        self.bias = np.zeros(self.d, dtype=dtype)
        self.zero_grad()

    def own_parameters(self) -> dict[str, FloatArray]:
        return {"weight": self.weight, "bias": self.bias}

    def forward(self, x: ArrayLike) -> FloatArray:
        x = _features(x, self.d, "LayerNorm")
        self._saved = {"x": x}
        return layer_norm(x, self.weight, self.bias, eps=self.eps)

    def backward(self, dy: ArrayLike) -> FloatArray:
        x = self._saved_or_raise()["x"]
        assert isinstance(x, np.ndarray)
        dy = self._check_dy(dy, x.shape)
        dx, dweight, dbias = layer_norm_backward(x, dy, self.weight, eps=self.eps)
        self._accumulate("weight", dweight)
        self._accumulate("bias", dbias)
        return dx

    __call__ = forward


def gelu_backward(x: ArrayLike, dy: ArrayLike) -> FloatArray:
    r"""Gradient of the exact GELU :math:`x\Phi(x)`: ``dy * (Phi(x) + x * phi(x))``.

    ``x`` and ``dy`` have the same shape; the result has it too. :math:`\phi` is the
    standard normal density, :math:`\Phi` its CDF (exact, with erf).
    """
    x = as_float_array(x, "x")
    dy = as_float_array(dy, "dy")
    if dy.shape != x.shape:
        raise ValueError(f"dy must have the shape of x {x.shape}, got {dy.shape}")
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return (dy * (cdf + x * pdf)).astype(np.result_type(x, dy), copy=False)


class FeedForward(Module):
    """The position-wise feed-forward layer ``Linear(d, d_ff) -> GELU -> Linear(d_ff, d)``.

    Shapes ``(..., d) -> (..., d)``; parameters ``"in.W", "in.b", "out.W", "out.b"``.
    """

    def __init__(self, d: int, d_ff: int, *, rng: np.random.Generator | None = None,
                 dtype: DTypeLike = np.float64) -> None:
        super().__init__()
        self.inner = Linear(d, d_ff, rng=rng, dtype=dtype)
        self.outer = Linear(d_ff, d, rng=rng, dtype=dtype)

    def children(self) -> dict[str, Module]:
        return {"in": self.inner, "out": self.outer}

    def forward(self, x: ArrayLike) -> FloatArray:
        hidden = self.inner(x)  # (..., d_ff)
        self._saved = {"hidden": hidden}
        return self.outer(gelu(hidden))  # (..., d)

    def backward(self, dy: ArrayLike) -> FloatArray:
        hidden = self._saved_or_raise()["hidden"]
        d_act = self.outer.backward(dy)  # (..., d_ff)
        return self.inner.backward(gelu_backward(hidden, d_act))  # (..., d)

    __call__ = forward
