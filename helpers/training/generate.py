r"""Greedy generation from a causal :class:`TinyTransformer`, with and without a KV cache.

Notebook 08, section 12. Without a cache every new token reruns the model on the whole prefix;
with one (:class:`helpers.kv_cache.KVCache`, one per block) each token goes through the model
once and attends to the stored keys and values. Both give the same tokens and, up to
rounding, the same logits.

Work counted (multiply-adds of the attention layers, as :func:`helpers.kv_cache.decoding_macs`):
one token attending to ``t`` keys through a cache costs :math:`4d^2 + 2td` per layer; a full
pass over ``t`` tokens costs :math:`4td^2 + 2t^2d` per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from helpers._validate import positive_int
from helpers.attention import FloatArray
from helpers.kv_cache import KVCache
from helpers.training.module import check_tokens
from helpers.training.tiny_transformer import TinyTransformer

__all__ = ["Generation", "generate"]


@dataclass
class Generation:
    """Result of :func:`generate`.

    Attributes
    ----------
    tokens : ndarray of int, shape (B, P + N)
        The prompt followed by the ``N`` generated tokens.
    logits : ndarray, shape (B, N, V)
        The logits each generated token was picked from.
    attention_macs : int
        Multiply-adds spent in the attention layers for one sequence (a batch multiplies
        both ways of decoding alike).
    """

    tokens: np.ndarray
    logits: FloatArray
    attention_macs: int


def generate(model: TinyTransformer, prompt: ArrayLike, num_new: int, *,
             use_cache: bool = True) -> Generation:
    """Extend ``prompt (B, P)`` by ``num_new`` greedy (argmax) tokens.

    ``use_cache=True`` feeds the tokens one at a time through ``model.decode_step`` (the
    prompt too, filling the caches); ``use_cache=False`` reruns ``model.forward`` on the
    whole prefix for every new token.
    """
    if not model.config.causal:
        raise ValueError("generation needs a causal model: a bidirectional one sees the future")
    tokens = check_tokens(prompt, model.config.vocab_size, "prompt")
    if tokens.ndim != 2 or tokens.shape[1] < 1:
        raise ValueError(f"prompt must have shape (batch, P) with P >= 1, got {tokens.shape}")
    num_new = positive_int(num_new, "num_new")
    P = tokens.shape[1]
    if P + num_new - 1 > model.config.max_len:
        raise ValueError(f"prompt of {P} + {num_new} new tokens exceeds max_len="
                         f"{model.config.max_len}")
    d, layers = model.config.d_model, model.config.num_layers
    macs = 0
    picked = []
    if use_cache:
        caches = [KVCache() for _ in model.blocks]
        for t in range(P - 1):  # prefill: the prompt except its last token
            model.decode_step(tokens[:, t], t, caches)
            macs += layers * (4 * d * d + 2 * (t + 1) * d)
        for t in range(P - 1, P + num_new - 1):
            logits = model.decode_step(tokens[:, t], t, caches)  # (B, V)
            macs += layers * (4 * d * d + 2 * (t + 1) * d)
            picked.append(logits)
            tokens = np.concatenate([tokens, logits.argmax(axis=-1)[:, np.newaxis]], axis=1)
    else:
        for _ in range(num_new):
            t = tokens.shape[1]
            logits = model.forward(tokens)[:, -1]  # (B, V): the last position only is used
            macs += layers * (4 * t * d * d + 2 * t * t * d)
            picked.append(logits)
            tokens = np.concatenate([tokens, logits.argmax(axis=-1)[:, np.newaxis]], axis=1)
    return Generation(tokens=tokens, logits=np.stack(picked, axis=1), attention_macs=macs)
