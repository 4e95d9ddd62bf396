"""AttentionExplorer (helpers.course.explorer): builds, and every control redraws it."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import attention, create_causal_mask
from helpers import softmax as helpers_softmax
from helpers.course.explorer import (
    AttentionExplorer,
    explore_attention,
    explore_projections,
    explore_weights,
)

TOKENS = "the cat sat on the mat".split()


@pytest.fixture
def qkv():
    rng = np.random.default_rng(0)
    return tuple(rng.normal(size=(3, 6, 4)) for _ in range(3))  # (H, L, d_k) each


def test_default_view_is_helpers_attention(qkv):
    Q, K, V = qkv
    explorer = explore_attention(Q, K, V, TOKENS)
    assert set(explorer.controls) == {"query", "head", "temperature", "scaled", "causal"}
    _, want = attention(Q[0], K[0], V[0])
    np.testing.assert_allclose(explorer.view.weights, want, atol=1e-12)
    explorer.controls["head"].value = 3  # heads count from 1 on the slider
    _, want = attention(Q[2], K[2], V[2])
    np.testing.assert_allclose(explorer.view.weights, want, atol=1e-12)


def test_every_control_changes_the_picture(qkv):
    explorer = explore_attention(*qkv, TOKENS)
    before_html, before = explorer.output.value, explorer.view.weights
    explorer.controls["causal"].value = True
    assert explorer.output.value != before_html
    assert np.all(explorer.view.weights[~create_causal_mask(6)] == 0.0)
    assert explorer.output.value.count(": masked</title>") == 15
    sharp = explorer.view.weights
    explorer.controls["temperature"].value = 10.0
    assert explorer.state.temperature == pytest.approx(10.0)
    flat = explorer.view.weights
    assert flat[3].max() < sharp[3].max()  # a hotter softmax is flatter
    html = explorer.output.value
    explorer.controls["query"].value = 4
    assert explorer.output.value != html and "weights of query &#x27;the&#x27;" in explorer.html()
    explorer.controls["scaled"].value = False
    assert not np.allclose(explorer.view.weights, flat)
    assert not np.allclose(before, explorer.view.weights)


def test_output_bars_are_the_weighted_sum(qkv):
    Q, K, V = qkv
    explorer = explore_attention(Q, K, V, TOKENS)
    explorer.controls["query"].value = 2
    out = explorer.view.weights[2] @ V[0]  # (d_v,)
    html = explorer.html()
    for j, value in enumerate(out):
        assert f"dim {j}: {value:.3f}</title>" in html


def test_d_k_slider_shows_saturation_without_the_scale():
    X = np.random.default_rng(1).normal(size=(6, 32))
    explorer = explore_projections(X, TOKENS, d_k_values=(2, 512), seed=0)
    explorer.controls["scaled"].value = False
    small = explorer.view.weights.max(axis=-1).mean()
    explorer.controls["d_k"].value = 512
    big = explorer.view.weights.max(axis=-1).mean()
    explorer.controls["scaled"].value = True
    scaled = explorer.view.weights.max(axis=-1).mean()
    assert big > 0.9 and big > small and scaled < big - 0.3
    again = explore_projections(X, TOKENS, d_k_values=(2, 512), seed=0)
    again.controls["d_k"].value = 512
    np.testing.assert_array_equal(again.view.weights, explorer.view.weights)  # same draw


def test_precomputed_weights_get_layer_and_head_pickers():
    rng = np.random.default_rng(2)
    stack = rng.dirichlet(np.ones(6), size=(2, 4, 6))  # (layers, H, L_q, L_k)
    for source, kwargs in [
        (stack, {}),
        ({"first": stack[0], "second": stack[1]}, {}),
        (lambda layer, head: stack[layer, head], {"layers": ["first", "second"], "num_heads": 4}),
    ]:
        explorer = explore_weights(source, TOKENS, **kwargs)
        assert set(explorer.controls) == {"query", "head", "layer"}
        explorer.controls["layer"].value = 1
        explorer.controls["head"].value = 3
        np.testing.assert_array_equal(explorer.view.weights, stack[1, 2])
    single = explore_weights(stack[0, 0], TOKENS)
    assert set(single.controls) == {"query"}
    with pytest.raises(TypeError, match="num_heads"):
        explore_weights(lambda layer, head: stack[0, 0], TOKENS)
    with pytest.raises(ValueError, match="shape"):
        explore_weights(np.ones((1, 1, 1, 1, 6)), TOKENS)


def test_display_offers_widget_static_html_and_stable_text(qkv):
    explorer = explore_attention(*qkv, TOKENS)
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"] == explorer.output.value
    twin = explore_attention(*qkv, TOKENS)
    assert twin._repr_mimebundle_()["text/plain"] == bundle["text/plain"]
    assert twin.html() == bundle["text/html"]
    assert bundle["text/plain"].startswith("AttentionExplorer: 6 queries x 6 keys, 3 heads")


def test_a_custom_compute_function_is_enough():
    calls = []

    def compute(state):
        calls.append(state)
        w = np.full((2, 2), 0.5)
        from helpers.course.explorer import ExplorerView
        return ExplorerView(w)

    explorer = AttentionExplorer(compute, ["a", "b"], adjustable=False, causal=False)
    explorer.controls["query"].value = 1
    assert [s.query for s in calls] == [0, 1]


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="Q, K, V"):
        explore_attention(np.ones(3), np.ones(3), np.ones(3), ["a"])
    with pytest.raises(ValueError, match=r"need Q \(H, L_q, d_k\)"):
        explore_attention(np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 4)), ["a", "b"])


def test_set_moves_the_controls_and_returns_the_view():
    X = np.random.default_rng(1).normal(size=(6, 32))
    explorer = explore_projections(X, TOKENS, d_k_values=(2, 512), seed=0)
    assert explorer.choices("d_k") == (2, 512) and explorer.choices("scaled") == (False, True)
    assert explorer.choices("query") == tuple(range(6))
    view = explorer.set(d_k=512, scaled=False, query=3)
    assert explorer.controls["d_k"].value == 512 and explorer.controls["scaled"].value is False
    assert explorer.state.query == 3 and view is explorer.view
    # the same as moving the controls by hand, on a fresh explorer
    by_hand = explore_projections(X, TOKENS, d_k_values=(2, 512), seed=0)
    by_hand.controls["d_k"].value = 512
    by_hand.controls["scaled"].value = False
    np.testing.assert_array_equal(view.weights, by_hand.view.weights)
    # the scores are those the softmax was taken of: unscaled, T = 1
    np.testing.assert_allclose(view.weights, helpers_softmax(view.scores), atol=1e-12)
    assert "d_k = 512" in explorer.html() and "unscaled" in repr(explorer)


def test_set_refuses_unknown_controls_and_values_and_changes_nothing():
    X = np.random.default_rng(1).normal(size=(6, 32))
    explorer = explore_projections(X, TOKENS, d_k_values=(2, 512), seed=0)
    before = explorer.view.weights.copy()
    with pytest.raises(ValueError, match="no control 'layer'"):
        explorer.set(layer=1)
    with pytest.raises(ValueError, match="d_k must be one of"):
        explorer.set(scaled=False, d_k=64)
    with pytest.raises(ValueError, match="scaled must be one of"):
        explorer.set(scaled=1)
    with pytest.raises(ValueError, match="temperature must lie in"):
        explorer.set(temperature=100.0)
    assert explorer.controls["scaled"].value is True
    np.testing.assert_array_equal(explorer.view.weights, before)


def test_given_weights_have_no_scores():
    w = np.full((2, 2), 0.5)
    view = explore_weights(w, ["a", "b"]).set(query=1)
    assert view.scores is None and view.weights is not None
