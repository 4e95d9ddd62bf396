"""Exercise 06.4 of notebook 06 on the real model: load one BERT layer's (out, in) weights into
``MultiHeadAttention``. Imported by ``ex06``; 06.5, classifying a head from its weights by the
notebook's rule, is in ``ex06_heads``."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays, describe
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.mha import MultiHeadAttention

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
                "into b_q, b_k, b_v and b_o.", _TAUGHT_LOAD, _load(biases=False),
                hint="Which of the layer's parameters did you set from the weights dictionary? "
                     "Count them: there are eight."),
        Mistake("the feed-forward's output.dense used for W_o",
                "the attention's output projection is attention.output.dense (d_model, "
                "d_model); output.dense is the feed-forward's second Linear (d_model, d_ff).",
                _TAUGHT_LOAD, _load(ffn_output=True)),
        Mistake("the layer left in float64",
                "MultiHeadAttention is float64 by default; build it with the weights' dtype "
                "(float32 for MiniLM), dtype=weights[...].dtype.", _TAUGHT_LOAD,
                _load(default_dtype=True),
                hint="What dtype does MultiHeadAttention use when you do not pass dtype=, and "
                     "what dtype are the weights?"),
    ),
))
