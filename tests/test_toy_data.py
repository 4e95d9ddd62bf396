"""The toy vocabulary: deterministic, readable embeddings and clear errors."""

import numpy as np
import pytest

from helpers import attention
from helpers.course.toy_data import (
    FEATURE_DIMS,
    FEATURES,
    IDENTITY_START,
    SENTENCE,
    VOCABULARY,
    embed_tokens,
    feature_matrix,
)


def test_shape_and_determinism():
    x = embed_tokens(SENTENCE)
    assert x.shape == (6, 64)
    np.testing.assert_array_equal(x, embed_tokens(list(SENTENCE)))
    assert not np.array_equal(x, embed_tokens(SENTENCE, seed=1))
    assert embed_tokens(SENTENCE, 32).shape == (6, 32)


def test_same_word_same_row_and_case_is_a_small_perturbation():
    x = embed_tokens(["the", "cat", "the"])
    np.testing.assert_array_equal(x[0], x[2])
    upper, lower = embed_tokens(["The", "the"])
    gap = np.linalg.norm(upper - lower)
    assert 0 < gap < 0.05 * np.linalg.norm(lower)
    np.testing.assert_array_equal(embed_tokens(["The"], case_scale=0.0), embed_tokens(["the"]))


def test_features_sit_in_their_dimensions():
    clean = embed_tokens(list(VOCABULARY), noise_scale=0.0, identity_scale=0.0)
    table = feature_matrix(list(VOCABULARY))
    for f, name in enumerate(FEATURES):
        np.testing.assert_array_equal(clean[:, FEATURE_DIMS[name]], 2.0 * table[:, f])
    others = np.delete(clean, list(FEATURE_DIMS.values()), axis=1)
    assert not others.any()
    ids = embed_tokens(list(VOCABULARY), noise_scale=0.0)
    assert not ids[:, :IDENTITY_START][:, [j for j in range(16) if j not in
                                          FEATURE_DIMS.values()]].any()
    assert (np.abs(ids[:, IDENTITY_START:]) > 0).all()


def test_feature_matrix():
    table = feature_matrix(["The", "cat", "on"])
    assert table.shape == (3, len(FEATURES))
    assert table[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert table[1].tolist() == [0, 1, 0, 0, 1, 0, 0, 0]
    assert table[2].tolist() == [0, 0, 0, 1, 0, 0, 0, 1]


def test_attention_patterns_mean_something():
    x = embed_tokens(SENTENCE)
    _, w = attention(x, x, x)  # (6, 6)
    np.testing.assert_allclose(w[0], w[4], atol=0.01)  # "The" and "the" alike
    assert w[0, [0, 4]].sum() > 0.6  # ... and they attend to each other
    assert set(np.argmax(w, axis=1).tolist()) <= {0, 1, 2, 3, 4, 5}
    assert np.argmax(w[1]) == 1 and np.argmax(w[5]) == 5
    # The word-class dims alone: the two nouns attend to each other.
    _, w0 = attention(x[:, :8], x[:, :8], x[:, :8])
    assert sorted(np.argsort(w0[1])[-2:].tolist()) == [1, 5]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"tokens": ["zebra"]}, ValueError, "unknown token 'zebra'"),
        ({"tokens": "the cat"}, TypeError, "one string"),
        ({"tokens": ["the", 3]}, TypeError, "strings"),
        ({"tokens": []}, ValueError, "at least one"),
        ({"tokens": ["the"], "d_model": 20}, ValueError, "multiple of 8"),
        ({"tokens": ["the"], "d_model": 16}, ValueError, "at least 24"),
        ({"tokens": ["the"], "noise_scale": -1.0}, ValueError, "noise_scale"),
        ({"tokens": ["the"], "feature_scale": float("nan")}, ValueError, "feature_scale"),
    ],
)
def test_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        embed_tokens(**kwargs)
