"""Multi-head attention as functions (notebook 04); the layer class builds on them (notebook 05).

:func:`project_and_attend` is the core that :func:`multi_head_attention` and
:class:`helpers.MultiHeadAttention` share. It validates everything it is given
-- tokens, parameters, mask -- and hands the work to the fast path
(:mod:`helpers.fastpath.fused_mha`); :func:`project_and_attend_reference` computes the
same thing as a readable composition of the steps and defines the results.

Rules (the same on both paths):

* **dtype** -- tokens and parameters share one dtype, float32 or float64; a
  mix raises ``TypeError`` naming both arrays (see :mod:`helpers._validate`).
* **finite** -- NaN or infinity in a token or parameter raises ``ValueError``
  naming it; so does a projection, score or output that overflows.
* **mask** -- boolean (True = may attend) or float (added to the scores), of
  shape ``(L_q, L_k)`` or ``(B, h, L_q, L_k)`` for batched tokens,
  ``(L_q, L_k)`` or ``(h, L_q, L_k)`` for unbatched ones, each axis full or 1.
  A 3-D mask with batched tokens is rejected as ambiguous (see
  :func:`helpers._mask_validation.check_multihead_mask`).
* **empty** -- batch 0, ``L_q = 0`` or ``L_k = 0`` give correctly shaped results;
  a query with no key to attend to has zero weights, zero head outputs, and so
  the layer output ``b_o`` (as ``nn.MultiheadAttention`` gives).
"""

from __future__ import annotations

from typing import NamedTuple, cast

import numpy as np
from numpy.typing import ArrayLike

from helpers._mask_validation import check_multihead_mask
from helpers._validate import (
    FloatArray,
    as_float_array,
    as_float_arrays,
    check_bool,
    positive_int,
    require_finite,
    require_ndim,
)
from helpers.attention import attention
from helpers.fastpath.fused_mha import project_and_attend_fast
from helpers.heads import combine_heads, split_heads

__all__ = [
    "linear",
    "multi_head_attention",
    "project_and_attend",
    "project_and_attend_reference",
]

WEIGHT_NAMES = ("W_q", "W_k", "W_v", "W_o")
BIAS_NAMES = ("b_q", "b_k", "b_v", "b_o")


def linear(x: FloatArray, W: FloatArray, b: FloatArray | None) -> FloatArray:
    """One projection, ``x (..., d_in) @ W (d_in, d_out) + b (d_out,)``; b=None: no bias."""
    y = x @ W
    return y if b is None else y + b


def _check_weight(W: ArrayLike, name: str, shape: tuple[int, ...]) -> FloatArray:
    W = as_float_array(W, name)
    if W.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {W.shape}")
    return W


def _check_tokens(x: ArrayLike, name: str, d_model: int | None = None) -> FloatArray:
    """Check a token sequence ``(batch, seq, d_model)`` or ``(seq, d_model)``."""
    x = as_float_array(x, name)
    require_ndim(x, name, "(batch, seq, d_model) or (seq, d_model)", min_ndim=2, max_ndim=3)
    if d_model is not None and x.shape[-1] != d_model:
        raise ValueError(
            f"{name} must have d_model={d_model} features, shape (batch, seq, {d_model}); "
            f"got shape {x.shape}"
        )
    return x


class _Call(NamedTuple):
    """A validated multi-head attention call."""

    q: FloatArray
    k: FloatArray
    v: FloatArray
    params: dict[str, FloatArray | None]
    num_heads: int
    mask: np.ndarray | None
    need_weights: bool


def _validate(q: ArrayLike, k: ArrayLike, v: ArrayLike, params: dict[str, ArrayLike | None],
              num_heads: object, mask: ArrayLike | None, need_weights: object,
              names: tuple[str, str, str] = ("query", "key", "value")) -> _Call:
    """Check and convert every input of :func:`project_and_attend` (``names``: of q, k, v)."""
    num_heads = positive_int(num_heads, "num_heads")
    need_weights = check_bool(need_weights, "need_weights")
    missing = [n for n in (*WEIGHT_NAMES, *BIAS_NAMES) if n not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; it needs {WEIGHT_NAMES + BIAS_NAMES}")
    same_k, same_v = k is q, v is k
    nq, nk, nv = names
    tokens = {nq: q} | ({} if same_k else {nk: k}) | ({} if same_v else {nv: v})
    arrays = as_float_arrays(**tokens, **{n: params[n] for n in (*WEIGHT_NAMES, *BIAS_NAMES)})
    q = arrays[nq]
    k = q if same_k else arrays[nk]
    v = k if same_v else arrays[nv]
    doc = "(batch, L, width) or (L, width)"
    for name, x in ((nq, q), (nk, k), (nv, v)):
        require_ndim(x, name, doc, min_ndim=2, max_ndim=3)
    if not (q.ndim == k.ndim == v.ndim) or (q.ndim == 3 and not q.shape[0] == k.shape[0]
                                             == v.shape[0]):
        raise ValueError(
            f"{nq} {q.shape}, {nk} {k.shape} and {nv} {v.shape} must all be (batch, L, width) "
            f"with the same batch, or all (L, width)"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"{nk} and {nv} must have the same length L_k: {nk} {k.shape}, {nv} {v.shape}"
        )
    d_model, kdim, vdim = q.shape[-1], k.shape[-1], v.shape[-1]
    if d_model == 0:
        raise ValueError(
            f"{nq} has d_model = 0 features (shape {q.shape}): multi-head attention needs "
            f"d_k = d_model // num_heads >= 1"
        )
    if d_model % num_heads:
        raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
    shapes = {"W_q": ((d_model, d_model), "(d_model, d_model)"),
              "W_k": ((kdim, d_model), f"(kdim, d_model) for {nk} of shape {k.shape}"),
              "W_v": ((vdim, d_model), f"(vdim, d_model) for {nv} of shape {v.shape}"),
              "W_o": ((d_model, d_model), "(d_model, d_model)")}
    shapes |= {b: ((d_model,), "(d_model,)") for b in BIAS_NAMES}
    checked: dict[str, FloatArray | None] = {}
    for name, (shape, shape_doc) in shapes.items():
        arr = arrays.get(name)
        if arr is not None and arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {arr.shape} ({shape_doc})")
        checked[name] = arr
    for name in WEIGHT_NAMES:
        if checked[name] is None:
            raise ValueError(f"{name} is None; only the biases may be None")
    for name, x in ((nq, q), (nk, None if same_k else k), (nv, None if same_v else v),
                    *checked.items()):
        if x is not None:
            require_finite(x, name)
    if mask is not None:
        batched = q.ndim == 3
        mask = check_multihead_mask(
            mask, batched=batched, batch=q.shape[0] if batched else 1, num_heads=num_heads,
            L_q=q.shape[-2], L_k=k.shape[-2], dtype=q.dtype,
        )
    return _Call(q, k, v, checked, num_heads, mask, need_weights)


def project_and_attend(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    params: dict[str, ArrayLike | None],
    num_heads: int,
    mask: ArrayLike | None = None,
    *,
    need_weights: bool = True,
) -> tuple[FloatArray, FloatArray | None]:
    """Multi-head attention core shared by :func:`multi_head_attention` and the class.

    Parameters
    ----------
    q : array_like, shape (B, L_q, d_model) or (L_q, d_model)
        Queries' tokens.
    k : array_like, shape (B, L_k, kdim) or (L_k, kdim)
        Keys' tokens; ``kdim`` may differ from ``d_model`` (cross-attention to
        an encoder of another width).
    v : array_like, shape (B, L_k, vdim) or (L_k, vdim)
        Values' tokens. Passing the same array as ``q`` (and ``k``) selects the
        fused self-attention projection; results are the same either way.
    params : dict
        ``W_q (d_model, d_model)``, ``W_k (kdim, d_model)``, ``W_v (vdim, d_model)``,
        ``W_o (d_model, d_model)`` in the ``x @ W`` convention, and biases
        ``b_q, b_k, b_v, b_o`` of shape ``(d_model,)`` or None.
    num_heads : int
        ``h``; must divide ``d_model``.
    mask : array_like, optional
        See the module docstring for the accepted shapes and kinds.
    need_weights : bool, keyword-only
        False: return None for the weights (the fast path then never writes
        the ``(B, h, L_q, L_k)`` array and needs only one tile of scores per thread).

    Returns
    -------
    output : ndarray, shape (B, L_q, d_model) (no B axis for 2-D tokens)
    weights : ndarray, shape (B, h, L_q, L_k) (no B axis for 2-D tokens), or None

    Raises
    ------
    ValueError
        Shapes that do not fit, NaN/inf in a token or parameter (named), scores
        or outputs that overflow, a mask of the wrong shape (a 3-D mask for
        batched tokens in particular).
    TypeError
        Mixed dtypes (named), a mask that is neither boolean nor floating,
        non-integer ``num_heads``, non-bool ``need_weights``.
    """
    call = _validate(q, k, v, params, num_heads, mask, need_weights)
    return project_and_attend_fast(call.q, call.k, call.v, call.params, call.num_heads,
                                   call.mask, need_weights=call.need_weights)


def project_and_attend_reference(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    params: dict[str, ArrayLike | None],
    num_heads: int,
    mask: ArrayLike | None = None,
    *,
    need_weights: bool = True,
) -> tuple[FloatArray, FloatArray | None]:
    """The readable multi-head attention core: project, split, attend, combine, project.

    Same contract, checks and results as :func:`project_and_attend` (which is
    faster); kept as the definition the fast path is tested against.
    """
    c = _validate(q, k, v, params, num_heads, mask, need_weights)
    p, h = c.params, c.num_heads
    with np.errstate(over="ignore", invalid="ignore"):
        projected = {"query @ W_q + b_q": linear(c.q, p["W_q"], p["b_q"]),  # (..., L_q, d_model)
                     "key @ W_k + b_k": linear(c.k, p["W_k"], p["b_k"]),  # (..., L_k, d_model)
                     "value @ W_v + b_v": linear(c.v, p["W_v"], p["b_v"])}  # (..., L_k, d_model)
    for what, arr in projected.items():
        if not np.isfinite(arr).all():
            raise ValueError(f"the projection {what} overflows {arr.dtype}: it is not finite; "
                             "scale the inputs down or compute in float64")
    Q, K, V = (split_heads(a, h) for a in projected.values())  # (..., h, L, d_k) each
    heads, weights = attention(Q, K, V, c.mask)  # (..., h, L_q, d_k), (..., h, L_q, L_k)
    with np.errstate(over="ignore", invalid="ignore"):
        out = linear(combine_heads(heads), p["W_o"], p["b_o"])  # (..., L_q, d_model)
    if not np.isfinite(out).all():
        raise ValueError(f"the output projection overflows {out.dtype}: it is not finite; "
                         "scale the inputs down or compute in float64")
    return out, (weights if c.need_weights else None)


def multi_head_attention(
    x: ArrayLike,
    W_q: ArrayLike,
    W_k: ArrayLike,
    W_v: ArrayLike,
    W_o: ArrayLike,
    num_heads: int,
    mask: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Multi-head self-attention with ``x @ W`` projections and no biases (notebook 04).

    Parameters
    ----------
    x : array_like, shape (batch, seq, d_model) or (seq, d_model)
        Token embeddings.
    W_q, W_k, W_v, W_o : array_like, shape (d_model, d_model)
        Projection matrices (``Q = x @ W_q``, ...; output ``= concat(heads) @ W_o``),
        of the dtype of ``x``.
    num_heads : int
        Number of heads ``h``; must divide ``d_model``.
    mask : array_like, optional
        Boolean (True = may attend) or float (added to the scores), of shape
        ``(seq, seq)`` or ``(batch, h, seq, seq)`` (each axis full or 1), or
        ``(h, seq, seq)`` for 2-D ``x``. A 3-D mask with batched ``x`` raises
        ``ValueError``: write ``mask[:, None]`` for one mask per sequence.

    Returns
    -------
    output : ndarray, shape of ``x``
    weights : ndarray, shape (batch, h, seq, seq), or (h, seq, seq) for 2-D ``x``
    """
    x = _check_tokens(x, "x")
    num_heads = positive_int(num_heads, "num_heads")
    d_model = x.shape[-1]
    if d_model and d_model % num_heads:
        raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
    square = (d_model, d_model)
    params: dict[str, ArrayLike | None] = {
        "W_q": _check_weight(W_q, "W_q", square),
        "W_k": _check_weight(W_k, "W_k", square),
        "W_v": _check_weight(W_v, "W_v", square),
        "W_o": _check_weight(W_o, "W_o", square),
        "b_q": None, "b_k": None, "b_v": None, "b_o": None,
    }
    c = _validate(x, x, x, params, num_heads, mask, True, names=("x", "x", "x"))
    out, weights = project_and_attend_fast(c.q, c.k, c.v, c.params, c.num_heads, c.mask)
    return out, cast(FloatArray, weights)
