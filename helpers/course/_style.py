"""Colours and small drawing helpers shared by the course's figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns  # noqa: F401  (registers the "rocket" colour maps with matplotlib)
from matplotlib.colors import Colormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

WEIGHT_CMAP = "rocket_r"
"""Colour map of attention weights in [0, 1]: light for small weights, dark for large ones."""

MASKED_FACE = "#cfcfcf"
MASKED_EDGE = "#7f7f7f"
MASKED_HATCH = "///"
MASKED_LABEL = "masked"


def weight_colormap() -> Colormap:
    return plt.get_cmap(WEIGHT_CMAP)


def figure_and_axes(ax: plt.Axes | None, figsize: tuple[float, float]) -> tuple[Figure, plt.Axes]:
    """Draw into ``ax`` if given (and return its figure), else into a new figure."""
    if ax is None:
        return plt.subplots(figsize=figsize)
    return ax.figure, ax


def masked_patch() -> Patch:
    """Legend entry for masked cells: grey and hatched, unlike any weight's colour."""
    return Patch(facecolor=MASKED_FACE, edgecolor=MASKED_EDGE, hatch=MASKED_HATCH,
                 label=MASKED_LABEL)


def draw_masked_background(ax: plt.Axes, shape: tuple[int, int]) -> None:
    """Grey hatching under a heatmap of ``shape`` ``(L_q, L_k)``; shows where cells are left out."""
    ax.add_patch(Rectangle((0, 0), shape[1], shape[0], facecolor=MASKED_FACE,
                           edgecolor=MASKED_EDGE, hatch=MASKED_HATCH, linewidth=0, zorder=0))


def check_mask(mask: object, weights: np.ndarray) -> np.ndarray | None:
    """``mask`` as a boolean array of ``weights``' shape (True = may attend), or None.

    ``weights`` has shape ``(..., L_q, L_k)``; ``mask`` must be boolean and broadcast to it.
    A masked cell must have weight 0: a mask of the wrong polarity is an error, not a figure.
    """
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"mask must be a boolean array (True = may attend), got dtype {m.dtype}; "
                        "an integer or float 0/1 array is ambiguous")
    try:
        m = np.broadcast_to(m, weights.shape)
    except ValueError:
        raise ValueError(f"mask of shape {m.shape} does not broadcast to the weights' shape "
                         f"{weights.shape}") from None
    leaked = np.abs(weights[~m]).max(initial=0.0)
    if leaked > 1e-12:
        raise ValueError(f"mask marks cells with weight up to {leaked:.3g} as masked: a masked "
                         "cell has weight 0 (True = may attend; is the mask inverted?)")
    return m
