"""Figures of the course. Every function draws with seaborn/matplotlib and returns the figure.

The attention heatmaps (one matrix, or one panel per head, with masked cells hatched) live in
:mod:`helpers.course.heatmaps` and are importable from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from helpers.course._style import WEIGHT_CMAP, figure_and_axes
from helpers.course.heatmaps import plot_attention_heatmap, plot_multihead_comparison

__all__ = [
    "WEIGHT_CMAP", "loglog_slope", "outputs_dir", "plot_attention_heatmap", "plot_curve_panels",
    "plot_curves", "plot_head_assignment", "plot_multihead_comparison",
    "plot_positional_encoding", "save_figure", "setup_notebook_figures",
]


def setup_notebook_figures() -> None:
    """Show figures in a notebook as images only.

    Jupyter's inline backend sends every figure with a ``<Figure size ...>``
    text version beside the PNG; that text is noise for a reader and for
    nbval, which compares text outputs. Call once in a notebook's set-up cell;
    outside IPython this does nothing.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is installed with Jupyter
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.display_formatter.formatters["text/plain"].for_type(
        Figure, lambda fig, printer, cycle: None
    )


def outputs_dir() -> Path:
    """The repository's ``outputs/`` folder (created if missing).

    Found by walking up from the working directory to the folder holding
    ``pyproject.toml``, so it is the same whether a notebook runs in
    JupyterLab, under nbval or in the HTML build (all start in ``notebooks/``).
    """
    here = Path.cwd().resolve()
    root = next((p for p in (here, *here.parents) if (p / "pyproject.toml").is_file()), here)
    out = root / "outputs"
    out.mkdir(exist_ok=True)
    return out


def save_figure(fig: Figure, filename: str, *, dpi: int = 120) -> Path:
    """Save ``fig`` as ``outputs/<filename>`` and return the path written."""
    path = outputs_dir() / filename
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


# Curves that share a colour in one panel differ in line style and marker; markers are hollow
# and grow along the list, so a curve lying exactly on another still shows around it.
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")


def curve_styles(labels: Sequence[str], colors: dict[str, str] | None = None) -> dict[str, dict]:
    """Matplotlib style of each curve label: colour, line style, marker.

    A label's *family* is its text before the first ``", "`` (``"scaled, mean"`` ->
    ``"scaled"``). Each family gets one colour, from ``colors`` when it names it, else the next
    unused colour of the default cycle (``colors`` is updated, so a figure can share it between
    panels). Within a family, curves differ in line style and marker.
    """
    colors = {} if colors is None else colors
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    rank: dict[str, int] = {}
    first_marker: dict[str, int] = {}
    styles = {}
    for i, label in enumerate(labels):
        family = label.split(", ", 1)[0]
        if family not in colors:
            unused = [c for c in cycle if c not in colors.values()] or cycle
            colors[family] = unused[0]
        k = rank.get(family, 0)
        rank[family] = k + 1
        base = first_marker.setdefault(family, i)
        styles[label] = {
            "color": colors[family], "linestyle": LINESTYLES[k % len(LINESTYLES)],
            "marker": MARKERS[(base + 2 * k) % len(MARKERS)],
            "markerfacecolor": "none", "markersize": 5 + 2 * k, "markeredgewidth": 1.4,
            "linewidth": 1.8, "zorder": 2 + k,
        }
    return styles


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
    styles: dict[str, dict] | None = None,
) -> Figure:
    """Line plot of several named curves over the same ``x``: label -> values ``(len(x),)``.

    Every curve gets its own colour, line style and hollow marker (:func:`curve_styles`),
    so overlapping curves stay visible; ``styles`` maps a label to matplotlib keyword
    arguments that override its style. Taught in notebook 01, section 10.
    """
    fig, ax = figure_and_axes(ax, figsize=(6, 4))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, y) in enumerate(curves.items()):
        style = {
            "color": cycle[i % len(cycle)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)], "markerfacecolor": "none",
            "markersize": 5 + 2 * (i % 3), "markeredgewidth": 1.4, "linewidth": 1.8,
            "zorder": 2 + i,
            **(styles or {}).get(label, {}),
        }
        ax.plot(np.asarray(x), np.asarray(y), label=label, **style)
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


def plot_curve_panels(
    x: ArrayLike,
    panels: dict[str, dict[str, ArrayLike]],
    *,
    xlabel: str,
    logx: bool = False,
    logy: Sequence[str] = (),
    suptitle: str = "",
    ncols: int = 2,
    colors: dict[str, str] | None = None,
) -> Figure:
    """Grid of line plots over the same ``x``: one panel per entry of ``panels``.

    ``panels`` maps a panel's y-axis label to its curves (label -> values of
    shape ``(len(x),)``), drawn with :func:`plot_curves`. Panels whose label is
    in ``logy`` get a logarithmic y axis; ``logx`` applies to every panel.
    A colour means one thing in the whole figure: the part of a curve's label before the
    first ``", "`` (``"scaled, median"`` and ``"scaled, mean"`` are both ``"scaled"``);
    curves of one colour in a panel differ in line style and marker (:func:`curve_styles`).
    ``colors`` may fix the colour of some of these names. Taught in notebook 02, section 11.
    """
    n = len(panels)
    if n == 0:
        raise ValueError("panels is empty: give at least one {ylabel: {label: values}}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.6 * nrows), squeeze=False)
    shared = dict(colors or {})
    for ax, (ylabel, curves) in zip(axes.flat, panels.items(), strict=False):
        plot_curves(x, curves, xlabel=xlabel, ylabel=ylabel, logx=logx,
                    logy=ylabel in logy, ax=ax, styles=curve_styles(list(curves), shared))
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_head_assignment(
    assignments: dict[str, ArrayLike],
    *,
    title: str = "Which head receives each entry of (seq, d_model)",
) -> Figure:
    """Side-by-side grids ``(seq, d_model)``; cell ``[t, f]`` is the head that gets ``x[t, f]``.

    ``assignments`` maps a panel title to an integer array ``(seq, d_model)``
    of head indices. A correct head split gives vertical bands (each head owns
    a block of features at every position); reshaping without the transpose
    gives horizontal bands (each head owns whole positions).
    """
    grids = {k: np.asarray(v) for k, v in assignments.items()}
    for name, g in grids.items():
        if g.ndim != 2 or g.dtype.kind not in "iu":
            raise ValueError(f"assignment {name!r} must be an integer array (seq, d_model), "
                             f"got dtype {g.dtype} and shape {g.shape}")
    num_heads = max(int(g.max()) for g in grids.values()) + 1
    cmap = sns.color_palette("Set2", num_heads)
    first = next(iter(grids.values()))
    fig, axes = plt.subplots(
        1, len(grids), squeeze=False,
        figsize=(1.2 + 0.42 * first.shape[1] * len(grids), 1.2 + 0.42 * first.shape[0]),
    )
    for ax, (name, g) in zip(axes.flat, grids.items(), strict=True):
        sns.heatmap(g, ax=ax, cmap=cmap, vmin=-0.5, vmax=num_heads - 0.5, cbar=False,
                    annot=True, fmt="d", annot_kws={"size": 8}, linewidths=0.5, square=True)
        ax.set_title(name)
        ax.set_xlabel("feature f")
        ax.set_ylabel("position t")
        ax.tick_params(axis="y", rotation=0)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_positional_encoding(
    pe: ArrayLike,
    *,
    title: str = "Sinusoidal positional encodings",
    ax: plt.Axes | None = None,
) -> Figure:
    """Heatmap of positional encodings ``(L, d_model)``: positions down, features across.

    Values in ``[-1, 1]`` on a diverging colour map: the fast-turning pairs on
    the left change from one position to the next, the slow ones on the right
    barely move over the plotted positions.
    """
    p = np.asarray(pe, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"pe must have shape (L, d_model), got {p.shape}")
    fig, ax = figure_and_axes(ax, figsize=(8, 4))
    sns.heatmap(p, ax=ax, cmap="RdBu_r", vmin=-1.0, vmax=1.0, center=0.0,
                xticklabels=8, yticklabels=max(1, p.shape[0] // 10),
                cbar_kws={"label": "PE(pos, j)"})
    ax.set_xlabel("feature j  (pairs 2i, 2i+1 = sin, cos)")
    ax.set_ylabel("position pos")
    ax.set_title(title)
    ax.tick_params(axis="y", rotation=0)
    fig.tight_layout()
    return fig


def loglog_slope(x: ArrayLike, y: ArrayLike) -> float:
    """Least-squares slope of ``log y`` against ``log x``: the exponent ``p`` of ``y ~ x^p``.

    ``x`` and ``y`` are positive arrays of the same shape ``(n,)``, ``n >= 2``.
    Taught in notebook 06, section 7; :func:`helpers.course.cost_plots.fit_power_law` fits
    over a range of ``x`` and keeps the intercept too.
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1 or xs.size < 2:
        raise ValueError(
            f"x and y must both have shape (n,) with n >= 2, got {xs.shape} and {ys.shape}"
        )
    if (xs <= 0).any() or (ys <= 0).any():
        raise ValueError("x and y must be positive to take logarithms")
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])
