"""Tiling and threaded products shared by the layer's forward and backward passes.

The attention part of both passes runs in tiles of ``(batch, heads, rows)``
of about a megabyte of scores (:func:`tiles_of`), spread over the threads of
:func:`helpers.fastpath.threads.run_blocks`; the large projections are split into
row or column blocks the same way (:func:`matmul`).
"""

from __future__ import annotations

import numpy as np

from helpers._validate import FloatArray
from helpers.fastpath.threads import num_workers, run_blocks

__all__ = ["OVERFLOW_MESSAGE", "TILE_ELEMENTS", "abs_max", "matmul", "softmax_in_place",
           "tiles_of"]

TILE_ELEMENTS = 1 << 18
"""Target number of scores per tile (1 MiB in float32, about half a core's L2 cache)."""


def matmul(a: FloatArray, b: FloatArray, bias: FloatArray | None = None, *,
           split: str = "rows") -> FloatArray:
    """``a (m, k) @ b (k, n) (+ bias)``, split between the threads of ``run_blocks``.

    ``split="rows"`` gives each thread a block of rows of ``a``;
    ``split="columns"`` a block of columns of ``b`` (for ``x^T dY``, whose rows
    are few and whose inner dimension is long). With one worker (the BLAS
    then threads the product itself) it is a single product.
    """
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    n = out.shape[0] if split == "rows" else out.shape[1]
    parts = max(1, min(num_workers(), n // 64))  # tiny blocks are not worth a thread

    def block(start: int, stop: int) -> None:
        for i in range(start, stop):
            c0, c1 = n * i // parts, n * (i + 1) // parts
            if split == "rows":
                np.matmul(a[c0:c1], b, out=out[c0:c1])
                if bias is not None:
                    out[c0:c1] += bias
            else:
                np.matmul(a, b[:, c0:c1], out=out[:, c0:c1])
                if bias is not None:
                    out[:, c0:c1] += bias[c0:c1]

    if parts == 1:
        block(0, 1)
    else:
        run_blocks([block], [parts])
    return out


def tiles_of(B: int, h: int, L_q: int, L_k: int) -> tuple[int, int]:
    """Rows per tile and heads per tile for scores ``(B, h, L_q, L_k)``."""
    rows = max(1, min(L_q, TILE_ELEMENTS // max(L_k, 1)))
    group = max(1, min(h, TILE_ELEMENTS // (rows * max(L_k, 1))))
    return rows, group


OVERFLOW_MESSAGE = (
    "the attention scores overflow {dtype} (they are not finite although the inputs are): "
    "scale the inputs or the weights down, or compute in float64"
)


def abs_max(x: FloatArray) -> float:
    return float(np.abs(x).max()) if x.size else 0.0


def softmax_in_place(s: FloatArray) -> None:
    """Row-wise softmax of the scores ``s (..., L_k)`` in place; fully masked rows become 0.

    Raises ``ValueError`` if a score is NaN or ``+inf`` (an overflow).
    """
    if s.shape[-1] == 0:
        return
    peak = s.max(axis=-1, keepdims=True)  # (..., 1); NaN if a row holds NaN
    if not float(peak.max(initial=-np.inf)) < np.inf:
        raise ValueError(OVERFLOW_MESSAGE.format(dtype=s.dtype))
    peak[peak == -np.inf] = 0.0  # a fully masked row: exp(-inf - 0) = 0, not NaN
    s -= peak
    np.exp(s, out=s)
    total = s.sum(axis=-1, keepdims=True)
    s *= np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
