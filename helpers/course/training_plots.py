"""Figures of notebook 08 (training): loss curves, weights before and after, the gap to PyTorch.

Each function draws with matplotlib/seaborn and returns the figure, like
:mod:`helpers.course.plotting`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from numpy.typing import ArrayLike

from helpers.course.plotting import WEIGHT_CMAP

__all__ = ["plot_loss_curves", "plot_relative_gap", "plot_weights_before_after"]


def plot_loss_curves(curves: dict[str, ArrayLike], *, title: str = "Training loss",
                     xlabel: str = "step", ylabel: str = "cross-entropy (nats)",
                     reference: float | None = None, reference_label: str = "") -> Figure:
    """Loss per step of one or more runs on a log scale; ``reference`` draws a dashed level."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for label, y in curves.items():
        y = np.asarray(y, dtype=float)
        ax.plot(np.arange(y.size), y, label=label, linewidth=1.4)
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", linewidth=1, label=reference_label)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_weights_before_after(before: ArrayLike, after: ArrayLike, tokens: Sequence[str], *,
                              answer_rows: Sequence[int] = (), source_cols: Sequence[int] = (),
                              titles: tuple[str, str] = ("before training", "after training"),
                              ) -> Figure:
    """Two attention matrices ``(L, L)`` side by side, queries down and keys across.

    ``tokens`` label both axes. Each pair ``(answer_rows[i], source_cols[i])`` is outlined:
    the cells a perfect solution would put all of a row's weight on.
    """
    mats = [np.asarray(before, dtype=float), np.asarray(after, dtype=float)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.4))
    for ax, w, title in zip(axes, mats, titles, strict=True):
        sns.heatmap(w, ax=ax, cmap=WEIGHT_CMAP, vmin=0.0, vmax=1.0, square=True,
                    xticklabels=list(tokens), yticklabels=list(tokens),
                    cbar_kws={"label": "attention weight", "shrink": 0.8})
        for row, col in zip(answer_rows, source_cols, strict=True):
            ax.add_patch(Rectangle((col, row), 1, 1, fill=False, edgecolor="tab:blue", lw=1.5))
        ax.set_xlabel("key (attended to)")
        ax.set_ylabel("query (position predicting the next token)")
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=0)
        ax.tick_params(axis="y", labelrotation=0)
    fig.tight_layout()
    return fig


def plot_relative_gap(gaps: dict[str, ArrayLike], *, tolerance: float | None = None,
                      title: str = "NumPy against PyTorch, step by step") -> Figure:
    """Relative gaps per step on a log scale (zeros drawn at the axis floor), with a limit line."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    floor = 1e-17
    for label, g in gaps.items():
        g = np.maximum(np.asarray(g, dtype=float), floor)
        ax.plot(np.arange(g.size), g, label=label, linewidth=1.2)
    if tolerance is not None:
        ax.axhline(tolerance, color="tab:red", linestyle="--", linewidth=1,
                   label=f"asserted limit {tolerance:g}")
    ax.set_yscale("log")
    ax.set_ylim(floor, 1e-6 if tolerance is None else max(1e-6, 100 * tolerance))
    ax.set_xlabel("step")
    ax.set_ylabel("relative difference")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
