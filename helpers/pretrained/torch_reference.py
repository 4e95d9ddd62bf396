"""PyTorch's own layers loaded with MiniLM's weights: the oracle for the NumPy encoder.

``torch.nn.TransformerEncoderLayer(384, 12, 1536, activation="gelu", layer_norm_eps=1e-12,
norm_first=False, batch_first=True)`` computes exactly BERT's post-LN block, so six of them
loaded with the six layers' weights must reproduce :func:`helpers.pretrained.bert.encode`.
Used by notebook 06 ("Their layout, our layout", "The whole encoder in NumPy") and the
tests. torch is imported inside the functions: the rest of the library never needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from helpers.pretrained.model import PretrainedModel


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run PyTorch on one thread, then restore its setting (tens of tokens: threads cost more)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _tensor(array: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.array(array, dtype=np.float32))  # a writable copy


def torch_attention_layer(model: PretrainedModel, layer: int) -> Any:
    """``torch.nn.MultiheadAttention(d_model, h, batch_first=True)`` with layer ``layer``'s weights.

    PyTorch stacks ``W_q, W_k, W_v`` (each ``(out, in)``, as BERT stores them) as the
    rows of ``in_proj_weight`` ``(3 d_model, d_model)``. In eval mode (no dropout).
    Taught in notebook 06, "Their layout, our layout".
    """
    import torch

    cfg, w = model.config, model.layer_weights(layer)
    mha = torch.nn.MultiheadAttention(cfg.d_model, cfg.num_heads, batch_first=True)
    names = ("attention.self.query", "attention.self.key", "attention.self.value")
    with torch.no_grad():
        mha.in_proj_weight.copy_(_tensor(np.concatenate([w[f"{n}.weight"] for n in names])))
        mha.in_proj_bias.copy_(_tensor(np.concatenate([w[f"{n}.bias"] for n in names])))
        mha.out_proj.weight.copy_(_tensor(w["attention.output.dense.weight"]))
        mha.out_proj.bias.copy_(_tensor(w["attention.output.dense.bias"]))
    return mha.eval()


def torch_encoder_layer(model: PretrainedModel, layer: int) -> Any:
    """``torch.nn.TransformerEncoderLayer`` (post-LN, exact GELU) with layer ``layer``'s weights.

    Takes and returns batch-first ``(B, L, d_model)`` tensors.
    Taught in notebook 06, "The whole encoder in NumPy".
    """
    import torch

    cfg, w = model.config, model.layer_weights(layer)
    block = torch.nn.TransformerEncoderLayer(
        cfg.d_model, cfg.num_heads, cfg.d_ff, dropout=0.0, activation="gelu",
        layer_norm_eps=cfg.layer_norm_eps, batch_first=True, norm_first=False,
    )
    block.self_attn = torch_attention_layer(model, layer)
    pairs = {
        block.linear1: "intermediate.dense", block.linear2: "output.dense",
        block.norm1: "attention.output.LayerNorm", block.norm2: "output.LayerNorm",
    }
    with torch.no_grad():
        for module, name in pairs.items():
            module.weight.copy_(_tensor(w[f"{name}.weight"]))
            module.bias.copy_(_tensor(w[f"{name}.bias"]))
    return block.eval()


def torch_encoder_outputs(model: PretrainedModel, embeddings: ArrayLike,
                          attention_mask: ArrayLike | None = None) -> list[np.ndarray]:
    """Run the six PyTorch layers on ``embeddings`` ``(B, L, d_model)``; every layer's output.

    ``attention_mask`` ``(B, L)`` is True for real tokens; PyTorch's
    ``src_key_padding_mask`` means the opposite (True = ignore), so it gets ``~mask``.
    Returns ``num_layers`` float32 arrays ``(B, L, d_model)``. Only real tokens'
    rows are meaningful: PyTorch's inference fast path may fill padded rows
    differently. Taught in notebook 06, "The whole encoder in NumPy".
    """
    import torch

    x = _tensor(np.asarray(embeddings))
    pad = None if attention_mask is None else torch.from_numpy(~np.asarray(attention_mask, bool))
    outputs = []
    with torch.inference_mode(), _one_torch_thread():
        for layer in range(model.config.num_layers):
            x = torch_encoder_layer(model, layer)(x, src_key_padding_mask=pad)
            outputs.append(x.numpy().copy())
    return outputs
