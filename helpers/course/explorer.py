"""Interactive attention explorers for JupyterLab (ipywidgets), with a static view for the site.

An :class:`AttentionExplorer` shows a heatmap of attention weights (hover a cell for its
weight) and, for the query you pick, the bars of its weights over the keys -- the
coefficients of the weighted sum -- and of the output vector that sum produces. Controls
appear for what the source can change: query, head, layer, temperature, ``d_k``, the
``1/sqrt(d_k)`` scaling and the causal mask. Every change redraws at once.

Three ways to build one:

* :func:`explore_attention` -- from ``Q, K, V`` of one or several heads (notebooks 02, 04);
* :func:`explore_projections` -- from embeddings ``X``, drawing random projections for each
  ``d_k`` of a slider (notebook 02: what the scaling does as ``d_k`` grows);
* :func:`explore_weights` -- from weights already computed: an array, a dict of layers, or a
  callable ``(layer, head) -> (L_q, L_k)`` (notebook 06: a pretrained model's heads).

Displayed in a notebook, an explorer is the live widget in JupyterLab; on the static site and
under nbval it is its HTML view of the first state (hover heatmap and bars, no kernel, no
network) and a rounded text summary, the same on every run.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import ipywidgets as widgets
import numpy as np
from numpy.typing import ArrayLike

from helpers import create_causal_mask, softmax
from helpers.course.hover import HoverHeatmap


@dataclass(frozen=True)
class ExplorerState:
    """The settings an explorer shows: which query, head and layer; how weights are made."""

    query: int = 0
    head: int = 0  # 0-based index; shown as "head 1" ...
    layer: int = 0
    temperature: float = 1.0
    d_k: int | None = None
    scaled: bool = True
    causal: bool = False


@dataclass(frozen=True)
class ExplorerView:
    """What a state produces: weights ``(L_q, L_k)``, values ``(L_k, d_v)`` or None, mask."""

    weights: np.ndarray
    values: np.ndarray | None = None
    allowed: np.ndarray | None = None  # (L_q, L_k) bool, True = may attend


def _bars_svg(values: np.ndarray, labels: Sequence[str], title: str, signed: bool) -> str:
    """Horizontal bar chart as inline SVG; each bar titled with its rounded value."""
    esc = html.escape
    n = len(values)
    label_w = 8 + int(7.5 * max(len(t) for t in labels))
    bar_w, row = 160, 18
    scale = max(float(np.abs(values).max()), 1e-12) if signed else 1.0
    zero = label_w + (bar_w / 2 if signed else 0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 60}" '
             f'height="{n * row + 24}" style="max-width:100%;height:auto" font-family="sans-serif"'
             f' font-size="12" role="img" aria-label="{esc(title)}"><title>{esc(title)}</title>',
             f'<text x="0" y="13" font-weight="bold">{esc(title)}</text>']
    for i, (v, t) in enumerate(zip(values, labels, strict=True)):
        y = 20 + i * row
        length = abs(v) / scale * (bar_w / 2 if signed else bar_w)
        x = zero - length if v < 0 else zero
        colour = "#4c72b0" if v >= 0 else "#c44e52"
        parts.append(f'<text x="{label_w - 5}" y="{y + 12}" text-anchor="end">{esc(t)}</text>'
                     f'<rect x="{x:.1f}" y="{y + 2}" width="{length:.1f}" height="{row - 5}" '
                     f'fill="{colour}"><title>{esc(t)}: {v:.3f}</title></rect>'
                     f'<text x="{label_w + bar_w + 4}" y="{y + 12}">{v:.2f}</text>')
    parts.append(f'<line x1="{zero}" x2="{zero}" y1="18" y2="{n * row + 20}" stroke="#555"/>')
    parts.append("</svg>")
    return "".join(parts)


class AttentionExplorer:
    """Live attention heatmap and weighted-sum bars for a ``compute(state) -> view`` function.

    ``tokens`` name the queries and ``key_tokens`` the keys (default: the same). The other
    arguments say which controls to show: ``num_heads`` > 1 a head slider, ``layers`` (names)
    a layer picker, ``d_k_values`` a ``d_k`` slider, ``adjustable`` the temperature slider and
    the scaling switch, ``causal`` the causal-mask switch (square weights only).
    """

    def __init__(
        self,
        compute: Callable[[ExplorerState], ExplorerView],
        tokens: Sequence[str],
        key_tokens: Sequence[str] | None = None,
        *,
        num_heads: int = 1,
        layers: Sequence[str] | None = None,
        d_k_values: Sequence[int] | None = None,
        adjustable: bool = True,
        causal: bool = True,
        title: str = "Attention explorer",
    ) -> None:
        self.compute = compute
        self.tokens = [str(t) for t in tokens]
        self.key_tokens = self.tokens if key_tokens is None else [str(t) for t in key_tokens]
        self.num_heads = num_heads
        self.layers = None if layers is None else [str(x) for x in layers]
        self.title = title
        self.state = ExplorerState(d_k=None if not d_k_values else int(d_k_values[0]))
        self.controls: dict[str, widgets.Widget] = {
            "query": widgets.Dropdown(options=[(t, i) for i, t in enumerate(self.tokens)],
                                      value=0, description="query"),
        }
        if num_heads > 1:
            self.controls["head"] = widgets.IntSlider(value=1, min=1, max=num_heads,
                                                      description="head")
        if self.layers:
            self.controls["layer"] = widgets.Dropdown(
                options=[(name, i) for i, name in enumerate(self.layers)], value=0,
                description="layer")
        if d_k_values:
            self.controls["d_k"] = widgets.SelectionSlider(
                options=[int(d) for d in d_k_values], value=int(d_k_values[0]),
                description="d_k")
        if adjustable:
            self.controls["temperature"] = widgets.FloatLogSlider(
                value=1.0, base=10, min=-1, max=1, step=0.05, description="temperature",
                readout_format=".2f")
            self.controls["scaled"] = widgets.Checkbox(value=True, description="divide by √d_k")
        if causal and len(self.tokens) == len(self.key_tokens):
            self.controls["causal"] = widgets.Checkbox(value=False, description="causal mask")
        self.output = widgets.HTML()
        for control in self.controls.values():
            control.style.description_width = "initial"  # "temperature" in full
            control.observe(self._changed, names="value")
        self.widget = widgets.VBox([widgets.HBox(list(self.controls.values()),
                                                 layout=widgets.Layout(flex_flow="row wrap")),
                                    self.output])
        self.view = self.update()

    # ------------------------------------------------------------------ updating
    def _changed(self, change: dict) -> None:
        self.update()

    def read_controls(self) -> ExplorerState:
        """The state the controls show now."""
        values = {name: control.value for name, control in self.controls.items()}
        if "head" in values:
            values["head"] -= 1  # the slider counts heads from 1
        return replace(self.state, **values)

    def update(self) -> ExplorerView:
        """Recompute from the controls and redraw; returns the new view."""
        self.state = self.read_controls()
        self.view = self.compute(self.state)
        self.output.value = self.html()
        return self.view

    # ------------------------------------------------------------------ drawing
    def _caption(self) -> str:
        s = self.state
        bits = []
        if self.layers:
            bits.append(f"layer {self.layers[s.layer]}")
        if self.num_heads > 1:
            bits.append(f"head {s.head + 1}")
        if "temperature" in self.controls:
            bits.append(f"T = {s.temperature:.2f}")
            bits.append("scaled by 1/√d_k" if s.scaled else "unscaled")
        if s.d_k is not None:
            bits.append(f"d_k = {s.d_k}")
        if s.causal:
            bits.append("causal mask")
        return ", ".join(bits)

    def html(self) -> str:
        """The current state as self-contained HTML: hover heatmap and weighted-sum bars."""
        v, s = self.view, self.state
        caption = self._caption()
        heatmap = HoverHeatmap(v.weights, self.tokens, self.key_tokens, title=self.title,
                               mask=v.allowed, highlight_query=s.query)
        row = v.weights[s.query]  # (L_k,)
        bars = [_bars_svg(row, self.key_tokens,
                          f"weights of query '{self.tokens[s.query]}' (sum to 1)", signed=False)]
        if v.values is not None:
            out = row @ v.values  # (d_v,) = sum_j w_j v_j
            shown = out[:16]
            bars.append(_bars_svg(shown, [f"dim {j}" for j in range(len(shown))],
                                  "output = Σ_j w_j v_j" + (" (first 16 dims)"
                                                            if len(out) > 16 else ""),
                                  signed=True))
        return ('<div class="attention-explorer">'
                f'<p style="margin:0 0 4px">{html.escape(caption)}</p>'
                '<div style="display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start">'
                + heatmap._repr_html_() + "".join(f"<div>{b}</div>" for b in bars)
                + "</div></div>")

    def __repr__(self) -> str:
        s, w = self.state, self.view.weights
        row = " ".join(f"{x:.2f}" for x in w[s.query])
        return (f"AttentionExplorer: {len(self.tokens)} queries x {len(self.key_tokens)} keys"
                f"{f', {self.num_heads} heads' if self.num_heads > 1 else ''}"
                f"{f', {len(self.layers)} layers' if self.layers else ''}; "
                f"{self._caption() or 'weights'}; query '{self.tokens[s.query]}': {row}")

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/html"] = self.html()
        bundle["text/plain"] = repr(self)
        return bundle


# ---------------------------------------------------------------------- factories


def _qkv_heads(Q: ArrayLike, K: ArrayLike, V: ArrayLike) -> tuple[np.ndarray, ...]:
    arrays = [np.asarray(a, dtype=float) for a in (Q, K, V)]
    if arrays[0].ndim == 2:
        arrays = [a[np.newaxis] for a in arrays]
    q, k, v = arrays
    if not (q.ndim == k.ndim == v.ndim == 3):
        raise ValueError(f"Q, K, V must have shapes (L, d) or (H, L, d), got {q.shape}, "
                         f"{k.shape}, {v.shape}")
    if q.shape[0] != k.shape[0] or k.shape[:2] != v.shape[:2] or q.shape[2] != k.shape[2]:
        raise ValueError(f"need Q (H, L_q, d_k), K (H, L_k, d_k), V (H, L_k, d_v); got "
                         f"{q.shape}, {k.shape}, {v.shape}")
    return q, k, v


def attention_view(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                   state: ExplorerState) -> ExplorerView:
    """Weights of one head: ``softmax(q k^T / (sqrt(d_k) if scaled) / T)``, causal if asked.

    ``q`` (L_q, d_k), ``k`` (L_k, d_k), ``v`` (L_k, d_v). With ``T = 1`` and scaling on this is
    exactly :func:`helpers.attention` (notebook 02, section 5).
    """
    scores = q @ k.T  # (L_q, L_k)
    if state.scaled:
        scores = scores / math.sqrt(q.shape[-1])
    scores = scores / state.temperature
    allowed = None
    if state.causal:
        allowed = create_causal_mask(q.shape[0])
        scores = np.where(allowed, scores, -np.inf)
    return ExplorerView(softmax(scores, axis=-1), v, allowed)


def explore_attention(Q: ArrayLike, K: ArrayLike, V: ArrayLike, tokens: Sequence[str],
                      key_tokens: Sequence[str] | None = None, *,
                      title: str = "Attention explorer") -> AttentionExplorer:
    """Explorer of ``Q`` ``(L_q, d_k)`` or ``(H, L_q, d_k)``, ``K`` and ``V`` likewise."""
    q, k, v = _qkv_heads(Q, K, V)
    return AttentionExplorer(lambda s: attention_view(q[s.head], k[s.head], v[s.head], s),
                             tokens, key_tokens, num_heads=q.shape[0], title=title)


def explore_projections(X: ArrayLike, tokens: Sequence[str], *,
                        d_k_values: Sequence[int] = (2, 8, 32, 128, 512), num_heads: int = 1,
                        seed: int = 0, title: str = "Attention explorer") -> AttentionExplorer:
    """Explorer of random projections of ``X`` ``(L, d_model)`` for each ``d_k`` of a slider.

    For each ``d_k``, ``W_Q, W_K, W_V`` of shape ``(d_model, H * d_k)`` are drawn from
    ``N(0, 1/d_model)`` with a generator seeded by ``(seed, d_k)``, so every ``d_k`` shows the
    same draw each time: switch the scaling off and watch the weights saturate as ``d_k`` grows.
    """
    x = np.asarray(X, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"X must have shape (L, d_model), got {x.shape}")
    cache: dict[int, tuple[np.ndarray, ...]] = {}

    def heads(d_k: int) -> tuple[np.ndarray, ...]:
        if d_k not in cache:
            rng = np.random.default_rng([seed, d_k])
            w = rng.normal(scale=1 / math.sqrt(x.shape[1]), size=(3, x.shape[1], num_heads * d_k))
            cache[d_k] = tuple(
                (x @ w[i]).reshape(x.shape[0], num_heads, d_k).transpose(1, 0, 2) for i in range(3)
            )  # each (H, L, d_k)
        return cache[d_k]

    def compute(state: ExplorerState) -> ExplorerView:
        q, k, v = heads(state.d_k)
        return attention_view(q[state.head], k[state.head], v[state.head], state)

    return AttentionExplorer(compute, tokens, num_heads=num_heads, d_k_values=d_k_values,
                             title=title)


def explore_weights(
    weights: ArrayLike | Mapping[str, ArrayLike] | Callable[[int, int], ArrayLike],
    tokens: Sequence[str],
    key_tokens: Sequence[str] | None = None,
    *,
    layers: Sequence[str] | int | None = None,
    num_heads: int | None = None,
    title: str = "Attention explorer",
) -> AttentionExplorer:
    """Explorer of weights already computed (a trained or pretrained model's heads).

    ``weights`` is an array ``(L_q, L_k)``, ``(H, L_q, L_k)`` or ``(layers, H, L_q, L_k)``; a
    dict ``layer name -> (H, L_q, L_k)``; or a callable ``(layer, head) -> (L_q, L_k)`` (0-based
    indices) with ``layers`` (names or a count) and ``num_heads`` given. Taught in notebook 06.
    """
    if callable(weights):
        if layers is None or num_heads is None:
            raise TypeError("a callable needs layers= (names or a count) and num_heads=")
        names = [str(i + 1) for i in range(layers)] if isinstance(layers, int) else list(layers)

        def fetch(layer: int, head: int) -> np.ndarray:
            return np.asarray(weights(layer, head), dtype=float)
    else:
        if isinstance(weights, Mapping):
            names = [str(n) for n in weights]
            stack = np.stack([np.asarray(w, dtype=float) for w in weights.values()])
        else:
            stack = np.asarray(weights, dtype=float)
            if stack.ndim < 4:
                stack = stack.reshape((1,) * (4 - stack.ndim) + stack.shape)
            names = None if stack.shape[0] == 1 else [str(i + 1) for i in range(stack.shape[0])]
            if isinstance(layers, int):
                names = [str(i + 1) for i in range(layers)]
            elif layers is not None:
                names = [str(x) for x in layers]
        if stack.ndim != 4:
            raise ValueError(f"weights must have shape (L_q, L_k), (H, L_q, L_k) or "
                             f"(layers, H, L_q, L_k), got {stack.shape}")
        if names is not None and len(names) != stack.shape[0]:
            raise ValueError(f"{len(names)} layer names for {stack.shape[0]} layers")
        num_heads = stack.shape[1]

        def fetch(layer: int, head: int) -> np.ndarray:
            return stack[layer, head]

    return AttentionExplorer(lambda s: ExplorerView(fetch(s.layer, s.head)), tokens, key_tokens,
                             num_heads=num_heads, layers=names, adjustable=False, causal=False,
                             title=title)
