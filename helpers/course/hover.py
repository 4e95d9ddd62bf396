"""Attention heatmaps that show each cell's weight on hover, with no kernel and no network.

:class:`HoverHeatmap` displays, in a notebook or on the static course site, as one inline SVG:
a cell per (query, key) pair coloured on the same scale as the matplotlib figures, a colour
bar, token labels, and a ``<title>`` per cell ("query 'cat' → key 'the': 0.123") that the
browser shows as a tooltip. Cells a mask blocks are grey and hatched, titled "masked". Its
plain-text form is a rounded table, the same on every run (nbval compares it).

Taught in notebook 02, section 6 (one head) and notebook 04, section 5 (every head).
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence

import numpy as np
from matplotlib.colors import to_hex
from numpy.typing import ArrayLike

from helpers.course._style import MASKED_EDGE, MASKED_FACE, check_mask, weight_colormap

CELL = 26  # px
GAP = 30  # px between panels
FONT = 12  # px
TEXT_ROWS_LIMIT = 16  # the text form prints tables up to this many queries and keys


def _colour(value: float) -> str:
    return to_hex(weight_colormap()(float(np.clip(value, 0.0, 1.0))))


def _ink(value: float) -> str:
    """Text colour readable on a cell of weight ``value``."""
    return "#ffffff" if value > 0.55 else "#222222"


class HoverHeatmap:
    """Weights ``(L_q, L_k)`` or ``(H, L_q, L_k)`` as an SVG whose cells name their weight.

    ``query_tokens`` / ``key_tokens`` label rows and columns (keys default to the queries);
    ``mask`` is boolean, True = may attend, broadcastable to the weights (masked cells must
    have weight 0). ``head_labels`` default to "head 1" ... "head H". ``highlight_query``
    outlines one query row in every panel. ``annotate`` writes the weights into the cells
    (default: when both lengths are at most 8).
    """

    def __init__(
        self,
        weights: ArrayLike,
        query_tokens: Sequence[str] | None = None,
        key_tokens: Sequence[str] | None = None,
        *,
        title: str = "Attention weights (hover a cell)",
        mask: ArrayLike | None = None,
        head_labels: Sequence[str] | None = None,
        highlight_query: int | None = None,
        annotate: bool | None = None,
        ncols: int = 4,
    ) -> None:
        w = np.asarray(weights, dtype=float)
        if w.ndim == 2:
            w = w[np.newaxis]
        if w.ndim != 3:
            raise ValueError(f"weights must have shape (L_q, L_k) or (H, L_q, L_k), got {w.shape}")
        if not np.isfinite(w).all():
            raise ValueError("weights contain NaN or infinity")
        if (w < -1e-12).any() or (w > 1 + 1e-12).any():
            raise ValueError(f"weights must lie in [0, 1], got values from {w.min():.3g} "
                             f"to {w.max():.3g}")
        h, l_q, l_k = w.shape
        self.weights = w.copy()  # (H, L_q, L_k)
        allowed = check_mask(mask, w)
        self.allowed = np.ones_like(w, dtype=bool) if allowed is None else allowed.copy()
        self.query_tokens = self._labels(query_tokens, l_q, "query_tokens")
        keys = query_tokens if key_tokens is None else key_tokens
        self.key_tokens = self._labels(keys, l_k, "key_tokens")
        if head_labels is None:
            head_labels = [f"head {i + 1}" for i in range(h)] if h > 1 else [""]
        if len(head_labels) != h:
            raise ValueError(f"head_labels has {len(head_labels)} entries for {h} heads")
        self.head_labels = [str(x) for x in head_labels]
        if highlight_query is not None and not 0 <= highlight_query < l_q:
            raise ValueError(f"highlight_query must be in [0, {l_q}), got {highlight_query}")
        self.highlight_query = highlight_query
        self.annotate = (l_q <= 8 and l_k <= 8) if annotate is None else annotate
        self.title = title
        self.ncols = max(1, min(ncols, h))

    @staticmethod
    def _labels(tokens: Sequence[str] | None, n: int, name: str) -> list[str]:
        if tokens is None:
            return [str(i) for i in range(n)]
        labels = [str(t) for t in tokens]
        if len(labels) != n:
            raise ValueError(f"{name} has {len(labels)} entries, the weights need {n}")
        return labels

    # ------------------------------------------------------------------ text
    def __repr__(self) -> str:
        h, l_q, l_k = self.weights.shape
        lines = [f"HoverHeatmap: {h} head{'s' if h > 1 else ''}, {l_q} queries x {l_k} keys"
                 f"{', masked cells -' if not self.allowed.all() else ''}"]
        if max(l_q, l_k) > TEXT_ROWS_LIMIT:
            for label, w in zip(self.head_labels, self.weights, strict=True):
                lines.append(f"{label or 'weights'}: max {w.max():.2f}, mean {w.mean():.2f}")
            return "\n".join(lines)
        width = max(5, *(len(t) for t in self.key_tokens))
        left = max(len(t) for t in self.query_tokens)
        for label, w, ok in zip(self.head_labels, self.weights, self.allowed, strict=True):
            if label:
                lines.append(label)
            lines.append(" " * left + "".join(f" {t:>{width}}" for t in self.key_tokens))
            for q, row, row_ok in zip(self.query_tokens, w, ok, strict=True):
                cells = "".join(f" {v:>{width}.2f}" if k else f" {'-':>{width}}"
                                for v, k in zip(row, row_ok, strict=True))
                lines.append(f"{q:<{left}}{cells}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ SVG
    def _id(self) -> str:
        """Deterministic id prefix (two heatmaps on one page must not share gradient ids)."""
        digest = hashlib.sha256(repr(self).encode() + self.title.encode())
        digest.update(np.round(self.weights, 4).tobytes())
        return "ah" + digest.hexdigest()[:10]

    def _repr_html_(self) -> str:
        h, l_q, l_k = self.weights.shape
        uid = self._id()
        label_w = 8 + int(0.62 * FONT * max(len(t) for t in self.query_tokens))
        label_h = 8 + int(0.62 * FONT * max(len(t) for t in self.key_tokens))
        head_h = FONT + 8 if any(self.head_labels) else 0
        panel_w, panel_h = l_k * CELL, l_q * CELL
        nrows = -(-h // self.ncols)
        width = label_w + self.ncols * panel_w + (self.ncols - 1) * GAP + 70
        bar_h = max(80, min(200, panel_h))
        height = max(nrows * (head_h + panel_h + label_h) + (nrows - 1) * GAP // 2 + 4,
                     bar_h + 52)
        esc = html.escape
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" style="max-width:100%;height:auto" role="img" '
            f'aria-label="{esc(self.title)}: heatmap of {h} x {l_q} x {l_k} attention weights" '
            f'font-family="sans-serif" font-size="{FONT}">',
            f"<title>{esc(self.title)}</title>",
            "<defs>",
            f'<pattern id="{uid}-masked" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{MASKED_FACE}"/>'
            f'<line x1="0" y1="0" x2="0" y2="6" stroke="{MASKED_EDGE}" stroke-width="1.5"/>'
            "</pattern>",
            f'<linearGradient id="{uid}-scale" x1="0" y1="1" x2="0" y2="0">',
            *(f'<stop offset="{v:.1f}" stop-color="{_colour(v)}"/>' for v in np.linspace(0, 1, 11)),
            "</linearGradient>",
            "</defs>",
        ]
        for i in range(h):
            row, col = divmod(i, self.ncols)
            x0 = label_w + col * (panel_w + GAP)
            y0 = row * (head_h + panel_h + label_h + GAP // 2) + head_h
            parts.append(f'<g class="head" data-head="{i + 1}">')
            if self.head_labels[i]:
                parts.append(f'<text x="{x0 + panel_w / 2}" y="{y0 - 6}" text-anchor="middle" '
                             f'font-weight="bold">{esc(self.head_labels[i])}</text>')
            for q in range(l_q):
                for k in range(l_k):
                    value = self.weights[i, q, k]
                    name = f"query '{self.query_tokens[q]}' → key '{self.key_tokens[k]}'"
                    if self.head_labels[i]:
                        name = f"{self.head_labels[i]}, {name}"
                    x, y = x0 + k * CELL, y0 + q * CELL
                    if self.allowed[i, q, k]:
                        fill, tip = _colour(value), f"{name}: {value:.3f}"
                    else:
                        fill, tip = f"url(#{uid}-masked)", f"{name}: masked"
                    parts.append(f'<rect class="cell" x="{x}" y="{y}" width="{CELL}" '
                                 f'height="{CELL}" fill="{fill}"><title>{esc(tip)}</title></rect>')
                    if self.annotate and self.allowed[i, q, k]:
                        parts.append(f'<text x="{x + CELL / 2}" y="{y + CELL / 2 + 4}" '
                                     f'text-anchor="middle" font-size="{FONT - 3}" '
                                     f'fill="{_ink(value)}" pointer-events="none">'
                                     f"{value:.2f}</text>")
            if self.highlight_query is not None:
                parts.append(f'<rect x="{x0}" y="{y0 + self.highlight_query * CELL}" '
                             f'width="{panel_w}" height="{CELL}" fill="none" stroke="#1f77b4" '
                             f'stroke-width="2.5" pointer-events="none"/>')
            if col == 0:
                for q, t in enumerate(self.query_tokens):
                    parts.append(f'<text x="{x0 - 5}" y="{y0 + q * CELL + CELL / 2 + 4}" '
                                 f'text-anchor="end">{esc(t)}</text>')
            for k, t in enumerate(self.key_tokens):
                cx, cy = x0 + k * CELL + CELL / 2 + 4, y0 + panel_h + 5
                parts.append(f'<text x="{cx}" y="{cy}" text-anchor="end" '
                             f'transform="rotate(-90 {cx} {cy})">{esc(t)}</text>')
            parts.append("</g>")
        bar_x = width - 52
        parts += [
            f'<rect x="{bar_x}" y="10" width="12" height="{bar_h}" fill="url(#{uid}-scale)" '
            f'stroke="#888"><title>attention weight, 0 to 1</title></rect>',
            *(f'<text x="{bar_x + 16}" y="{10 + bar_h * (1 - v) + 4}">{v:g}</text>'
              for v in (0.0, 0.5, 1.0)),
        ]
        if not self.allowed.all():
            parts.append(f'<rect x="{bar_x}" y="{bar_h + 18}" width="12" height="12" '
                         f'fill="url(#{uid}-masked)" stroke="#888"><title>masked</title></rect>'
                         f'<text x="{bar_x - 2}" y="{bar_h + 44}" font-size="{FONT - 2}">'
                         "masked</text>")
        parts.append("</svg>")
        svg = "".join(parts)
        return (f'<figure class="attention-hover" style="margin:0;max-width:100%;overflow-x:auto">'
                f'<figcaption style="font-weight:600">{esc(self.title)}</figcaption>{svg}'
                f'<p style="font-size:small;margin:0">query rows, key columns; hover a cell for '
                f"its weight</p></figure>")
