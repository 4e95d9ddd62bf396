r"""Optimizers written out in NumPy: :class:`SGD`, :class:`Adam` and :class:`AdamW`.

Each one holds a dict ``params`` (name -> the model's own arrays) and updates those arrays
**in place** when ``step(grads)`` is called with a dict of gradients under the same names.
The update rules are those of ``torch.optim.SGD``, ``torch.optim.Adam`` and
``torch.optim.AdamW`` with the same hyper-parameters (checked against them to 1e-12 in
float64 over many steps). Taught in notebook 08, section 8.

Adam, at step :math:`t = 1, 2, \dots`, for each parameter :math:`\theta` with gradient
:math:`g`::

    g  <- g + weight_decay * theta                   (L2 penalty, Adam only)
    m  <- beta1 * m + (1 - beta1) * g                first moment
    v  <- beta2 * v + (1 - beta2) * g**2             second moment
    theta <- theta - lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)

The divisions by ``1 - beta**t`` are the *bias corrections*: ``m`` and ``v`` start at 0, so
without them the first estimates are too small by exactly those factors.

AdamW differs only in the weight decay: instead of adding ``weight_decay * theta`` to the
gradient (where the division by ``sqrt(v)`` rescales it like any other gradient), it shrinks
the parameter directly, ``theta <- theta * (1 - lr * weight_decay)``, before the Adam step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from helpers.attention import FloatArray

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "warmup_cosine"]


def _non_negative(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


class Optimizer:
    """Common part: checks ``params`` once and every ``grads`` dict handed to ``step``.

    Parameters
    ----------
    params : mapping from str to ndarray
        The arrays to train (each a floating-point, writeable ndarray of any shape); they
        are updated in place, so pass the model's own arrays (``model.parameters()``), not
        copies.
    lr : float
        Learning rate, ``> 0``.
    """

    def __init__(self, params: Mapping[str, FloatArray], lr: float) -> None:
        if not isinstance(params, Mapping) or not params:
            raise TypeError(
                f"params must be a non-empty dict name -> array, got {type(params).__name__}"
            )
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                dtype = getattr(p, "dtype", type(p).__name__)
                raise TypeError(f"params[{name!r}] must be a floating-point ndarray, got {dtype}")
            if not p.flags.writeable:
                raise ValueError(f"params[{name!r}] is read-only; it is updated in place")
        self.params: dict[str, FloatArray] = dict(params)
        self.lr = _non_negative(lr, "lr")
        if self.lr == 0:
            raise ValueError("lr must be > 0, got 0")
        self.steps = 0
        self.state: dict[str, dict[str, FloatArray]] = {name: {} for name in self.params}

    def _checked(self, grads: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
        """The gradients as arrays of the parameters' shapes and dtypes, or a clear error."""
        if not isinstance(grads, Mapping):
            raise TypeError(f"grads must be a dict name -> array, got {type(grads).__name__}")
        missing = sorted(set(self.params) - set(grads))
        unknown = sorted(set(grads) - set(self.params))
        if missing or unknown:
            raise ValueError(
                f"grads must have the keys of params; missing {missing}, unknown {unknown}"
            )
        out = {}
        for name, p in self.params.items():
            g = np.asarray(grads[name])
            if g.shape != p.shape:
                raise ValueError(
                    f"grads[{name!r}] has shape {g.shape}, but the parameter has shape {p.shape}"
                )
            if g.dtype.kind != "f":
                raise TypeError(f"grads[{name!r}] must be floating-point, got dtype {g.dtype}")
            if not np.isfinite(g).all():
                raise ValueError(f"grads[{name!r}] contains NaN or infinity")
            out[name] = g.astype(p.dtype, copy=False)
        return out

    def step(self, grads: Mapping[str, FloatArray]) -> None:
        """Update every parameter in place from its gradient ``grads[name]`` (same shape)."""
        checked = self._checked(grads)
        self.steps += 1
        for name, p in self.params.items():
            self._update(p, checked[name], self.state[name])

    def _update(self, p: FloatArray, g: FloatArray, state: dict[str, FloatArray]) -> None:
        raise NotImplementedError  # pragma: no cover - every subclass defines it


class SGD(Optimizer):
    r"""Stochastic gradient descent, as ``torch.optim.SGD``.

    ``g <- g + weight_decay * theta``; with momentum :math:`\mu` a buffer
    ``b <- mu * b + (1 - dampening) * g`` (``b = g`` at the first step) replaces ``g``
    (Nesterov: ``g + mu * b``); then ``theta <- theta - lr * g``.
    """

    def __init__(self, params: Mapping[str, FloatArray], lr: float = 1e-2, *,
                 momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        super().__init__(params, lr)
        self.momentum = _non_negative(momentum, "momentum")
        self.dampening = _non_negative(dampening, "dampening")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")

    def _update(self, p: FloatArray, g: FloatArray, state: dict[str, FloatArray]) -> None:
        if self.weight_decay:
            g = g + self.weight_decay * p
        if self.momentum:
            if "momentum" not in state:  # np.array: a 0-d parameter keeps a 0-d buffer
                state["momentum"] = np.array(g, dtype=p.dtype)
            else:
                buf = state["momentum"]
                buf *= self.momentum
                buf += (1.0 - self.dampening) * g
            buf = state["momentum"]
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with bias correction, as ``torch.optim.Adam``.

    Parameters
    ----------
    params : mapping from str to ndarray
        Updated in place.
    lr : float
        Step size (default 1e-3).
    betas : (float, float)
        Decay rates of the first and second moment estimates, each in ``[0, 1)``.
    eps : float
        Added to ``sqrt(v_hat)`` so that the division never blows up (default 1e-8).
    weight_decay : float
        L2 penalty: ``weight_decay * theta`` added to the gradient (what
        ``torch.optim.Adam`` does; see :class:`AdamW` for the decoupled form).
    """

    decoupled = False

    def __init__(self, params: Mapping[str, FloatArray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        b1, b2 = (_non_negative(b, f"betas[{i}]") for i, b in enumerate(betas))
        if not (b1 < 1 and b2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got {tuple(betas)}")
        self.betas = (b1, b2)
        self.eps = _non_negative(eps, "eps")
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    def _update(self, p: FloatArray, g: FloatArray, state: dict[str, FloatArray]) -> None:
        b1, b2 = self.betas
        t = self.steps
        if self.weight_decay:
            if self.decoupled:
                p *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        if not state:
            state["m"], state["v"] = np.zeros_like(p), np.zeros_like(p)
        m, v = state["m"], state["v"]
        m *= b1
        m += (1.0 - b1) * g
        v *= b2
        v += (1.0 - b2) * (g * g)
        step_size = self.lr / (1.0 - b1**t)  # lr / bias correction of m
        denom = np.sqrt(v) / math.sqrt(1.0 - b2**t) + self.eps  # sqrt(v_hat) + eps
        p -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as ``torch.optim.AdamW``.

    ``theta <- theta * (1 - lr * weight_decay)`` first, then the Adam step on the
    gradient alone. Note PyTorch's default ``weight_decay=1e-2`` here (0 for :class:`Adam`).
    """

    decoupled = True

    def __init__(self, params: Mapping[str, FloatArray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


def warmup_cosine(step: int, *, warmup: int, total: int, min_lr: float = 0.0) -> float:
    """Learning-rate factor at ``step`` (0-based): linear warm-up, then a cosine down to ``min_lr``.

    Multiply the base learning rate by it before each step
    (``torch.optim.lr_scheduler.LambdaLR`` with this function gives PyTorch the same rates).
    Taught in notebook 08, section 9.

    * Warm-up, ``step < warmup``: ``(step + 1) / warmup``, so the first step already moves
      (factor ``1/warmup``) and step ``warmup - 1`` reaches the full rate. The other common
      convention, ``step / warmup`` (as in nanoGPT), spends its first step at a rate of 0 and
      reaches the full rate one step later: this factor at ``step`` is that one at
      ``step + 1``.
    * Decay, ``warmup <= step <= total``: ``min_lr + (1 - min_lr) (1 + cos(pi u)) / 2`` with
      ``u = (step - warmup) / (total - warmup)``, from 1 at ``step = warmup`` to ``min_lr`` at
      ``step = total``; later steps stay at ``min_lr``.

    ``min_lr`` is the floor as a fraction of the base rate, like every value returned here
    (0.1: the rate never falls below a tenth of the base rate). Large early steps from a cold
    start, while Adam's second-moment estimate rests on a few gradients, are what the warm-up
    avoids.

    Raises ``ValueError`` unless ``step``, ``warmup`` and ``total`` are integers with
    ``step >= 0`` and ``0 < warmup < total``, and ``0 <= min_lr <= 1``.
    """
    for name, value in (("step", step), ("warmup", warmup), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    if not 0 < warmup < total:
        raise ValueError(f"need 0 < warmup < total, got warmup={warmup}, total={total}")
    if (isinstance(min_lr, bool) or not isinstance(min_lr, (int, float, np.floating))
            or not 0.0 <= min_lr <= 1.0):
        raise ValueError(f"min_lr must be a number in [0, 1] (a fraction of the base rate), "
                         f"got {min_lr!r}")
    if step < warmup:
        return (step + 1) / warmup
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, total - warmup) / (total - warmup)))
    return cosine if min_lr == 0 else float(min_lr) + (1.0 - float(min_lr)) * cosine
