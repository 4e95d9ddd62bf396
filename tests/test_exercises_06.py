"""Notebook 06's exercises: each known mistake, written as a learner would, is caught and named;
wrong attempts outside the catalogue are caught too; right answers in another allowed dtype pass;
the references of 06.4 and 06.5 equal the library on the real model."""

import numpy as np
import pytest
from exercise_catalogue import catalogue_tests

from helpers import MultiHeadAttention
from helpers.exercises import check, reference
from helpers.exercises._core import get
from helpers.pretrained import BUCKETS, attention_layer_from_weights


# --------------------------------------------------------------------------- 06.1-06.3
def pe(seq_len, d_model, *, first=np.sin, second=np.cos, two=2, start=0, times=False,
       dtype=np.float64):
    pos = np.arange(start, start + seq_len, dtype=dtype)[:, None]
    div = np.asarray(10000, dtype=dtype) ** (two * np.arange(d_model // 2, dtype=dtype) / d_model)
    angle = pos * div if times else pos / div
    out = np.empty((seq_len, d_model), dtype=dtype)
    out[:, ::2], out[:, 1::2] = first(angle), second(angle)
    return out


def pe_two_i_doubled(seq_len, d_model):
    i = np.arange(0, d_model, 2)  # these are already the values 2i ...
    angle = np.arange(seq_len)[:, None] / 10000 ** (2 * i / d_model)  # ... doubled again
    out = np.zeros((seq_len, d_model))
    out[:, 0::2], out[:, 1::2] = np.sin(angle), np.cos(angle)
    return out


def pe_per_column(seq_len, d_model):
    angle = np.arange(seq_len)[:, None] / 10000 ** (np.arange(d_model) / d_model)
    out = np.cos(angle)
    out[:, ::2] = np.sin(angle[:, ::2])
    return out


def M(k, d_model, *, sign=1, use_k=True, same_freq=False, two=2, dtype=np.float64):
    out = np.zeros((d_model, d_model), dtype=dtype)
    for i in range(d_model // 2):
        w = 1.0 if same_freq else 10000 ** (-two * i / d_model)
        a = (k if use_k else 1) * w
        out[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = [
            [np.cos(a), sign * np.sin(a)],
            [-sign * np.sin(a), np.cos(a)],
        ]
    return out


# --------------------------------------------------------------------------- 06.4
QKVO = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "o": "attention.output.dense"}


def load(weights, num_heads, *, T="qkvo", names=QKVO, biases=True, dtype="weights"):
    d = weights["attention.self.query.weight"].shape[0]
    kwargs = {} if dtype is None else {"dtype": weights["attention.self.query.weight"].dtype}
    layer = MultiHeadAttention(d, num_heads, **kwargs)
    for p, module in names.items():
        w = weights[module + ".weight"]
        setattr(layer, "W_" + p, w.T.copy() if p in T else w.copy())
        if biases:
            setattr(layer, "b_" + p, weights[module + ".bias"].copy())
    return layer


# --------------------------------------------------------------------------- 06.5
def bucket_rows(w, b):
    return np.stack([np.where(b == k, w, 0.0).sum(axis=-1) for k in range(7)], axis=-1)


def classify(weights, buckets, queries, threshold=0.5, *, per_text=False, every_row=False,
             allow_elsewhere=False, use_threshold=True, strict=False, fixed=None, total=False,
             inner=False):
    kept = []
    for w, b, q in zip(weights, buckets, queries, strict=True):
        rows = bucket_rows(np.asarray(w, dtype=float), b)
        rows = rows if every_row else rows[1:-1] if inner else rows[q]
        kept.append(rows.mean(axis=0)[None] if per_text else rows)
    allrows = np.vstack(kept)
    profile = allrows.sum(axis=0) if total else allrows.mean(axis=0)
    names = list(BUCKETS) if allow_elsewhere else list(BUCKETS[:-1])
    scores = profile[: len(names)]
    best = names[int(scores.argmax())]
    cut = threshold if fixed is None else fixed
    if not use_threshold:
        return profile, best
    ok = scores.max() > cut if strict else scores.max() >= cut
    return profile, best if ok else "broad"


CATALOGUED = {
    "06.1": {
        "sin and cos swapped": lambda seq_len, d_model: pe(
            seq_len, d_model, first=np.cos, second=np.sin
        ),
        "sines and cosines in two halves": lambda seq_len, d_model: np.hstack(
            [pe(seq_len, d_model)[:, ::2], pe(seq_len, d_model)[:, 1::2]]
        ),
        "exponent i/d with the pair index": lambda seq_len, d_model: pe(seq_len, d_model, two=1),
        "positions start at 1": lambda seq_len, d_model: pe(seq_len, d_model, start=1),
        "multiplied by the frequency term": lambda seq_len, d_model: pe(
            seq_len, d_model, times=True
        ),
        "exponent from the column index": pe_per_column,
        "2i doubled": pe_two_i_doubled,
    },
    "06.2": {
        "M_k transposed (= M_{-k})": lambda k, d_model: M(k, d_model, sign=-1),
        "angle ω_i instead of k·ω_i": lambda k, d_model: M(k, d_model, use_k=False),
        "one frequency for every block": lambda k, d_model: M(k, d_model, same_freq=True),
        "exponent i/d": lambda k, d_model: M(k, d_model, two=1),
    },
    "06.3": {
        "forgot the heads": lambda batch, heads, seq_len, itemsize: (
            batch * seq_len * seq_len * itemsize
        ),
        "L instead of L²": lambda batch, heads, seq_len, itemsize: (
            batch * heads * seq_len * itemsize
        ),
        "bits instead of bytes": lambda batch, heads, seq_len, itemsize: (
            batch * heads * seq_len**2 * itemsize * 8
        ),
        "forgot the batch": lambda batch, heads, seq_len, itemsize: heads * seq_len**2 * itemsize,
        "forgot itemsize": lambda batch, heads, seq_len, itemsize: batch * heads * seq_len**2,
        "int32 overflow": lambda batch, heads, seq_len, itemsize: _int32_product(
            batch, heads, seq_len, itemsize
        ),
    },
    "06.4": {
        "weights not transposed": lambda weights, num_heads: load(weights, num_heads, T=""),
        "W_o not transposed": lambda weights, num_heads: load(weights, num_heads, T="qkv"),
        "query and key swapped": lambda weights, num_heads: load(
            weights, num_heads, names={**QKVO, "q": QKVO["k"], "k": QKVO["q"]}
        ),
        "biases left at zero": lambda weights, num_heads: load(weights, num_heads, biases=False),
        "the feed-forward's output.dense used for W_o": lambda weights, num_heads: load(
            weights, num_heads, names={**QKVO, "o": "output.dense"}
        ),
        "the layer left in float64": lambda weights, num_heads: load(
            weights, num_heads, dtype=None
        ),
    },
    "06.5": {
        "mean of the per-text means": lambda weights, buckets, queries, threshold=0.5: classify(
            weights, buckets, queries, threshold, per_text=True
        ),
        "[CLS] and [SEP] rows counted": lambda weights, buckets, queries, threshold=0.5: classify(
            weights, buckets, queries, threshold, every_row=True
        ),
        "'elsewhere' can label a head": lambda weights, buckets, queries, threshold=0.5: classify(
            weights, buckets, queries, threshold, allow_elsewhere=True
        ),
        "no threshold": lambda weights, buckets, queries, threshold=0.5: classify(
            weights, buckets, queries, threshold, use_threshold=False
        ),
        "> instead of ≥": lambda weights, buckets, queries, threshold=0.5: classify(
            weights, buckets, queries, threshold, strict=True
        ),
        "threshold fixed at 0.5": lambda weights, buckets, queries, threshold=0.5: classify(
            weights, buckets, queries, threshold, fixed=0.5
        ),
        "summed over the queries": lambda weights, buckets, queries, threshold=0.5: classify(
            weights, buckets, queries, threshold, total=True
        ),
        "rows 1 … n − 2 instead of queries": (
            lambda weights, buckets, queries, threshold=0.5: classify(  # [CLS] first, [SEP] last
                weights, buckets, queries, threshold, inner=True
            )
        ),
    },
}


def _int32_product(batch, heads, seq_len, itemsize):
    # np.prod accumulates in int32 when told to (and by default where the platform's default
    # integer is 32-bit, e.g. NumPy 1.x on Windows): it wraps around above 2**31 - 1.
    return np.prod([batch, heads, seq_len, seq_len, itemsize], dtype=np.int32)


UNLISTED = {
    "06.1": [
        lambda seq_len, d_model: pe(seq_len, d_model)[::-1],
        lambda seq_len, d_model: pe(seq_len, d_model, first=np.sin, second=np.sin),
        lambda seq_len, d_model: pe(seq_len, d_model).T,
        lambda seq_len, d_model: pe(seq_len + 1, d_model)[:-1] * 0.5,
        lambda seq_len, d_model: np.sin(
            np.arange(seq_len)[:, None] / 10000 ** (np.arange(d_model) / d_model)
        ),
        # float32, but with a float16 angle table: too coarse even for float32's tolerance
        lambda seq_len, d_model: pe(seq_len, d_model, dtype=np.float16).astype(np.float32),
    ],
    "06.2": [
        lambda k, d_model: M(k, d_model).T @ M(k, d_model),  # identity
        lambda k, d_model: M(k, d_model)[::-1],
        lambda k, d_model: np.kron(np.eye(d_model // 2), [[1.0, 0.0], [0.0, 1.0]]) * np.cos(k),
        lambda k, d_model: M(k + 1, d_model),
        lambda k, d_model: M(k, d_model)[: d_model // 2],
    ],
    "06.3": [
        lambda batch, heads, seq_len, itemsize: (
            batch * heads * seq_len**2 * itemsize / 2**20
        ),  # MiB
        lambda batch, heads, seq_len, itemsize: batch * heads * seq_len**2 * 8,  # always float64
        lambda batch, heads, seq_len, itemsize: batch * heads * (seq_len + 1) ** 2 * itemsize,
        lambda batch, heads, seq_len, itemsize: 3 * batch * heads * seq_len**2 * itemsize,
        lambda batch, heads, seq_len, itemsize: int(  # int32 scalars (sizes read from an
            np.int32(batch) * np.int32(heads) * np.int32(seq_len) * np.int32(seq_len)  # int32
        ) * itemsize,  # array): overflows, with a RuntimeWarning
        lambda batch, heads, seq_len, itemsize: float(batch * heads * seq_len**2 * itemsize),
        lambda batch, heads, seq_len, itemsize: int(  # a float32 product: rounded
            np.prod(np.array([batch, heads, seq_len, seq_len, itemsize], dtype=np.float32))
        ),
    ],
    "06.4": [
        lambda weights, num_heads: load(weights, 1),  # one head
        lambda weights, num_heads: load(weights, num_heads, T="o"),  # only W_o transposed
        lambda weights, num_heads: load(  # value and output swapped
            weights, num_heads, names={**QKVO, "v": QKVO["o"], "o": QKVO["v"]}
        ),
        lambda weights, num_heads: (
            lambda layer: (setattr(layer, "b_o", -layer.b_o), layer)[1]
        )(load(weights, num_heads)),  # a sign slip in one bias
        lambda weights, num_heads: load(weights, num_heads).parameters(),  # a dict, not a layer
        lambda weights, num_heads: MultiHeadAttention(  # weights loaded into the wrong layer
            weights["attention.self.query.weight"].shape[0], num_heads,
            dtype=weights["attention.self.query.weight"].dtype, seed=0,
        ),
    ],
    "06.5": [
        lambda weights, buckets, queries, threshold=0.5: classify(  # profile over all rows
            weights, buckets, queries, threshold, every_row=True, per_text=True
        ),
        lambda weights, buckets, queries, threshold=0.5: (  # the label only
            classify(weights, buckets, queries, threshold)[1]
        ),
        lambda weights, buckets, queries, threshold=0.5: (  # the bucket index, not its name
            lambda p, lab: (p, int(np.argmax(p[:6])) if lab != "broad" else "broad")
        )(*classify(weights, buckets, queries, threshold)),
        lambda weights, buckets, queries, threshold=0.5: (  # weights summed over the queries
            lambda rows: (rows.mean(axis=0), "broad")
        )(np.vstack([bucket_rows(np.asarray(w).T, b)[q] for w, b, q in zip(
            weights, buckets, queries, strict=True)])),
        lambda weights, buckets, queries, threshold=0.5: (  # the first text only
            classify(weights[:1], buckets[:1], queries[:1], threshold)
        ),
        lambda weights, buckets, queries, threshold=0.5: (  # max over queries, not mean
            lambda rows: (rows.max(axis=0), classify(weights, buckets, queries, threshold)[1])
        )(np.vstack([bucket_rows(np.asarray(w, dtype=float), b)[q] for w, b, q in zip(
            weights, buckets, queries, strict=True)])),
    ],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


# --------------------------------------------------------------------------- right answers
@pytest.mark.parametrize("exercise_id", ["06.1", "06.2", "06.3", "06.4", "06.5"])
def test_every_exercise_has_difficulty_minutes_and_graded_hints(exercise_id):
    ex = get(exercise_id)
    assert ex.difficulty in (1, 2, 3) and ex.minutes > 0
    assert 2 <= len(ex.hints) <= 3 and all(len(h) > 20 for h in ex.hints)


def test_a_float32_answer_passes_06_1_and_06_2():
    # The learner read of issue #20: "expected 0.841471, got 0.841471" for a float32 table.
    assert check("06.1", lambda seq_len, d_model: pe(seq_len, d_model, dtype=np.float32)).passed
    assert check("06.2", lambda k, d_model: M(k, d_model, dtype=np.float32)).passed


def test_a_float32_answer_is_still_judged():
    result = check("06.1", lambda seq_len, d_model: pe(
        seq_len, d_model, first=np.cos, second=np.sin, dtype=np.float32))
    assert not result.passed and result.mistake == "sin and cos swapped"


def test_06_3_refuses_a_float_and_catches_a_float32_product_on_the_odd_case():
    as_float = check("06.3", UNLISTED["06.3"][5])
    assert not as_float.passed and "288.0, a float; expected the int 288" in as_float.report
    rounded = check("06.3", UNLISTED["06.3"][6])
    assert not rounded.passed and rounded.failed_cases == (7,)
    assert "off by 22, a rounding error" in rounded.report


def test_06_5_takes_the_rows_from_queries_not_from_the_ends():
    result = check("06.5", CATALOGUED["06.5"]["rows 1 … n − 2 instead of queries"])
    assert not result.passed and result.failed_cases == (9,), result.report


def test_an_int32_product_is_rejected_and_says_what_came_back():
    result = check("06.3", _int32_product)
    assert not result.passed and result.failed_cases == (6,)
    assert result.mistake == "int32 overflow"
    assert "returned -2147483648; expected 2147483648" in result.report


def test_the_transpose_of_M_k_is_named_as_such():
    result = check("06.2", lambda k, d_model: M(k, d_model).T)
    assert result.mistake == "M_k transposed (= M_{-k})"
    assert "M_kᵀ" in result.report and "pe[:-k] @ M_k.T" in result.report


def test_a_layer_that_shares_the_weights_arrays_is_accepted():
    def aliasing(weights, num_heads):
        layer = MultiHeadAttention(weights["attention.self.query.weight"].shape[0], num_heads,
                                   dtype=weights["attention.self.query.weight"].dtype)
        for p, module in QKVO.items():
            setattr(layer, "W_" + p, weights[module + ".weight"].T)  # a view, not a copy
            setattr(layer, "b_" + p, weights[module + ".bias"])
        return layer

    assert check("06.4", aliasing).passed


# --------------------------------------------------------------------------- library
def test_06_4_reference_equals_the_library_loader():
    for case in get("06.4").cases:
        mine = reference("06.4")(*case.args)
        library = attention_layer_from_weights(*case.args)
        assert mine.dtype == library.dtype and mine.num_heads == library.num_heads
        for name, value in library.parameters().items():
            np.testing.assert_array_equal(getattr(mine, name), value)


def test_06_4_reference_loads_minilm_layer_1_like_the_model():
    from helpers.pretrained import load_model

    model = load_model()
    mine = reference("06.4")(model.layer_weights(0), model.config.num_heads)
    theirs = model.attention_layer(0)
    for name, value in theirs.parameters().items():
        np.testing.assert_array_equal(getattr(mine, name), value)


def test_06_5_bucket_names_are_the_librarys():
    from helpers.exercises.ex06_heads import BUCKET_NAMES

    assert BUCKET_NAMES == BUCKETS


def test_06_5_reference_reproduces_the_notebooks_72_labels():
    from helpers.pretrained import classify_heads, encode, head_profiles, key_buckets, load_model

    model = load_model()
    texts = ["The cat sat on the mat.", "A dog chased the ball across the park.",
             "Stock markets fell sharply after the announcement.",
             "She read the letter twice before answering.",
             "The children built a sandcastle near the water."]
    batch = model.tokenize(texts)
    out = encode(model, batch.ids, batch.attention_mask)
    profiles = head_profiles(out.attentions, batch)
    labels = classify_heads(profiles)
    lengths = [len(t) for t in batch.tokens]
    buckets = [key_buckets(t, w) for t, w in zip(batch.tokens, batch.word_ids, strict=True)]
    queries = [np.array([t not in ("[CLS]", "[SEP]") for t in toks]) for toks in batch.tokens]
    for layer, a in enumerate(out.attentions):
        for head in range(model.config.num_heads):
            weights = [a[b, head, :m, :m] for b, m in enumerate(lengths)]
            profile, label = reference("06.5")(weights, buckets, queries)
            np.testing.assert_allclose(profile, profiles[layer, head], rtol=1e-12, atol=1e-15)
            assert label == labels[layer, head], (layer, head)
