"""Train a :class:`TinyTransformer` through the learner's own functions (notebook 08, section 9):
the pieces written in the exercises are the pieces that train the model.

Inside ``with use_own_functions(model, ...):`` each function given replaces the library's:

* ``mha_forward(x, params, num_heads, mask) -> (out, cache)`` and
  ``mha_backward(d_out, cache, params) -> (dx, grads)`` (notebook 08 §6, exercise 08.4): every
  block's attention layer, with ``params`` the layer's own arrays (zeros for absent biases);
* ``layer_norm_backward(x, dy, gamma, eps) -> dx`` (exercise 08.2): every LayerNorm's ``dx``
  (the gain's and shift's gradients, plain sums, stay the library's);
* ``embedding_backward(tokens, d_out, vocab_size) -> dE`` (exercise 08.3): the embedding's;
* ``cross_entropy_grad(logits, targets) -> dlogits`` (exercise 08.1): the gradient that
  :func:`~helpers.training.softmax_cross_entropy` returns, computed by the learner's function
  on the positions that have a target (the loss itself stays the library's).

:class:`AdamFromFunction` is Adam whose update of each parameter is ``adam_step(param, grad, m,
v, t, lr, beta1, beta2, eps) -> (param, m, v)`` (exercise 08.5). Every call of a learner's
function gets the model's arrays; one that changes an argument in place (the model's weights,
the forward pass's cache) is refused with a ``ValueError`` after the arrays are put back, and a
result of the wrong shape or with NaN raises one too. The model's pieces are put back on leaving
the block, also after an error.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

import numpy as np

from helpers.attention import FloatArray
from helpers.mha import MultiHeadAttention
from helpers.training.layers import Embedding, LayerNorm
from helpers.training.layers import layer_norm_backward as library_layer_norm_backward
from helpers.training.losses import own_gradient
from helpers.training.optim import Adam
from helpers.training.tiny_transformer import TinyTransformer

__all__ = ["AdamFromFunction", "use_own_functions"]


def _changed(now: Any, before: Any) -> bool:
    if isinstance(before, np.ndarray):
        return not np.array_equal(now, before, equal_nan=True)
    if isinstance(before, Mapping):
        return now.keys() != before.keys() or any(_changed(now[k], before[k]) for k in before)
    return False


def _put_back(now: Any, before: Any) -> None:
    if isinstance(before, np.ndarray) and now.shape == before.shape:
        now[...] = before
    elif isinstance(before, Mapping):
        for k in before.keys() & now.keys():
            _put_back(now[k], before[k])


def _call_own(fn: Callable[..., Any], label: str, **arguments: Any) -> Any:
    """``fn(*arguments.values())``, refused with a ValueError if it changes an argument."""
    before = {name: copy.deepcopy(value) for name, value in arguments.items()
              if isinstance(value, np.ndarray | Mapping)}
    result = fn(*arguments.values())
    for name, kept in before.items():
        if _changed(arguments[name], kept):
            _put_back(arguments[name], kept)
            raise ValueError(
                f"your {label} changed its argument {name} in place; during training it holds "
                f"the model's own arrays (put back now): compute on copies (w = w * s, not "
                f"w *= s)")
    return result


def _array(value: Any, shape: tuple[int, ...], label: str) -> FloatArray:
    if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype.kind != "f":
        got = f"shape {value.shape}, dtype {value.dtype}" if isinstance(value, np.ndarray) \
            else type(value).__name__
        raise ValueError(f"your {label} returned {got}; expected a float array of shape {shape}")
    if not np.isfinite(value).all():
        raise ValueError(f"your {label} returned NaN or infinity")
    return value


class _OwnAttention:
    """Stands in for a block's ``MultiHeadAttention``; parameters and gradients stay the layer's."""

    def __init__(self, layer: MultiHeadAttention, forward: Callable[..., Any],
                 backward: Callable[..., Any]) -> None:
        if (layer.dropout and layer.training) or layer.rope_base is not None:
            raise ValueError("use_own_functions needs attention layers without dropout and RoPE")
        self.layer, self._forward, self._backward = layer, forward, backward
        self._saved: tuple[dict[str, FloatArray], Any] | None = None

    def _params(self) -> dict[str, FloatArray]:
        params = dict(self.layer.parameters())
        for name in ("b_q", "b_k", "b_v", "b_o"):  # a layer without biases: zeros in their place
            params.setdefault(name, np.zeros(self.layer.d_model, dtype=self.layer.dtype))
        return params

    def forward(self, x: FloatArray, mask: np.ndarray | None = None) -> tuple[FloatArray, Any]:
        params = self._params()
        out, cache = _call_own(self._forward, "mha_forward", x=x, params=params,
                              num_heads=self.layer.num_heads, mask=mask)
        self._saved = (params, cache)
        return out, cache["P"]

    def backward(self, d_out: FloatArray) -> FloatArray:
        if self._saved is None:
            raise RuntimeError("backward() needs a forward pass first")
        params, cache = self._saved
        self._saved = None
        dx, grads = _call_own(self._backward, "mha_backward", d_out=d_out, cache=cache,
                             params=params)
        for name, g in self.layer.grads.items():
            g += _array(grads[name], g.shape, f"mha_backward's grads[{name!r}]")
        return _array(dx, d_out.shape, "mha_backward's dx")

    def parameters(self) -> dict[str, FloatArray]:
        return self.layer.parameters()

    @property
    def grads(self) -> dict[str, FloatArray]:
        return self.layer.grads

    def zero_grad(self) -> None:
        self.layer.zero_grad()


def _layer_norm_backward(ln: LayerNorm, fn: Callable[..., Any]) -> Callable[..., FloatArray]:
    def backward(dy: FloatArray) -> FloatArray:
        x = ln._saved_or_raise()["x"]
        assert isinstance(x, np.ndarray)
        dy = ln._check_dy(dy, x.shape)
        dx = _call_own(fn, "layer_norm_backward", x=x, dy=dy, gamma=ln.weight, eps=ln.eps)
        _, dweight, dbias = library_layer_norm_backward(x, dy, ln.weight, eps=ln.eps)
        ln._accumulate("weight", dweight)
        ln._accumulate("bias", dbias)
        return _array(dx, x.shape, "layer_norm_backward")
    return backward


def _embedding_backward(emb: Embedding, fn: Callable[..., Any]) -> Callable[..., None]:
    def backward(dy: FloatArray) -> None:
        tokens = emb._saved_or_raise()["tokens"]
        assert isinstance(tokens, np.ndarray)
        dy = emb._check_dy(dy, (*tokens.shape, emb.d))
        grad = _call_own(fn, "embedding_backward", tokens=tokens, d_out=dy,
                        vocab_size=emb.vocab_size)
        emb._accumulate("weight", _array(grad, emb.weight.shape, "embedding_backward"))
    return backward


def _cross_entropy_grad(fn: Callable[..., Any]) -> Callable[..., FloatArray]:
    def gradient(logits: FloatArray, targets: np.ndarray) -> FloatArray:
        grad = _call_own(fn, "cross_entropy_grad", logits=logits, targets=targets)
        return _array(grad, logits.shape, "cross_entropy_grad")
    return gradient


@contextmanager
def use_own_functions(
    model: TinyTransformer, *,
    mha_forward: Callable[..., Any] | None = None,
    mha_backward: Callable[..., Any] | None = None,
    layer_norm_backward: Callable[..., Any] | None = None,
    embedding_backward: Callable[..., Any] | None = None,
    cross_entropy_grad: Callable[..., Any] | None = None,
) -> Iterator[TinyTransformer]:
    """Within the block, ``model`` computes with the functions given (module docstring); None
    keeps the library's. ``mha_forward`` and ``mha_backward`` come together or not at all.
    Taught in notebook 08, section 9 (the training run)."""
    if (mha_forward is None) != (mha_backward is None):
        raise ValueError("give mha_forward and mha_backward together: the backward pass reads "
                         "the forward pass's cache")
    norms = [ln for ln in (*(p for b in model.blocks for p in (b.ln1, b.ln2)), model.ln_f)
             if ln is not None]
    layers = [block.attn for block in model.blocks]
    with ExitStack() as undo:
        if mha_forward is not None:
            for block, layer in zip(model.blocks, layers, strict=True):
                undo.callback(setattr, block, "attn", layer)
                block.attn = _OwnAttention(layer, mha_forward, mha_backward)
        patches = [(ln, _layer_norm_backward(ln, layer_norm_backward)) for ln in norms
                   if layer_norm_backward is not None]
        if embedding_backward is not None:
            patches.append((model.embed, _embedding_backward(model.embed, embedding_backward)))
        for piece, backward in patches:  # an instance attribute shadows the class's method
            piece.backward = backward
            undo.callback(vars(piece).pop, "backward")
        if cross_entropy_grad is not None:
            undo.enter_context(own_gradient(_cross_entropy_grad(cross_entropy_grad)))
        yield model


class AdamFromFunction(Adam):
    """Adam whose update of each parameter is the learner's ``adam_step`` (exercise 08.5).

    ``adam_step(param, grad, m, v, t, lr, beta1, beta2, eps)`` returns the new ``(param, m,
    v)``; this optimizer keeps ``m`` and ``v`` per parameter (zeros before the first step),
    counts ``t`` from 1 and writes the new parameter into the model's array. Weight decay is
    not part of the exercise: none here. Taught in notebook 08, sections 8 and 9.
    """

    def __init__(self, params: Mapping[str, FloatArray], adam_step: Callable[..., Any],
                 lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(params, lr, betas, eps)
        if not callable(adam_step):
            raise TypeError(f"adam_step must be a function, got {type(adam_step).__name__}")
        self.adam_step = adam_step

    def _update(self, p: FloatArray, g: FloatArray, state: dict[str, FloatArray]) -> None:
        if not state:
            state["m"], state["v"] = np.zeros_like(p), np.zeros_like(p)
        new = _call_own(self.adam_step, "adam_step", param=p, grad=g, m=state["m"], v=state["v"],
                       t=self.steps, lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
                       eps=self.eps)
        if not isinstance(new, tuple | list) or len(new) != 3:
            raise ValueError(f"your adam_step returned {type(new).__name__}; expected the "
                             f"triple (param, m, v)")
        param, state["m"], state["v"] = (
            _array(a, p.shape, f"adam_step's {n}").astype(p.dtype, copy=False)
            for a, n in zip(new, ("param", "m", "v"), strict=True))
        p[...] = param
