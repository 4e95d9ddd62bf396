"""The training loop of notebook 08 (section 9): zero the gradients, forward, loss, backward,
step."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from helpers.training.losses import IGNORE_INDEX, softmax_cross_entropy
from helpers.training.optim import Optimizer
from helpers.training.tiny_transformer import TinyTransformer

__all__ = ["StepFunction", "accuracy", "train", "train_step"]


def train_step(model: TinyTransformer, optimizer: Optimizer, inputs: np.ndarray,
               targets: np.ndarray) -> float:
    """One update of ``model`` on a batch; returns the batch's loss *before* the update.

    ``inputs (B, L)`` are token ids, ``targets (B, L)`` the next tokens (``-100``: no target).
    The gradients are zeroed first: they accumulate across backward passes otherwise.
    """
    model.zero_grad()
    logits = model.forward(inputs)  # (B, L, V)
    loss, dlogits = softmax_cross_entropy(logits, targets)
    model.backward(dlogits)
    optimizer.step(model.grads)
    return loss


StepFunction = Callable[[TinyTransformer, Optimizer, np.ndarray, np.ndarray], float]


def train(model: TinyTransformer, optimizer: Optimizer,
          batches: Iterable[tuple[np.ndarray, np.ndarray]], *,
          lr_lambda: Callable[[int], float] | None = None,
          step: StepFunction = train_step) -> list[float]:
    """Run ``step`` over every ``(inputs, targets)`` batch; the losses, one per step.

    ``lr_lambda(t)`` (optional) scales the optimizer's learning rate at step ``t = 0, 1, ...``
    (as ``torch.optim.lr_scheduler.LambdaLR``); the base rate is restored at the end.
    ``step(model, optimizer, inputs, targets)`` takes one update and returns the batch's loss
    (default :func:`train_step`; notebook 08 passes the learner's own step once it is checked).
    A returned loss that is not a finite number raises ``ValueError`` naming the step.
    """
    base_lr = optimizer.lr
    losses = []
    try:
        for t, (inputs, targets) in enumerate(batches):
            if lr_lambda is not None:
                optimizer.lr = base_lr * lr_lambda(t)
            loss = step(model, optimizer, inputs, targets)
            if isinstance(loss, bool) or not isinstance(loss, (int, float, np.floating)) or (
                    not np.isfinite(loss)):
                raise ValueError(f"step {t}: {getattr(step, '__name__', 'step')} returned "
                                 f"{loss!r}; expected the batch's loss, a finite number")
            losses.append(float(loss))
    finally:
        optimizer.lr = base_lr
    return losses


def accuracy(model: TinyTransformer, inputs: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of the counted targets (not ``-100``) that the model's argmax predicts."""
    predicted = model.forward(inputs).argmax(axis=-1)  # (B, L)
    counted = np.asarray(targets) != IGNORE_INDEX
    if not counted.any():
        raise ValueError("targets count no position (all equal -100)")
    return float((predicted[counted] == np.asarray(targets)[counted]).mean())
