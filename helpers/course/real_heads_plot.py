"""Figures of the pretrained model's heads (notebook 06, "Heads nobody engineered").

* :func:`plot_head_map` -- every head of every layer as one cell, coloured by its label
  (:func:`helpers.pretrained.head_patterns.classify_heads`) and annotated with that label's weight.
* :func:`plot_head_grid` -- the attention matrices of chosen heads on one text, with the
  tokens on both axes, a shared colour bar and a title that names the head and its pattern.

Both take 0-based ``(layer, head)`` indices, as :mod:`helpers.pretrained.head_patterns` returns
them, and *label* layers and heads from 1, as every figure of the course numbers heads
1..H: index ``(0, 2)`` is drawn as "layer 1 · head 3".
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from numpy.typing import ArrayLike

from helpers.course.plotting import WEIGHT_CMAP


def plot_head_map(
    labels: ArrayLike,
    values: ArrayLike,
    *,
    classes: Sequence[str],
    title: str = "What every head attends to",
) -> Figure:
    """Grid of ``(num_layers, h)`` cells: colour = label, number = its weight.

    Parameters
    ----------
    labels : array of str, shape (num_layers, h)
        One label per head, each one of ``classes``.
    values : array of float, shape (num_layers, h)
        The number written in each cell (the labelled bucket's mean weight).
    classes : sequence of str
        Every label that may appear, in legend order (one colour each).

    Taught in notebook 06, "Heads nobody engineered".
    """
    lab = np.asarray(labels)
    val = np.asarray(values, dtype=float)
    if lab.ndim != 2 or val.shape != lab.shape:
        raise ValueError(f"labels and values must both have shape (num_layers, h), got "
                         f"{lab.shape} and {val.shape}")
    unknown = sorted(set(lab.ravel().tolist()) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not in classes {list(classes)}")
    codes = np.vectorize(list(classes).index)(lab)  # (layers, h)
    colours = sns.color_palette("Set2", len(classes))
    fig, ax = plt.subplots(figsize=(1.2 + 0.62 * lab.shape[1], 1.3 + 0.55 * lab.shape[0]))
    sns.heatmap(codes, ax=ax, cmap=ListedColormap(colours), vmin=-0.5,
                vmax=len(classes) - 0.5, cbar=False, annot=val, fmt=".2f",
                annot_kws={"size": 8}, linewidths=0.5, linecolor="white")
    ax.set_xticklabels([str(h + 1) for h in range(lab.shape[1])])
    ax.set_yticklabels([str(layer + 1) for layer in range(lab.shape[0])])
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.tick_params(axis="y", rotation=0)
    ax.legend(handles=[Patch(color=c, label=k) for c, k in zip(colours, classes, strict=True)],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_head_grid(
    attentions: ArrayLike,
    tokens: Sequence[str],
    heads: Sequence[tuple[int, int]],
    *,
    titles: Sequence[str] | None = None,
    ncols: int = 3,
    suptitle: str = "",
) -> Figure:
    """Heatmaps of the weights of ``heads`` on one text: queries down, keys across.

    Parameters
    ----------
    attentions : array, shape (num_layers, h, n, n)
        Every layer's weights for one text of ``n`` tokens (no padding).
    tokens : sequence of n str
    heads : sequence of (layer, head) pairs, 0-based
    titles : sequence of str, optional
        One title per panel (default ``"layer l · head k"``, counted from 1).

    Taught in notebook 06, "Heads nobody engineered".
    """
    a = np.asarray(attentions, dtype=float)
    if a.ndim != 4 or a.shape[2:] != (len(tokens), len(tokens)):
        raise ValueError(f"attentions must have shape (num_layers, h, {len(tokens)}, "
                         f"{len(tokens)}) for {len(tokens)} tokens, got {a.shape}")
    if not heads:
        raise ValueError("heads is empty: give at least one (layer, head) pair")
    for layer, head in heads:
        if not (0 <= layer < a.shape[0] and 0 <= head < a.shape[1]):
            raise ValueError(f"(layer, head) = ({layer}, {head}) is outside "
                             f"{a.shape[0]} layers x {a.shape[1]} heads")
    if titles is not None and len(titles) != len(heads):
        raise ValueError(f"titles has {len(titles)} entries for {len(heads)} heads")
    ncols = min(ncols, len(heads))
    nrows = -(-len(heads) // ncols)
    size = 0.9 + 0.32 * len(tokens)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(heads):
            ax.axis("off")
            continue
        layer, head = heads[i]
        sns.heatmap(a[layer, head], ax=ax, vmin=0.0, vmax=1.0, cmap=WEIGHT_CMAP, square=True,
                    cbar=False, xticklabels=list(tokens), yticklabels=list(tokens))
        ax.set_title(titles[i] if titles is not None else f"layer {layer + 1} · head {head + 1}",
                     fontsize=10)
        ax.tick_params(axis="x", rotation=90, labelsize=8)
        ax.tick_params(axis="y", rotation=0, labelsize=8)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    mappable = axes.flat[0].collections[0]  # one colour scale, 0..1, for every panel
    fig.colorbar(mappable, ax=list(axes.flat), shrink=0.8, label="attention weight")
    return fig
