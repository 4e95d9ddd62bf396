r"""A small Transformer language model around :class:`helpers.MultiHeadAttention`.

Taught in notebook 08, sections 2 (forward pass, pre-LN and post-LN) and 5-7 (backward pass).

Forward pass, tokens ``(B, L)`` -> logits ``(B, L, V)``::

    x = E[tokens] + PE[:L]                     (B, L, d)   embedding + sinusoidal positions
    for each block:                            (B, L, d)
        pre-LN:   x = x + Attn(LN1(x))             (+ x = x + FFN(LN2(x)) with a feed-forward)
        post-LN:  x = LN1(x + Attn(x))             (+ x = LN2(x + FFN(x)))
    logits = LN_f(x) W + b    (pre-LN)   or   x W + b    (post-LN)

The backward pass runs the same steps in reverse. A residual connection ``y = x + f(x)``
sends its gradient down both paths and the two add: ``dx = dy + f'(x)^T dy``. In a pre-LN
block the path through the ``+`` is the identity, so the gradient reaches the embedding
undamped however many blocks there are; in a post-LN block it passes a LayerNorm per block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from helpers._validate import positive_int
from helpers.attention import FloatArray
from helpers.kv_cache import KVCache, decode_step
from helpers.masks import create_causal_mask
from helpers.mha import MultiHeadAttention
from helpers.positional import sinusoidal_positional_encoding
from helpers.training.layers import Embedding, FeedForward, LayerNorm, Linear
from helpers.training.module import Module, check_tokens

__all__ = ["Block", "ModelConfig", "TinyTransformer"]


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and choices of a :class:`TinyTransformer`.

    ``d_ff=None`` leaves the feed-forward layer out; ``norm`` is ``"pre"`` or ``"post"``;
    ``causal`` adds the causal mask to every attention layer.
    """

    vocab_size: int
    d_model: int = 32
    num_heads: int = 2
    num_layers: int = 1
    max_len: int = 64
    d_ff: int | None = None
    norm: str = "pre"
    causal: bool = True
    attention_bias: bool = False
    eps: float = 1e-5
    position_base: float = 10000.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "num_heads", "num_layers", "max_len"):
            positive_int(getattr(self, name), name)
        if self.d_ff is not None:
            positive_int(self.d_ff, "d_ff")
        if self.norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' or 'post', got {self.norm!r}")
        if self.d_model % 2:
            raise ValueError(f"d_model must be even (sinusoidal positions), got {self.d_model}")


class Block(Module):
    """One Transformer block: attention (and optionally a feed-forward layer), each inside a
    residual connection with a LayerNorm before it (``"pre"``) or after the sum (``"post"``).

    Shapes ``(B, L, d) -> (B, L, d)``. Children: ``ln1``, ``attn``, and ``ln2``, ``ffn``
    with a feed-forward layer.
    """

    def __init__(self, config: ModelConfig, rng: np.random.Generator,
                 dtype: DTypeLike = np.float64) -> None:
        super().__init__()
        d = config.d_model
        self.norm = config.norm
        self.ln1 = LayerNorm(d, eps=config.eps, dtype=dtype)
        self.attn = MultiHeadAttention(d, config.num_heads, bias=config.attention_bias,
                                       seed=int(rng.integers(2**32)), dtype=dtype)
        self.ln2 = self.ffn = None
        if config.d_ff is not None:
            self.ln2 = LayerNorm(d, eps=config.eps, dtype=dtype)
            self.ffn = FeedForward(d, config.d_ff, rng=rng, dtype=dtype)
        self.weights: FloatArray | None = None  # attention weights of the last forward pass
        self.zero_grad()

    def children(self) -> dict[str, Any]:
        parts: dict[str, Any] = {"ln1": self.ln1, "attn": self.attn}
        if self.ffn is not None:
            parts.update(ln2=self.ln2, ffn=self.ffn)
        return parts

    def _attend(self, a: FloatArray, mask: np.ndarray | None) -> FloatArray:
        out, self.weights = self.attn.forward(a, mask=mask)
        return out

    def forward(self, x: FloatArray, mask: np.ndarray | None = None) -> FloatArray:
        if self.norm == "pre":
            x = x + self._attend(self.ln1(x), mask)
            if self.ffn is not None:
                x = x + self.ffn(self.ln2(x))
            return x
        x = self.ln1(x + self._attend(x, mask))
        if self.ffn is not None:
            x = self.ln2(x + self.ffn(x))
        return x

    def backward(self, dy: FloatArray) -> FloatArray:
        if self.norm == "pre":
            if self.ffn is not None:
                dy = dy + self.ln2.backward(self.ffn.backward(dy))
            return dy + self.ln1.backward(self.attn.backward(dy))
        if self.ffn is not None:
            dz = self.ln2.backward(dy)
            dy = dz + self.ffn.backward(dz)
        du = self.ln1.backward(dy)
        return du + self.attn.backward(du)

    def decode(self, x_new: FloatArray, cache: KVCache) -> FloatArray:
        """This block on the newest token ``(B, 1, d)``, attending through ``cache``."""
        if self.norm == "pre":
            x = x_new + decode_step(self.attn, self.ln1(x_new), cache)[0]
            if self.ffn is not None:
                x = x + self.ffn(self.ln2(x))
            return x
        x = self.ln1(x_new + decode_step(self.attn, x_new, cache)[0])
        if self.ffn is not None:
            x = self.ln2(x + self.ffn(x))
        return x

    __call__ = forward


class TinyTransformer(Module):
    """Embedding, sinusoidal positions, ``num_layers`` blocks and a linear read-out.

    Parameters
    ----------
    config : ModelConfig
    seed : int or None, keyword-only
        Seeds every weight (one ``np.random.default_rng(seed)`` shared in a fixed order).
    dtype : numpy floating dtype, keyword-only

    Parameters are named like ``"embed.weight"``, ``"blocks.0.attn.W_q"``,
    ``"blocks.0.ln1.weight"``, ``"ln_f.bias"``, ``"head.W"`` (see ``parameters()``).
    """

    def __init__(self, config: ModelConfig, *, seed: int | None = None,
                 dtype: DTypeLike = np.float64) -> None:
        super().__init__()
        self.config = config
        self.dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        d = config.d_model
        self.embed = Embedding(config.vocab_size, d, rng=rng, dtype=dtype)
        self.positions = sinusoidal_positional_encoding(  # (max_len, d), fixed
            config.max_len, d, base=config.position_base, dtype=dtype)
        self.blocks = [Block(config, rng, dtype) for _ in range(config.num_layers)]
        self.ln_f = LayerNorm(d, eps=config.eps, dtype=dtype) if config.norm == "pre" else None
        self.head = Linear(d, config.vocab_size, rng=rng, dtype=dtype)
        self.zero_grad()

    def children(self) -> dict[str, Any]:
        parts: dict[str, Any] = {"embed": self.embed}
        parts.update({f"blocks.{i}": b for i, b in enumerate(self.blocks)})
        if self.ln_f is not None:
            parts["ln_f"] = self.ln_f
        parts["head"] = self.head
        return parts

    @property
    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters().values())

    def __repr__(self) -> str:
        c = self.config
        return (f"TinyTransformer(vocab={c.vocab_size}, d_model={c.d_model}, heads={c.num_heads}, "
                f"layers={c.num_layers}, d_ff={c.d_ff}, norm={c.norm!r}, causal={c.causal}, "
                f"parameters={self.num_parameters:,})")

    def _check(self, tokens: ArrayLike) -> np.ndarray:
        tokens = check_tokens(tokens, self.config.vocab_size)
        if tokens.ndim != 2 or not 1 <= tokens.shape[1] <= self.config.max_len:
            raise ValueError(
                f"tokens must have shape (batch, L) with 1 <= L <= max_len={self.config.max_len}, "
                f"got {tokens.shape}"
            )
        return tokens

    def forward(self, tokens: ArrayLike) -> FloatArray:
        """Logits ``(B, L, vocab_size)`` for integer tokens ``(B, L)``.

        Keeps what ``backward`` needs; ``attention_weights`` then holds each block's
        weights ``(B, h, L, L)``.
        """
        tokens = self._check(tokens)
        L = tokens.shape[1]
        mask = create_causal_mask(L) if self.config.causal else None
        x = self.embed(tokens) + self.positions[:L]  # (B, L, d)
        for block in self.blocks:
            x = block(x, mask)  # (B, L, d)
        if self.ln_f is not None:
            x = self.ln_f(x)
        return self.head(x)  # (B, L, V)

    __call__ = forward

    @property
    def attention_weights(self) -> list[FloatArray]:
        """Each block's attention weights ``(B, h, L, L)`` from the last forward pass."""
        return [b.weights for b in self.blocks if b.weights is not None]

    def backward(self, dlogits: ArrayLike) -> None:
        """Accumulate every parameter's gradient from ``dlogits (B, L, vocab_size)``."""
        dx = self.head.backward(dlogits)  # (B, L, d)
        if self.ln_f is not None:
            dx = self.ln_f.backward(dx)
        for block in reversed(self.blocks):
            dx = block.backward(dx)
        self.embed.backward(dx)  # the positions are fixed: no gradient

    def decode_step(self, token: ArrayLike, position: int, caches: list[KVCache]) -> FloatArray:
        """Logits ``(B, V)`` for the newest tokens ``(B,)`` at ``position``, one cache per block.

        Equal to ``forward(prefix)[:, -1]`` for a causal model when the caches hold the
        keys and values of the ``position`` earlier tokens.
        """
        if not self.config.causal:
            raise ValueError("decoding with a KV cache needs a causal model (config.causal)")
        if len(caches) != len(self.blocks):
            raise ValueError(f"need one KVCache per block ({len(self.blocks)}), got {len(caches)}")
        if not 0 <= position < self.config.max_len:
            raise ValueError(f"position must lie in [0, {self.config.max_len}), got {position}")
        token = check_tokens(token, self.config.vocab_size, "token")
        x = self.embed(token[:, np.newaxis]) + self.positions[position]  # (B, 1, d)
        for block, cache in zip(self.blocks, caches, strict=True):
            x = block.decode(x, cache)
        if self.ln_f is not None:
            x = self.ln_f(x)
        return self.head(x)[:, 0]  # (B, V)
