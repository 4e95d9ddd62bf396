r"""The BERT encoder of all-MiniLM-L6-v2, written with the course's library (notebook 06).

Every step is a piece taught earlier; shapes for a batch of ``B`` texts of ``L`` tokens:

1. :func:`embed` -- word + position + token-type embeddings, then LayerNorm:
   ids ``(B, L)`` -> ``(B, L, d_model)``.
2. :func:`encoder_layer`, six times -- a **post-LN** block:

   .. math::
      h = \mathrm{LN}_1(x + \mathrm{MHA}(x)), \qquad
      y = \mathrm{LN}_2\bigl(h + \mathrm{GELU}(h W_1^\top + b_1) W_2^\top + b_2\bigr)

   with :class:`helpers.MultiHeadAttention`, :func:`helpers.block_parts.layer_norm` and
   :func:`helpers.block_parts.gelu` (exact erf), ``(B, L, d_model)`` -> ``(B, L, d_model)``.
3. :func:`mean_pool` and :func:`l2_normalize` -- the sentence embedding ``(B, d_model)``
   of sentence-transformers: the mean of the real tokens' last hidden states, scaled to
   length 1, so that a dot product is a cosine similarity.

Padding is handled by a boolean key-padding mask ``(B, 1, 1, L)``: no query attends to a
``[PAD]`` key, so padding changes no real token's output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from threadpoolctl import threadpool_limits

from helpers.block_parts import gelu, layer_norm
from helpers.pretrained.model import PretrainedModel

FloatArray = NDArray[np.floating]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class EncoderOutput:
    """What :func:`encode` returns.

    hidden_states : tuple of 7 float32 arrays (B, L, d_model)
        ``[0]`` is the embedding output, ``[l + 1]`` the output of layer ``l`` (0-based).
    attentions : tuple of 6 float32 arrays (B, h, L, L)
        The attention weights of every layer and head; rows of padded queries
        are computed too (they attend to the real tokens) but mean nothing.

    Taught in notebook 06, "The whole encoder in NumPy".
    """

    hidden_states: tuple[FloatArray, ...]
    attentions: tuple[FloatArray, ...]

    @property
    def last_hidden_state(self) -> FloatArray:
        """Output of the last layer, shape (B, L, d_model)."""
        return self.hidden_states[-1]


def _check_ids(ids: ArrayLike, name: str, upper: int, what: str) -> NDArray[np.int64]:
    a = np.asarray(ids)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array (batch, L), got dtype {a.dtype}")
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"{name} must have shape (batch, L) with batch, L >= 1, got {a.shape}")
    if a.min() < 0 or a.max() >= upper:
        raise ValueError(f"{name} must lie in [0, {upper - 1}] ({what}), got values in "
                         f"[{a.min()}, {a.max()}]")
    return a.astype(np.int64, copy=False)


def _check_attention_mask(attention_mask: ArrayLike | None, shape: tuple[int, int]) -> BoolArray:
    if attention_mask is None:
        return np.ones(shape, dtype=bool)
    m = np.asarray(attention_mask)
    if m.dtype != np.bool_:
        raise TypeError(
            f"attention_mask must be boolean (True = real token) of shape {shape}, got dtype "
            f"{m.dtype}; convert a 0/1 array with .astype(bool)"
        )
    if m.shape != shape:
        raise ValueError(f"attention_mask must have the shape of token_ids {shape}, got {m.shape}")
    return m


def embed(model: PretrainedModel, token_ids: ArrayLike,
          token_type_ids: ArrayLike | None = None) -> FloatArray:
    """BERT's input vectors: ``LN(E_word[ids] + E_pos[0..L-1] + E_type[type_ids])``.

    Parameters
    ----------
    token_ids : int array, shape (B, L)
        WordPiece ids in ``[0, vocab_size)``; ``L <= max_positions`` (512).
    token_type_ids : int array, shape (B, L), optional
        Segment ids in ``[0, type_vocab_size)``; default all 0.

    Returns
    -------
    ndarray, float32, shape (B, L, d_model)

    Taught in notebook 06, "Real tokens".
    """
    cfg, w = model.config, model.weights
    ids = _check_ids(token_ids, "token_ids", cfg.vocab_size, "the vocabulary")
    L = ids.shape[1]
    if L > cfg.max_positions:
        raise ValueError(f"token_ids has L={L} tokens; the model has {cfg.max_positions} "
                         "positions")
    types = (np.zeros_like(ids) if token_type_ids is None else
             _check_ids(token_type_ids, "token_type_ids", cfg.type_vocab_size, "segments"))
    if types.shape != ids.shape:
        raise ValueError(f"token_type_ids must have shape {ids.shape}, got {types.shape}")
    x = (w["embeddings.word_embeddings.weight"][ids]  # (B, L, d)
         + w["embeddings.position_embeddings.weight"][:L]  # (L, d), broadcast over B
         + w["embeddings.token_type_embeddings.weight"][types])  # (B, L, d)
    return layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                      eps=cfg.layer_norm_eps)


def feed_forward(model: PretrainedModel, layer: int, x: ArrayLike) -> FloatArray:
    """Feed-forward part of layer ``layer``: ``GELU(x W_1^T + b_1) W_2^T + b_2``.

    Shapes: (B, L, d_model) -> (B, L, d_ff) -> (B, L, d_model).
    Taught in notebook 06, "The whole encoder in NumPy".
    """
    w = model.layer_weights(layer)
    W_1, b_1 = w["intermediate.dense.weight"], w["intermediate.dense.bias"]  # (d_ff, d), (d_ff,)
    W_2, b_2 = w["output.dense.weight"], w["output.dense.bias"]  # (d, d_ff), (d,)
    hidden = gelu(np.asarray(x) @ W_1.T + b_1)  # (B, L, d_ff)
    return hidden @ W_2.T + b_2  # (B, L, d)


def encoder_layer(model: PretrainedModel, layer: int, x: ArrayLike,
                  mask: ArrayLike | None = None) -> tuple[FloatArray, FloatArray]:
    """One post-LN block of layer ``layer`` (0-based).

    Parameters
    ----------
    x : float32 array, shape (B, L, d_model)
    mask : bool array broadcastable to (B, h, L, L), optional
        True = may attend; a key-padding mask has shape (B, 1, 1, L).

    Returns
    -------
    output : float32 array, shape (B, L, d_model)
    weights : float32 array, shape (B, h, L, L)

    Taught in notebook 06, "The whole encoder in NumPy".
    """
    w, eps = model.layer_weights(layer), model.config.layer_norm_eps
    attended, weights = model.attention_layer(layer)(x, mask=mask)  # (B, L, d), (B, h, L, L)
    h = layer_norm(x + attended, w["attention.output.LayerNorm.weight"],
                   w["attention.output.LayerNorm.bias"], eps=eps)  # residual, then LN
    y = layer_norm(h + feed_forward(model, layer, h), w["output.LayerNorm.weight"],
                   w["output.LayerNorm.bias"], eps=eps)
    return y, weights


def encode(model: PretrainedModel, token_ids: ArrayLike, attention_mask: ArrayLike | None = None,
           token_type_ids: ArrayLike | None = None) -> EncoderOutput:
    """Run the whole encoder: embeddings, then the six layers, keeping every step.

    Parameters
    ----------
    token_ids : int array, shape (B, L)
    attention_mask : bool array, shape (B, L), optional
        True for a real token, False for padding (``TokenBatch.attention_mask``);
        default: every token real. Becomes the key-padding mask ``(B, 1, 1, L)``.
    token_type_ids : int array, shape (B, L), optional

    Returns
    -------
    EncoderOutput
        ``hidden_states``: 7 arrays (B, L, d_model); ``attentions``: 6 arrays (B, h, L, L).

    The products run on one BLAS thread: for a few sentences (tens of tokens) a second
    thread costs more than it saves, and on a busy machine many times more.
    Taught in notebook 06, "The whole encoder in NumPy". (padding: "A real batch with padding").
    """
    x = embed(model, token_ids, token_type_ids)  # (B, L, d)
    keep = _check_attention_mask(attention_mask, x.shape[:2])  # (B, L)
    mask = keep[:, np.newaxis, np.newaxis, :]  # (B, 1, 1, L): same for every head and query
    hidden, attentions = [x], []
    with threadpool_limits(limits=1, user_api="blas"):
        for layer in range(model.config.num_layers):
            x, weights = encoder_layer(model, layer, x, mask)
            hidden.append(x)
            attentions.append(weights)
    return EncoderOutput(tuple(hidden), tuple(attentions))


def mean_pool(hidden: ArrayLike, attention_mask: ArrayLike) -> FloatArray:
    """Mean of the real tokens' vectors: ``(B, L, d)`` and mask ``(B, L)`` -> ``(B, d)``.

    Padding (mask False) is left out of both the sum and the count. Raises
    ``ValueError`` for a text with no real token (its mean is undefined).
    Taught in notebook 06, "The whole encoder in NumPy".
    """
    h = np.asarray(hidden)
    if h.dtype.kind != "f" or h.ndim != 3:
        raise ValueError(f"hidden must be a float array (B, L, d), got {h.dtype} {h.shape}")
    keep = _check_attention_mask(attention_mask, h.shape[:2])
    counts = keep.sum(axis=1, keepdims=True)  # (B, 1)
    if (counts == 0).any():
        raise ValueError(f"texts {np.flatnonzero(counts[:, 0] == 0).tolist()} have no real token")
    total = np.einsum("bld,bl->bd", h, keep.astype(h.dtype))  # (B, d)
    return total / counts.astype(h.dtype)


def l2_normalize(x: ArrayLike) -> FloatArray:
    """Scale each vector (last axis) to Euclidean length 1; ``(..., d)`` -> ``(..., d)``.

    Raises ``ValueError`` for a zero vector (it has no direction).
    Taught in notebook 06, "The whole encoder in NumPy".
    """
    v = np.asarray(x)
    if v.dtype.kind != "f" or v.ndim < 1:
        raise ValueError(f"x must be a float array (..., d), got {v.dtype} {v.shape}")
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    if (norm == 0).any():
        raise ValueError("x holds a zero vector, which cannot be normalised")
    return v / norm


def sentence_embeddings(model: PretrainedModel, texts: str | list[str]) -> FloatArray:
    """Unit-length sentence embeddings of ``texts``, shape (B, d_model), float32.

    Tokenize (padded batch), :func:`encode`, :func:`mean_pool`, :func:`l2_normalize`:
    all-MiniLM-L6-v2's recipe. ``emb @ emb.T`` holds the cosine similarities.
    Taught in notebook 06, "The whole encoder in NumPy".
    """
    batch = model.tokenize(texts)
    out = encode(model, batch.ids, batch.attention_mask, batch.type_ids)
    return l2_normalize(mean_pool(out.last_hidden_state, batch.attention_mask))
