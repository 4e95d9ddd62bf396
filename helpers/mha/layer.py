"""The ``MultiHeadAttention`` layer: parameters, forward pass, backward pass (notebook 05)."""

from __future__ import annotations

import threading

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from helpers._mask_validation import check_multihead_mask
from helpers._validate import check_bool, positive_int
from helpers.attention import FloatArray
from helpers.fastpath.scratch import give_back
from helpers.mha.backward import layer_backward
from helpers.mha.dropout import check_dropout_p
from helpers.mha.forward import ForwardRecord, forward_and_record
from helpers.mha.inputs import check_call, check_d_out, check_rope_base
from helpers.mha.parameters import (
    PARAMETER_NAMES,
    Parameter,
    check_parameter,
    init_parameters,
)

_HANDOVER = threading.Lock()  # a layer's record between threads (an attribute would not copy)


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

    Every forward pass replaces the record of the previous one that
    :meth:`backward` reads: calls from several threads at once give correct
    outputs, but backpropagate through one layer from one thread.
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
        self.has_bias = check_bool(bias, "bias")
        self.kdim = self.d_model if kdim is None else positive_int(kdim, "kdim")
        self.vdim = self.d_model if vdim is None else positive_int(vdim, "vdim")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be a floating type, float32 or float64, got {self.dtype}")
        self.d_k = self.d_model // self.num_heads
        self.dropout = dropout
        self._rope_base = check_rope_base(rope_base, self.d_k)
        self.training = True
        self.dropout_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        self._params: dict[str, FloatArray | None] = {}
        self._record: ForwardRecord | None = None
        self._locked: np.ndarray | None = None
        init_parameters(self, seed)
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
        self.training = check_bool(mode, "mode")
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
        mask : array_like, optional
            Boolean (True = may attend) or float (added to the scores), of
            shape ``(L_q, L_k)`` or ``(batch, h, L_q, L_k)`` (each axis full or 1;
            unbatched: ``(L_q, L_k)`` or ``(h, L_q, L_k)``), as
            :func:`helpers.multi_head_attention`. A 3-D mask of a batched call is
            refused as ambiguous: write ``mask[:, None]`` for one per sequence.
        need_weights : bool, keyword-only
            False returns ``(output, None)`` (the weights are still computed:
            the backward pass needs them).
        average_attn_weights : bool, keyword-only
            True returns the weights averaged over the heads, ``(batch, L_q, L_k)``
            (PyTorch's default); False (default) the per-head weights.

        Returns
        -------
        output : ndarray, shape (batch, L_q, d_model) (no batch axis for 2-D query)
        weights : ndarray, shape (batch, h, L_q, L_k) (no batch axis for 2-D query), or None
            In training mode with dropout, the weights *after* dropout (those
            that multiply the values), as PyTorch returns them. They are the
            very array :meth:`backward` uses, so they are read-only until the
            backward pass (or the next forward): copy them to edit them.
        """
        need_weights = check_bool(need_weights, "need_weights")
        average_attn_weights = check_bool(average_attn_weights, "average_attn_weights")
        kind, q, k, v = check_call(self, query, key, value)
        batched = q.ndim == 3
        if mask is not None:
            mask = check_multihead_mask(
                mask, batched=batched, batch=q.shape[0] if batched else 1,
                num_heads=self.num_heads, L_q=q.shape[-2], L_k=k.shape[-2], dtype=self.dtype,
            )
        params = self._checked_params()
        self._release()
        q3, k3, v3 = (x if batched else x[np.newaxis] for x in (q, k, v))
        out, rec = forward_and_record(
            kind, q3, k3, v3, params, self.num_heads, mask, batched=batched,
            dropout_p=self.dropout if self.training else 0.0, rng=self.dropout_rng,
            rope_base=self.rope_base, need_weights=need_weights,
        )
        weights = None
        if need_weights:
            weights = rec.dropped if batched else rec.dropped[0]
            weights.flags.writeable = False  # the backward pass reads them: protect them
        self._release(rec, weights)  # keep the record until backward (or the next forward)
        if not batched:
            out = out[0]
        if average_attn_weights and weights is not None:
            return out, weights.mean(axis=-3)
        return out, weights

    __call__ = forward

    # ------------------------------------------------------------------ backward
    def _release(self, record: ForwardRecord | None = None, locked: np.ndarray | None = None
                 ) -> None:
        """Replace the last forward pass's record (default: by none); its returned weights
        become writable, its work arrays go back to reuse (:mod:`helpers.fastpath.scratch`)."""
        with _HANDOVER:
            old, self._record = self._record, record
            unlock, self._locked = self._locked, locked
        if unlock is not None:
            unlock.flags.writeable = True
        if old is not None:
            give_back(old.release())

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
        with _HANDOVER:  # take the record: no other thread may give its arrays back meanwhile
            rec = self._record
            if rec is None:
                raise RuntimeError(
                    "backward() needs a forward pass first: call layer(...) and then backward "
                    "once (each forward pass allows one backward pass)"
                )
            d = check_d_out(self, d_out, rec.heads.shape[:2], rec.batched)
            self._record, locked, self._locked = None, self._locked, None
        try:
            inputs, grads = layer_backward(rec, d if rec.batched else d[np.newaxis])
        finally:
            if locked is not None:
                locked.flags.writeable = True
            give_back(rec.release())
        for name, g in grads.items():
            self.grads[name] += g
        if not rec.batched:
            inputs = tuple(x[0] for x in inputs)
        return inputs[0] if rec.kind == "self" else inputs

    # ------------------------------------------------------------------ PyTorch
    @classmethod
    def from_torch(
        cls, module: object, *, dtype: DTypeLike | None = None, seed: int | None = None
    ) -> MultiHeadAttention:
        """Copy a ``torch.nn.MultiheadAttention``: parameters, dropout and training flag.

        ``dtype=None`` takes the module's own dtype (float32 or float64; a float16 or
        bfloat16 module raises ``TypeError`` unless ``dtype`` is given). See
        :func:`helpers.mha.from_torch.copy_from_torch` for the conventions (``x @ W``
        transposes, ``kdim``/``vdim``, ``batch_first``). ``seed`` seeds the dropout
        generator; ``add_bias_kv`` and ``add_zero_attn`` are refused."""
        from helpers.mha.from_torch import copy_from_torch  # torch is imported only there

        return copy_from_torch(cls, module, dtype=dtype, seed=seed)
