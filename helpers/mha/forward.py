r"""The forward pass of :class:`~helpers.MultiHeadAttention`, keeping what its backward needs.

The steps are those of the readable reference path
(:func:`helpers.multihead.project_and_attend`), with dropout and rotary position
embeddings inserted where they belong (``s = 1/sqrt(d_k)``)::

    Q = s (x_q W_q + b_q)   K = x_k W_k + b_k   V = x_v W_v + b_v    split into h heads
    Q, K = rope(Q, positions_q), rope(K, positions_k)       (only with rope_base)
    P  = softmax(Q K^T + mask)                              weights before dropout
    Pd = P * keep / (1 - p)                                 (dropout in training only)
    H  = Pd V,  out = combine(H) W_o + b_o

What the backward pass needs is kept in a :class:`ForwardRecord`: copies of the inputs, the
projections (``Q``, ``K``, ``V``), the weights before and after dropout, and the heads'
outputs ``H``. The work is laid out by the fast path, :func:`helpers.fastpath.fused_mha.attend`
(one fused product per distinct input, heads as strided views, cache-sized tiles, threads);
the record's arrays are lent by :mod:`helpers.fastpath.scratch` and given back after the
backward pass, so that a training loop reuses them instead of allocating them every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from helpers.attention import FloatArray
from helpers.fastpath import scratch
from helpers.fastpath.fused_mha import Projection, attend, input_groups

__all__ = ["ForwardRecord", "Projection", "forward_and_record"]

@dataclass
class ForwardRecord:
    """What one forward pass of the layer leaves for its backward pass (all 3-D/4-D).

    An unbatched call is stored with a batch axis of 1 and ``batched=False``.
    """

    kind: str  # "self" (layer(x)), "kv" (layer(q, kv)) or "qkv" (layer(q, k, v))
    batched: bool
    projections: list[Projection]  # copies of the distinct inputs and their projections
    Q: FloatArray  # (B, h, L_q, d_k), scaled by 1/sqrt(d_k) (and rotated)
    K: FloatArray  # (B, h, L_k, d_k) (rotated)
    V: FloatArray  # (B, h, L_k, d_k)
    weights: FloatArray  # P (B, h, L_q, L_k) before dropout
    dropped: FloatArray  # Pd after dropout (the same array without dropout)
    heads: FloatArray  # H = Pd V combined, (B, L_q, d_model)
    W_o: FloatArray  # a copy of W_o as used
    has_bias: bool
    rope: tuple[np.ndarray, np.ndarray, float] | None  # positions of queries, keys; base
    lent: dict[str, np.ndarray] = field(default_factory=dict)  # work arrays to give back

    def release(self) -> dict[str, np.ndarray]:
        """Forget every array; return the lent work arrays (for :func:`scratch.give_back`)."""
        lent, self.lent = self.lent, {}
        self.projections = []
        self.Q = self.K = self.V = self.weights = self.dropped = self.heads = None  # type: ignore[assignment]
        return lent


def forward_and_record(
    kind: str, q: FloatArray, k: FloatArray, v: FloatArray,
    params: dict[str, FloatArray | None], num_heads: int, mask: np.ndarray | None, *,
    batched: bool, dropout_p: float = 0.0, rng: np.random.Generator | None = None,
    rope_base: float | None = None, need_weights: bool = True,
) -> tuple[FloatArray, ForwardRecord]:
    """The layer's forward pass on 3-D inputs; returns the output and its record.

    Parameters
    ----------
    kind : "self", "kv" or "qkv"
        Which token arguments the call had (``layer(x)``, ``layer(q, kv)``, ``layer(q, k, v)``).
    q : ndarray, shape (B, L_q, d_model)
    k : ndarray, shape (B, L_k, kdim)
    v : ndarray, shape (B, L_k, vdim)
    params : dict
        ``W_q (d_model, d_model)``, ``W_k (kdim, d_model)``, ``W_v (vdim, d_model)``,
        ``W_o (d_model, d_model)``, biases ``(d_model,)`` or None; validated.
    mask : ndarray or None
        A checked bool/float mask broadcastable to ``(B, h, L_q, L_k)``.
    dropout_p : float
        Probability of dropping each weight (0: no dropout).
    rng : numpy Generator
        Source of the dropout masks (one draw per call seeds the tiles' generators).
    rope_base : float or None
        Rotate queries at positions ``0..L_q-1`` and keys at ``0..L_k-1``.
    need_weights : bool
        Whether ``record.dropped`` is returned to the caller (then it is new memory).

    Returns
    -------
    output : ndarray, shape (B, L_q, d_model)
    record : ForwardRecord
        ``record.dropped`` holds the weights after dropout, ``(B, h, L_q, L_k)``.
    """
    seed = None
    if dropout_p > 0.0:
        if rng is None:
            raise ValueError("dropout needs a random generator")
        seed = int(rng.integers(2**63))
    lent: dict[str, np.ndarray] = {}

    def lend(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        lent[f"layer {name}"] = array = scratch.lend(f"layer {name}", shape, dtype)
        return array

    run = attend(input_groups(q, k, v), params, num_heads, mask, lend, copy_inputs=True,
                 weights="returned" if need_weights else "kept", dropout_p=dropout_p,
                 seed=seed, rope_base=rope_base)
    B, L_q, d = run.out.shape
    rope = None if rope_base is None else (np.arange(L_q), np.arange(k.shape[1]), rope_base)
    record = ForwardRecord(kind, batched, run.projections, run.Q, run.K, run.V, run.weights,
                           run.dropped, run.heads.reshape(B, L_q, d), params["W_o"].copy(),
                           params["b_o"] is not None, rope, lent)
    return run.out, record
