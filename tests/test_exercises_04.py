"""Notebook 04's exercises: each known mistake, written as a learner would, is caught and named;
wrong attempts outside the catalogue are caught too."""

import numpy as np
from exercise_catalogue import catalogue_tests


def softmax(z, axis=-1):
    m = z.max(axis=axis, keepdims=True)
    e = np.exp(z - np.where(np.isfinite(m), m, 0.0))
    s = e.sum(axis=axis, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


def split(x, h):
    b, L, d = x.shape
    return x.reshape(b, L, h, d // h).transpose(0, 2, 1, 3)


def combine(x):
    b, h, L, d_k = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, L, h * d_k)


def mha(
    x,
    W_q,
    W_k,
    W_v,
    W_o,
    num_heads,
    mask=None,
    *,
    sp=split,
    co=combine,
    d_scale=None,
    out=True,
    axis=-1,
    invert=False,
    mean=False,
):
    Q, K, V = sp(x @ W_q, num_heads), sp(x @ W_k, num_heads), sp(x @ W_v, num_heads)
    s = Q @ K.transpose(0, 1, 3, 2) / np.sqrt(d_scale or Q.shape[-1])
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype == bool:
            s = np.where(~m if invert else m, s, -np.inf)
        else:
            s = s + m
    w = softmax(s, axis)
    y = co(w @ V)
    return (y @ W_o if out else y), (w.mean(axis=1) if mean else w)


CATALOGUED = {
    "04.1": {
        "reshape without the transpose": lambda x, num_heads: x.reshape(
            x.shape[0], num_heads, x.shape[1], x.shape[2] // num_heads
        ),
        "(d_k, heads) order": lambda x, num_heads: x.reshape(
            x.shape[0], x.shape[1], x.shape[2] // num_heads, num_heads
        ).transpose(0, 3, 1, 2),
        "no transpose at all": lambda x, num_heads: x.reshape(*x.shape[:2], num_heads, -1),
        "heads in front of the batch": lambda x, num_heads: x.reshape(
            *x.shape[:2], num_heads, -1
        ).transpose(2, 0, 1, 3),
    },
    "04.2": {
        "np.tile": lambda kv, num_groups: np.tile(kv, (1, num_groups, 1, 1)),
        "repeated along the sequence": lambda kv, num_groups: kv.repeat(num_groups, axis=2),
        "repeated along the features": lambda kv, num_groups: kv.repeat(num_groups, axis=3),
    },
    "04.3": {
        "forgot the factor 2": lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            num_layers * num_kv_heads * d_k * seq_len * bytes_per_value
        ),
        "numbers, not bytes": lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * num_layers * num_kv_heads * d_k * seq_len
        ),
        "bits, not bytes": lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * num_layers * num_kv_heads * d_k * seq_len * bytes_per_value * 8
        ),
        "seq_len squared": lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * num_layers * num_kv_heads * d_k * seq_len**2 * bytes_per_value
        ),
    },
    "04.4": {
        "reshape without the transpose": lambda x: x.reshape(x.shape[0], x.shape[2], -1),
        "(d_k, heads) order": lambda x: np.transpose(x, (0, 2, 3, 1)).reshape(
            x.shape[0], x.shape[2], -1
        ),
        "heads stacked along the sequence": lambda x: np.concatenate(
            [x[:, i] for i in range(x.shape[1])], axis=1
        ),
        "summed the heads": lambda x: np.sum(x, axis=1),
    },
    "04.5": {
        "split without the transpose": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x,
            W_q,
            W_k,
            W_v,
            W_o,
            num_heads,
            mask,
            sp=lambda y, h: y.reshape(y.shape[0], h, y.shape[1], -1),
        ),
        "combine without the transpose": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x,
            W_q,
            W_k,
            W_v,
            W_o,
            num_heads,
            mask,
            co=lambda y: y.reshape(y.shape[0], y.shape[2], -1),
        ),
        "scaled by √d_model": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, d_scale=x.shape[-1]
        ),
        "forgot W_o": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, out=False
        ),
        "softmax over the query axis": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, axis=-2
        ),
        "True = blocked": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, invert=True
        ),
        "weights averaged over the heads": lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o, num_heads, mask, mean=True
        ),
    },
}


def heads_loop_wrong_columns(x, W_q, W_k, W_v, W_o, num_heads, mask=None):
    d_k = x.shape[-1] // num_heads
    outs, ws = [], []
    for i in range(num_heads):  # takes every num_heads-th column instead of a block
        cols = slice(i, None, num_heads)
        Q, K, V = x @ W_q[:, cols], x @ W_k[:, cols], x @ W_v[:, cols]
        s = Q @ K.transpose(0, 2, 1) / np.sqrt(d_k)
        if mask is not None:
            m = np.asarray(mask)
            s = (
                np.where(m[:, 0] if m.ndim == 4 else m, s, -np.inf)
                if m.dtype == bool
                else s + (m[:, 0] if m.ndim == 4 else m)
            )
        w = softmax(s)
        outs.append(w @ V)
        ws.append(w)
    return np.concatenate(outs, -1) @ W_o, np.stack(ws, 1)


UNLISTED = {
    "04.1": [
        lambda x, num_heads: split(x, num_heads).copy()[:, ::-1],  # heads reversed
        lambda x, num_heads: x.reshape(x.shape[0], x.shape[1], num_heads, -1).swapaxes(2, 3),
        lambda x, num_heads: split(x, num_heads).transpose(0, 1, 3, 2),
        lambda x, num_heads: np.stack(np.split(x, num_heads, axis=1), axis=1),  # split positions
        lambda x, num_heads: split(x, num_heads)[:, :, :, : x.shape[2] // num_heads - 1],
    ],
    "04.2": [
        lambda kv, num_groups: np.concatenate([kv] * num_groups, axis=1),  # = tile
        lambda kv, num_groups: (
            kv[:, None].repeat(num_groups, 1).reshape(kv.shape[0], -1, *kv.shape[2:])
        ),
        lambda kv, num_groups: np.repeat(kv, num_groups, axis=0),
        lambda kv, num_groups: kv * num_groups,
        lambda kv, num_groups: (
            np.broadcast_to(kv, (kv.shape[0], num_groups * kv.shape[1], *kv.shape[2:]))
            if kv.shape[1] == 1
            else kv
        ),
    ],
    "04.3": [
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * num_kv_heads * d_k * seq_len * bytes_per_value
        ),  # one layer
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * num_layers * num_kv_heads * d_k * seq_len * bytes_per_value / 2**30
        ),  # GiB
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            2 * num_layers * d_k * seq_len * bytes_per_value
        ),
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: (
            3 * num_layers * num_kv_heads * d_k * seq_len * bytes_per_value
        ),  # q, k and v
        lambda num_layers, num_kv_heads, d_k, seq_len, bytes_per_value: str(
            2 * num_layers * num_kv_heads * d_k * seq_len * bytes_per_value
        ),
    ],
    "04.4": [
        lambda x: combine(x)[..., ::-1],
        lambda x: x.transpose(0, 2, 1, 3),  # forgot the reshape
        lambda x: x.swapaxes(1, 3).reshape(x.shape[0], x.shape[2], -1),
        lambda x: x.mean(axis=1),
        lambda x: combine(x[:, ::-1]),
    ],
    "04.5": [
        heads_loop_wrong_columns,
        lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_k, W_q, W_v, W_o, num_heads, mask
        ),
        lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(
            x, W_q, W_k, W_v, W_o.T, num_heads, mask
        ),
        lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(x, W_q, W_k, W_v, W_o, num_heads),
        lambda x, W_q, W_k, W_v, W_o, num_heads, mask=None: mha(x, W_q, W_k, W_v, W_o, 1, mask),
    ],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)
