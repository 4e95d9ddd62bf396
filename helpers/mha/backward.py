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

The attention part runs in the forward pass's tiles, one thread per core; each
thread owns whole ``(batch, head group)`` units, so the sums over query rows
into ``dK`` and ``dV`` never cross threads. The projections are large matrix
products, left to the BLAS.
"""

from __future__ import annotations

import math

import numpy as np

from helpers.attention import FloatArray
from helpers.fastpath.threads import run_blocks
from helpers.fastpath.tiled_matmul import matmul, tiles_of
from helpers.mha.forward import ForwardRecord
from helpers.rope import apply_rope

__all__ = ["layer_backward"]


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
    h, d_k = rec.Q.shape[1], rec.Q.shape[3]
    scale = 1.0 / math.sqrt(d_k)
    dO2 = d_out.reshape(B * L_q, d)
    grads: dict[str, FloatArray] = {
        "W_o": matmul(rec.heads.reshape(B * L_q, d).T, dO2, split="columns")}
    if rec.has_bias:
        grads["b_o"] = dO2.sum(axis=0)
    dH = matmul(dO2, rec.W_o.T).reshape(B, L_q, h, d_k)  # w.r.t. the heads' outputs
    # D = rowsum(dP * P) = dH . H per (batch, query, head) -> (B, h, L_q)
    D = np.einsum("blhk,blhk->bhl", dH, rec.heads.reshape(B, L_q, h, d_k))

    # Gradients w.r.t. the projections, in their fused layout (B, L, n, h, d_k).
    dproj = [np.zeros_like(p.out) for p in rec.projections]
    slot = {n: (i, p.names.index(n)) for i, p in enumerate(rec.projections) for n in p.names}

    def grad_view(name: str) -> FloatArray:  # (B, L, h, d_k) view into dproj
        i, j = slot[name]
        return dproj[i][:, :, j]

    attention_backward_tiles(rec, dH, D, grad_view("q"), grad_view("k"), grad_view("v"))
    if rec.rope is not None:  # a rotation's transpose is the rotation by minus the angles
        pos_q, pos_k, base = rec.rope
        for name, pos in (("q", pos_q), ("k", pos_k)):
            g = grad_view(name).transpose(0, 2, 1, 3)  # (B, h, L, d_k)
            g[...] = apply_rope(g, -pos, base)

    inputs = []
    for proj, dp in zip(rec.projections, dproj, strict=True):
        Bx, L, d_in = proj.x.shape
        dp2 = dp.reshape(Bx * L, proj.W.shape[1])  # (B L, n d)
        dW = matmul(proj.x.reshape(Bx * L, d_in).T, dp2, split="columns")  # (d_in, n d)
        db = dp2.sum(axis=0) if rec.has_bias else None
        inputs.append(matmul(dp2, proj.W.T).reshape(Bx, L, d_in))
        for j, name in enumerate(proj.names):
            # The query block was projected with s W_q and s b_q: d(W_q) = s d(s W_q).
            factor = scale if name == "q" else 1.0
            grads[f"W_{name}"] = dW[:, j * d:(j + 1) * d] * factor
            if db is not None:
                grads[f"b_{name}"] = db[j * d:(j + 1) * d] * factor
    return tuple(inputs), grads


def attention_backward_tiles(
    rec: ForwardRecord, dH: FloatArray, D: FloatArray,
    dQ: FloatArray, dK: FloatArray, dV: FloatArray,
) -> None:
    """Write ``dQ, dK, dV (B, L, h, d_k)`` (zero-filled views) from ``dH (B, L_q, h, d_k)``.

    ``D (B, h, L_q)`` is ``rowsum(dP * P)``. Work is split into units of one
    batch element and one head group, each unit running over its query rows in tiles.
    """
    Q, K, V, P, Pd = rec.Q, rec.K, rec.V, rec.weights, rec.dropped
    B, h, L_q, _ = Q.shape
    L_k = K.shape[2]
    dropout = Pd is not P
    rows, group = tiles_of(B, h, L_q, L_k)
    units = [(bi, h0, min(h0 + group, h)) for bi in range(B) for h0 in range(0, h, group)]
    if L_q == 0 or L_k == 0:
        return  # nothing attends or nothing is attended to: every gradient here is zero

    def run(start: int, stop: int) -> None:
        scratch = np.empty((group, rows, L_k), dtype=Q.dtype)
        for bi, h0, h1 in units[start:stop]:
            g = h1 - h0
            K_g = np.ascontiguousarray(K[bi, h0:h1])  # (g, L_k, d_k)
            V_g = np.ascontiguousarray(V[bi, h0:h1])
            dK_g = np.zeros_like(K_g)
            dV_g = np.zeros_like(V_g)
            for r0 in range(0, L_q, rows):
                r1 = min(r0 + rows, L_q)
                dH_t = np.ascontiguousarray(dH[bi, r0:r1, h0:h1].transpose(1, 0, 2))  # (g,R,d_k)
                P_t, Pd_t = P[bi, h0:h1, r0:r1], Pd[bi, h0:h1, r0:r1]  # (g, R, L_k)
                dV_g += Pd_t.transpose(0, 2, 1) @ dH_t  # (g, L_k, d_k)
                dS = scratch[:g, :r1 - r0]
                np.matmul(dH_t, V_g.transpose(0, 2, 1), out=dS)  # dPd, (g, R, L_k)
                D_t = D[bi, h0:h1, r0:r1, np.newaxis]  # (g, R, 1)
                if dropout:  # dS = Pd * dPd - P * D
                    dS *= Pd_t
                    dS -= P_t * D_t
                else:  # dS = P * (dP - D)
                    dS -= D_t
                    dS *= P_t
                np.matmul(dS, K_g, out=dQ[bi, r0:r1, h0:h1].transpose(1, 0, 2))
                dK_g += dS.transpose(0, 2, 1) @ np.ascontiguousarray(Q[bi, h0:h1, r0:r1])
            dK[bi, :, h0:h1] = dK_g.transpose(1, 0, 2)
            dV[bi, :, h0:h1] = dV_g.transpose(1, 0, 2)

    run_blocks([run], [len(units)])
