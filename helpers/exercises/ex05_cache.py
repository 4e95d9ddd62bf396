"""Exercise 05.5 of notebook 05: one decoding step with a key/value cache (imported by ``ex05``).

Every case is cut from one whole sequence: the cache holds the keys and values of its first ``t``
tokens, the step gets the ``n`` tokens after them. The right answer is then rows ``t … t+n-1`` of
full causal attention over the ``t + n`` tokens (``tests/test_exercises_05.py`` checks that the
reference is exactly that).
"""

from __future__ import annotations

import math

import numpy as np

from helpers.attention import attention
from helpers.exercises._compare import arrays, tuple_of
from helpers.exercises._core import Case, Exercise, Mistake, register
from helpers.exercises._shared import _softmax, one_max_mistake, softmax_one_max

rng = np.random.default_rng(555)


def _step(
    q_new,
    k_new,
    v_new,
    K_cache,
    V_cache,
    *,
    mask="bottom-right",
    use_cache=True,
    return_old=False,
    axis=-2,
    scale=True,
    sqrt=math.sqrt,
    prepend=False,
    softmax=_softmax,
):
    """The decoding step in plain NumPy, with switches for the mistakes."""
    order = slice(None, None, -1 if prepend else 1)  # prepend: the new tokens first (wrong)
    K = np.concatenate([K_cache, k_new][order], axis=axis)  # (..., h, t + n, d_k)
    V = np.concatenate([V_cache, v_new][order], axis=axis)  # (..., h, t + n, d_v)
    keys, values = (K, V) if use_cache else (k_new, v_new)
    n, total = q_new.shape[-2], keys.shape[-2]
    s = q_new @ np.swapaxes(keys, -1, -2)  # (..., h, n, t + n)
    if scale:
        s = s / sqrt(q_new.shape[-1])  # np.sqrt gives a NumPy float64: float32 promoted
    rows, cols = np.arange(n)[:, None], np.arange(total)[None, :]
    if mask == "bottom-right":  # new query i sits at position t + i: keys 0 … t + i
        s = np.where(cols <= rows + (total - n), s, -np.inf)
    elif mask == "shifted":  # np.tril(..., k=t - 1): keys 0 … t + i - 1, never itself
        s = np.where(cols <= rows + (total - n) - 1, s, -np.inf)
    elif mask == "top-left":  # np.tril(np.ones((n, t + n))): query i sees keys 0 … i
        s = np.where(cols <= rows, s, -np.inf)
    elif mask == "added":  # the boolean bottom-right mask added as 0/1
        s = s + (cols <= rows + (total - n))
    w = softmax(s)
    out = w @ values  # (..., h, n, d_v)
    return (out, K_cache, V_cache) if return_old else (out, K, V)


def attend_with_cache(q_new, k_new, v_new, K_cache, V_cache):
    return _step(q_new, k_new, v_new, K_cache, V_cache)


def _case(t, n, *, h=2, d_k=4, d_v=3, batch=(), dtype=np.float64, big_query=None):
    """Q, K, V of t + n tokens; the cache holds the first t, the step gets the last n."""
    T = t + n
    Q, K = rng.standard_normal((*batch, h, T, d_k)), rng.standard_normal((*batch, h, T, d_k))
    V = rng.standard_normal((*batch, h, T, d_v))
    if big_query is not None:  # its scaled score with its own key is 2000: far above the rest
        k_i = K[..., t + big_query, :]
        Q[..., t + big_query, :] = 2000.0 * math.sqrt(d_k) * k_i / (k_i**2).sum(-1, keepdims=True)
    Q, K, V = (a.astype(dtype) for a in (Q, K, V))
    return (Q[..., t:, :], K[..., t:, :], V[..., t:, :], K[..., :t, :], V[..., :t, :])


def _variant(**wrong):
    return lambda q_new, k_new, v_new, K_cache, V_cache: _step(
        q_new, k_new, v_new, K_cache, V_cache, **wrong
    )


def _attend_before_append(q_new, k_new, v_new, K_cache, V_cache):
    """As written with attention(): the new queries attend to the old cache, then it grows."""
    out, _ = attention(q_new, K_cache, V_cache)  # zeros when the cache is empty
    return out, np.concatenate([K_cache, k_new], axis=-2), np.concatenate([V_cache, v_new], axis=-2)


_same = arrays(rtol=1e-5, atol=1e-6, dtype="same")
register(
    Exercise(
        id="05.5",
        reference=attend_with_cache,
        taught="notebook 05 §6",
        compare=tuple_of(_same, _same, _same, names=("output", "K", "V")),
        difficulty=2,
        minutes=20,
        hints=(
            "The new tokens' keys and values join the cache before anything attends: a new "
            "token sees itself too. The cache grows along the time axis, the second-to-last one.",
            "New query i sits at position t + i, so it may see keys 0 … t + i. Which of the two "
            "alignments of notebook 03 §5 is that, and what shape does the mask have?",
            "Append along axis −2; the mask has shape (n, t + n) and is aligned to the bottom "
            "right (create_causal_mask(n, t + n), or np.tril shifted right by t); then masked, "
            "scaled scores, a softmax over the keys, and weights @ V.",
        ),
        cases=(
            Case(_case(0, 3), "an empty cache (t = 0) and a prompt of 3 tokens: 3 queries, 3 keys"),
            Case(_case(0, 1), "an empty cache and one token"),
            Case(_case(5, 1), "5 cached tokens and one new token: a generation step"),
            Case(
                _case(4, 3),
                "4 cached tokens and a chunk of 3 new ones: new query i sees keys 0 … 4 + i",
            ),
            Case(
                _case(3, 2, h=3, d_k=5, d_v=2, batch=(2,)),
                "a batch axis: (2, 3 heads, t, d), 3 cached tokens and 2 new ones",
            ),
            Case(
                _case(2, 2, big_query=0),
                "new query 0 scores 2000 against its own key, query 1 about 1: rows far apart",
            ),
            Case(
                _case(3, 2, dtype=np.float32),
                "float32 inputs: the results stay float32",
            ),
        ),
        mistakes=(
            Mistake(
                "top-left causal mask",
                "np.tril(np.ones((n, t + n))) lets new query i see keys 0 … i only, as if the "
                "cache were not there; new query i sits at position t + i and sees keys "
                "0 … t + i (the bottom-right mask, create_causal_mask(n, t + n)).",
                "notebook 03 §5",
                _variant(mask="top-left"),
                hint="With 5 cached tokens and one new one, which keys may the new token see? "
                "And which does np.tril(np.ones((1, 6))) allow?",
            ),
            Mistake(
                "no mask for a chunk",
                "one new token may see every key, but in a chunk of n > 1 new tokens, new token "
                "i must not see the new tokens after it: a chunk needs the causal mask.",
                "notebook 05 §6",
                _variant(mask=None),
                hint="In a chunk of 3 new tokens, may the first one see the third?",
            ),
            Mistake(
                "attended to the new tokens only",
                "the cached keys and values are the whole point: the new queries attend to the "
                "cached tokens and the new ones, t + n keys.",
                "notebook 05 §6",
                _variant(use_cache=False, mask="bottom-right"),
            ),
            Mistake(
                "returned the old cache",
                "return the caches with the new keys and values appended (t + n tokens), or the "
                "next step will not see this one.",
                "notebook 05 §6",
                _variant(return_old=True),
                hint="After this step, how many tokens must the caches you return hold?",
            ),
            Mistake(
                "appended along axis 1",
                "with a batch axis, axis 1 is the heads axis; tokens are on axis −2 (…, h, t, d).",
                "notebook 05 §6",
                _variant(axis=1),
            ),
            Mistake(
                "a boolean mask added to the scores",
                "scores + mask adds 1 where the mask allows and 0 where it blocks: no key is "
                "blocked. Use np.where(mask, scores, −∞).",
                "notebook 03 §1",
                _variant(mask="added"),
            ),
            Mistake(
                "no 1/√d_k scale",
                "the scores are q · k / √d_k, in a decoding step as everywhere.",
                "notebook 02 §11",
                _variant(scale=False),
            ),
            one_max_mistake(_variant(softmax=softmax_one_max)),
            Mistake(
                "attended before appending",
                "the new tokens' keys and values must join the cache before the new queries "
                "attend: a token sees itself (and, in a chunk, the new tokens before it), and "
                "with an empty cache there is nothing else to see.",
                "notebook 05 §6",
                _attend_before_append,
                hint="With an empty cache and one new token, which keys can your new query "
                "see?",
            ),
            Mistake(
                "causal mask shifted by one",
                "np.tril(..., k=t - 1) lets new query i see keys 0 … t + i - 1 but not its own "
                "key t + i; the diagonal of the causal mask is kept (k=t, or "
                "create_causal_mask(n, t + n)).",
                "notebook 03 §5",
                _variant(mask="shifted"),
                hint="May a token attend to itself under a causal mask?",
            ),
            Mistake(
                "new tokens put before the cache",
                "the cache is in time order: the new keys and values go after the cached ones "
                "(np.concatenate([K_cache, k_new], axis=-2)), or the mask and the next step "
                "see the tokens in the wrong order.",
                "notebook 05 §6",
                _variant(prepend=True),
            ),
            Mistake(
                "float32 became float64",
                "float32 inputs must give a float32 output. np.sqrt(d_k) is a NumPy float64 "
                "and promotes the whole score array; divide by math.sqrt(d_k), a Python float.",
                "notebook 01 §6",
                _variant(sqrt=np.sqrt),
                hint="Print the dtype of your scores in the float32 case: where does float64 "
                "appear first?",
            ),
        ),
    )
)
