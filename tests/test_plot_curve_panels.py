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


def _lines_by_label(fig):
    return {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}


def test_a_colour_means_one_thing_in_the_whole_figure():
    x = [4, 16, 64]
    panels = {"peak": {"unscaled": [1, 2, 3], "scaled": [1, 1, 1], "uniform, 1/L": [0.1] * 3},
              "jacobian": {"unscaled, median": [3, 2, 1], "scaled, median": [1, 1, 1],
                           "unscaled, mean": [3, 2, 2], "scaled, mean": [1, 1, 1]},
              "entropy": {"uniform, ln L": [2] * 3, "scaled": [2, 2, 2]}}
    fig = plot_curve_panels(x, panels, xlabel="d_k")
    colour = {}
    for ax in fig.axes[:3]:
        for line in ax.get_lines():
            family = line.get_label().split(", ")[0]
            colour.setdefault(family, set()).add(line.get_color())
    assert all(len(c) == 1 for c in colour.values()), colour  # one colour per family ...
    assert len({next(iter(c)) for c in colour.values()}) == len(colour)  # ... a different one each
    plt.close(fig)


def test_identical_curves_of_one_family_stay_distinguishable():
    """'scaled, median' and 'scaled, mean' coincide in the notebook's ablation."""
    fig = plot_curve_panels([4, 16, 64], {"J": {"scaled, median": [1, 1, 1],
                                                "scaled, mean": [1, 1, 1]}}, xlabel="d_k")
    lines = _lines_by_label(fig)
    median, mean = lines["scaled, median"], lines["scaled, mean"]
    assert median.get_color() == mean.get_color()
    assert median.get_linestyle() != mean.get_linestyle()
    assert median.get_marker() != mean.get_marker()
    assert mean.get_markersize() > median.get_markersize()  # the later one rings the earlier
    assert mean.get_zorder() > median.get_zorder()
    plt.close(fig)


def test_plot_curves_styles_override_and_distinct_defaults():
    from helpers.course.plotting import plot_curves

    fig = plot_curves([1, 2], {"a": [1, 2], "b": [1, 2], "c": [2, 1]}, xlabel="x", ylabel="y",
                      styles={"c": {"color": "black", "linestyle": ":"}})
    lines = _lines_by_label(fig)
    assert lines["a"].get_linestyle() != lines["b"].get_linestyle()
    assert lines["a"].get_marker() != lines["b"].get_marker()
    assert lines["c"].get_color() == "black" and lines["c"].get_linestyle() == ":"
    plt.close(fig)
