"""Copy a ``torch.nn.MultiheadAttention`` into :class:`~helpers.MultiHeadAttention` (notebook 07).

The only module of the library that imports torch, and only when called.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike


def module_dtype(module: Any) -> np.dtype:
    """The NumPy dtype of ``module``'s parameters: float32 or float64.

    Raises ``TypeError`` when they are float16 or bfloat16 (the layer computes in
    float32 or float64 only: it would not reproduce the module's half-precision
    arithmetic, so the widening has to be asked for with ``dtype=``), or when the
    parameters do not share one dtype.
    """
    import torch

    found = {p.dtype for p in module.parameters()}
    numpy_of_torch = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
    if len(found) != 1:
        names = ", ".join(sorted(str(t).removeprefix("torch.") for t in found)) or "none"
        raise TypeError(
            f"module: its parameters must share one dtype to choose the layer's, got {names}; "
            "pass dtype=np.float32 or dtype=np.float64"
        )
    (torch_dtype,) = found
    if torch_dtype not in numpy_of_torch:
        name = str(torch_dtype).removeprefix("torch.")
        raise TypeError(
            f"module: parameters of dtype {name} (expected float32 or float64); the layer "
            f"computes in float32 or float64 only, so it cannot reproduce {name} arithmetic. "
            f"To copy the {name} values exactly into a float32 layer, pass dtype=np.float32 "
            "(or convert the module first with module.float())"
        )
    return numpy_of_torch[torch_dtype]


def copy_from_torch(cls: Any, module: Any, *, dtype: DTypeLike | None, seed: int | None) -> Any:
    """Build ``cls`` (a MultiHeadAttention class) holding ``module``'s parameters.

    ``dtype=None`` gives the layer the module's own dtype (a float32 module, PyTorch's
    default, gives a float32 layer that takes the module's float32 inputs); a float16
    or bfloat16 module needs an explicit ``dtype`` (see :func:`module_dtype`). An
    explicit ``dtype`` is always honoured: every float16, bfloat16 and float32 value
    is exactly representable in float32 and float64, so widening copies exactly;
    ``dtype=np.float32`` on a float64 module rounds each parameter to float32.

    PyTorch computes ``x @ W.T + b``; each weight block is transposed into the
    ``x @ W`` convention. With ``kdim = vdim = embed_dim`` PyTorch stacks ``W_q,
    W_k, W_v`` as the rows of ``in_proj_weight (3 d, d)``; with other widths it
    keeps ``q_proj_weight (d, d)``, ``k_proj_weight (d, kdim)``, ``v_proj_weight
    (d, vdim)``. ``batch_first`` only changes the layout of PyTorch's inputs
    (this class always takes batch-first input). ``dropout`` and the module's
    ``training`` flag are copied; ``seed`` seeds the layer's dropout generator
    (PyTorch's random stream cannot be copied, so the masks differ). Modules
    with ``add_bias_kv`` or ``add_zero_attn`` are refused.
    """
    import torch

    if not isinstance(module, torch.nn.MultiheadAttention):
        raise TypeError(f"expected torch.nn.MultiheadAttention, got {type(module).__name__}")
    if module.bias_k is not None or module.add_zero_attn:
        raise ValueError(
            "add_bias_kv and add_zero_attn are not supported: they append learned (or zero) "
            "key/value rows to every sequence, which this layer does not model"
        )
    dtype = module_dtype(module) if dtype is None else np.dtype(dtype)
    d = module.embed_dim

    def numpy_of(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().to(torch.float64).numpy().astype(dtype)

    has_bias = module.in_proj_bias is not None
    layer = cls(d, module.num_heads, bias=has_bias, kdim=module.kdim, vdim=module.vdim,
                dropout=float(module.dropout), seed=seed, dtype=dtype)
    layer.train(module.training)
    if module._qkv_same_embed_dim:
        W_in = numpy_of(module.in_proj_weight)  # (3d, d): rows = W_q; W_k; W_v (out x in)
        layer.W_q, layer.W_k, layer.W_v = (W_in[i * d:(i + 1) * d].T.copy() for i in range(3))
    else:  # separate (d, d), (d, kdim), (d, vdim) matrices
        layer.W_q = numpy_of(module.q_proj_weight).T.copy()
        layer.W_k = numpy_of(module.k_proj_weight).T.copy()
        layer.W_v = numpy_of(module.v_proj_weight).T.copy()
    layer.W_o = numpy_of(module.out_proj.weight).T.copy()
    if has_bias:
        b_in = numpy_of(module.in_proj_bias)
        layer.b_q, layer.b_k, layer.b_v = (b_in[i * d:(i + 1) * d].copy() for i in range(3))
        layer.b_o = numpy_of(module.out_proj.bias)
    return layer
