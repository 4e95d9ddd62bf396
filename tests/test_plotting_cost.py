"""Plots of notebook 06: positional-encoding heatmap and log-log power-law fits."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers.course.plotting import loglog_slope, plot_loglog_fit, plot_positional_encoding
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


def test_plot_positional_encoding():
    fig = plot_positional_encoding(sinusoidal_positional_encoding(20, 16))
    assert fig.axes[0].get_xlabel().startswith("feature")
    plt.close(fig)
    with pytest.raises(ValueError, match=r"\(L, d_model\)"):
        plot_positional_encoding(np.zeros(5))
