"""Figures of notebook 09: score tables over positions, random-feature errors with a yardstick."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers.course.long_sequence_plots import plot_feature_errors, plot_offset_tables


def test_plot_offset_tables_one_panel_per_table():
    offsets = np.subtract.outer(np.arange(12), np.arange(12)).astype(float)  # depends on m - n
    fig = plot_offset_tables({"offset only": np.cos(offsets), "any": np.ones((12, 12))},
                             title="two tables")
    heatmaps = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in heatmaps] == ["offset only", "any"]
    assert heatmaps[0].get_xlabel() == "key position n"
    assert heatmaps[0].get_ylabel() == "query position m"
    plt.close(fig)


@pytest.mark.parametrize(("tables", "match"), [({}, "at least one"),
                                               ({"flat": np.zeros(5)}, r"\(P, P\)")])
def test_plot_offset_tables_bad_input(tables, match):
    with pytest.raises(ValueError, match=match):
        plot_offset_tables(tables)


def test_plot_feature_errors_draws_each_yardstick_in_its_curves_colour():
    r = np.array([16, 64, 256])
    fig = plot_feature_errors(r, {"σ = 0.5": [0.2, 0.1, 0.05], "σ = 1.0": [0.5, 0.4, 0.3]},
                              {"σ = 0.5": 0.1, "σ = 1.0": 0.38})
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["random features, σ = 0.5", "uniform weights, σ = 0.5",
                      "random features, σ = 1.0", "uniform weights, σ = 1.0"]
    curve, line = ax.get_lines()[2], ax.get_lines()[3]
    assert line.get_ydata()[0] == 0.38 and line.get_color() == curve.get_color()
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    plt.close(fig)
    with pytest.raises(ValueError, match="every yardstick needs a curve"):
        plot_feature_errors(r, {"a": [1, 2, 3]}, {"b": 1.0})
