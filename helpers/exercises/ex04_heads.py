"""Exercise 04.4 of notebook 04: combine heads (imported by ``ex04``; 04.5, the whole multi-head
attention function, is in ``ex04_mha``)."""

from __future__ import annotations

import numpy as np

from helpers.exercises._compare import arrays
from helpers.exercises._core import Case, Exercise, Mistake, register

rng = np.random.default_rng(445)
n = rng.standard_normal
_exact = arrays(rtol=0.0, atol=0.0, dtype="same")  # a transpose and a reshape change no value


# --------------------------------------------------------------------------- 04.4
def my_combine_heads(x):
    batch, heads, seq, d_k = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch, seq, heads * d_k)


register(
    Exercise(
        id="04.4",
        reference=my_combine_heads,
        taught="notebook 04 §2",
        compare=_exact,
        difficulty=1,
        minutes=10,
        hints=(
            "Undo the split in reverse order: first put the positions back in front of the "
            "heads, then merge the heads and their d_k features into one axis.",
            "A transpose moves the heads axis back behind the positions; only then does a "
            "reshape read each position's features head by head, d_k at a time. Reshaping "
            "before the transpose keeps the shape and mixes positions (section 2).",
        ),
        cases=(  # batch, heads, seq and d_k all differ, so a wrong axis order changes the shape
            Case((n((2, 3, 4, 5)),), "3 heads, 4 positions, d_k = 5"),
            Case((n((1, 3, 5, 4)),), "3 heads, 5 positions, d_k = 4"),
            Case((n((3, 6, 5, 1)),), "6 heads of width 1"),
            Case((n((4, 2, 3, 5)),), "2 heads, 3 positions, d_k = 5, batch of 4"),
            Case((n((2, 4, 3, 1)).astype(np.float32),), "float32 heads: float32 comes back"),
        ),
        mistakes=(
            Mistake(
                "reshape without the transpose",
                "reading (batch, heads, seq, d_k) straight as "
                "(batch, seq, d_model) mixes positions; transpose(0, 2, 1, 3) first.",
                "notebook 04 §2",
                lambda x: x.reshape(x.shape[0], x.shape[2], -1),
                hint="Combine the output of a correct split and compare with the array you "
                "split: which axis must come right before d_k when you reshape?",
            ),
            Mistake(
                "(d_k, heads) order",
                "the features of the head at index i go to i·d_k … (i+1)·d_k - 1, so the "
                "heads axis comes before d_k.",
                "notebook 04 §2",
                lambda x: x.transpose(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1),
                hint="Which feature of a position lands in head 0 when your reshape reads (…, "
                     "d_k, heads)? Try it on a row 0, 1, 2, … of length d_model.",
            ),
            Mistake(
                "heads stacked along the sequence",
                "the heads are joined along the features: (batch, seq, heads·d_k).",
                "notebook 04 §2",
                lambda x: np.concatenate(list(np.moveaxis(x, 1, 0)), axis=1),
            ),
            Mistake(
                "summed the heads",
                "the heads are concatenated, not added.",
                "notebook 04 §2",
                lambda x: x.sum(axis=1),
            ),
        ),
    )
)
