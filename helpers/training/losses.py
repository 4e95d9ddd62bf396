r"""Softmax cross-entropy over a vocabulary, with its gradient (notebook 08, section 3).

For one position with logits :math:`z \in \mathbb{R}^V` and target class :math:`y`,

.. math::
    \ell = -\log \mathrm{softmax}(z)_y = \operatorname{logsumexp}(z) - z_y,
    \qquad
    \frac{\partial \ell}{\partial z_j} = \mathrm{softmax}(z)_j - [j = y],

so the gradient is ``softmax(z) - onehot(y)``: no Jacobian of the softmax is ever formed.
The loss of a batch is the **mean** over the positions that have a target (others carry
``ignore_index``, as in ``torch.nn.functional.cross_entropy``), so every counted position's
gradient is divided by their number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
from numpy.typing import ArrayLike

from helpers.attention import FloatArray, softmax
from helpers.math_utils import logsumexp

__all__ = ["IGNORE_INDEX", "own_gradient", "softmax_cross_entropy"]

IGNORE_INDEX = -100  # PyTorch's default ignore_index

GradientFunction = Callable[[FloatArray, np.ndarray], FloatArray]
_OWN_GRADIENT: ContextVar[GradientFunction | None] = ContextVar("own_gradient", default=None)


@contextmanager
def own_gradient(gradient: GradientFunction) -> Iterator[None]:
    """Within the block, :func:`softmax_cross_entropy` takes its gradient from ``gradient``.

    ``gradient(logits (n, V), targets (n,))`` gets the positions that have a target and
    returns the gradient of their mean loss, ``(n, V)``: the learner's ``cross_entropy_grad``
    of exercise 08.1, plugged in by :func:`helpers.training.own_functions.use_own_functions`
    (notebook 08, section 9). The loss is still computed here.
    """
    token = _OWN_GRADIENT.set(gradient)
    try:
        yield
    finally:
        _OWN_GRADIENT.reset(token)


def softmax_cross_entropy(
    logits: ArrayLike, targets: ArrayLike, *, ignore_index: int = IGNORE_INDEX
) -> tuple[float, FloatArray]:
    """Mean cross-entropy of ``logits`` against integer ``targets``, and its gradient.

    Parameters
    ----------
    logits : array_like, shape (..., V)
        Unnormalised scores over ``V`` classes (finite).
    targets : array_like of int, shape (...)
        Class of each position in ``[0, V)``, or ``ignore_index`` for a position that
        does not count.
    ignore_index : int, keyword-only
        Target value of the positions to leave out (default -100, as PyTorch).

    Returns
    -------
    loss : float
        Mean of ``logsumexp(z) - z_y`` over the counted positions.
    dlogits : ndarray, shape (..., V), dtype of ``logits``
        ``(softmax(z) - onehot(y)) / n_counted`` at counted positions, 0 elsewhere (inside
        :func:`own_gradient`, the counted rows come from the function given there).

    Raises
    ------
    ValueError
        If the shapes do not match, a target is out of range, no position is counted, or
        the logits are not finite.
    TypeError
        If ``targets`` is not an integer array.
    """
    z = np.asarray(logits)
    if z.dtype.kind != "f":
        raise TypeError(f"logits must be a floating-point array, got dtype {z.dtype}")
    y = np.asarray(targets)
    if y.dtype.kind not in "iu":
        raise TypeError(f"targets must be integer class ids, got dtype {y.dtype}")
    if z.ndim < 1 or y.shape != z.shape[:-1]:
        raise ValueError(
            f"targets must have the shape of logits without the class axis: logits {z.shape} "
            f"needs targets {z.shape[:-1]}, got {y.shape}"
        )
    if not np.isfinite(z).all():
        raise ValueError("logits contain NaN or infinity")
    V = z.shape[-1]
    counted = y != ignore_index
    bad = counted & ((y < 0) | (y >= V))
    if bad.any():
        raise ValueError(
            f"targets must lie in [0, {V}) or equal ignore_index={ignore_index}; "
            f"got {y[bad].reshape(-1)[:5].tolist()}"
        )
    n = int(counted.sum())
    if n == 0:
        raise ValueError(f"every target equals ignore_index={ignore_index}: nothing to average")
    z2, y2, c2 = z.reshape(-1, V), y.reshape(-1), counted.reshape(-1)
    rows = np.flatnonzero(c2)
    picked = z2[rows, y2[rows]]  # (n,) logit of each counted target
    loss = float(np.sum(logsumexp(z2[rows], axis=-1) - picked) / n)
    grad = np.zeros_like(z2)
    own = _OWN_GRADIENT.get()
    if own is not None:  # inside own_gradient(...): the learner's function, counted rows only
        grad[rows] = own(z2[rows], y2[rows])
        return loss, grad.reshape(z.shape)
    grad[rows] = softmax(z2[rows], axis=-1)
    grad[rows, y2[rows]] -= 1.0
    grad /= n
    return loss, grad.reshape(z.shape)
