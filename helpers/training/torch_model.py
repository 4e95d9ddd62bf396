"""The PyTorch twin of :class:`~helpers.training.tiny_transformer.TinyTransformer` (08, §11).

The same model written with ``torch.nn`` modules and trained by autograd and
``torch.optim.Adam``: started from the same weights and fed the same batches, its loss and
its weights must equal the NumPy model's at every step. Only the tests, the notebook and the
benchmark import this module (it needs torch; the rest of :mod:`helpers.training` does not).

PyTorch stores a linear layer's weight as ``(out, in)`` and computes ``x W^T + b``; the
NumPy model stores ``(in, out)`` and computes ``x W + b``, so every matrix is transposed on
the way across, and ``nn.MultiheadAttention`` stacks ``W_q, W_k, W_v`` (transposed) as the
rows of ``in_proj_weight``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from helpers.training.losses import IGNORE_INDEX
from helpers.training.tiny_transformer import ModelConfig, TinyTransformer

__all__ = ["TorchTinyTransformer", "train_torch"]


class TorchBlock(nn.Module):
    """``nn.LayerNorm`` + ``nn.MultiheadAttention`` (+ feed-forward), pre- or post-LN."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.d_model
        self.norm = config.norm
        self.ln1 = nn.LayerNorm(d, eps=config.eps)
        self.attn = nn.MultiheadAttention(d, config.num_heads, bias=config.attention_bias,
                                          batch_first=True)
        self.ffn = self.ln2 = None
        if config.d_ff is not None:
            self.ln2 = nn.LayerNorm(d, eps=config.eps)
            self.ffn = nn.Sequential(nn.Linear(d, config.d_ff), nn.GELU(),
                                     nn.Linear(config.d_ff, d))

    def _attend(self, a: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.attn(a, a, a, attn_mask=mask, need_weights=False)[0]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.norm == "pre":
            x = x + self._attend(self.ln1(x), mask)
            return x if self.ffn is None else x + self.ffn(self.ln2(x))
        x = self.ln1(x + self._attend(x, mask))
        return x if self.ffn is None else self.ln2(x + self.ffn(x))


class TorchTinyTransformer(nn.Module):
    """``TinyTransformer`` in ``torch.nn``; build it from a NumPy model with :meth:`from_numpy`."""

    def __init__(self, config: ModelConfig, positions: np.ndarray,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(TorchBlock(config) for _ in range(config.num_layers))
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.eps) if config.norm == "pre" else None
        self.head = nn.Linear(config.d_model, config.vocab_size)
        self.register_buffer("positions", torch.from_numpy(np.array(positions)))
        self.to(dtype)

    @classmethod
    def from_numpy(cls, model: TinyTransformer) -> TorchTinyTransformer:
        """A twin holding copies of ``model``'s current weights (and its dtype)."""
        dtype = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}
        twin = cls(model.config, model.positions, dtype[model.dtype])
        twin.load_numpy(model.parameters())
        return twin

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, L, V)`` for tokens ``(B, L)`` (a LongTensor)."""
        L = tokens.shape[1]
        mask = None
        if self.config.causal:  # PyTorch's boolean attn_mask: True = may NOT attend
            mask = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
        x = self.embed(tokens) + self.positions[:L]
        for block in self.blocks:
            x = block(x, mask)
        if self.ln_f is not None:
            x = self.ln_f(x)
        return self.head(x)

    # ---------------------------------------------------------------- NumPy names
    def _layout(self) -> dict[str, tuple[torch.Tensor, slice | None, bool]]:
        """NumPy name -> (torch tensor, rows of it, transposed?)."""
        d = self.config.d_model
        out: dict[str, tuple[torch.Tensor, slice | None, bool]] = {
            "embed.weight": (self.embed.weight, None, False)}
        for i, block in enumerate(self.blocks):
            pre = f"blocks.{i}."
            out[pre + "ln1.weight"] = (block.ln1.weight, None, False)
            out[pre + "ln1.bias"] = (block.ln1.bias, None, False)
            for k, name in enumerate("qkv"):
                rows = slice(k * d, (k + 1) * d)
                out[pre + f"attn.W_{name}"] = (block.attn.in_proj_weight, rows, True)
                if block.attn.in_proj_bias is not None:
                    out[pre + f"attn.b_{name}"] = (block.attn.in_proj_bias, rows, False)
            out[pre + "attn.W_o"] = (block.attn.out_proj.weight, None, True)
            if block.attn.out_proj.bias is not None:
                out[pre + "attn.b_o"] = (block.attn.out_proj.bias, None, False)
            if block.ffn is not None:
                out[pre + "ln2.weight"] = (block.ln2.weight, None, False)
                out[pre + "ln2.bias"] = (block.ln2.bias, None, False)
                for part, lin in (("in", block.ffn[0]), ("out", block.ffn[2])):
                    out[pre + f"ffn.{part}.W"] = (lin.weight, None, True)
                    out[pre + f"ffn.{part}.b"] = (lin.bias, None, False)
        if self.ln_f is not None:
            out["ln_f.weight"] = (self.ln_f.weight, None, False)
            out["ln_f.bias"] = (self.ln_f.bias, None, False)
        out["head.W"] = (self.head.weight, None, True)
        out["head.b"] = (self.head.bias, None, False)
        return out

    def load_numpy(self, params: Mapping[str, np.ndarray]) -> None:
        """Copy NumPy parameters (names and layout of ``TinyTransformer.parameters()``) in."""
        layout = self._layout()
        if set(params) != set(layout):
            raise ValueError(f"parameter names differ: missing {sorted(set(layout) - set(params))}"
                             f", unknown {sorted(set(params) - set(layout))}")
        with torch.no_grad():
            for name, (tensor, rows, transposed) in layout.items():
                value = torch.from_numpy(np.array(params[name]))
                target = tensor if rows is None else tensor[rows]
                target.copy_(value.T if transposed else value)

    def numpy_parameters(self) -> dict[str, np.ndarray]:
        """The weights as NumPy arrays under NumPy names and layout (copies)."""
        return self._as_numpy(grad=False)

    def numpy_grads(self) -> dict[str, np.ndarray]:
        """The ``.grad`` of every weight under NumPy names and layout (zeros where None)."""
        return self._as_numpy(grad=True)

    def _as_numpy(self, *, grad: bool) -> dict[str, np.ndarray]:
        out = {}
        for name, (tensor, rows, transposed) in self._layout().items():
            t = tensor.detach() if not grad else (
                tensor.grad if tensor.grad is not None else torch.zeros_like(tensor))
            t = t if rows is None else t[rows]
            out[name] = (t.T if transposed else t).detach().cpu().numpy().copy()
        return out


def train_torch(twin: TorchTinyTransformer, batches: Iterable[tuple[np.ndarray, np.ndarray]],
                *, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                weight_decay: float = 0.0,
                lr_lambda: Callable[[int], float] | None = None) -> list[float]:
    """Train ``twin`` with ``torch.optim.Adam`` on ``(inputs, targets)`` batches; the losses.

    Each step: zero the gradients, forward, ``F.cross_entropy(..., ignore_index=-100)``
    (mean over the counted targets), backward, ``optimizer.step()``, and with ``lr_lambda``
    a ``LambdaLR`` scheduler step (the rate of step ``t`` is ``lr * lr_lambda(t)``). Runs on
    one PyTorch thread (restored afterwards): for a model this small, more threads only wait.
    """
    optimizer = torch.optim.Adam(twin.parameters(), lr=lr, betas=betas, eps=eps,
                                 weight_decay=weight_decay)
    scheduler = None
    if lr_lambda is not None:
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    losses = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    try:
        for inputs, targets in batches:
            optimizer.zero_grad()
            logits = twin(torch.from_numpy(np.asarray(inputs, dtype=np.int64)))
            loss = nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                torch.from_numpy(np.asarray(targets, dtype=np.int64)).reshape(-1),
                ignore_index=IGNORE_INDEX)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    return losses
