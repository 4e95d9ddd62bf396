"""Exercises of notebook 05 (the MultiHeadAttention class): count the parameters, cross-attention
by hand, the Xavier limit; the layer's forward pass is in ex05_forward, the decoding step with a
key/value cache in ex05_cache, inverted dropout in ex05_dropout (imported here)."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._compare import integer, real
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import one_max_mistake, pair, softmax_one_max
from helpers.exercises.ex05_cache import attend_with_cache  # noqa: F401  (registers 05.5)
from helpers.exercises.ex05_dropout import attention_dropout  # noqa: F401  (registers 05.6)
from helpers.exercises.ex05_forward import _forward  # also registers 05.4
from helpers.mha import MultiHeadAttention

rng = np.random.default_rng(505)
n = rng.standard_normal


# --------------------------------------------------------------------------- 05.1
def count_parameters(d_model, bias):
    return 4 * d_model * d_model + (4 * d_model if bias else 0)


register(
    Exercise(
        id="05.1",
        reference=count_parameters,
        taught="notebook 05 §1",
        compare=integer(),
        difficulty=1,
        minutes=5,
        hints=(
            "List what the layer owns (section 1): how many weight matrices, of which shape, "
            "and how many bias vectors when bias=True?",
            "Four d_model × d_model matrices, and with bias=True four vectors of d_model numbers; "
            "the number of heads does not appear.",
        ),
        cases=(
            Case((8, True), "d_model = 8 with biases"),
            Case((512, True), "d_model = 512 with biases"),
            Case((64, False), "d_model = 64 without biases"),
            Case((1, True), "d_model = 1 with biases"),
            Case((768, False), "d_model = 768 without biases"),
        ),
        mistakes=(
            Mistake(
                "forgot the biases",
                "with bias=True the layer also has four bias vectors of d_model numbers.",
                "notebook 05 §1",
                lambda d_model, bias: 4 * d_model * d_model,
                hint="With bias=True, how many bias vectors does the layer own, and how long is "
                     "each?",
            ),
            Mistake(
                "forgot W_o and its bias",
                "the output projection is a fourth d_model × d_model matrix (and bias).",
                "notebook 05 §1",
                lambda d_model, bias: 3 * d_model * d_model + 3 * d_model * bias,
            ),
            Mistake(
                "ignored bias=False",
                "without biases there are only the four matrices.",
                "notebook 05 §1",
                lambda d_model, bias: 4 * d_model * d_model + 4 * d_model,
            ),
            Mistake(
                "one bias vector",
                "each of the four projections has its own bias: 4 d_model numbers.",
                "notebook 05 §1",
                lambda d_model, bias: 4 * d_model * d_model + d_model * bias,
            ),
            Mistake(
                "4 · bias instead of 4 · d_model",
                "True counts as 1: a bias vector holds d_model numbers.",
                "notebook 05 §1",
                lambda d_model, bias: 4 * d_model * d_model + 4 * bias,
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 05.2
def cross_attention_layer():
    """The layer of exercise 05.2: ``MultiHeadAttention(16, 4, seed=11)`` with non-zero biases."""
    layer = MultiHeadAttention(16, 4, seed=11)
    biases = np.random.default_rng(12).normal(size=(4, 16))
    for name, b in zip(("b_q", "b_k", "b_v", "b_o"), biases, strict=True):
        setattr(layer, name, b)
    return layer


_LAYER = cross_attention_layer()


def cross_attend(target, source):
    return _forward(_LAYER, target, source)


register(
    Exercise(
        id="05.2",
        reference=cross_attend,
        taught="notebook 05 §3–4",
        compare=pair,
        difficulty=2,
        minutes=15,
        hints=(
            "Which sequence supplies the queries, and which the keys and values? The output has "
            "one row per query.",
            "Queries come from target @ W_q + b_q, keys and values from source; split each into "
            "the 4 heads, attend, combine, then the output projection.",
            "The output projection has a bias too: combine_heads(heads) @ W_o + b_o.",
        ),
        cases=(
            Case((n((2, 3, 16)), n((2, 5, 16))), "target (2, 3, 16), source (2, 5, 16): L_q ≠ L_k"),
            Case((n((1, 4, 16)), n((1, 2, 16))), "a longer target than source"),
            Case((n((3, 1, 16)), n((3, 6, 16))), "one target token per sequence"),
            Case((n((2, 5, 16)), n((2, 5, 16))), "target and source of the same length"),
            Case(
                (n((2, 3, 16)) * np.array([300.0, 1.0, 1.0])[:, None], n((2, 4, 16))),
                "target token 0 is 300 times larger than the others: its rows of scores are "
                "far above theirs",
            ),
        ),
        mistakes=(
            Mistake(
                "keys and values from the target",
                "that is self-attention; in cross-attention the "
                "keys and values come from the source.",
                "notebook 05 §4",
                lambda target, source: _forward(_LAYER, target),
                hint="In cross-attention, which of the two sequences do the keys and values come"
                     " from?",
            ),
            Mistake(
                "queries from the source",
                "the queries come from the target (the output has one "
                "row per target token), keys and values from the source.",
                "notebook 05 §4",
                lambda target, source: _forward(_LAYER, source, target),
            ),
            Mistake(
                "left out the biases",
                "every projection adds its bias: q = x W_q + b_q, … and out = heads W_o + b_o.",
                "notebook 05 §1",
                lambda target, source: _forward(_LAYER, target, source, bias=False),
            ),
            Mistake(
                "left out b_o",
                "the output projection has a bias too.",
                "notebook 05 §3",
                lambda target, source: (lambda o, w: (o - _LAYER.b_o, w))(
                    *cross_attend(target, source)
                ),
            ),
            Mistake(
                "no output projection",
                "the combined heads go through W_o (and b_o).",
                "notebook 05 §3",
                lambda target, source: _forward(_LAYER, target, source, out=False),
            ),
            Mistake(
                "scaled by √d_model",
                "each head's scores are divided by √d_k = √(d_model / heads) = 2, not by "
                "√d_model = 4: attention(Q, K, V) already uses the width of the heads it is given.",
                "notebook 04 §4",
                lambda target, source: _forward(_LAYER, target, source, scale=16),
                hint="How wide is one head's query vector here, and which scale does attention "
                "use when you leave scale out?",
            ),
            Mistake(
                "PyTorch's (out, in) layout",
                "the course stores each W as (in, out) and computes x @ W; x @ W.T is "
                "torch.nn.Linear's convention. The matrices are square, so nothing fails: the "
                "numbers are simply wrong.",
                "notebook 05 §1",
                lambda target, source: _forward(_LAYER, target, source, torch_layout=True),
                hint="Which way round does this course store W_q: (in, out) or (out, in)? "
                "Section 1 says, and the shapes cannot tell you because W_q is square.",
            ),
            one_max_mistake(
                lambda target, source: _forward(_LAYER, target, source, softmax=softmax_one_max),
                hint="Over which axis did you take the maximum you subtract? (attention does "
                "this for you.)",
            ),
        ),
    )
)


# --------------------------------------------------------------------------- 05.3
def xavier_limit(fan_in, fan_out):
    return math.sqrt(6.0 / (fan_in + fan_out))


register(
    Exercise(
        id="05.3",
        reference=xavier_limit,
        taught="notebook 05 §2",
        compare=real(rtol=1e-9),
        difficulty=1,
        minutes=5,
        hints=(
            "What is the variance of a uniform distribution on [−a, a]? Section 2 gives it.",
            "Set a²/3 equal to 2/(fan_in + fan_out) and solve for a.",
        ),
        cases=(
            Case((64, 256), "fan_in 64, fan_out 256"),
            Case((512, 2048), "fan_in 512, fan_out 2048"),
            Case((3, 5), "fan_in 3, fan_out 5"),
            Case((1, 1), "fan_in = fan_out = 1"),
            Case((512, 512), "a square 512 × 512 projection"),
        ),
        mistakes=(
            Mistake(
                "the standard deviation as the bound",
                "√(2/(fan_in+fan_out)) is the standard "
                "deviation; U(-a, a) has variance a²/3, so a = √(6/(fan_in+fan_out)).",
                "notebook 05 §2",
                lambda fan_in, fan_out: math.sqrt(2.0 / (fan_in + fan_out)),
                hint="Is √(2/(fan_in + fan_out)) the bound a of U(−a, a), or its standard "
                     "deviation? What is the variance of U(−a, a)?",
            ),
            Mistake(
                "no square root",
                "6/(fan_in+fan_out) is a², not a.",
                "notebook 05 §2",
                lambda fan_in, fan_out: 6.0 / (fan_in + fan_out),
            ),
            Mistake(
                "fan_in only",
                "1/√fan_in is LeCun's standard deviation; Xavier uses both fans.",
                "notebook 05 §2",
                lambda fan_in, fan_out: 1.0 / math.sqrt(fan_in),
            ),
            Mistake(
                "√(6/fan_in)",
                "that is the He/Kaiming uniform bound; Xavier averages fan_in and fan_out.",
                "notebook 05 §2",
                lambda fan_in, fan_out: math.sqrt(6.0 / fan_in),
            ),
            Mistake(
                "variance 1/(fan_in+fan_out)",
                "the target variance is 2/(fan_in+fan_out): a = √(3 · 2/(fan_in+fan_out)).",
                "notebook 05 §2",
                lambda fan_in, fan_out: math.sqrt(3.0 / (fan_in + fan_out)),
            ),
        ),
    )
)
