"""The attention explorer widget (ipywidgets): one heatmap, the picked query's bars, controls.

:class:`AttentionExplorer` draws what a ``compute(state) -> view`` function returns for the
settings its controls show; :mod:`helpers.course.explorer` builds explorers from ``Q, K, V``,
from embeddings or from weights already computed. Driving one from code:
``explorer.set(d_k=512, scaled=False)`` moves the controls as a learner would and returns the
new :class:`ExplorerView`; ``explorer.choices("d_k")`` lists a control's values.

Displayed in a notebook, an explorer is the live widget in JupyterLab; on the static site and
under nbval it is its HTML view of the current state (hover heatmap and bars, no kernel, no
network) and a rounded text summary, the same on every run. Taught in notebook 02, sections 6
and 11.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import ipywidgets as widgets
import numpy as np

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
    """What a state produces: weights ``(L_q, L_k)``, values ``(L_k, d_v)`` or None, mask,
    and the scores ``(L_q, L_k)`` the softmax was taken of (None for given weights)."""

    weights: np.ndarray
    values: np.ndarray | None = None
    allowed: np.ndarray | None = None  # (L_q, L_k) bool, True = may attend
    scores: np.ndarray | None = None  # after the scale and the temperature, before the mask


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

    def choices(self, name: str) -> tuple[Any, ...]:
        """The values the control ``name`` offers (``"d_k"``: the slider's widths; ``"query"``:
        the query indices; ``"head"``: 1 … H; ``"scaled"``/``"causal"``: False, True)."""
        control = self._control(name)
        if isinstance(control, widgets.Checkbox):
            return (False, True)
        if isinstance(control, widgets.IntSlider):
            return tuple(range(control.min, control.max + 1))
        if isinstance(control, widgets.FloatLogSlider):
            return (control.base**control.min, control.base**control.max)  # the range
        return tuple(v if not isinstance(v, tuple) else v[1] for v in control.options)

    def set(self, **settings: Any) -> ExplorerView:
        """Move the named controls, as a learner would, and return the new view.

        Names are those of ``self.controls``: ``query`` (an index), ``head`` (from 1),
        ``layer`` (an index), ``d_k``, ``temperature``, ``scaled``, ``causal``. A name the
        explorer has no control for, or a value the control does not offer, raises
        ``ValueError``; nothing is changed then.
        """
        for name, value in settings.items():
            control = self._control(name)
            if isinstance(control, widgets.FloatLogSlider):
                low, high = self.choices(name)
                if not low <= float(value) <= high:
                    raise ValueError(f"{name} must lie in [{low:g}, {high:g}], got {value!r}")
            elif value not in self.choices(name) or isinstance(value, bool) != isinstance(
                control, widgets.Checkbox
            ):
                raise ValueError(f"{name} must be one of {self.choices(name)}, got {value!r}")
        for name, value in settings.items():
            self.controls[name].value = value  # redraws, as a click would
        return self.update()

    def _control(self, name: str) -> widgets.Widget:
        if name not in self.controls:
            raise ValueError(f"this explorer has no control {name!r}; its controls are "
                             f"{sorted(self.controls)}")
        return self.controls[name]

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
