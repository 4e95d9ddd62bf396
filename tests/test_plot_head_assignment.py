"""Tests of helpers.course.plotting.plot_head_assignment (the split_heads pitfall picture)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers.course.plotting import plot_head_assignment


def test_one_panel_per_assignment_with_head_numbers():
    correct = np.repeat(np.arange(3)[np.newaxis, :], 4, axis=0).repeat(2, axis=1)  # (4, 6)
    wrong = np.repeat(np.arange(3), 2)[:, np.newaxis].repeat(2, axis=1)[:4].repeat(3, axis=1)
    fig = plot_head_assignment({"correct": correct, "wrong": wrong})
    try:
        axes = fig.get_axes()
        assert [ax.get_title() for ax in axes] == ["correct", "wrong"]
        labels = [t.get_text() for t in axes[0].texts]
        assert labels == [str(v) for v in correct.ravel()]  # every cell annotated with its head
    finally:
        plt.close(fig)


def test_rejects_non_integer_grids():
    with pytest.raises(ValueError, match="integer array"):
        plot_head_assignment({"bad": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="integer array"):
        plot_head_assignment({"bad": np.zeros(3, dtype=int)})
