"""Attention heatmaps (helpers.course.heatmaps): one colour bar, axis names, heads from 1, masks."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle

from helpers import create_causal_mask, softmax
from helpers.course.plotting import plot_attention_heatmap, plot_multihead_comparison


def causal_weights(h: int, L: int, seed: int = 0) -> np.ndarray:
    scores = np.random.default_rng(seed).normal(size=(h, L, L))
    return softmax(np.where(create_causal_mask(L), scores, -np.inf), axis=-1)  # (h, L, L)


def hatched(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch()]


def legend_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().texts]


def test_grid_has_one_colour_bar_axis_names_and_heads_from_one():
    w = causal_weights(8, 5)
    fig = plot_multihead_comparison(w, list("abcde"), title="t")
    try:
        panels = [ax for ax in fig.axes if ax.get_title().startswith("head")]
        assert [ax.get_title() for ax in panels] == [f"head {i}" for i in range(1, 9)]
        bars = [ax for ax in fig.axes if ax.get_ylabel() == "attention weight"]
        assert len(bars) == 1 and len(fig.axes) == 9
        assert fig.get_supxlabel() == "key (attended to)"
        assert fig.get_supylabel() == "query (attending)"
        ticks = [t for t in panels[4].get_xticklabels() if t.get_text()]
        assert [t.get_text() for t in ticks] == list("abcde") and ticks[0].get_fontsize() >= 10
        assert hatched(panels[0]) == [] and "masked" not in legend_texts(fig)
    finally:
        plt.close(fig)


def test_grid_draws_masked_cells_hatched_and_names_them():
    w = causal_weights(3, 4)
    fig = plot_multihead_comparison(w, mask=create_causal_mask(4), head_labels=["a", "b", "c"])
    try:
        panels = [ax for ax in fig.axes if ax.get_title() in ("a", "b", "c")]
        assert len(panels) == 3 and all(len(hatched(ax)) == 1 for ax in panels)
        mesh = panels[0].collections[0].get_array()  # masked cells are left out of the mesh
        assert np.ma.count_masked(mesh) == 6  # 4*3/2 cells above the diagonal
        assert legend_texts(fig) == ["masked"]
    finally:
        plt.close(fig)


def test_single_heatmap_leaves_masked_cells_unannotated():
    w = causal_weights(1, 4)[0]
    fig = plot_attention_heatmap(w, list("abcd"), mask=create_causal_mask(4))
    try:
        ax = fig.axes[0]
        assert len(ax.texts) == 10  # the 4*5/2 cells that may attend, none of the 6 masked
        assert len(hatched(ax)) == 1 and legend_texts(fig) == ["masked"]
        assert ax.get_xlabel() == "key (attended to)"
    finally:
        plt.close(fig)
    fig = plot_attention_heatmap(w, list("abcd"))
    assert len(fig.axes[0].texts) == 16 and legend_texts(fig) == []
    plt.close(fig)


@pytest.mark.parametrize(
    ("mask", "error", "match"),
    [
        (create_causal_mask(4).astype(int), TypeError, "boolean"),
        (~create_causal_mask(4), ValueError, "inverted"),
        (np.ones((3, 3), dtype=bool), ValueError, "broadcast"),
    ],
    ids=["int mask", "inverted mask", "wrong shape"],
)
def test_bad_masks_are_rejected(mask, error, match):
    w = causal_weights(2, 4)
    with pytest.raises(error, match=match):
        plot_multihead_comparison(w, mask=mask)
    with pytest.raises(error, match=match):
        plot_attention_heatmap(w[0], mask=mask)
    plt.close("all")


def test_labels_must_match_the_weights():
    with pytest.raises(ValueError, match="3 entries"):
        plot_multihead_comparison(causal_weights(2, 4), list("abc"))
    with pytest.raises(ValueError, match="head_labels"):
        plot_multihead_comparison(causal_weights(2, 4), head_labels=["x"])
    plt.close("all")


def test_grid_on_a_shorter_scale_states_it_and_marks_the_uniform_weight():
    w = np.full((2, 4, 5), 0.2)  # every row uniform over 5 keys
    w[0, 0] = [0.3, 0.1, 0.2, 0.2, 0.2]
    fig = plot_multihead_comparison(w, vmax=0.4, mark_uniform=True)
    try:
        bar = next(ax for ax in fig.axes if ax.get_ylabel().startswith("attention weight"))
        assert bar.get_ylabel() == "attention weight (scale 0 to 0.4, not 1)"
        assert bar.get_ylim() == pytest.approx((0.0, 0.4))
        assert [t.get_text() for t in bar.texts] == ["uniform\n1/5"]
        assert [line.get_ydata()[0] for line in bar.lines] == [pytest.approx(0.2)]
        panel = fig.axes[0]
        assert panel.collections[0].get_clim() == pytest.approx((0.0, 0.4))
    finally:
        plt.close(fig)


def test_a_scale_that_would_clip_a_weight_is_refused():
    w = causal_weights(2, 4)  # row 0 is [1, 0, 0, 0]
    with pytest.raises(ValueError, match="below the largest weight"):
        plot_multihead_comparison(w, vmax=0.5)
    with pytest.raises(ValueError, match="vmax must be in"):
        plot_multihead_comparison(w, vmax=0.0)
    plt.close("all")
