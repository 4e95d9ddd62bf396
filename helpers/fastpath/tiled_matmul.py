"""How the fast path cuts its work into blocks: query tiles for attention, row blocks for products.

The attention part of the forward and backward passes runs in tiles of ``(batch, heads, rows)``
of a few megabytes of scores (:func:`tiles_of`); the projections run in one block of rows or
columns per thread (:func:`chunks`). :func:`helpers.fastpath.threads.run_blocks` runs them.
"""

from __future__ import annotations

__all__ = ["TILE_ELEMENTS", "chunks", "tiles_of"]

TILE_ELEMENTS = 1 << 20
"""Scores per tile of the backward pass: 1 Mi floats, 4 MiB in float32. Its products with
``d_k`` columns run faster with more rows (rows 128 -> 512 at L = 2048: backward 12 % faster);
the forward pass's are smaller (:data:`helpers.fastpath.fused_mha.TILE_ELEMENTS`): its softmax
passes need the tile in the L2 cache."""


def tiles_of(B: int, h: int, L_q: int, L_k: int, elements: int | None = None) -> tuple[int, int]:
    """Rows per tile and heads per tile for scores ``(B, h, L_q, L_k)`` (``elements`` per tile,
    default :data:`TILE_ELEMENTS`)."""
    elements = TILE_ELEMENTS if elements is None else elements
    rows = max(1, min(L_q, elements // max(L_k, 1)))
    group = max(1, min(h, elements // (rows * max(L_k, 1))))
    return rows, group


def chunks(n: int, parts: int) -> list[tuple[int, int]]:
    """``range(n)`` as at most ``parts`` nearly equal ``(start, stop)`` blocks (none for 0)."""
    parts = max(1, min(parts, n))
    return [(n * i // parts, n * (i + 1) // parts) for i in range(parts)] if n else []
