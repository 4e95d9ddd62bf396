"""plot_curve_panels: one panel per entry, log axes where asked."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers.course.plotting import plot_curve_panels


def test_panels_layout_and_scales():
    x = [4, 16, 64]
    panels = {"a": {"one": np.ones(3)}, "b": {"two": [1, 2, 3], "three": [3, 2, 1]},
              "c": {"four": [1, 10, 100]}}
    fig = plot_curve_panels(x, panels, xlabel="d_k", logx=True, logy=("c",), suptitle="t")
    axes = fig.axes
    assert len(axes) == 4  # 2 x 2 grid, the last one switched off
    assert [ax.get_ylabel() for ax in axes[:3]] == ["a", "b", "c"]
    assert len(axes[1].get_lines()) == 2
    assert axes[2].get_yscale() == "log" and axes[0].get_yscale() == "linear"
    assert all(ax.get_xscale() == "log" for ax in axes[:3])
    assert not axes[3].axison
    plt.close(fig)


def test_empty_panels_rejected():
    with pytest.raises(ValueError, match="panels is empty"):
        plot_curve_panels([1], {}, xlabel="x")
