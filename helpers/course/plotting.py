"""Figures of the course. Every function draws with seaborn/matplotlib and returns the figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

WEIGHT_CMAP = "rocket_r"


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


def _figure_and_axes(ax: plt.Axes | None, figsize: tuple[float, float]) -> tuple[Figure, plt.Axes]:
    """Draw into ``ax`` if given (and return its figure), else into a new figure."""
    if ax is None:
        return plt.subplots(figsize=figsize)
    return ax.figure, ax


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
    fig, ax = _figure_and_axes(ax, figsize=(1.0 + 0.75 * w.shape[1], 0.8 + 0.6 * w.shape[0]))
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
    fig, ax = _figure_and_axes(ax, figsize=(6, 4))
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


def plot_curve_panels(
    x: ArrayLike,
    panels: dict[str, dict[str, ArrayLike]],
    *,
    xlabel: str,
    logx: bool = False,
    logy: Sequence[str] = (),
    suptitle: str = "",
    ncols: int = 2,
) -> Figure:
    """Grid of line plots over the same ``x``: one panel per entry of ``panels``.

    ``panels`` maps a panel's y-axis label to its curves (label -> values of
    shape ``(len(x),)``), drawn with :func:`plot_curves`. Panels whose label is
    in ``logy`` get a logarithmic y axis; ``logx`` applies to every panel.
    """
    n = len(panels)
    if n == 0:
        raise ValueError("panels is empty: give at least one {ylabel: {label: values}}")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (ylabel, curves) in zip(axes.flat, panels.items(), strict=False):
        plot_curves(x, curves, xlabel=xlabel, ylabel=ylabel, logx=logx,
                    logy=ylabel in logy, ax=ax)
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
    fig, ax = _figure_and_axes(ax, figsize=(8, 4))
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
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1 or xs.size < 2:
        raise ValueError(
            f"x and y must both have shape (n,) with n >= 2, got {xs.shape} and {ys.shape}"
        )
    if (xs <= 0).any() or (ys <= 0).any():
        raise ValueError("x and y must be positive to take logarithms")
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def plot_loglog_fit(
    x: ArrayLike,
    curves: dict[str, ArrayLike],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    ax: plt.Axes | None = None,
) -> Figure:
    """Measurements on log-log axes, each with its fitted power law ``y ~ x^p``.

    ``curves`` maps a label to positive values of shape ``(len(x),)``; the
    legend shows each fitted exponent ``p`` (:func:`loglog_slope`) and the
    fitted line is drawn dashed in the same colour.
    """
    xs = np.asarray(x, dtype=float)
    fig, ax = _figure_and_axes(ax, figsize=(6, 4))
    for label, y in curves.items():
        ys = np.asarray(y, dtype=float)
        slope = loglog_slope(xs, ys)
        intercept = float(np.mean(np.log(ys) - slope * np.log(xs)))
        (points,) = ax.plot(xs, ys, marker="o", linestyle="none",
                            label=f"{label}: slope {slope:.2f}")
        ax.plot(xs, np.exp(intercept) * xs**slope, linestyle="--", color=points.get_color())
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
