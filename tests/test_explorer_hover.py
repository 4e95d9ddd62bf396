"""HoverHeatmap (helpers.course.hover): one titled SVG cell per weight, offline, deterministic."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from helpers import create_causal_mask, softmax
from helpers.course.hover import HoverHeatmap

SVG = "{http://www.w3.org/2000/svg}"


def cells(heatmap: HoverHeatmap) -> list[ET.Element]:
    root = ET.fromstring(heatmap._repr_html_())  # the HTML is well-formed XML
    return [r for r in root.iter(f"{SVG}rect") if r.get("class") == "cell"]


def causal(h: int, L: int) -> np.ndarray:
    scores = np.random.default_rng(3).normal(size=(h, L, L))
    return softmax(np.where(create_causal_mask(L), scores, -np.inf), axis=-1)


def test_one_titled_cell_per_weight_with_its_rounded_value():
    w = np.random.default_rng(0).dirichlet(np.ones(4), size=(2, 3))  # (2 heads, 3 queries, 4 keys)
    hm = HoverHeatmap(w, ["a", "b", "c"], ["w", "x", "y", "z"])
    found = cells(hm)
    assert len(found) == w.size
    titles = [c.find(f"{SVG}title").text for c in found]
    want = [f"head {h + 1}, query '{'abc'[q]}' → key '{'wxyz'[k]}': {w[h, q, k]:.3f}"
            for h in range(2) for q in range(3) for k in range(4)]
    assert titles == want
    fills = {c.get("fill") for c in found}
    assert len(fills) > 4 and all(re.fullmatch(r"#[0-9a-f]{6}", f) for f in fills)


def test_masked_cells_are_hatched_and_say_so():
    w = causal(1, 4)[0]
    found = cells(HoverHeatmap(w, list("abcd"), mask=create_causal_mask(4)))
    masked = [c for c in found if c.find(f"{SVG}title").text.endswith(": masked")]
    assert len(masked) == 6 and all(c.get("fill").startswith("url(#") for c in masked)
    assert all(not c.get("fill").startswith("url(#") for c in found if c not in masked)


def test_html_needs_no_network_and_no_script():
    page = HoverHeatmap(causal(3, 5), mask=create_causal_mask(5))._repr_html_()
    assert "<script" not in page
    assert re.findall(r"https?://[^\"']+", page) == ["http://www.w3.org/2000/svg"]  # namespace only


def test_text_and_html_are_deterministic():
    w = np.array([[1.0, 0.0], [0.25, 0.75]])
    hm = HoverHeatmap(w, ["the", "cat"], mask=np.array([[True, False], [True, True]]))
    assert repr(hm).splitlines() == [
        "HoverHeatmap: 1 head, 2 queries x 2 keys, masked cells -",
        "      the   cat",
        "the  1.00     -",
        "cat  0.25  0.75",
    ]
    again = HoverHeatmap(w.copy(), ["the", "cat"], mask=np.array([[True, False], [True, True]]))
    assert again._repr_html_() == hm._repr_html_()
    other = HoverHeatmap(w[::-1].copy(), ["the", "cat"])
    ids = {re.search(r'id="(ah\w+)-masked"', h._repr_html_()).group(1) for h in (hm, other)}
    assert len(ids) == 2  # two heatmaps on one page do not share pattern ids


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"weights": np.full((2, 2), np.nan)}, ValueError, "NaN"),
        ({"weights": np.full((2, 2), 2.0)}, ValueError, r"\[0, 1\]"),
        ({"weights": np.ones(3)}, ValueError, "shape"),
        ({"weights": np.eye(2), "query_tokens": ["a"]}, ValueError, "query_tokens"),
        ({"weights": np.eye(2), "mask": np.ones((2, 2))}, TypeError, "boolean"),
        ({"weights": np.eye(2), "highlight_query": 2}, ValueError, "highlight_query"),
    ],
)
def test_bad_input_is_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        HoverHeatmap(**kwargs)
