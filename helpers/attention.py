"""Scaled dot-product attention and multi-head attention in NumPy.

Shape names used throughout:

* ``L_q`` / ``L_k`` -- number of queries / keys (sequence lengths)
* ``d_k`` -- width of a query or key vector, ``d_v`` -- width of a value vector
* ``d_model`` -- width of a token embedding, ``h`` -- number of heads,
  ``d_k = d_model // h`` inside multi-head attention
* ``...`` -- any leading "batch-like" axes (batch, heads, ...), broadcast together

Mask convention (the one of ``torch.nn.functional.scaled_dot_product_attention``):
a **boolean** mask is ``True`` where a query *may attend* to a key; a **float**
mask is *added* to the scaled scores (``0`` keeps a key, ``-inf`` removes it).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from helpers._fast_mha import fast_path_applies, project_and_attend_fast
from helpers._validate import as_float_array, check_qkv, positive_int, require_ndim

FloatArray = NDArray[np.floating]


# --------------------------------------------------------------------------- softmax
def softmax(x: ArrayLike, axis: int = -1) -> FloatArray:
    """Numerically stable softmax along ``axis``.

    ``softmax(x)_i = exp(x_i - max(x)) / sum_j exp(x_j - max(x))``; subtracting
    the maximum changes nothing mathematically but keeps ``exp`` from
    overflowing, so inputs of magnitude 1e4 are fine.

    A slice whose every entry is ``-inf`` (a query that may attend to nothing)
    returns all zeros instead of NaN, the behaviour of PyTorch's
    ``scaled_dot_product_attention`` for a fully masked row.

    Parameters
    ----------
    x : array_like, any shape
        Real scores. ``-inf`` is allowed (it means "weight zero"); NaN and
        ``+inf`` are rejected.
    axis : int
        Axis to normalise over.

    Returns
    -------
    ndarray, same shape and floating dtype as ``x``
        Non-negative; each slice along ``axis`` sums to 1 (or is all zero).
    """
    x = as_float_array(x, "x")
    if np.isnan(x).any() or np.isposinf(x).any():
        raise ValueError("softmax input contains NaN or +inf")
    peak = np.max(x, axis=axis, keepdims=True)
    # An all -inf slice has max -inf; shift it by 0 instead so exp gives 0, not NaN.
    peak[~np.isfinite(peak)] = 0.0
    e = np.exp(x - peak)
    total = np.sum(e, axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


# --------------------------------------------------------------------------- attention
def _check_mask(mask: ArrayLike, scores_shape: tuple[int, ...]) -> np.ndarray:
    """Validate an attention mask against the scores' shape and return it as an array."""
    m = np.asarray(mask)
    if m.dtype.kind not in "bfiu":
        raise TypeError(f"mask must be boolean or real-valued, got dtype {m.dtype}")
    try:
        broadcast = np.broadcast_shapes(m.shape, scores_shape)
    except ValueError:
        broadcast = None
    if broadcast != tuple(scores_shape):
        raise ValueError(
            f"mask of shape {m.shape} does not broadcast to the scores' shape "
            f"{tuple(scores_shape)} (..., L_q, L_k)"
        )
    if m.dtype.kind != "b" and (np.isnan(m).any() or np.isposinf(m).any()):
        raise ValueError("a float mask may hold finite values and -inf, not NaN or +inf")
    return m


def _apply_mask(scores: FloatArray, mask: np.ndarray) -> FloatArray:
    """Return ``scores`` with ``mask`` applied (boolean: keep where True; float: add)."""
    if mask.dtype.kind == "b":
        return np.where(mask, scores, -np.inf).astype(scores.dtype, copy=False)
    # Cast the float mask to the scores' dtype first: float32 + float64 would promote.
    return scores + mask.astype(scores.dtype, copy=False)


def attention(
    Q: ArrayLike, K: ArrayLike, V: ArrayLike, mask: ArrayLike | None = None
) -> tuple[FloatArray, FloatArray]:
    r"""Scaled dot-product attention, :math:`\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V`.

    Parameters
    ----------
    Q : array_like, shape (..., L_q, d_k) or (d_k,)
        Queries. A 1-D ``Q`` is a single query; the outputs then lose the
        ``L_q`` axis.
    K : array_like, shape (..., L_k, d_k)
        Keys.
    V : array_like, shape (..., L_k, d_v)
        Values; ``d_v`` may differ from ``d_k``.
    mask : array_like, optional, broadcastable to (..., L_q, L_k)
        Boolean (True = may attend) or float (added to the scaled scores).

    Returns
    -------
    output : ndarray, shape (..., L_q, d_v)
        Weighted averages of the value rows.
    weights : ndarray, shape (..., L_q, L_k)
        Attention weights; each row sums to 1, or is all zero when every key
        of that row is masked (its output row is then zero too).

    Raises
    ------
    ValueError
        If the feature sizes of Q and K differ, K and V have different
        lengths, the leading axes do not broadcast, or the mask does not
        broadcast to the scores.
    TypeError
        If an input is not numeric.
    """
    Q, K, V, _, single_query = check_qkv(Q, K, V)

    d_k = Q.shape[-1]
    # A Python float keeps float32 scores float32 (a np.float64 scalar would promote them).
    scores = (Q @ np.swapaxes(K, -1, -2)) * (1.0 / math.sqrt(d_k))  # (..., L_q, L_k)
    if mask is not None:
        if single_query:
            mask = np.asarray(mask)
            mask = mask[..., np.newaxis, :] if mask.ndim == 1 else mask
        scores = _apply_mask(scores, _check_mask(mask, scores.shape))
    weights = softmax(scores, axis=-1)  # (..., L_q, L_k)
    output = weights @ V  # (..., L_q, d_v)
    if single_query:
        return output[..., 0, :], weights[..., 0, :]
    return output, weights


# --------------------------------------------------------------------------- heads
def split_heads(x: ArrayLike, num_heads: int) -> FloatArray:
    """Split the feature axis into heads: ``(..., seq, d_model) -> (..., h, seq, d_k)``.

    Feature ``h * d_k + j`` goes to head ``h``, position ``j`` (PyTorch's order).
    The reshape puts heads next to features, ``(..., seq, h, d_k)``; the
    transpose then moves the head axis in front of ``seq``. Reshaping straight
    to ``(..., h, seq, d_k)`` would mix positions into heads.
    """
    x = as_float_array(x, "x")
    num_heads = positive_int(num_heads, "num_heads")
    require_ndim(x, "x", "(..., seq, d_model)", min_ndim=2)
    *lead, seq, d_model = x.shape
    if d_model % num_heads:
        raise ValueError(
            f"d_model={d_model} (x has shape {x.shape}) is not divisible by num_heads={num_heads}"
        )
    x = x.reshape(*lead, seq, num_heads, d_model // num_heads)  # (..., seq, h, d_k)
    return np.swapaxes(x, -3, -2)  # (..., h, seq, d_k)


def combine_heads(x: ArrayLike) -> FloatArray:
    """Inverse of :func:`split_heads`: ``(..., h, seq, d_k) -> (..., seq, h * d_k)``."""
    x = as_float_array(x, "x")
    require_ndim(x, "x", "(..., h, seq, d_k)", min_ndim=3)
    *lead, h, seq, d_k = x.shape
    return np.swapaxes(x, -3, -2).reshape(*lead, seq, h * d_k)


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


def linear(x: FloatArray, W: FloatArray, b: FloatArray | None) -> FloatArray:
    """One projection, ``x (..., d_in) @ W (d_in, d_out) + b (d_out,)``; b=None: no bias."""
    y = x @ W
    return y if b is None else y + b


def project_and_attend(
    q: FloatArray,
    k: FloatArray,
    v: FloatArray,
    params: dict[str, FloatArray | None],
    num_heads: int,
    mask: ArrayLike | None,
) -> tuple[FloatArray, FloatArray]:
    """Multi-head attention core shared by the function and the class.

    ``q (..., L_q, d_model)``, ``k`` and ``v (..., L_k, d_model)`` are already
    validated; ``params`` holds ``W_q, W_k, W_v, W_o`` ``(d_model, d_model)``
    and biases ``b_q, b_k, b_v, b_o`` ``(d_model,)`` or None. Returns the output
    ``(..., L_q, d_model)`` and per-head weights ``(..., h, L_q, L_k)``.

    When the tokens and parameters share one float32 or float64 dtype (the usual
    case) the work goes to :func:`helpers._fast_mha.project_and_attend_fast`,
    which computes the same thing with a fused projection, cache-sized tiles and
    one thread per core. Otherwise :func:`project_and_attend_reference` runs: the
    readable composition of the steps, which also defines the results.

    Raises ``ValueError`` if a token holds NaN or infinity (checked on the
    ``(..., L, d_model)`` inputs, a pass far cheaper than one over the scores).
    """
    for name, tokens in (("query", q), ("key", k), ("value", v)):
        if (name == "key" and k is q) or (name == "value" and v is k):
            continue  # the same array, already checked
        if not np.isfinite(tokens).all():
            raise ValueError(
                f"{name} (shape {tokens.shape}) contains NaN or infinity; "
                "attention needs finite inputs"
            )
    if fast_path_applies(q, k, v, params):
        return project_and_attend_fast(q, k, v, params, num_heads, mask)
    return project_and_attend_reference(q, k, v, params, num_heads, mask)


def project_and_attend_reference(
    q: FloatArray,
    k: FloatArray,
    v: FloatArray,
    params: dict[str, FloatArray | None],
    num_heads: int,
    mask: ArrayLike | None,
) -> tuple[FloatArray, FloatArray]:
    """The readable multi-head attention core: project, split, attend, combine, project.

    Same contract as :func:`project_and_attend`; NumPy's promotion rules decide
    the dtype of each step (e.g. float32 tokens with float64 weights give float64).
    """

    Q = split_heads(linear(q, params["W_q"], params["b_q"]), num_heads)  # (..., h, L_q, d_k)
    K = split_heads(linear(k, params["W_k"], params["b_k"]), num_heads)  # (..., h, L_k, d_k)
    V = split_heads(linear(v, params["W_v"], params["b_v"]), num_heads)  # (..., h, L_k, d_k)
    heads, weights = attention(Q, K, V, mask)  # (..., h, L_q, d_k), (..., h, L_q, L_k)
    out = linear(combine_heads(heads), params["W_o"], params["b_o"])  # (..., L_q, d_model)
    return out, weights


def multi_head_attention(
    x: ArrayLike,
    W_q: ArrayLike,
    W_k: ArrayLike,
    W_v: ArrayLike,
    W_o: ArrayLike,
    num_heads: int,
    mask: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Multi-head self-attention with ``x @ W`` projections and no biases.

    Parameters
    ----------
    x : array_like, shape (batch, seq, d_model) or (seq, d_model)
        Token embeddings.
    W_q, W_k, W_v, W_o : array_like, shape (d_model, d_model)
        Projection matrices (``Q = x @ W_q``, ...; output ``= concat(heads) @ W_o``).
    num_heads : int
        Number of heads ``h``; must divide ``d_model``.
    mask : array_like, optional
        Broadcastable to the scores ``(batch, h, seq, seq)`` (``(h, seq, seq)``
        for 2-D ``x``); boolean True = may attend, or float added to scores.

    Returns
    -------
    output : ndarray, shape of ``x``
    weights : ndarray, shape (batch, h, seq, seq), or (h, seq, seq) for 2-D ``x``
    """
    x = _check_tokens(x, "x")
    num_heads = positive_int(num_heads, "num_heads")
    d_model = x.shape[-1]
    if d_model % num_heads:
        raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
    square = (d_model, d_model)
    params: dict[str, FloatArray | None] = {
        "W_q": _check_weight(W_q, "W_q", square),
        "W_k": _check_weight(W_k, "W_k", square),
        "W_v": _check_weight(W_v, "W_v", square),
        "W_o": _check_weight(W_o, "W_o", square),
        "b_q": None, "b_k": None, "b_v": None, "b_o": None,
    }
    return project_and_attend(x, x, x, params, num_heads, mask)
