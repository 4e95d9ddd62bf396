"""Measured cost against the sequence length: power-law fits on log-log axes (notebooks 06, 09).

One fit per curve, computed once by :func:`fit_power_law` and used by the text and by the
figure's legend alike, so that the two can never report different exponents.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from helpers.course._style import figure_and_axes
from helpers.course.plotting import loglog_slope


@dataclass(frozen=True)
class PowerLawFit:
    """``y ≈ exp(intercept) · x**slope``, fitted by least squares on ``log y`` against ``log x``
    over the points with ``x >= x_min``.

    Taught in notebook 06, section 7.
    """

    slope: float
    intercept: float
    x_min: float

    def __call__(self, x: ArrayLike) -> np.ndarray:
        return np.exp(self.intercept) * np.asarray(x, dtype=float) ** self.slope


def fit_power_law(x: ArrayLike, y: ArrayLike, *, x_min: float | None = None) -> PowerLawFit:
    """Fit ``y ~ x^p`` on log-log axes over the points with ``x >= x_min`` (all by default).

    ``x`` and ``y`` positive, shape ``(n,)``; at least two points must remain.
    Taught in notebook 06, section 7 (and used again in notebook 09's cost comparison).
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must both have shape (n,), got {xs.shape} and {ys.shape}")
    lower = float(xs.min()) if x_min is None else float(x_min)
    keep = xs >= lower
    slope = loglog_slope(xs[keep], ys[keep])  # checks n >= 2 and positivity
    intercept = float(np.mean(np.log(ys[keep]) - slope * np.log(xs[keep])))
    return PowerLawFit(slope, intercept, lower)


def plot_loglog_fit(
    x: ArrayLike,
    curves: dict[str, ArrayLike],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    fits: dict[str, PowerLawFit] | None = None,
    ax: plt.Axes | None = None,
) -> Figure:
    """Measurements on log-log axes, each with its fitted power law ``y ~ x^p``.

    ``curves`` maps a label to positive values of shape ``(len(x),)``. ``fits`` maps a label to
    its :class:`PowerLawFit` (the one the text reports); a curve without one is fitted over all
    its points. The legend shows each exponent (and the range it was fitted on, when that is
    not every point); the fitted line is drawn dashed, over that range, in the curve's colour.

    Taught in notebook 06, sections 7–8, and notebook 09, section 11.
    """
    xs = np.asarray(x, dtype=float)
    fig, ax = figure_and_axes(ax, figsize=(6, 4))
    for label, y in curves.items():
        ys = np.asarray(y, dtype=float)
        fit = (fits or {}).get(label) or fit_power_law(xs, ys)
        span = xs[xs >= fit.x_min]
        where = "" if fit.x_min <= xs.min() else f", N ≥ {fit.x_min:g}"
        (points,) = ax.plot(xs, ys, marker="o", linestyle="none",
                            label=f"{label}: slope {fit.slope:.2f}{where}")
        ax.plot(span, fit(span), linestyle="--", color=points.get_color())
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
