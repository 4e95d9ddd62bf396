r"""Classify attention heads by where their weight goes (notebook 06, "Heads nobody engineered").

Each query's row of weights sums to 1. :func:`head_profiles` splits it into **buckets**,
each key going to the first bucket it fits, in this order:

================  ==============================================================
``previous``      the key just before the query (position :math:`i - 1`)
``next``          the key just after it (:math:`i + 1`)
``self``          the query's own position
``[CLS]``         position 0
``[SEP]/punct``   ``[SEP]`` and punctuation tokens
``same word``     another piece of the query's word, or another copy of its token
``elsewhere``     every other key
================  ==============================================================

A head's **profile** is the mean of those bucket sums over the queries of every text
(the real word-piece tokens: not ``[CLS]``, ``[SEP]`` or padding), so each profile sums
to 1. The positional buckets come first: for the first word the token before is
``[CLS]``, and it counts as ``previous``. :func:`classify_heads` labels a head with its
largest bucket (``elsewhere`` excluded) when that reaches a threshold, ``broad`` otherwise.
Few queries have a copy of their word, so :func:`same_word_scores` measures that bucket
over those queries only. Layers and heads are numbered from 0 everywhere.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from helpers.pretrained.model import TokenBatch

BUCKETS = ("previous", "next", "self", "[CLS]", "[SEP]/punct", "same word", "elsewhere")
PATTERNS = BUCKETS[:-1]  # what a head can be labelled with, besides BROAD
BROAD = "broad"
_SPECIAL = ("[CLS]", "[SEP]", "[PAD]")
_SAME_WORD = BUCKETS.index("same word")


def _is_punctuation(token: str) -> bool:
    return token == "[SEP]" or (len(token) > 0 and all(c in string.punctuation for c in token))


def key_buckets(tokens: Sequence[str], word_ids: ArrayLike) -> NDArray[np.int64]:
    """Bucket index (into :data:`BUCKETS`) of every (query, key) pair of one text, shape (n, n).

    ``tokens`` are the text's ``n`` tokens (with ``[CLS]`` and ``[SEP]``, no padding),
    ``word_ids`` ``(n,)`` their word indices (-1 for special tokens).
    Taught in notebook 06, "Heads nobody engineered".
    """
    n = len(tokens)
    words = np.asarray(word_ids)[:n]
    i, j = np.indices((n, n))
    text = np.array(tokens, dtype=object)
    same = ((words[i] == words[j]) & (words[i] >= 0)) | (text[i] == text[j])
    punct = np.array([_is_punctuation(t) for t in tokens])[j]
    conditions = [j == i - 1, j == i + 1, j == i, j == 0, punct, same]
    return np.select(conditions, range(len(conditions)), default=len(BUCKETS) - 1)


def _attentions_for(attentions: Sequence[ArrayLike] | ArrayLike, batch: TokenBatch) -> np.ndarray:
    a = np.asarray(attentions)
    B, L = batch.ids.shape
    if a.ndim != 5 or a.shape[1] != B or a.shape[3:] != (L, L):
        raise ValueError(
            f"attentions must have shape (num_layers, batch, h, L, L) = (num_layers, {B}, h, "
            f"{L}, {L}) for this batch, got {a.shape}"
        )
    if a.dtype.kind != "f":
        raise TypeError(f"attentions must be a float array, got dtype {a.dtype}")
    return a.astype(np.float64)


def _bucket_sums(attentions: Sequence[ArrayLike] | ArrayLike, batch: TokenBatch):
    """Yield, per text, the (layers, h, queries, buckets) weight sums of its word-piece queries."""
    a = _attentions_for(attentions, batch)
    for b, tokens in enumerate(batch.tokens):
        n = len(tokens)
        queries = np.array([t not in _SPECIAL for t in tokens])  # (n,)
        onehot = np.eye(len(BUCKETS))[key_buckets(tokens, batch.word_ids[b])]  # (n, n, buckets)
        yield np.einsum("lhqk,qkc->lhqc", a[:, b, :, :n, :n][:, :, queries],
                        onehot[queries])


def head_profiles(attentions: Sequence[ArrayLike] | ArrayLike,
                  batch: TokenBatch) -> NDArray[np.float64]:
    """Mean weight of every head in every bucket of :data:`BUCKETS`.

    Parameters
    ----------
    attentions : sequence of num_layers arrays (B, h, L, L), or one array
        (num_layers, B, h, L, L): ``EncoderOutput.attentions`` of ``batch``.
    batch : TokenBatch
        The texts those weights belong to (tokens, word ids, padding).

    Returns
    -------
    ndarray, float64, shape (num_layers, h, len(BUCKETS)); each profile sums to 1.

    Taught in notebook 06, "Heads nobody engineered".
    """
    sums = [s for s in _bucket_sums(attentions, batch)]
    per_query = np.concatenate(sums, axis=2)  # (layers, h, all queries, buckets)
    if per_query.shape[2] == 0:
        raise ValueError("the batch has no word-piece token to use as a query")
    return per_query.mean(axis=2)


def same_word_scores(attentions: Sequence[ArrayLike] | ArrayLike,
                     batch: TokenBatch) -> tuple[NDArray[np.float64], int]:
    """Weight on the ``same word`` bucket, averaged over the queries that have one.

    Returns the scores ``(num_layers, h)`` and the number of such queries (0 gives zeros).
    Taught in notebook 06, "Heads nobody engineered".
    """
    picked = []
    for b, s in enumerate(_bucket_sums(attentions, batch)):
        tokens = batch.tokens[b]
        buckets = key_buckets(tokens, batch.word_ids[b])
        has = (buckets == _SAME_WORD).any(axis=1)[[t not in _SPECIAL for t in tokens]]
        picked.append(s[:, :, has, _SAME_WORD])
    chosen = np.concatenate(picked, axis=2)  # (layers, h, queries with a partner)
    if chosen.shape[2] == 0:
        return np.zeros(chosen.shape[:2]), 0
    return chosen.mean(axis=2), chosen.shape[2]


def classify_heads(profiles: ArrayLike, threshold: float = 0.5) -> NDArray[np.str_]:
    """Label each head with its largest bucket, or ``"broad"`` when none reaches ``threshold``.

    ``profiles`` (num_layers, h, len(BUCKETS)) from :func:`head_profiles`; the
    ``elsewhere`` bucket never labels a head. Returns str, shape (num_layers, h).
    Taught in notebook 06, "Heads nobody engineered".
    """
    p = np.asarray(profiles, dtype=np.float64)
    if p.ndim != 3 or p.shape[-1] != len(BUCKETS):
        raise ValueError(f"profiles must have shape (num_layers, h, {len(BUCKETS)}), "
                         f"got {p.shape}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    named = p[..., : len(PATTERNS)]
    labels = np.array(PATTERNS)[named.argmax(axis=-1)]
    return np.where(named.max(axis=-1) >= threshold, labels, BROAD)


def clearest_heads(profiles: ArrayLike, bucket: str,
                   count: int = 1) -> list[tuple[int, int, float]]:
    """The ``count`` heads with the most weight in ``bucket``, best first.

    Returns ``(layer, head, weight)`` triples, layer and head 0-based.
    Taught in notebook 06, "Heads nobody engineered".
    """
    if bucket not in BUCKETS:
        raise ValueError(f"bucket must be one of {BUCKETS}, got {bucket!r}")
    s = np.asarray(profiles, dtype=np.float64)[..., BUCKETS.index(bucket)]  # (layers, h)
    order = np.argsort(-s, axis=None, kind="stable")[:count]
    return [(int(f // s.shape[1]), int(f % s.shape[1]), float(s.flat[f])) for f in order]
