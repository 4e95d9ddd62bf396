"""Softmax and scaled dot-product attention in NumPy (notebooks 01 and 02).

Shape names used throughout:

* ``L_q`` / ``L_k`` -- number of queries / keys (sequence lengths)
* ``d_k`` -- width of a query or key vector, ``d_v`` -- width of a value vector
* ``...`` -- any leading "batch-like" axes (batch, heads, ...), broadcast together

Mask convention (the one of ``torch.nn.functional.scaled_dot_product_attention``):
a **boolean** mask is ``True`` where a query *may attend* to a key; a **float**
mask is *added* to the scaled scores (``0`` keeps a key, ``-inf`` removes it).
Integer masks are rejected: a 0/1 integer mask would be added and hide nothing.

dtype rule: Q, K and V must share one dtype, float32 or float64 (mixing them
raises ``TypeError``, as in PyTorch); integer/boolean arrays and Python lists
are read as float64 first; float16 is rejected; a float mask is cast to the
scores' dtype; the results have the inputs' dtype (see :mod:`helpers._validate`).

Empty inputs: ``L_q = 0``, ``L_k = 0``, ``d_v = 0`` and empty leading axes give
correctly shaped results. A query with nothing to attend to -- no keys at all
(``L_k = 0``) or every key masked -- gets all-zero weights and a zero output
(PyTorch's SDPA gives zeros for ``L_k = 0`` and NaN for a fully masked row).

Multi-head attention lives in :mod:`helpers.multihead`, the head reshapes in
:mod:`helpers.heads`; their names stay importable from here.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from helpers._mask_validation import apply_mask as _apply_mask
from helpers._mask_validation import check_mask as _check_mask
from helpers._mask_validation import top_left_causal_mask
from helpers._validate import (
    FloatArray,
    abs_max,
    as_float_array,
    check_bool,
    check_qkv,
    check_scale,
    products_may_overflow,
    scores_overflow_error,
)
from helpers.heads import combine_heads, split_heads

__all__ = ["FloatArray", "attention", "combine_heads", "softmax", "split_heads"]

# --------------------------------------------------------------------------- softmax
def softmax(x: ArrayLike, axis: int = -1) -> FloatArray:
    """Numerically stable softmax along ``axis``.

    ``softmax(x)_i = exp(x_i - max(x)) / sum_j exp(x_j - max(x))``; subtracting
    the maximum changes nothing mathematically but keeps ``exp`` from
    overflowing, so inputs of magnitude 1e4 are fine.

    A slice whose every entry is ``-inf`` (a query that may attend to nothing)
    returns all zeros instead of NaN. An empty slice (size 0 along ``axis``)
    gives an empty result.

    Parameters
    ----------
    x : array_like, at least 1-D
        Real scores. ``-inf`` is allowed (it means "weight zero"); NaN and
        ``+inf`` are rejected.
    axis : int
        Axis to normalise over.

    Returns
    -------
    ndarray, same shape and floating dtype as ``x``
        Non-negative; each slice along ``axis`` sums to 1 (or is all zero).

    Raises
    ------
    ValueError
        If ``x`` is 0-D, ``axis`` is out of range, or ``x`` holds NaN or +inf.
    TypeError
        If ``x`` is not real numeric or ``axis`` is not an integer.
    """
    x = as_float_array(x, "x")
    if x.ndim == 0:
        raise ValueError(
            "softmax needs at least one axis to normalise over, got a 0-D array (shape ()); "
            "a single score would always get weight 1"
        )
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer, got {axis!r} ({type(axis).__name__})")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis={axis} is out of range for x of shape {x.shape}")
    if np.isnan(x).any() or np.isposinf(x).any():
        raise ValueError("softmax input contains NaN or +inf")
    if x.shape[axis] == 0:
        return x.copy()
    peak = np.max(x, axis=axis, keepdims=True)
    # An all -inf slice has max -inf; shift it by 0 instead so exp gives 0, not NaN.
    peak[~np.isfinite(peak)] = 0.0
    e = np.exp(x - peak)
    total = np.sum(e, axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


# --------------------------------------------------------------------------- attention
def masked_scores(
    Q: FloatArray,
    K: FloatArray,
    mask: ArrayLike | None,
    *,
    scale: object = None,
    is_causal: object = False,
    single_query: bool = False,
) -> FloatArray:
    """Scaled, masked scores ``scale * Q K^T (+ mask)`` of validated ``Q (..., L_q, d_k)``, ``K``.

    Shared by :func:`attention` and :func:`helpers.attention_backward.attention_backward`
    so that both accept and reject the same inputs. ``scale`` and ``is_causal``
    as in :func:`attention`; ``single_query``: ``Q`` was 1-D, so a 1-D mask
    ``(L_k,)`` gets its query axis back.

    Raises ``ValueError`` if a score is not finite (before the mask is applied),
    if ``is_causal`` is combined with a mask, or the mask is invalid.
    """
    is_causal = check_bool(is_causal, "is_causal")
    s = check_scale(scale, Q.shape[-1])
    if is_causal and mask is not None:
        raise ValueError(
            "pass either mask or is_causal=True, not both (scaled_dot_product_attention refuses "
            "the pair too); to combine them, pass mask & np.tril(np.ones((L_q, L_k), dtype=bool)), "
            "the top-left causal mask is_causal stands for"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        # A Python float keeps float32 scores float32 (a np.float64 scalar would promote them).
        scores = (Q @ np.swapaxes(K, -1, -2)) * s  # (..., L_q, L_k)
    q_max, k_max = abs_max(Q), abs_max(K)
    if products_may_overflow(q_max, k_max, Q.shape[-1], s, scores.dtype) and not (
        np.isfinite(scores).all()
    ):
        # Q K^T itself may overflow where s Q K^T does not (s < 1): scale Q first, as the
        # tiled and multi-head paths do, and accept the scores if they are finite that way.
        with np.errstate(over="ignore", invalid="ignore"):
            scores = (Q * s) @ np.swapaxes(K, -1, -2)
        if not np.isfinite(scores).all():
            raise scores_overflow_error(scores.dtype, "Q and K", q_max, k_max)
    if is_causal:
        mask = top_left_causal_mask(*scores.shape[-2:])
    if mask is not None:
        if single_query:
            mask = np.asarray(mask)
            mask = mask[..., np.newaxis, :] if mask.ndim == 1 else mask
        scores = _apply_mask(scores, _check_mask(mask, scores.shape, scores.dtype))
    return scores


def attention(
    Q: ArrayLike,
    K: ArrayLike,
    V: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    scale: float | None = None,
    is_causal: bool = False,
) -> tuple[FloatArray, FloatArray]:
    r"""Scaled dot-product attention, :math:`\mathrm{softmax}(s\,QK^\top + M)\,V` (notebook 02).

    The arguments follow ``torch.nn.functional.scaled_dot_product_attention``.

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
        Boolean (True = may attend) or float (added to the scaled scores;
        finite values and ``-inf``). Integer masks raise ``TypeError``.
    scale : float, keyword-only, optional
        The factor ``s`` applied to ``Q K^T``; ``None`` means ``1 / sqrt(d_k)``.
    is_causal : bool, keyword-only
        Apply PyTorch's causal mask, **top-left aligned**:
        ``np.tril(np.ones((L_q, L_k), bool))``, query ``i`` sees keys
        ``j <= i``. For ``L_q < L_k`` the last keys are seen by nobody; with a
        KV cache (queries at the *end* of the keys) use
        ``mask=create_causal_mask(L_q, L_k)`` (bottom-right) instead. A 1-D
        ``Q`` is query 0 and sees key 0 only. Cannot be combined with ``mask``.

    Returns
    -------
    output : ndarray, shape (..., L_q, d_v)
        Weighted averages of the value rows.
    weights : ndarray, shape (..., L_q, L_k)
        Attention weights; each row sums to 1, or is all zero when the query
        has nothing to attend to (every key masked, or ``L_k = 0``): its output
        row is then zero too.

    Raises
    ------
    ValueError
        If the feature sizes of Q and K differ or are 0, K and V have different
        lengths, the leading axes do not broadcast, an input holds NaN or
        infinity, the scores overflow, the mask does not broadcast to the
        scores, or ``mask`` is combined with ``is_causal``.
    TypeError
        If an input is not numeric, the dtypes of Q, K, V differ, the mask is
        neither boolean nor floating, or ``scale``/``is_causal`` have the wrong type.
    """
    Q, K, V, _, single_query = check_qkv(Q, K, V)
    scores = masked_scores(Q, K, mask, scale=scale, is_causal=is_causal,
                           single_query=single_query)  # (..., L_q, L_k)
    weights = softmax(scores, axis=-1)  # (..., L_q, L_k)
    output = weights @ V  # (..., L_q, d_v); zeros where a row has no weight (or L_k = 0)
    if single_query:
        return output[..., 0, :], weights[..., 0, :]
    return output, weights
