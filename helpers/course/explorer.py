"""Interactive attention explorers for JupyterLab (ipywidgets), with a static view for the site.

An :class:`AttentionExplorer` (:mod:`helpers.course.explorer_widget`) shows a heatmap of
attention weights (hover a cell for its weight) and, for the query you pick, the bars of its
weights over the keys -- the coefficients of the weighted sum -- and of the output vector that
sum produces. Controls appear for what the source can change: query, head, layer, temperature,
``d_k``, the ``1/sqrt(d_k)`` scaling and the causal mask. Every change redraws at once;
``explorer.set(d_k=..., scaled=...)`` does the same from code and returns the view.

Three ways to build one:

* :func:`explore_attention` -- from ``Q, K, V`` of one or several heads (notebooks 02, 04);
* :func:`explore_projections` -- from embeddings ``X``, drawing random projections for each
  ``d_k`` of a slider (notebook 02: what the scaling does as ``d_k`` grows);
* :func:`explore_weights` -- from weights already computed: an array, a dict of layers, or a
  callable ``(layer, head) -> (L_q, L_k)`` (notebook 06: a pretrained model's heads).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from helpers import create_causal_mask, softmax
from helpers.course.explorer_widget import AttentionExplorer, ExplorerState, ExplorerView

__all__ = [
    "AttentionExplorer",
    "ExplorerState",
    "ExplorerView",
    "attention_view",
    "explore_attention",
    "explore_projections",
    "explore_weights",
]


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
        return ExplorerView(softmax(np.where(allowed, scores, -np.inf), axis=-1), v, allowed,
                            scores)
    return ExplorerView(softmax(scores, axis=-1), v, allowed, scores)


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
