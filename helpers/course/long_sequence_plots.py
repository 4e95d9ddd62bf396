"""Figures of notebook 09 (positions and long sequences): score tables over positions, and how far
random-feature attention is from the softmax, next to the uniform-weights yardstick."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from helpers.course.plotting import LINESTYLES, MARKERS


def plot_offset_tables(tables: dict[str, ArrayLike], *, title: str = "") -> Figure:
    """Heatmaps of score tables ``(P, P)`` side by side: entry ``[m, n]`` is the score of a query at
    position ``m`` against a key at position ``n``.

    A table that depends on the offset ``m - n`` only is constant along every diagonal, which
    shows as stripes parallel to the main diagonal. Each panel has its own diverging colour
    scale centred on 0. Taught in notebook 09, section 3.
    """
    if not tables:
        raise ValueError("tables must hold at least one (P, P) table")
    arrays = {name: np.asarray(t, dtype=float) for name, t in tables.items()}
    for name, t in arrays.items():
        if t.ndim != 2:
            raise ValueError(f"table {name!r} must have shape (P, P), got {t.shape}")
    fig, axes = plt.subplots(1, len(arrays), figsize=(5.2 * len(arrays), 4.4), squeeze=False)
    for ax, (name, t) in zip(axes[0], arrays.items(), strict=True):
        limit = float(np.abs(t).max()) or 1.0
        sns.heatmap(t, ax=ax, cmap="RdBu_r", vmin=-limit, vmax=limit, center=0.0, square=True,
                    xticklabels=10, yticklabels=10, cbar_kws={"label": "score", "shrink": 0.8})
        ax.set_xlabel("key position n")
        ax.set_ylabel("query position m")
        ax.set_title(name)
        ax.tick_params(axis="y", rotation=0)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_feature_errors(
    num_features: ArrayLike,
    errors: dict[str, ArrayLike],
    yardsticks: dict[str, float],
    *,
    curve_name: str = "random features",
    yardstick_name: str = "uniform weights",
    xlabel: str = "number of random features r",
    ylabel: str = "mean total-variation distance to the softmax weights",
    title: str = "",
) -> Figure:
    """Error curves against the number of features, each with a horizontal yardstick line.

    ``errors`` maps a label (e.g. ``"σ = 0.5"``) to errors of shape ``(len(num_features),)``;
    ``yardsticks`` maps the same label to one number (e.g. the distance of uniform weights), drawn
    as a dotted line in the curve's colour, so that the reader sees where the curve crosses it.
    Legend entries read ``"{curve_name}, {label}"`` and ``"{yardstick_name}, {label}"``.
    Log-log axes.
    Taught in notebook 09, section 10.
    """
    r = np.asarray(num_features, dtype=float)
    if set(yardsticks) - set(errors):
        raise ValueError(f"every yardstick needs a curve; curves are {sorted(errors)}")
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, err) in enumerate(errors.items()):
        color = cycle[i % len(cycle)]
        ax.plot(r, np.asarray(err, dtype=float), color=color, marker=MARKERS[i % len(MARKERS)],
                linestyle=LINESTYLES[0], markerfacecolor="none", label=f"{curve_name}, {label}")
        if label in yardsticks:
            ax.axhline(yardsticks[label], color=color, linestyle=":", linewidth=1.5,
                       label=f"{yardstick_name}, {label}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
