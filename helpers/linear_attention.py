r"""Linear attention: a positive feature map instead of the softmax, O(N) instead of O(N²).

Softmax attention is a normalised kernel smoother,

.. math::

    o_i = \frac{\sum_j \kappa(q_i, k_j)\, v_j}{\sum_j \kappa(q_i, k_j)}, \qquad
    \kappa(q, k) = \exp(q^\top k / \sqrt{d}) .

Replace the kernel by an inner product of non-negative features
:math:`\varphi(x) \in \mathbb R^r` (see :mod:`helpers.feature_maps`) and the
sums factor:

.. math::

    o_i = \frac{\varphi(q_i)^\top \sum_j \varphi(k_j) v_j^\top}
               {\varphi(q_i)^\top \sum_j \varphi(k_j)}
        = \frac{\varphi(q_i)^\top S}{\varphi(q_i)^\top z}, \qquad
    S = \varphi(K)^\top V \in \mathbb R^{r \times d_v},\;
    z = \varphi(K)^\top \mathbf 1 \in \mathbb R^{r}.

Computing :math:`S` first costs :math:`O(N r d_v)`, never the :math:`N \times N`
matrix :math:`\varphi(Q)\varphi(K)^\top`. Causal attention keeps running sums
instead, an RNN with state :math:`(S_i, z_i)`:
:math:`S_i = S_{i-1} + \varphi(k_i) v_i^\top`, :math:`z_i = z_{i-1} + \varphi(k_i)`,
:math:`o_i = \varphi(q_i)^\top S_i / \varphi(q_i)^\top z_i`. The library
processes the sequence in chunks: inside a chunk the masked quadratic form,
across chunks the running state.

Notebook 09, sections 7–8 (the kernel view and the recurrence) and 11 (the cost), teaches
this module; exercise 09.3 has the learner write the causal recurrence.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from helpers._validate import as_float_array, check_bool, check_qkv, positive_int
from helpers.attention import FloatArray
from helpers.feature_maps import elu_feature_map, exp_max_feature_map

FEATURE_MAPS: dict[str, Callable[[ArrayLike], FloatArray]] = {
    "elu": elu_feature_map,
    "exp_max": exp_max_feature_map,
}
"""Feature maps known by name; any callable ``phi(x) -> (..., L, r)`` works too."""

DEFAULT_CHUNK_SIZE = 64
"""Tokens per chunk of the causal computation (a ``(chunk, chunk)`` masked block)."""

FeatureMap = str | Callable[[ArrayLike], FloatArray]


def _resolve(feature_map: FeatureMap) -> Callable[[ArrayLike], FloatArray]:
    if isinstance(feature_map, str):
        if feature_map not in FEATURE_MAPS:
            raise ValueError(
                f"feature_map must be one of {sorted(FEATURE_MAPS)} or a callable "
                f"phi(x) -> (..., L, r); got {feature_map!r}"
            )
        return FEATURE_MAPS[feature_map]
    if not callable(feature_map):
        raise TypeError(
            f"feature_map must be a name or a callable phi(x) -> (..., L, r), got "
            f"{type(feature_map).__name__}"
        )
    return feature_map


def _features(phi: Callable, x: FloatArray, name: str, dtype: np.dtype) -> FloatArray:
    """``phi(x)`` of shape ``(..., L, r)``, checked and cast to ``dtype``.

    A map with a ``log_features`` method (:class:`helpers.feature_maps.RandomFeatureMap`)
    is evaluated in log space: each query row, and all keys of a batch entry
    together, are shifted by their maximum before ``exp``. Such constants cancel
    between the numerator and the denominator of linear attention.
    """
    if hasattr(phi, "log_features"):
        log_f = as_float_array(phi.log_features(x), f"feature_map({name})")
        if log_f.size:
            axes = -1 if name == "Q" else (-2, -1)  # per query row; one constant for all keys
            log_f = log_f - np.max(log_f, axis=axes, keepdims=True)
        f = np.exp(log_f)
    else:
        f = as_float_array(phi(x), f"feature_map({name})")
    if f.ndim != x.ndim or f.shape[:-1] != x.shape[:-1]:
        raise ValueError(
            f"feature_map({name}) must return shape (..., L, r) = {(*x.shape[:-1], 'r')} for "
            f"{name} of shape {x.shape}, got shape {f.shape}"
        )
    if f.size and not (np.isfinite(f).all() and f.min() >= 0):
        bad, negative = int((~np.isfinite(f)).sum()), int((f < 0).sum())
        raise ValueError(
            f"feature_map({name}) must return finite, non-negative features; got "
            f"{negative} negative and {bad} NaN or infinite entries of {f.size}"
        )
    return f.astype(dtype, copy=False)


def _divide(num: FloatArray, den: FloatArray, out: FloatArray) -> None:
    """``out = num / den``, with a clear error instead of NaN where a normaliser is 0."""
    if (den <= 0).any():
        raise ValueError(
            f"the normaliser phi(q_i) · sum_j phi(k_j) is 0 for {int((den <= 0).sum())} "
            "query row(s): the feature map gives zero similarity to every visible key. "
            "Use a strictly positive feature map."
        )
    np.divide(num, den, out=out)


def _phi_qkv(Q, K, V, feature_map, mask):
    """Shared checks of linear_attention and linear_attention_weights."""
    if mask is not None:
        raise ValueError(
            "linear attention takes no mask: it never forms the (L_q, L_k) weights a mask "
            "would act on. Use causal=True for a causal mask, or helpers.attention / "
            "helpers.tiled_attention for other masks."
        )
    phi = _resolve(feature_map)
    Q, K, V, lead, single_query = check_qkv(Q, K, V)  # shapes, one dtype, finite values
    dtype = np.result_type(Q.dtype, K.dtype, V.dtype)
    phi_q = _features(phi, Q, "Q", dtype)  # (..., L_q, r)
    phi_k = _features(phi, K, "K", dtype)  # (..., L_k, r)
    if phi_q.shape[-1] != phi_k.shape[-1]:
        raise ValueError(
            f"feature_map gave queries and keys different widths r: {phi_q.shape} and "
            f"{phi_k.shape}"
        )
    return phi_q, phi_k, V.astype(dtype, copy=False), lead, single_query, dtype


def linear_attention(
    Q: ArrayLike,
    K: ArrayLike,
    V: ArrayLike,
    mask: None = None,
    *,
    is_causal: bool = False,
    causal: bool = False,
    feature_map: FeatureMap = "elu",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> FloatArray:
    r"""Kernelised attention :math:`\varphi(q_i)^\top S / \varphi(q_i)^\top z`, O(N) time, memory.

    Parameters
    ----------
    Q : array_like, shape (..., L_q, d_k) or (d_k,)
        Queries; a 1-D ``Q`` is one query and the output loses the ``L_q`` axis.
    K : array_like, shape (..., L_k, d_k)
        Keys.
    V : array_like, shape (..., L_k, d_v)
        Values. Leading axes of Q, K, V broadcast together.
    mask : None
        Must be None: an arbitrary mask needs the ``(L_q, L_k)`` matrix that
        linear attention never builds (``ValueError`` otherwise). Use ``is_causal``.
    is_causal : bool, keyword-only
        If True, query ``i`` sees keys ``j <= i`` (top-left alignment, as in
        :func:`helpers.tiled_attention` and PyTorch's
        ``scaled_dot_product_attention(is_causal=True)``), computed with running sums.
    causal : bool, keyword-only
        The older name of ``is_causal``; either one set to True makes it causal.
    feature_map : {"elu", "exp_max"} or callable, keyword-only
        ``"elu"``: :func:`helpers.feature_maps.elu_feature_map` (default);
        ``"exp_max"``: ``exp(x - max)`` (not the softmax kernel); or any callable
        ``phi(x (..., L, d_k)) -> (..., L, r)`` with finite non-negative output,
        e.g. a :class:`helpers.feature_maps.RandomFeatureMap`, whose result
        approximates softmax attention.
    chunk_size : int, keyword-only
        Tokens per chunk of the causal computation; the result does not depend
        on it beyond rounding.

    Returns
    -------
    ndarray, shape (..., L_q, d_v) (``(..., d_v)`` for 1-D ``Q``)
        The output only, like :func:`helpers.tiled_attention`: the weights are
        never formed (:func:`linear_attention_weights` builds them for study).
        It has the inputs' dtype, computed in that dtype (float32 is never
        promoted); Q, K and V must share one dtype, as in :func:`helpers.attention`.
        Zero queries give an empty ``(..., 0, d_v)`` result, zero keys a zero
        output (nothing to attend to), as :func:`helpers.attention` does.

    Raises
    ------
    ValueError
        Shape mismatches (as :func:`helpers.attention`), NaN or
        infinity in Q, K or V, a mask, an unknown ``feature_map`` name,
        features of the wrong shape, negative or non-finite features, or a
        zero normaliser (a map that gives some query no positive similarity).
    TypeError
        Non-numeric input, differing dtypes, a non-bool ``is_causal`` or
        ``causal``, a ``feature_map`` that is neither a name nor callable, a
        non-integer ``chunk_size``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> Q, K, V = (rng.standard_normal((2, 100, 8)) for _ in range(3))
    >>> W = linear_attention_weights(Q, K, is_causal=True)  # (2, 100, 100), O(N²)
    >>> bool(np.allclose(linear_attention(Q, K, V, is_causal=True), W @ V))
    True

    Taught in notebook 09 §7–8 (exercise 09.3 writes its causal recurrence).
    """
    causal = check_bool(is_causal, "is_causal") | check_bool(causal, "causal")
    chunk = positive_int(chunk_size, "chunk_size")
    phi_q, phi_k, V, lead, single_query, dtype = _phi_qkv(Q, K, V, feature_map, mask)
    L_q, r = phi_q.shape[-2:]
    L_k, d_v = V.shape[-2:]
    out = np.empty((*lead, L_q, d_v), dtype=dtype)  # (..., L_q, d_v)

    if L_k == 0:
        out.fill(0)  # nothing to attend to: a zero output, as helpers.attention gives
    elif not causal:
        S = np.swapaxes(phi_k, -1, -2) @ V  # (..., r, d_v): sum_j phi(k_j) v_j^T
        z = phi_k.sum(axis=-2)[..., np.newaxis]  # (..., r, 1): sum_j phi(k_j)
        _divide(phi_q @ S, phi_q @ z, out)  # (..., L_q, d_v) / (..., L_q, 1)
    else:
        S = np.zeros((*lead, r, d_v), dtype=dtype)  # keys before the chunk: sum phi(k_j) v_j^T
        z = np.zeros((*lead, r, 1), dtype=dtype)  # and sum phi(k_j)
        for q0 in range(0, L_q, chunk):
            q1 = min(q0 + chunk, L_q)
            pq = phi_q[..., q0:q1, :]  # (..., c, r)
            num = pq @ S  # (..., c, d_v): every key before q0
            den = pq @ z  # (..., c, 1)
            k1 = min(q1, L_k)  # keys q0 .. k1 - 1 lie inside this chunk
            if k1 > q0:
                pk, vk = phi_k[..., q0:k1, :], V[..., q0:k1, :]  # (..., c', r), (..., c', d_v)
                A = pq @ np.swapaxes(pk, -1, -2)  # (..., c, c'): phi(q_i) · phi(k_j)
                A *= np.tri(q1 - q0, k1 - q0, dtype=dtype)  # keep j <= i
                num += A @ vk
                den += A.sum(axis=-1, keepdims=True)
                S = S + np.swapaxes(pk, -1, -2) @ vk  # (..., r, d_v)
                z = z + pk.sum(axis=-2)[..., np.newaxis]  # (..., r, 1)
            _divide(num, den, out[..., q0:q1, :])

    return out[..., 0, :] if single_query else out


def linear_attention_weights(
    Q: ArrayLike,
    K: ArrayLike,
    mask: None = None,
    *,
    is_causal: bool = False,
    causal: bool = False,
    feature_map: FeatureMap = "elu",
) -> FloatArray:
    r"""The weights linear attention implies: :math:`\varphi(q_i)^\top\varphi(k_j)`, row-normalised.

    The explicit quadratic form, O(N²) time and memory, for study and testing:
    ``linear_attention(Q, K, V, ...) == linear_attention_weights(Q, K, ...) @ V``.

    Parameters
    ----------
    Q : array_like, shape (..., L_q, d_k) or (d_k,)
    K : array_like, shape (..., L_k, d_k)
    mask, is_causal, causal, feature_map
        As in :func:`linear_attention`.

    Returns
    -------
    ndarray, shape (..., L_q, L_k) (``(..., L_k)`` for 1-D ``Q``)
        Non-negative; each row sums to 1 (no keys: an empty ``(..., L_q, 0)``);
        zero above the diagonal if causal.

    Taught in notebook 09 §9–10.
    """
    causal = check_bool(is_causal, "is_causal") | check_bool(causal, "causal")
    K_arr = as_float_array(K, "K")
    V_dummy = np.zeros((*K_arr.shape[:-1], 0), dtype=K_arr.dtype) if K_arr.ndim >= 2 else K_arr
    phi_q, phi_k, _, _, single_query, dtype = _phi_qkv(Q, K_arr, V_dummy, feature_map, mask)
    A = phi_q @ np.swapaxes(phi_k, -1, -2)  # (..., L_q, L_k)
    if causal:
        A = A * np.tri(A.shape[-2], A.shape[-1], dtype=dtype)  # keep j <= i
    weights = np.empty_like(A)
    if A.size:
        _divide(A, A.sum(axis=-1, keepdims=True), weights)
    return weights[..., 0, :] if single_query else weights
