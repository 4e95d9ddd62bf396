"""Exercises of notebook 06 on the real model: load one BERT layer's (out, in) weights into
``MultiHeadAttention`` (06.4), and classify a head from its weights by the notebook's rule (06.5).
Imported by ``ex06``."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays, describe, tuple_of
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises.ex06 import in_answer_precision
from helpers.mha import MultiHeadAttention
from helpers.pretrained.head_patterns import key_buckets

rng = np.random.default_rng(606)
n = rng.standard_normal

# --------------------------------------------------------------------------- 06.4
_MODULES = {"q": "attention.self.query", "k": "attention.self.key",
            "v": "attention.self.value", "o": "attention.output.dense"}
_PARAMETERS = ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")


def load_bert_attention(weights, num_heads):
    query = weights["attention.self.query.weight"]  # (out, in) = (d_model, d_model)
    layer = MultiHeadAttention(query.shape[0], num_heads, dtype=query.dtype)
    for ours, theirs in _MODULES.items():
        setattr(layer, f"W_{ours}", weights[f"{theirs}.weight"].T.copy())  # (in, out)
        setattr(layer, f"b_{ours}", weights[f"{theirs}.bias"].copy())
    return layer


def _bert_layer_weights(d_model, dtype):
    """A BERT layer's parameters under BERT's names, Linear weights (out, in), d_ff = 4 d_model."""
    d_ff = 4 * d_model
    shapes = {}
    for module in _MODULES.values():
        shapes[f"{module}.weight"], shapes[f"{module}.bias"] = (d_model, d_model), (d_model,)
    for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
        shapes[f"{norm}.weight"], shapes[f"{norm}.bias"] = (d_model,), (d_model,)
    shapes["intermediate.dense.weight"] = (d_ff, d_model)
    shapes["intermediate.dense.bias"] = (d_ff,)
    shapes["output.dense.weight"], shapes["output.dense.bias"] = (d_model, d_ff), (d_model,)
    return {name: (n(shape) / np.sqrt(d_model)).astype(dtype) for name, shape in shapes.items()}


def _load(*, transpose=True, transpose_o=True, order="qkvo", biases=True, ffn_output=False,
          default_dtype=False):
    """load_bert_attention with one detail changed, as a learner would write it."""
    def wrong(weights, num_heads):
        query = weights["attention.self.query.weight"]
        layer = MultiHeadAttention(query.shape[0], num_heads,
                                   **({} if default_dtype else {"dtype": query.dtype}))
        modules = dict(zip("qkvo", (_MODULES[c] for c in order), strict=True))
        if ffn_output:
            modules["o"] = "output.dense"  # the feed-forward's second Linear (d_model, d_ff)
        for ours, theirs in modules.items():
            w = weights[f"{theirs}.weight"]
            flip = transpose and (transpose_o or ours != "o")
            setattr(layer, f"W_{ours}", (w.T if flip else w).copy())
            if biases:
                setattr(layer, f"b_{ours}", weights[f"{theirs}.bias"].copy())
        return layer

    return wrong


def same_layer():
    """Compare two MultiHeadAttention layers: heads, dtype, biases, then each parameter exactly."""
    exact = arrays(rtol=0.0, atol=0.0)

    def compare(got, want):
        if not isinstance(got, MultiHeadAttention):
            return f"returned {describe(got)}; expected a MultiHeadAttention layer"
        if got.num_heads != want.num_heads:
            return f"the layer has {got.num_heads} heads; expected num_heads = {want.num_heads}"
        if got.dtype != want.dtype:
            return (f"the layer's dtype is {got.dtype.name}; expected {want.dtype.name}, the "
                    "dtype of the weights")
        if got.has_bias != want.has_bias:
            return "the layer was built with bias=False: BERT's four projections have biases"
        for name in _PARAMETERS:
            g, w = getattr(got, name), getattr(want, name)
            if g is None and w is None:
                continue
            problem = exact(g, w)
            if problem is not None:
                return f"{name}: {problem}"
        if got.rope_base is not None or got.dropout:
            return "the layer has rope_base or dropout set; BERT's attention has neither"
        return None

    return compare


_TAUGHT_LOAD = "notebook 06 §10"
register(Exercise(
    id="06.4",
    reference=load_bert_attention,
    taught=_TAUGHT_LOAD,
    compare=same_layer(),
    difficulty=2,
    minutes=15,
    hints=(
        "BERT computes x @ weight.T + bias; the course's layer computes x @ W + b. Which W makes "
        "the two equal for every x?",
        "Build MultiHeadAttention(d_model, num_heads, dtype=...) with d_model and the dtype read "
        "off weights['attention.self.query.weight'], then assign W_q, W_k, W_v, W_o and b_q, b_k, "
        "b_v, b_o one by one (an assignment checks the shape and dtype at once).",
        "Four modules: attention.self.query, .key, .value and attention.output.dense (not "
        "output.dense, which belongs to the feed-forward part). Every weight transposed, every "
        "bias as it is.",
    ),
    cases=tuple(
        Case((_bert_layer_weights(d, dtype), h),
             f"d_model = {d}, {h} head{'s' * (h > 1)}, {np.dtype(dtype).name}: BERT's 16 "
             "arrays of one layer, (out, in)")
        for d, h, dtype in ((8, 2, np.float64), (12, 3, np.float32), (6, 1, np.float64),
                            (16, 4, np.float32))
    ),
    mistakes=(
        Mistake("weights not transposed",
                "BERT stores each Linear as (out, in) and computes x @ weight.T; the course's "
                "x @ W needs W = weight.T. The matrices are square, so no shape error warns you.",
                _TAUGHT_LOAD, _load(transpose=False),
                hint="Compare x @ weight.T with x @ W for a random x: which W makes them equal?"),
        Mistake("W_o not transposed",
                "the output projection attention.output.dense is a Linear like the other three: "
                "W_o = weight.T as well.", _TAUGHT_LOAD, _load(transpose_o=False)),
        Mistake("query and key swapped",
                "W_q comes from attention.self.query and W_k from attention.self.key; swapped, "
                "every score matrix is transposed (key i scores query j).", _TAUGHT_LOAD,
                _load(order="kqvo")),
        Mistake("biases left at zero",
                "MultiHeadAttention starts with zero biases; BERT's four biases must be copied "
                "into b_q, b_k, b_v and b_o.", _TAUGHT_LOAD, _load(biases=False)),
        Mistake("the feed-forward's output.dense used for W_o",
                "the attention's output projection is attention.output.dense (d_model, "
                "d_model); output.dense is the feed-forward's second Linear (d_model, d_ff).",
                _TAUGHT_LOAD, _load(ffn_output=True)),
        Mistake("the layer left in float64",
                "MultiHeadAttention is float64 by default; build it with the weights' dtype "
                "(float32 for MiniLM), dtype=weights[...].dtype.", _TAUGHT_LOAD,
                _load(default_dtype=True)),
    ),
))


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


def _classify(*, per_text=False, all_rows=False, elsewhere=False, no_threshold=False,
              strict=False, fixed=False, summed=False):
    """classify_head with one detail changed."""
    def wrong(weights, buckets, queries, threshold=0.5):
        rows = []
        for w, b, q in zip(weights, buckets, queries, strict=True):
            w = np.asarray(w, dtype=np.float64)
            sums = np.stack([(w * (b == k)).sum(axis=1) for k in range(7)], axis=1)
            kept = sums if all_rows else sums[q]
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


def _case(heads, note, **kwargs):
    texts = [t for t, _ in heads]
    return Case(([w for _, w in heads], [_BUCKETS[t] for t in texts],
                 [_QUERIES[t] for t in texts]), note, kwargs)


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
    ),
    mistakes=(
        Mistake("mean of the per-text means",
                "the profile is the mean over all the queries of all the texts; averaging each "
                "text first gives a short text's queries more weight than a long one's.",
                _TAUGHT_HEADS, _classify(per_text=True),
                hint="Stack the kept rows of every text first, then take one mean."),
        Mistake("[CLS] and [SEP] rows counted",
                "only the rows whose queries entry is True count: [CLS] and [SEP] are not words.",
                _TAUGHT_HEADS, _classify(all_rows=True)),
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
    ),
))
