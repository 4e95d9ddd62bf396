"""Heatmaps of attention weights: one matrix, or a grid with one panel per head.

Queries run down the rows, keys across the columns; the colour of a cell is its weight on one
scale from 0 to 1 (one colour bar per figure). A grid of heads whose weights all stay small (an
untrained layer) may be drawn on a shorter scale, 0 to ``vmax``, which its colour bar states,
with the weight of a uniform row marked on the bar for reference. Cells a mask blocks are drawn
grey and hatched, labelled "masked" under the colour bar, so they cannot be mistaken for tiny
weights. Heads are numbered from 1, as in the formulas of the notebooks (``h = 1, ..., H``).

Both functions are re-exported by :mod:`helpers.course.plotting`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from helpers.course._style import (
    WEIGHT_CMAP,
    check_mask,
    draw_masked_background,
    figure_and_axes,
    masked_patch,
)

QUERY_LABEL = "query (attending)"
KEY_LABEL = "key (attended to)"
TICK_SIZE = 10
MAX_TICKS = 16  # more tokens than this: label every k-th one


def _ticks(tokens: Sequence[str] | None, n: int, name: str) -> list[str] | bool:
    if tokens is None:
        return [str(i) for i in range(n)] if n <= MAX_TICKS else False
    labels = [str(t) for t in tokens]
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} entries but the weights have {n} "
                         f"{'rows' if 'query' in name else 'columns'}")
    step = -(-n // MAX_TICKS)
    return [t if i % step == 0 else "" for i, t in enumerate(labels)]


def _legend_under_colorbar(cbar_ax: plt.Axes) -> None:
    cbar_ax.legend(handles=[masked_patch()], loc="upper center", bbox_to_anchor=(0.5, -0.03),
                   frameon=False, handlelength=1.4, handleheight=1.4, fontsize=TICK_SIZE)


def plot_attention_heatmap(
    weights: ArrayLike,
    query_tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    *,
    title: str = "Attention weights",
    annot: bool = True,
    mask: ArrayLike | None = None,
    ax: plt.Axes | None = None,
) -> Figure:
    """Heatmap of one attention matrix ``(L_q, L_k)``: queries down, keys across.

    ``key_tokens`` defaults to ``query_tokens`` (self-attention). Values are annotated with
    two decimals when ``annot`` is true. ``mask`` (boolean, True = may attend, broadcastable
    to ``(L_q, L_k)``) draws the blocked cells grey and hatched, with a "masked" legend entry;
    a blocked cell must have weight 0 (``ValueError`` otherwise: an inverted mask). Returns
    the figure. Taught in notebook 02, section 6 (masks: notebook 03, section 1).
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2:
        raise ValueError(f"weights must have shape (L_q, L_k), got {w.shape}")
    allowed = check_mask(mask, w)
    key_tokens = query_tokens if key_tokens is None else key_tokens
    fig, ax = figure_and_axes(ax, figsize=(1.4 + 0.75 * w.shape[1], 0.9 + 0.6 * w.shape[0]))
    if allowed is not None:
        draw_masked_background(ax, w.shape)
    sns.heatmap(
        w, ax=ax, vmin=0.0, vmax=1.0, cmap=WEIGHT_CMAP, square=True,
        mask=None if allowed is None else ~allowed,
        annot=annot, fmt=".2f", annot_kws={"size": 8},
        xticklabels=_ticks(key_tokens, w.shape[1], "key_tokens"),
        yticklabels=_ticks(query_tokens, w.shape[0], "query_tokens"),
        cbar_kws={"label": "attention weight", "shrink": 0.8},
    )
    ax.set_xlabel(KEY_LABEL)
    ax.set_ylabel(QUERY_LABEL)
    ax.set_title(title)
    ax.tick_params(axis="y", rotation=0)
    if allowed is not None and not allowed.all():
        _legend_under_colorbar(ax.collections[0].colorbar.ax)
    fig.tight_layout()
    return fig


def plot_multihead_comparison(
    weights: ArrayLike,
    tokens: Sequence[str] | None = None,
    *,
    ncols: int = 4,
    title: str = "Attention weights of every head",
    annot: bool = False,
    mask: ArrayLike | None = None,
    key_tokens: Sequence[str] | None = None,
    head_labels: Sequence[str] | None = None,
    vmax: float = 1.0,
    mark_uniform: bool = False,
) -> Figure:
    """Grid of heatmaps, one per head, for weights ``(H, L_q, L_k)`` of one sequence.

    All panels share one colour scale, drawn once as a colour bar; the rows are labelled as
    queries and the columns as keys. Panels are titled "head 1" ... "head H" unless
    ``head_labels`` (``H`` strings) says otherwise. ``tokens`` label the queries (and the keys,
    unless ``key_tokens`` is given). ``mask``: boolean, True = may attend, broadcastable to
    ``(H, L_q, L_k)``; blocked cells are grey and hatched ("masked").

    The colour scale runs from 0 to ``vmax`` (default 1, the whole range of a weight). A
    ``vmax`` below 1 shows the differences between weights that all stay small; it must be at
    least the largest weight (no cell is clipped), and the colour bar's label states the scale.
    ``mark_uniform`` draws the weight of a uniform row, ``1/L_k``, on the colour bar, so a
    reader can tell how far a head is from spreading its weight evenly. Taught in notebook 04,
    section 5 (notebook 03, section 9 for ALiBi; notebook 06 for real inputs).
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 3:
        raise ValueError(f"weights must have shape (num_heads, L_q, L_k), got {w.shape}")
    allowed = check_mask(mask, w)
    h, l_q, l_k = w.shape
    if not 0.0 < vmax <= 1.0:
        raise ValueError(f"vmax must be in (0, 1], got {vmax}")
    if w.size and np.nanmax(w) > vmax + 1e-12:
        raise ValueError(f"vmax={vmax} is below the largest weight {np.nanmax(w):.3g}: "
                         "those cells would all get the darkest colour; raise vmax")
    if head_labels is None:
        head_labels = [f"head {i + 1}" for i in range(h)]
    elif len(head_labels) != h:
        raise ValueError(f"head_labels has {len(head_labels)} entries for {h} heads")
    key_tokens = tokens if key_tokens is None else key_tokens
    xticks = _ticks(key_tokens, l_k, "key_tokens")
    yticks = _ticks(tokens, l_q, "tokens")
    ncols = max(1, min(ncols, h))
    nrows = -(-h // ncols)
    panel = 0.75 + 0.2 * max(l_q, l_k)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                             figsize=(1.6 + panel * ncols, 0.9 + panel * nrows))
    for i, ax in enumerate(axes.flat):
        if i >= h:
            ax.axis("off")
            continue
        if allowed is not None:
            draw_masked_background(ax, (l_q, l_k))
        sns.heatmap(
            w[i], ax=ax, vmin=0.0, vmax=vmax, cmap=WEIGHT_CMAP, square=True, cbar=False,
            mask=None if allowed is None else ~allowed[i],
            annot=annot, fmt=".2f", annot_kws={"size": 7},
            xticklabels=xticks if i // ncols == nrows - 1 or i + ncols >= h else False,
            yticklabels=yticks if i % ncols == 0 else False,
        )
        ax.set_title(head_labels[i], fontsize=TICK_SIZE + 1)
        ax.tick_params(axis="x", rotation=90, labelsize=TICK_SIZE)
        ax.tick_params(axis="y", rotation=0, labelsize=TICK_SIZE)
    label = "attention weight" if vmax == 1.0 else f"attention weight (scale 0 to {vmax:g}, not 1)"
    bar = fig.colorbar(ScalarMappable(norm=Normalize(0.0, vmax), cmap=WEIGHT_CMAP),
                       ax=axes, shrink=0.85, label=label)
    if mark_uniform and l_k:
        bar.ax.axhline(1.0 / l_k, color="#1f77b4", linewidth=2.0)
        bar.ax.text(-0.15, 1.0 / l_k, f"uniform\n1/{l_k}", transform=bar.ax.get_yaxis_transform(),
                    ha="right", va="center", fontsize=TICK_SIZE - 1, color="#1f77b4")
    if allowed is not None and not allowed.all():
        _legend_under_colorbar(bar.ax)
    fig.supxlabel(KEY_LABEL, fontsize=TICK_SIZE + 1)
    fig.supylabel(QUERY_LABEL, fontsize=TICK_SIZE + 1)
    fig.suptitle(title)
    return fig
