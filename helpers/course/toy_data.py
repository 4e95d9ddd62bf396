"""A toy vocabulary whose embeddings mean something, for validating attention by eye.

Every word has a few readable features (its word class and a coarse meaning)
and an identity of its own. :func:`embed_tokens` lays them out in fixed groups
of 8 dimensions, so that a head of width 8 that looks at one group sees one
kind of similarity::

    dims  0 ..  7   word class   determiner, noun, verb, preposition (+ 4 unused)
    dims  8 .. 15   meaning      animal, place, action, relation     (+ 4 unused)
    dims 16 .. d-1  identity     a random direction per word (same for "The" and "the")

plus small seeded noise everywhere. Lookup ignores case, and a capitalised
token differs from its lower-case form only by a tiny extra perturbation, so
``"The"`` and ``"the"`` behave almost, but not exactly, alike.

Everything is deterministic: the same tokens, width and seed always give the
same array.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from helpers._validate import positive_int

SENTENCE: tuple[str, ...] = ("The", "cat", "sat", "on", "the", "mat")
"""The demo sentence: six tokens, with "The" and "the" the same word."""

FEATURES: tuple[str, ...] = (
    "determiner", "noun", "verb", "preposition",  # word class
    "animal", "place", "action", "relation",  # meaning
)
"""The readable features, in the order of :func:`feature_matrix`'s columns."""

FEATURE_DIMS: dict[str, int] = {
    "determiner": 0, "noun": 1, "verb": 2, "preposition": 3,
    "animal": 8, "place": 9, "action": 10, "relation": 11,
}
"""Embedding dimension that carries each feature."""

IDENTITY_START = 16
"""First embedding dimension of the word-identity block."""

VOCABULARY: dict[str, tuple[str, ...]] = {
    "the": ("determiner",),
    "a": ("determiner",),
    "cat": ("noun", "animal"),
    "dog": ("noun", "animal"),
    "mat": ("noun", "place"),
    "rug": ("noun", "place"),
    "sat": ("verb", "action"),
    "ran": ("verb", "action"),
    "on": ("preposition", "relation"),
    "under": ("preposition", "relation"),
}
"""Lower-case word -> its features. Order matters: it fixes each word's seed."""


def _word_of(token: object) -> str:
    if not isinstance(token, str):
        raise TypeError(f"tokens must be strings, got {token!r} ({type(token).__name__})")
    word = token.lower()
    if word not in VOCABULARY:
        raise ValueError(
            f"unknown token {token!r}; the toy vocabulary is {sorted(VOCABULARY)}"
        )
    return word


def _check_tokens(tokens: Sequence[str]) -> list[str]:
    if isinstance(tokens, str):
        raise TypeError(
            "tokens must be a sequence of strings such as ['The', 'cat'], got one string; "
            "use text.split()"
        )
    words = [_word_of(t) for t in tokens]
    if not words:
        raise ValueError("tokens must contain at least one token, got an empty sequence")
    return words


def feature_matrix(tokens: Sequence[str]) -> NDArray[np.float64]:
    """0/1 table of the readable features of each token.

    Parameters
    ----------
    tokens : sequence of str, length L
        Words of :data:`VOCABULARY`, any case.

    Returns
    -------
    ndarray, shape (L, len(FEATURES))
        ``[t, f]`` is 1 when token ``t`` has feature ``FEATURES[f]``.
    """
    words = _check_tokens(tokens)
    table = np.zeros((len(words), len(FEATURES)))
    for t, word in enumerate(words):
        for name in VOCABULARY[word]:
            table[t, FEATURES.index(name)] = 1.0
    return table


def embed_tokens(
    tokens: Sequence[str],
    d_model: int = 64,
    *,
    feature_scale: float = 2.0,
    identity_scale: float = 0.5,
    noise_scale: float = 0.1,
    case_scale: float = 0.02,
    seed: int = 0,
) -> NDArray[np.float64]:
    """Deterministic embeddings ``(L, d_model)`` of toy tokens.

    Parameters
    ----------
    tokens : sequence of str, length L
        Words of :data:`VOCABULARY`; case is ignored except for a tiny
        perturbation of capitalised tokens.
    d_model : int
        Embedding width; at least 24 and a multiple of 8 (groups of 8 dims).
    feature_scale : float, keyword-only
        Value of an active feature in its dimension of the first 16.
    identity_scale : float, keyword-only
        Standard deviation of each word's random identity vector, which fills
        dimensions ``16 .. d_model - 1``.
    noise_scale : float, keyword-only
        Standard deviation of the word's small noise added to every dimension.
    case_scale : float, keyword-only
        Standard deviation of the extra noise of a token that is not lower case.
    seed : int, keyword-only
        Seed of all the random parts. Each word draws from
        ``default_rng([seed, index of the word in VOCABULARY])``.

    Returns
    -------
    ndarray, shape (L, d_model)
        Row ``t`` embeds ``tokens[t]``; equal lower-case tokens give equal rows.

    Raises
    ------
    ValueError
        For an unknown token, an empty sequence, a bad ``d_model`` or a
        negative scale.
    TypeError
        If ``tokens`` is a single string or holds non-strings.
    """
    words = _check_tokens(tokens)
    d = positive_int(d_model, "d_model")
    if d < IDENTITY_START + 8 or d % 8:
        raise ValueError(f"d_model must be a multiple of 8 and at least 24, got d_model={d}")
    scales = {"feature_scale": feature_scale, "identity_scale": identity_scale,
              "noise_scale": noise_scale, "case_scale": case_scale}
    for name, value in scales.items():
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    index = {word: n for n, word in enumerate(VOCABULARY)}
    out = np.zeros((len(words), d))  # (L, d_model)
    for t, (token, word) in enumerate(zip(tokens, words, strict=True)):
        rng = np.random.default_rng([seed, index[word]])
        identity = rng.normal(0.0, identity_scale, size=d - IDENTITY_START)
        noise = rng.normal(0.0, noise_scale, size=d)
        for name in VOCABULARY[word]:
            out[t, FEATURE_DIMS[name]] = feature_scale
        out[t, IDENTITY_START:] = identity
        out[t] += noise
        if token != word:  # capitalised: same word, slightly different vector
            case_rng = np.random.default_rng([seed, index[word], 1])
            out[t] += case_rng.normal(0.0, case_scale, size=d)
    return out
