"""The ``MultiHeadAttention`` layer: parameters, forward pass, backward pass (notebook 05)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from helpers._validate import as_float_array, positive_int, require_ndim
from helpers.attention import FloatArray, project_and_attend
from helpers.dropout import check_dropout_p, dropout_scale
from helpers.mha_backward import ForwardRecord, layer_backward
from helpers.mha_forward import attend_general, layer_mask
from helpers.mha_parameters import (
    BIAS_NAMES,
    PARAMETER_NAMES,
    WEIGHT_NAMES,
    Parameter,
    check_parameter,
    expected_shape,
)


class MultiHeadAttention:
    """Multi-head attention with its own parameters, in the ``x @ W + b`` convention.

    Parameters
    ----------
    d_model : int
        Width of the query tokens and of the output (``embed_dim`` in PyTorch).
    num_heads : int
        Number of heads ``h``; each works in ``d_k = d_model // h`` dimensions.
    bias : bool, keyword-only
        Whether the four projections have biases (initialised to zero).
    kdim, vdim : int or None, keyword-only
        Widths of the key and value tokens (default ``d_model``), for
        cross-attention to a sequence of another width.
    dropout : float, keyword-only
        Probability of dropping each attention weight in training mode
        (inverted dropout: the kept weights are divided by ``1 - dropout``).
    rope_base : float or None, keyword-only
        ``None`` (default): no rotary position embeddings. A float > 1: each
        head's queries and keys (never values) are rotated by
        :func:`helpers.apply_rope` with this base, interleaved layout, after
        their projections. Positions count from 0 in every sequence: query
        ``i`` is at position ``i``, key ``j`` at ``j`` (for cross-attention too).
    seed : int or None, keyword-only
        Seeds ``np.random.default_rng(seed)`` for the weights and, through
        ``np.random.SeedSequence(seed).spawn(1)``, an independent generator
        ``dropout_rng`` for the dropout masks: the same seed gives the same
        layer and the same sequence of masks.
    dtype : numpy dtype, keyword-only
        ``np.float64`` (default) or ``np.float32``. Tokens and parameters must
        have this dtype (float arrays of another dtype raise ``TypeError``).

    Attributes
    ----------
    W_q, W_o : ndarray, shape (d_model, d_model)
    W_k : ndarray, shape (kdim, d_model)
    W_v : ndarray, shape (vdim, d_model)
        Xavier/Glorot-uniform: entries uniform in ``±sqrt(6 / (fan_in + fan_out))``,
        which keeps the variance of ``x @ W`` close to that of ``x``.
    b_q, b_k, b_v, b_o : ndarray, shape (d_model,), or None without bias
        Assignments to any parameter are validated (shape, dtype, finite).
    grads : dict of str to ndarray
        Gradients of the loss with respect to each parameter, keyed like
        :meth:`parameters`; :meth:`backward` adds to them, :meth:`zero_grad` resets.
    training : bool
        True (default, as in PyTorch) applies dropout; see :meth:`train`/:meth:`eval`.
    dropout_rng : numpy.random.Generator
        Draws the dropout masks; assign a new generator to reseed them.
    """

    W_q = Parameter()
    W_k = Parameter()
    W_v = Parameter()
    W_o = Parameter()
    b_q = Parameter()
    b_k = Parameter()
    b_v = Parameter()
    b_o = Parameter()

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        *,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
        dropout: float = 0.0,
        rope_base: float | None = None,
        seed: int | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        self.d_model = positive_int(d_model, "d_model")
        self.num_heads = positive_int(num_heads, "num_heads")
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}"
            )
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.has_bias = bool(bias)
        self.kdim = self.d_model if kdim is None else positive_int(kdim, "kdim")
        self.vdim = self.d_model if vdim is None else positive_int(vdim, "vdim")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be a floating type, float32 or float64, got {self.dtype}")
        self.d_k = self.d_model // self.num_heads
        self.dropout = dropout
        self._rope_base = _check_rope_base(rope_base, self.d_k)
        self.training = True
        self.dropout_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        self._params: dict[str, FloatArray | None] = {}
        self._record: ForwardRecord | None = None
        self._locked: np.ndarray | None = None
        rng = np.random.default_rng(seed)
        for name in WEIGHT_NAMES:
            fan_in, fan_out = expected_shape(self, name)
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            W = rng.uniform(-limit, limit, size=(fan_in, fan_out))
            setattr(self, name, W.astype(self.dtype))
        for name in BIAS_NAMES:
            setattr(self, name, np.zeros(self.d_model, self.dtype) if self.has_bias else None)
        self.grads: dict[str, FloatArray] = {
            name: np.zeros_like(arr) for name, arr in self.parameters().items()
        }

    # ------------------------------------------------------------------ settings
    @property
    def dropout(self) -> float:
        """Probability of dropping an attention weight in training mode, in ``[0, 1]``."""
        return self._dropout

    @dropout.setter
    def dropout(self, p: float) -> None:
        self._dropout = check_dropout_p(p)

    @property
    def rope_base(self) -> float | None:
        """Base of the rotary position embeddings, or None (set when the layer is built)."""
        return self._rope_base

    def train(self, mode: bool = True) -> MultiHeadAttention:
        """Switch training mode (dropout on) on or off; returns the layer itself."""
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"mode must be True or False, got {mode!r}")
        self.training = bool(mode)
        return self

    def eval(self) -> MultiHeadAttention:
        """Evaluation mode: no dropout. Same as ``train(False)``; returns the layer itself."""
        return self.train(False)

    # ------------------------------------------------------------------ info
    @property
    def num_parameters(self) -> int:
        """Number of trainable numbers: 4 d_model² weights plus 4 d_model biases (square case)."""
        return sum(a.size for a in self.parameters().values())

    def parameters(self) -> dict[str, FloatArray]:
        """The weights and biases by name (the arrays themselves, not copies).

        Keys: ``W_q, W_k, W_v, W_o``, then ``b_q, b_k, b_v, b_o`` only when the
        layer has biases (absent biases are omitted, never None), the keys of
        :attr:`grads`. An optimizer may update these arrays in place.
        """
        return {n: a for n in PARAMETER_NAMES if (a := self._params[n]) is not None}

    def zero_grad(self) -> None:
        """Set every gradient in :attr:`grads` to zero (in place)."""
        for g in self.grads.values():
            g.fill(0)

    def __repr__(self) -> str:
        extras = ""
        if self.kdim != self.d_model or self.vdim != self.d_model:
            extras += f", kdim={self.kdim}, vdim={self.vdim}"
        if self.dropout:
            extras += f", dropout={self.dropout}, training={self.training}"
        if self.rope_base is not None:
            extras += f", rope_base={self.rope_base}"
        return (
            f"MultiHeadAttention(d_model={self.d_model}, num_heads={self.num_heads}, "
            f"d_k={self.d_k}, bias={self.has_bias}{extras}, dtype={self.dtype.name}, "
            f"parameters={self.num_parameters:,})"
        )

    # ------------------------------------------------------------------ forward
    def _tokens(self, x: ArrayLike, name: str, width_name: str) -> FloatArray:
        """Check one token argument: 2-D or 3-D, ``width_name`` features, the layer's dtype."""
        width = getattr(self, width_name)
        arr = as_float_array(x, name)
        require_ndim(arr, name, f"(batch, L, {width}) or (L, {width})", min_ndim=2, max_ndim=3)
        if arr.shape[-1] != width:
            raise ValueError(
                f"{name} must have {width_name}={width} features, shape (batch, L, {width}) or "
                f"(L, {width}); got shape {arr.shape}"
            )
        if arr.dtype != self.dtype:
            raise TypeError(
                f"{name} has dtype {arr.dtype.name} but the layer is {self.dtype.name}: convert "
                f"with .astype(np.{self.dtype.name}) (integers and lists count as float64)"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} (shape {arr.shape}) contains NaN or infinity")
        return arr

    def _checked_params(self) -> dict[str, FloatArray | None]:
        """All eight parameters (None for absent biases), re-checked: arrays change in place."""
        return {n: check_parameter(self, n, self._params[n]) for n in PARAMETER_NAMES}

    def forward(
        self,
        query: ArrayLike,
        key: ArrayLike | None = None,
        value: ArrayLike | None = None,
        mask: ArrayLike | None = None,
        *,
        need_weights: bool = True,
        average_attn_weights: bool = False,
    ) -> tuple[FloatArray, FloatArray | None]:
        """Attend from ``query`` to ``key``/``value``, keeping what :meth:`backward` needs.

        Parameters
        ----------
        query : array_like, shape (batch, L_q, d_model) or (L_q, d_model)
        key : array_like, shape (batch, L_k, kdim) or (L_k, kdim), optional
            Omitted: ``query`` (self-attention). A different sequence, of any
            length ``L_k``, gives cross-attention.
        value : array_like, shape (batch, L_k, vdim) or (L_k, vdim), optional
            Omitted: ``key`` (one sequence supplies keys and values).
        mask : array_like, optional, broadcastable to the scores (batch, h, L_q, L_k)
            (``(h, L_q, L_k)`` for an unbatched call). Boolean True = may
            attend, or float added to the scores.
        need_weights : bool, keyword-only
            False returns ``(output, None)``.
        average_attn_weights : bool, keyword-only
            True returns the weights averaged over the heads, ``(batch, L_q, L_k)``
            (PyTorch's default); False (default) the per-head weights.

        Returns
        -------
        output : ndarray, shape (batch, L_q, d_model) (no batch axis for 2-D query)
        weights : ndarray, shape (batch, h, L_q, L_k) (no batch axis for 2-D query), or None
            In training mode with dropout, the weights *after* dropout (those
            that multiply the values), as PyTorch returns them. Without
            dropout they are the very array :meth:`backward` uses, so they are
            read-only until the backward pass (or the next forward): copy
            them to edit them.
        """
        if value is not None and key is None:
            raise ValueError("value was given without key: pass key as well (or neither)")
        kind = "self" if key is None else "kv" if value is None else "qkv"
        q = self._tokens(query, "query", "d_model")
        k = q if key is None else self._tokens(key, "key", "kdim")
        if kind == "kv" and self.kdim != self.vdim:
            raise ValueError(
                f"layer(query, key) uses key as the values too, but kdim={self.kdim} != "
                f"vdim={self.vdim}: pass value explicitly"
            )
        v = k if value is None else self._tokens(value, "value", "vdim")
        if k.shape[:-1] != v.shape[:-1]:
            raise ValueError(
                f"key {k.shape} and value {v.shape} must have the same batch and length"
            )
        if k.ndim != q.ndim or (q.ndim == 3 and k.shape[0] != q.shape[0]):
            raise ValueError(
                f"query {q.shape} and key {k.shape} must both be (batch, L, features) with the "
                f"same batch, or both (L, features)"
            )
        params = self._checked_params()
        self._release()
        batched = q.ndim == 3
        q3, k3, v3 = (x if batched else x[np.newaxis] for x in (q, k, v))
        p_drop = self.dropout if self.training else 0.0
        L_q, L_k = q3.shape[1], k3.shape[1]
        rope = None if self.rope_base is None else (np.arange(L_q), np.arange(L_k), self.rope_base)
        keep = None
        if p_drop == 0.0 and rope is None and self.kdim == self.vdim == self.d_model:
            out, weights = project_and_attend(q, k, v, params, self.num_heads, mask)
            P = dropped = weights if batched else weights[np.newaxis]
        else:
            m = layer_mask(mask, batched, q3.shape[0], self.num_heads, L_q, L_k)
            out, P, dropped, keep = attend_general(
                q3, k3, v3, params, self.num_heads, m,
                dropout_p=p_drop, rng=self.dropout_rng, rope=rope,
            )
            out, weights = (out, dropped) if batched else (out[0], dropped[0])
        self._record = ForwardRecord(
            kind=kind, batched=batched, query=q3.copy(),
            key=None, value=None,  # filled below, sharing copies like the inputs shared arrays
            params={n: None if a is None else a.copy() for n, a in params.items()},
            num_heads=self.num_heads, weights=P, keep=keep,
            keep_scale=dropout_scale(p_drop), rope=rope,
        )
        rec = self._record
        rec.key = rec.query if kind == "self" else k3.copy()
        rec.value = rec.key if kind != "qkv" else v3.copy()
        if dropped is P:  # the returned weights are the record's: protect them until backward
            weights.flags.writeable = False
            self._locked = weights
        if not need_weights:
            return out, None
        if average_attn_weights:
            return out, weights.mean(axis=-3)
        return out, weights

    __call__ = forward

    # ------------------------------------------------------------------ backward
    def _release(self) -> None:
        """Forget the last forward pass; its returned weights become writable again."""
        self._record = None
        if self._locked is not None:
            self._locked.flags.writeable = True
            self._locked = None

    def backward(self, d_out: ArrayLike) -> FloatArray | tuple[FloatArray, ...]:
        """Backpropagate ``d_out`` through the last forward pass; add the parameters' gradients.

        Parameters
        ----------
        d_out : array_like, shape of the last output, (batch, L_q, d_model) or (L_q, d_model)
            Gradient of a scalar loss with respect to the output; the layer's dtype.

        Returns
        -------
        One gradient per token argument of the last forward call, each with the
        shape of that argument:

        * ``layer(x)`` (key and value omitted): ``dx``, the sum of the query,
          key and value paths (one ``x`` fed all three);
        * ``layer(q, kv)``: ``(d_query, d_key)``, ``d_key`` summing the key and
          value paths;
        * ``layer(q, k, v)``: ``(d_query, d_key, d_value)``, even when the same
          array was passed twice (add the gradients of the arguments it filled).

        The gradients of the parameters are *added* to :attr:`grads` (as
        PyTorch accumulates ``.grad``): call :meth:`zero_grad` between steps.
        Masked keys get no gradient, and a fully masked query row sends none.

        Raises
        ------
        RuntimeError
            Before any forward pass, or a second time for one forward pass.
        ValueError, TypeError
            If ``d_out`` has the wrong shape or dtype, or holds NaN/infinity.
        """
        rec = self._record
        if rec is None:
            raise RuntimeError(
                "backward() needs a forward pass first: call layer(...) and then backward once "
                "(each forward pass allows one backward pass)"
            )
        d = as_float_array(d_out, "d_out")
        B, L_q = rec.query.shape[:2]
        shape = (B, L_q, self.d_model) if rec.batched else (L_q, self.d_model)
        if d.shape != shape:
            raise ValueError(f"d_out must have the output's shape {shape}, got {d.shape}")
        if d.dtype != self.dtype:
            raise TypeError(
                f"d_out has dtype {d.dtype.name} but the layer is {self.dtype.name}: convert "
                f"with .astype(np.{self.dtype.name})"
            )
        if not np.isfinite(d).all():
            raise ValueError(f"d_out (shape {d.shape}) contains NaN or infinity")
        inputs, grads = layer_backward(rec, d if rec.batched else d[np.newaxis])
        self._release()
        for name, g in grads.items():
            self.grads[name] += g
        if not rec.batched:
            inputs = tuple(x[0] for x in inputs)
        return inputs[0] if rec.kind == "self" else inputs

    # ------------------------------------------------------------------ PyTorch
    @classmethod
    def from_torch(
        cls, module: object, *, dtype: DTypeLike = np.float64, seed: int | None = None
    ) -> MultiHeadAttention:
        """Copy a ``torch.nn.MultiheadAttention``: parameters, dropout and training flag.

        PyTorch computes ``x @ W.T + b``; each weight block is transposed into
        the ``x @ W`` convention. With ``kdim = vdim = embed_dim`` PyTorch stacks
        ``W_q, W_k, W_v`` as the rows of ``in_proj_weight`` ``(3 d, d)``; with
        other widths it keeps ``q_proj_weight (d, d)``, ``k_proj_weight
        (d, kdim)``, ``v_proj_weight (d, vdim)``. ``batch_first`` only changes
        the layout of PyTorch's inputs; this class always takes batch-first
        input. ``seed`` seeds the layer's dropout generator (PyTorch's random
        stream cannot be copied, so dropout masks differ from PyTorch's).
        Modules with ``add_bias_kv`` or ``add_zero_attn`` are refused.
        """
        from helpers.mha_torch import copy_from_torch  # torch is imported only there

        return copy_from_torch(cls, module, dtype=dtype, seed=seed)


def _check_rope_base(base: object, d_k: int) -> float | None:
    if base is None:
        return None
    if isinstance(base, bool) or not isinstance(base, (int, float, np.integer, np.floating)):
        raise TypeError(f"rope_base must be a float > 1 or None, got {base!r}")
    if not math.isfinite(float(base)) or float(base) <= 1.0:
        raise ValueError(f"rope_base must be a finite float > 1, got {base}")
    if d_k % 2:
        raise ValueError(f"rope_base needs an even head width d_k (pairs rotate), got d_k={d_k}")
    return float(base)
