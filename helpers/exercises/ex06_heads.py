"""Exercise 06.5 of notebook 06: name one head of the real model from its weights, by the rule of
section 12 (imported by ``ex06``)."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import describe, tuple_of
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import in_answer_precision
from helpers.exercises.ex06_real_model import rng  # the cases continue 06.4's seeded draws
from helpers.pretrained.head_patterns import key_buckets

# --------------------------------------------------------------------------- 06.5
BUCKET_NAMES = ("previous", "next", "self", "[CLS]", "[SEP]/punct", "same word", "elsewhere")


def classify_head(weights, buckets, queries, threshold=0.5):
    rows = []
    for w, b, q in zip(weights, buckets, queries, strict=True):  # one text at a time
        w = np.asarray(w, dtype=np.float64)  # (n, n): one head's weights on this text
        sums = np.stack([(w * (b == k)).sum(axis=1) for k in range(7)], axis=1)  # (n, 7)
        rows.append(sums[q])  # the queries that count
    profile = np.concatenate(rows).mean(axis=0)  # (7,): every query counts once
    named = profile[:6]  # "elsewhere" never labels a head
    label = BUCKET_NAMES[int(np.argmax(named))] if named.max() >= threshold else "broad"
    return profile, label


def _classify(*, per_text=False, all_rows=False, inner_rows=False, elsewhere=False,
              no_threshold=False, strict=False, fixed=False, summed=False):
    """classify_head with one detail changed."""
    def wrong(weights, buckets, queries, threshold=0.5):
        rows = []
        for w, b, q in zip(weights, buckets, queries, strict=True):
            w = np.asarray(w, dtype=np.float64)
            sums = np.stack([(w * (b == k)).sum(axis=1) for k in range(7)], axis=1)
            kept = sums if all_rows else sums[1:-1] if inner_rows else sums[q]
            rows.append(kept.mean(axis=0, keepdims=True) if per_text else kept)
        stacked = np.concatenate(rows)
        profile = stacked.sum(axis=0) if summed else stacked.mean(axis=0)
        named = profile if elsewhere else profile[:6]
        cut = 0.5 if fixed else threshold
        best = BUCKET_NAMES[int(np.argmax(named))]
        if no_threshold:
            return profile, best
        return profile, best if (named.max() > cut if strict else named.max() >= cut) else "broad"

    return wrong


def _label(got, want):
    """Compare a label: a str, equal to the expected one."""
    if not isinstance(got, str):
        return f"returned {describe(got)}; expected the label {want!r} (a str)"
    return None if got == want else f"returned the label {got!r}; expected {want!r}"


_TEXTS = (  # tokens and word ids as the tokenizer gives them; queries: the word pieces
    (("[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"),
     (-1, 0, 1, 2, 3, 4, 5, 6, -1)),
    (("[CLS]", "token", "##ization", "is", "fun", "[SEP]"), (-1, 0, 0, 1, 2, -1)),
)
_BUCKETS = [key_buckets(t, w) for t, w in _TEXTS]  # (n, n) each
_QUERIES = [np.array([t not in ("[CLS]", "[SEP]") for t in toks]) for toks, _ in _TEXTS]


def _head(text, favour, share, *, special_rows=None):
    """One head's (n, n) weights on text ``text``: each row gives ``share`` of its weight to the
    keys of bucket ``favour`` ("none": no favourite) and spreads the rest at random;
    ``special_rows`` is the bucket the [CLS] and [SEP] rows put all their weight on."""
    b = _BUCKETS[text]
    rows = rng.dirichlet(np.full(len(b), 0.5), size=len(b))  # (n, n), each row sums to 1
    for i in range(len(b)):
        if special_rows is not None and not _QUERIES[text][i]:
            target = b[i] == BUCKET_NAMES.index(special_rows)
            rows[i] = target / target.sum()
            continue
        target = b[i] == BUCKET_NAMES.index(favour) if favour != "none" else b[i] < 0
        if target.any():
            rows[i] *= 1 - share
            rows[i, target] += share / target.sum()
    return rows


def _dyadic_head():
    """Text 0: each row 1/2 on the previous token, 1/4 on itself and on the next: exactly 1/2."""
    size = len(_BUCKETS[0])
    w = np.zeros((size, size))
    for i in range(size):
        w[i, [max(i - 1, 0), i, min(i + 1, size - 1)]] += [0.5, 0.25, 0.25]
    return w


def _case(heads, note, *, queries=None, **kwargs):
    texts = [t for t, _ in heads]
    queries = [_QUERIES[t] for t in texts] if queries is None else queries
    return Case(([w for _, w in heads], [_BUCKETS[t] for t in texts], queries), note, kwargs)


_WORDS_ONLY = np.array([t.isalpha() for t in _TEXTS[0][0]])  # text 0 without [CLS], [SEP], "."


_TAUGHT_HEADS = "notebook 06 §12"
register(Exercise(
    id="06.5",
    reference=classify_head,
    taught=_TAUGHT_HEADS,
    compare=tuple_of(in_answer_precision(rtol32=1e-5, atol32=1e-6), _label,
                     names=("profile", "label")),
    difficulty=2,
    minutes=20,
    hints=(
        "For one text, the weight a query gives bucket k is the sum of its row over the keys "
        "whose bucket is k: (weights * (buckets == k)).sum(axis=1), for k = 0 .. 6, gives an "
        "(n, 7) table.",
        "Keep only the rows whose queries entry is True, stack the kept rows of every text, and "
        "average down the rows: every query counts once, whichever text it comes from.",
        "The label is the name of the largest of the first six entries (never 'elsewhere') if "
        "it is at least threshold, otherwise 'broad'.",
    ),
    cases=(
        _case([(0, _head(0, "previous", 0.9))], "one text, a previous-token head"),
        _case([(0, _head(0, "self", 0.1)), (1, _head(1, "self", 0.85))],
              "two texts of 7 and 4 word queries: the mean over all 11 queries is below 1/2, "
              "the mean of the two texts' means above"),
        _case([(0, _head(0, "next", 0.6, special_rows="self")),
               (1, _head(1, "next", 0.6, special_rows="self"))],
              "[CLS] and [SEP] rows give all their weight to themselves"),
        _case([(0, _head(0, "none", 0.0)), (1, _head(1, "none", 0.0))],
              "a broad head: no bucket holds half the weight"),
        _case([(0, _dyadic_head())], "the previous bucket holds exactly 1/2 = threshold"),
        _case([(0, _head(0, "elsewhere", 0.8))], "most weight far away: 'elsewhere' is "
              "largest, yet it never labels a head"),
        _case([(0, _head(0, "self", 0.35)), (1, _head(1, "self", 0.35))],
              "threshold = 0.3", threshold=0.3),
        _case([(0, _head(0, "[SEP]/punct", 0.8).astype(np.float32))],
              "float32 weights, as the real model gives them"),
        _case([(0, _head(0, "previous", 0.55))],
              "queries that leave out '.' as well as [CLS] and [SEP]: the rows that count "
              "come from queries, not from the first and last positions",
              queries=[_WORDS_ONLY]),
    ),
    mistakes=(
        Mistake("mean of the per-text means",
                "the profile is the mean over all the queries of all the texts; averaging each "
                "text first gives a short text's queries more weight than a long one's.",
                _TAUGHT_HEADS, _classify(per_text=True),
                hint="Stack the kept rows of every text first, then take one mean."),
        Mistake("[CLS] and [SEP] rows counted",
                "only the rows whose queries entry is True count: [CLS] and [SEP] are not words.",
                _TAUGHT_HEADS, _classify(all_rows=True),
                hint="Which rows of each text does queries keep, and which rows does your "
                     "profile average?"),
        Mistake("'elsewhere' can label a head",
                "'elsewhere' (the last bucket) is what no pattern explains: it never names a "
                "head; take the largest of the first six.", _TAUGHT_HEADS,
                _classify(elsewhere=True)),
        Mistake("no threshold",
                "a head is named after its largest bucket only when that bucket holds at least "
                "threshold of the weight; otherwise it is 'broad'.", _TAUGHT_HEADS,
                _classify(no_threshold=True)),
        Mistake("> instead of ≥",
                "a bucket holding exactly threshold of the weight names the head (≥).",
                _TAUGHT_HEADS, _classify(strict=True)),
        Mistake("threshold fixed at 0.5",
                "use the threshold argument; 0.5 is only its default.", _TAUGHT_HEADS,
                _classify(fixed=True)),
        Mistake("summed over the queries",
                "the profile is a mean: it sums to 1, like one row of weights.", _TAUGHT_HEADS,
                _classify(summed=True)),
        Mistake("rows 1 … n − 2 instead of queries",
                "the rows that count are those whose queries entry is True; dropping the first "
                "and last row happens to match when only [CLS] and [SEP] are left out, not when "
                "queries leaves out other tokens too.", _TAUGHT_HEADS,
                _classify(inner_rows=True),
                hint="In the failing case, which rows does queries keep, and which does your "
                     "code keep?"),
    ),
))
