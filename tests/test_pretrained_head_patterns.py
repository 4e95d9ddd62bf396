"""helpers.pretrained.head_patterns (where a head's weight goes) and its figures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers.course.real_heads_plot import plot_head_grid, plot_head_map
from helpers.pretrained.head_patterns import (
    BROAD,
    BUCKETS,
    PATTERNS,
    classify_heads,
    clearest_heads,
    head_profiles,
    key_buckets,
    same_word_scores,
)
from helpers.pretrained.model import TokenBatch

TOKENS = ("[CLS]", "the", "cat", ",", "the", "token", "##s", "[SEP]")
WORDS = (-1, 0, 1, 2, 3, 4, 4, -1)


def bucket(name):
    return BUCKETS.index(name)


def toy_batch(texts):
    """A TokenBatch for lists of (tokens, word_ids), padded on the right."""
    L = max(len(t) for t, _ in texts)
    ids = np.zeros((len(texts), L), dtype=np.int64)
    mask = np.zeros((len(texts), L), dtype=bool)
    words = np.full((len(texts), L), -1, dtype=np.int64)
    for b, (tokens, w) in enumerate(texts):
        ids[b, : len(tokens)] = np.arange(len(tokens)) + 1
        mask[b, : len(tokens)] = True
        words[b, : len(tokens)] = w
    return TokenBatch(ids, np.zeros_like(ids), mask, words, tuple(t for t, _ in texts))


def test_key_buckets_by_hand():
    b = key_buckets(TOKENS, WORDS)
    assert b.shape == (8, 8)
    # query 1 ("the"): [CLS] is the token before it, so positional "previous" wins
    assert b[1].tolist() == [bucket(n) for n in (
        "previous", "self", "next", "[SEP]/punct", "same word", "elsewhere", "elsewhere",
        "[SEP]/punct")]
    assert b[2, 0] == bucket("[CLS]") and b[2, 4] == bucket("elsewhere")
    assert b[5, 6] == bucket("next") and b[6, 5] == bucket("previous")  # pieces, adjacent
    assert b[4, 1] == bucket("same word")  # the other copy of "the"
    assert b[3, 4] == bucket("next") and b[3, 3] == bucket("self")  # "," as a query


def test_key_buckets_finds_non_adjacent_pieces_of_one_word():
    tokens = ("[CLS]", "un", "##believ", "##able", "[SEP]")
    b = key_buckets(tokens, (-1, 0, 0, 0, -1))
    assert b[1, 3] == bucket("same word") and b[3, 1] == bucket("same word")


def synthetic_attentions(n_list, L):
    """Weights (1 layer, B, 3 heads, L, L): head 0 previous token, head 1 [CLS], head 2 uniform."""
    a = np.zeros((1, len(n_list), 3, L, L))
    for b, n in enumerate(n_list):
        for i in range(n):
            a[0, b, 0, i, max(i - 1, 0)] = 1.0
            a[0, b, 1, i, 0] = 1.0
            a[0, b, 2, i, :n] = 1.0 / n
        a[0, b, :, n:, :] = 0.3  # padded query rows: garbage that must be ignored
    return a


def test_profiles_of_synthetic_heads_sum_to_one_and_ignore_padding():
    short = (("[CLS]", "a", "b", "[SEP]"), (-1, 0, 1, -1))
    long_ = (TOKENS, WORDS)
    batch = toy_batch([long_, short])
    p = head_profiles(synthetic_attentions([8, 4], 8), batch)
    assert p.shape == (1, 3, len(BUCKETS))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    assert p[0, 0, bucket("previous")] == pytest.approx(1.0)
    # 6 + 2 word-piece queries; the first of each text sees [CLS] as its previous token
    assert p[0, 1, bucket("[CLS]")] == pytest.approx(6 / 8)
    assert p[0, 1, bucket("previous")] == pytest.approx(2 / 8)
    # uniform head: 1/n on each key; every word-piece query has a next token ([SEP] at the end)
    assert p[0, 2, bucket("next")] == pytest.approx((6 / 8 + 2 / 4) / 8)
    # ... and its [CLS] key is "previous" for the first word: 5 + 1 queries keep 1/n there
    uniform_cls = (5 / 8 + 1 / 4) / 8
    assert p[0, 2, bucket("[CLS]")] == pytest.approx(uniform_cls)
    labels = classify_heads(p)
    assert labels.tolist() == [["previous", "[CLS]", BROAD]]
    assert clearest_heads(p, "[CLS]", 2) == [(0, 1, pytest.approx(0.75)),
                                             (0, 2, pytest.approx(uniform_cls))]


def test_same_word_scores_use_only_queries_with_a_partner():
    batch = toy_batch([(TOKENS, WORDS)])
    a = np.zeros((1, 1, 2, 8, 8))
    a[0, 0, :, np.arange(8), np.arange(8)] = 1.0  # both heads: self
    a[0, 0, 1, 1], a[0, 0, 1, 4] = np.eye(8)[4], np.eye(8)[1]  # head 1: the <-> the
    scores, count = same_word_scores(a, batch)
    assert count == 2  # the two copies of "the"; the adjacent pieces count as neighbours
    np.testing.assert_allclose(scores, [[0.0, 1.0]])
    p = head_profiles(a, batch)
    assert p[0, 1, bucket("same word")] == pytest.approx(2 / 6)  # diluted over all 6 queries


def test_classify_heads_threshold_and_errors():
    p = np.zeros((1, 2, len(BUCKETS)))
    p[0, 0, bucket("next")] = 0.49
    p[0, 0, bucket("elsewhere")] = 0.51  # "elsewhere" never labels a head
    p[0, 1, bucket("self")] = 0.5
    assert classify_heads(p).tolist() == [[BROAD, "self"]]
    assert classify_heads(p, threshold=0.4).tolist() == [["next", "self"]]
    assert set(PATTERNS) == set(BUCKETS) - {"elsewhere"}
    with pytest.raises(ValueError, match="threshold"):
        classify_heads(p, threshold=0)
    with pytest.raises(ValueError, match=r"profiles must have shape"):
        classify_heads(p[..., :3])
    with pytest.raises(ValueError, match="bucket must be one of"):
        clearest_heads(p, "prev")
    with pytest.raises(ValueError, match=r"attentions must have shape \(num_layers, batch"):
        head_profiles(np.zeros((2, 12, 8, 8)), toy_batch([(TOKENS, WORDS)]))


def test_head_map_colours_each_label_and_writes_its_weight():
    labels = np.array([["previous", BROAD, "[CLS]"], [BROAD, BROAD, "next"]])
    values = np.array([[0.99, 0.2, 0.61], [0.3, 0.25, 0.7]])
    fig = plot_head_map(labels, values, classes=(*PATTERNS, BROAD))
    try:
        ax = fig.get_axes()[0]
        assert [t.get_text() for t in ax.texts] == [f"{v:.2f}" for v in values.ravel()]
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [*PATTERNS, BROAD]
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match=r"labels \['sideways'\] are not in classes"):
        plot_head_map(np.array([["sideways"]]), np.ones((1, 1)), classes=PATTERNS)


def test_head_grid_one_panel_per_head_with_tokens():
    a = synthetic_attentions([8], 8)[:, 0]  # (1 layer, 3 heads, 8, 8)
    fig = plot_head_grid(a, TOKENS, [(0, 0), (0, 1)], titles=["prev", "cls"], ncols=3)
    try:
        axes = [ax for ax in fig.get_axes() if ax.get_title()]
        assert [ax.get_title() for ax in axes] == ["prev", "cls"]
        assert [t.get_text() for t in axes[0].get_xticklabels()] == list(TOKENS)
    finally:
        plt.close(fig)
    with pytest.raises(ValueError, match=r"\(layer, head\) = \(1, 0\) is outside"):
        plot_head_grid(a, TOKENS, [(1, 0)])
    with pytest.raises(ValueError, match="for 3 tokens"):
        plot_head_grid(a, TOKENS[:3], [(0, 0)])
