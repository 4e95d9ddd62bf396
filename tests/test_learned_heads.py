"""helpers.course.learned_heads: the rule that picks a real head for notebooks 02 and 04."""

import numpy as np
import pytest

from helpers.course.learned_heads import RULES, learned_heads, rule_scores


def _designed(n: int = 6) -> np.ndarray:
    """One layer, four heads built to follow one rule each: (1, 4, n, n)."""
    prev = np.zeros((n, n))
    prev[np.arange(1, n), np.arange(n - 1)] = 1.0
    prev[0, 0] = 1.0
    nxt = np.zeros((n, n))
    nxt[np.arange(n - 1), np.arange(1, n)] = 1.0
    nxt[-1, -1] = 1.0
    cls = np.zeros((n, n))
    cls[:, 0] = 1.0
    broad = np.full((n, n), 1.0 / n)
    return np.stack([prev, nxt, cls, broad])[None]


def test_each_rule_picks_the_head_built_for_it():
    scores = rule_scores(_designed())
    assert {rule: int(np.argmax(s) if rule != "broad" else np.argmin(s))
            for rule, s in scores.items()} == dict(zip(RULES, range(4), strict=True))
    assert scores["previous token"][0, 0] == 1.0 and scores["[CLS]"][0, 2] == 1.0
    assert scores["broad"][0, 3] == pytest.approx(1 / 6)


def test_rule_scores_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match=r"\(layers, h, n, n\)"):
        rule_scores(np.ones((2, 3, 5, 4)))
    with pytest.raises(ValueError, match="rules must be"):
        learned_heads(rules=("diagonal",))


def test_the_real_model_has_the_heads_the_notebooks_show():
    lh = learned_heads("The cat sat on the mat")
    assert lh.tokens == ("[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]")
    assert lh.rules == RULES
    assert lh.positions == ((1, 3), (2, 9), (3, 8), (1, 4))
    prev, nxt, cls, broad = lh.scores
    assert prev > 0.99 and nxt > 0.6 and cls > 0.9 and broad < 0.3
    np.testing.assert_allclose(lh.weights.sum(axis=-1), 1.0, atol=1e-5)
    assert lh.titles[0] == "layer 1 · head 3\nprevious token"
