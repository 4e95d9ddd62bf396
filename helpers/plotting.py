"""Figures of the course. Every function draws with seaborn/matplotlib and returns the figure."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

WEIGHT_CMAP = "rocket_r"


def plot_attention_heatmap(
    weights: ArrayLike,
    query_tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    *,
    title: str = "Attention weights",
    annot: bool = True,
    ax: plt.Axes | None = None,
) -> Figure:
    """Heatmap of one attention matrix ``(L_q, L_k)``: queries down, keys across.

    ``key_tokens`` defaults to ``query_tokens`` (self-attention). Values are
    annotated with two decimals when ``annot`` is true. Returns the figure.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2:
        raise ValueError(f"weights must have shape (L_q, L_k), got {w.shape}")
    key_tokens = query_tokens if key_tokens is None else key_tokens
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 + 0.75 * w.shape[1], 0.8 + 0.6 * w.shape[0]))
    else:
        fig = ax.figure
    sns.heatmap(
        w, ax=ax, vmin=0.0, vmax=1.0, cmap=WEIGHT_CMAP, square=True,
        annot=annot, fmt=".2f", annot_kws={"size": 8},
        xticklabels=list(key_tokens) if key_tokens is not None else "auto",
        yticklabels=list(query_tokens) if query_tokens is not None else "auto",
        cbar_kws={"label": "weight", "shrink": 0.8},
    )
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    ax.set_title(title)
    ax.tick_params(axis="y", rotation=0)
    fig.tight_layout()
    return fig


def plot_multihead_comparison(
    weights: ArrayLike,
    tokens: Sequence[str] | None = None,
    *,
    ncols: int = 4,
    title: str = "Attention weights of every head",
    annot: bool = False,
) -> Figure:
    """Grid of heatmaps, one per head, for weights ``(h, L_q, L_k)`` of one sequence."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 3:
        raise ValueError(f"weights must have shape (num_heads, L_q, L_k), got {w.shape}")
    h = w.shape[0]
    ncols = min(ncols, h)
    nrows = -(-h // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.0 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= h:
            ax.axis("off")
            continue
        sns.heatmap(
            w[i], ax=ax, vmin=0.0, vmax=1.0, cmap=WEIGHT_CMAP, square=True, cbar=False,
            annot=annot, fmt=".2f", annot_kws={"size": 6},
            xticklabels=list(tokens) if tokens is not None else False,
            yticklabels=list(tokens) if tokens is not None else False,
        )
        ax.set_title(f"head {i}")
        ax.tick_params(axis="x", rotation=90, labelsize=7)
        ax.tick_params(axis="y", rotation=0, labelsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_curves(
    x: ArrayLike,
    curves: dict[str, ArrayLike],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    ax: plt.Axes | None = None,
) -> Figure:
    """Line plot of several named curves over the same ``x`` (markers on the points)."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    for label, y in curves.items():
        ax.plot(np.asarray(x), np.asarray(y), marker="o", label=label)
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
