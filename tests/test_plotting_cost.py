"""Plots of notebook 06: positional-encoding heatmap and log-log power-law fits."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers.course.cost_plots import fit_power_law, plot_loglog_fit
from helpers.course.plotting import loglog_slope, plot_positional_encoding
from helpers.positional import sinusoidal_positional_encoding


def test_loglog_slope_recovers_the_exponent():
    x = np.array([64, 128, 256, 512])
    assert loglog_slope(x, 3.0 * x**2) == pytest.approx(2.0)
    assert loglog_slope(x, 5.0 * x) == pytest.approx(1.0)
    assert loglog_slope(x, np.sqrt(x)) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [([1, 2], [1, 2, 3], "shape"), ([1], [1], "n >= 2"), ([1, 2], [0, 1], "positive")],
)
def test_loglog_slope_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        loglog_slope(x, y)


def test_plot_loglog_fit_labels_the_slopes():
    x = np.array([64, 128, 256])
    fig = plot_loglog_fit(x, {"quadratic": x**2.0, "linear": x * 1.0},
                          xlabel="L", ylabel="bytes")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["quadratic: slope 2.00", "linear: slope 1.00"]
    assert fig.axes[0].get_yscale() == "log"
    plt.close(fig)


def test_fit_power_law_over_a_range_and_the_legend_uses_that_fit():
    x = np.array([64, 128, 256, 512, 1024])
    y = np.where(x < 256, 1e3, 1.0) * x**2.0  # a flat start, then exactly x^2
    fit = fit_power_law(x, y, x_min=256)
    assert fit.slope == pytest.approx(2.0) and fit.x_min == 256
    np.testing.assert_allclose(fit(x[2:]), y[2:], rtol=1e-10)
    assert fit_power_law(x, y).slope < 1.5  # over every point: another exponent
    fig = plot_loglog_fit(x, {"cost": y}, fits={"cost": fit}, xlabel="N", ylabel="s")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["cost: slope 2.00, N ≥ 256"]
    dashed = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert dashed[0].get_xdata().min() == 256  # the line spans the fitted range only
    plt.close(fig)
    with pytest.raises(ValueError, match="n >= 2"):
        fit_power_law(x, y, x_min=1024)


def test_plot_positional_encoding():
    fig = plot_positional_encoding(sinusoidal_positional_encoding(20, 16))
    assert fig.axes[0].get_xlabel().startswith("feature")
    plt.close(fig)
    with pytest.raises(ValueError, match=r"\(L, d_model\)"):
        plot_positional_encoding(np.zeros(5))
