r"""The backward pass of the whole :class:`~helpers.MultiHeadAttention` layer (notebook 08).

Forward pass, for one batch element (``s = 1/sqrt(d_k)``; the layer's ``x @ W + b`` convention)::

    Q = s (x_q W_q + b_q)   K = x_k W_k + b_k   V = x_v W_v + b_v     split into h heads
    Q, K = rope(Q), rope(K)                          (only with rope_base; a rotation)
    P  = softmax(Q K^T + mask)                       (h, L_q, L_k)  weights before dropout
    Pd = P * keep / (1 - p)                          (h, L_q, L_k)  inverted dropout (training)
    H  = Pd V                                        (h, L_q, d_k)  -> combined: (L_q, d_model)
    out = H W_o + b_o                                (L_q, d_model)

Given ``d_out = dLoss/d out`` the chain rule runs the same steps backwards::

    dW_o = H^T d_out     db_o = sum_rows d_out     dH = d_out W_o^T   (split into heads)
    dV  = Pd^T dH        dPd = dH V^T              dP = dPd * keep / (1 - p)
    dS  = P * (dP - D),  D_i = sum_j dP_ij P_ij    (softmax backward; zero where P is zero)
    dQ  = dS K           dK = dS^T Q               (then rope^T: the inverse rotation)
    dW_q = s x_q^T dQ    db_q = s sum_rows dQ      dx_q = s dQ W_q^T   (same for k, v)

Two identities make it cheap. ``D_i = sum_j dPd_ij Pd_ij = dH_i . H_i``: a dot
product of two ``d_k``-vectors instead of a sum over ``L_k`` keys (the identity
FlashAttention uses). And ``P * dP = Pd * dPd``, so with dropout
``dS = Pd * dPd - P * D`` needs no keep-mask: the weights before and after
dropout say everything.

Masked scores are constants: their weight is 0, so is their ``dS``, and a fully
masked row (all weights 0) sends no gradient anywhere. Self-attention feeds one
``x`` into all three projections: the gradients of the fused product
``x [s W_q | W_k | W_v]`` sum the three paths by themselves.

How the work is laid out: nothing is recomputed, every array of the forward pass is read where
it lies (the projections' strided views, the weights), and the pass is one run of three stages
on one thread per core -- (1) ``dH`` by blocks of rows and ``dW_o`` by blocks of columns, (2) the
attention part by ``(batch, head group)`` units, each over its query rows in the forward pass's
tiles, so the sums over rows into ``dK`` and ``dV`` never cross threads, (3) the weight
gradients of each fused projection by columns and the input gradients by rows.
"""

from __future__ import annotations

import math

import numpy as np

from helpers.attention import FloatArray
from helpers.fastpath import scratch
from helpers.fastpath.threads import num_workers, run_blocks
from helpers.fastpath.tiled_matmul import chunks, tiles_of
from helpers.mha.forward import ForwardRecord
from helpers.rope import apply_rope

__all__ = ["layer_backward"]

ARGUMENTS = {"self": ("qkv",), "kv": ("q", "kv"), "qkv": ("q", "k", "v")}
"""The projections each token argument feeds: ``layer(x)``, ``layer(q, kv)``, ``layer(q, k, v)``."""


def layer_backward(
    rec: ForwardRecord, d_out: FloatArray
) -> tuple[tuple[FloatArray, ...], dict[str, FloatArray]]:
    """Gradients for the forward pass ``rec`` given ``d_out (B, L_q, d_model)``.

    ``d_out`` is validated and 3-D (a batch axis of 1 for an unbatched call).

    Returns
    -------
    inputs : tuple of ndarray
        ``(dx,)`` for ``"self"``, ``(d_query, d_key)`` for ``"kv"`` (``d_key``
        sums the key and value paths), ``(d_query, d_key, d_value)`` for
        ``"qkv"``; each 3-D, with the shape of its input.
    grads : dict
        The gradient of each parameter of the layer (``W_q .. W_o``, and
        ``b_q .. b_o`` when it has biases), in the layer's dtype.
    """
    B, L_q, d = d_out.shape
    h, L_k, d_k = rec.Q.shape[1], rec.K.shape[2], rec.Q.shape[3]
    dtype, workers = d_out.dtype, num_workers()
    dO2, H2 = d_out.reshape(B * L_q, d), rec.heads.reshape(B * L_q, d)
    dH = scratch.work_array("gradient heads", (B, L_q, h, d_k), dtype)  # w.r.t. H, split
    # Gradients w.r.t. the projections, in their fused layout (B, L, n, h, d_k).
    dproj = [scratch.work_array(f"gradient {p.names}", p.out.shape, dtype)
             for p in rec.projections]
    slot = {n: (i, p.names.index(n)) for i, p in enumerate(rec.projections) for n in p.names}
    dQ, dK, dV = (dproj[slot[n][0]][:, :, slot[n][1]] for n in "qkv")  # (B, L, h, d_k) views
    grads: dict[str, FloatArray] = {"W_o": np.empty((d, d), dtype)}
    if rec.has_bias:
        grads["b_o"] = np.empty(d, dtype)

    # Stage 1: dH = d_out W_o^T and D = rowsum(dP * P) = dH . H (per query and head, the
    # identity above) by rows; dW_o = H^T d_out (and db_o) by columns.
    first = [("rows", r0, r1) for r0, r1 in chunks(B * L_q, workers)] + [
        ("columns", c0, c1) for c0, c1 in chunks(d, workers)]
    dH2, H3 = dH.reshape(B * L_q, d), rec.heads.reshape(B * L_q, h, d_k)
    D = np.empty((B, L_q, h), dtype)

    def output_grads(start: int, stop: int) -> None:
        for how, i0, i1 in first[start:stop]:
            if how == "rows":
                np.matmul(dO2[i0:i1], rec.W_o.T, out=dH2[i0:i1])
                np.einsum("rhk,rhk->rh", dH2[i0:i1].reshape(-1, h, d_k), H3[i0:i1],
                          out=D.reshape(B * L_q, h)[i0:i1])
            else:
                np.matmul(H2.T, dO2[:, i0:i1], out=grads["W_o"][:, i0:i1])
                if rec.has_bias:
                    grads["b_o"][i0:i1] = dO2[:, i0:i1].sum(axis=0)

    # Stage 2: attention, by (batch, head group) units over the query rows in tiles.
    rows, group = tiles_of(B, h, L_q, L_k)
    units = [(bi, h0, min(h0 + group, h)) for bi in range(B) for h0 in range(0, h, group)]
    if not (L_q and L_k):  # nothing attends or nothing is attended to: zero gradients here
        units = []
        for dp in dproj:
            dp.fill(0.0)

    def attention_grads(start: int, stop: int) -> None:
        attention_backward_units(rec, dH, D, dQ, dK, dV, units[start:stop], rows, group)

    # Stage 3: weight gradients of each fused projection by columns, input gradients by rows.
    dW = [np.empty((p.x.shape[2], p.W.shape[1]), dtype) for p in rec.projections]
    db = [np.empty(p.W.shape[1], dtype) if rec.has_bias else None for p in rec.projections]
    inputs = []
    last: list[tuple] = []
    for names in ARGUMENTS[rec.kind]:
        i, j = slot[names[0]]
        p = rec.projections[i]
        cols = slice(j * d, (j + len(names)) * d)  # the argument's projections, adjacent
        inputs.append(np.empty(p.x.shape, dtype))
        last += [(inputs[-1].reshape(-1, p.x.shape[2]), i, cols, r0, r1)
                 for r0, r1 in chunks(B * p.x.shape[1], workers)]
    last += [(None, i, None, c0, c1) for i, p in enumerate(rec.projections)
             for c0, c1 in chunks(p.W.shape[1], workers)]

    def input_grads(start: int, stop: int) -> None:
        for dx, i, cols, i0, i1 in last[start:stop]:
            p, dp2 = rec.projections[i], dproj[i].reshape(-1, rec.projections[i].W.shape[1])
            if dx is not None:  # dx = dP W^T over the argument's projections
                np.matmul(dp2[i0:i1, cols], p.W[:, cols].T, out=dx[i0:i1])
            else:  # dW = x^T dP, db = column sums of dP
                np.matmul(p.x.reshape(-1, p.x.shape[2]).T, dp2[:, i0:i1], out=dW[i][:, i0:i1])
                if db[i] is not None:
                    db[i][i0:i1] = dp2[:, i0:i1].sum(axis=0)

    if rec.rope is None:
        run_blocks([output_grads, attention_grads, input_grads], [len(first), len(units),
                                                                  len(last)], workers)
    else:  # a rotation's transpose is the rotation by minus the angles
        run_blocks([output_grads, attention_grads], [len(first), len(units)], workers)
        pos_q, pos_k, base = rec.rope
        for g, pos in ((dQ, pos_q), (dK, pos_k)):
            g = g.transpose(0, 2, 1, 3)  # (B, h, L, d_k)
            g[...] = apply_rope(g, -pos, base)
        run_blocks([input_grads], [len(last)], workers)

    scale = 1.0 / math.sqrt(d_k)
    for i, p in enumerate(rec.projections):
        for j, name in enumerate(p.names):
            # The query block was projected with s W_q and s b_q: d(W_q) = s d(s W_q).
            factor = scale if name == "q" else 1.0
            grads[f"W_{name}"] = dW[i][:, j * d:(j + 1) * d] * factor
            if db[i] is not None:
                grads[f"b_{name}"] = db[i][j * d:(j + 1) * d] * factor
    return tuple(inputs), grads


def attention_backward_units(
    rec: ForwardRecord, dH: FloatArray, D: FloatArray, dQ: FloatArray, dK: FloatArray,
    dV: FloatArray, units: list[tuple[int, int, int]], rows: int, group: int,
) -> None:
    """Write ``dQ, dK, dV (B, L, h, d_k)`` (views) for the ``(batch, first head, last head)``
    units from ``dH (B, L_q, h, d_k)`` and ``D (B, L_q, h)``, in tiles of ``rows`` query rows."""
    Q, K, V, P, Pd = rec.Q, rec.K, rec.V, rec.weights, rec.dropped
    L_q, L_k = Q.shape[2], K.shape[2]
    dropout = Pd is not P
    flat = scratch.work_array("gradient tile", (group * rows * L_k,), dH.dtype)
    for bi, h0, h1 in units:
        K_g, V_g = K[bi, h0:h1], V[bi, h0:h1]  # (g, L_k, d_k)
        dK_g = dK[bi, :, h0:h1].transpose(1, 0, 2)  # (g, L_k, d_k) views into the gradients
        dV_g = dV[bi, :, h0:h1].transpose(1, 0, 2)
        for r0 in range(0, L_q, rows):
            r1 = min(r0 + rows, L_q)
            dH_t = dH[bi, r0:r1, h0:h1].transpose(1, 0, 2)  # (g, R, d_k)
            D_t = D[bi, r0:r1, h0:h1].T  # (g, R)
            P_t, Pd_t = P[bi, h0:h1, r0:r1], Pd[bi, h0:h1, r0:r1]  # (g, R, L_k)
            if r0 == 0:
                np.matmul(Pd_t.transpose(0, 2, 1), dH_t, out=dV_g)  # (g, L_k, d_k)
            else:
                dV_g += Pd_t.transpose(0, 2, 1) @ dH_t
            dS = flat[:(h1 - h0) * (r1 - r0) * L_k].reshape(h1 - h0, r1 - r0, L_k)
            np.matmul(dH_t, V_g.transpose(0, 2, 1), out=dS)  # dPd, (g, R, L_k)
            if dropout:  # dS = Pd * dPd - P * D
                dS *= Pd_t
                dS -= P_t * D_t[..., np.newaxis]
            else:  # dS = P * (dP - D)
                dS -= D_t[..., np.newaxis]
                dS *= P_t
            np.matmul(dS, K_g, out=dQ[bi, r0:r1, h0:h1].transpose(1, 0, 2))
            if r0 == 0:
                np.matmul(dS.transpose(0, 2, 1), Q[bi, h0:h1, r0:r1], out=dK_g)
            else:
                dK_g += dS.transpose(0, 2, 1) @ Q[bi, h0:h1, r0:r1]
