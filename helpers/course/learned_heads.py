"""Heads of a real pretrained model on one sentence, picked by a rule (notebooks 02 and 04).

Notebooks 02 and 04 draw attention weights of random projections: patterns that mean
nothing. Next to them they show what *trained* heads do on the same kind of sentence:
heads of all-MiniLM-L6-v2 (the model of notebook 06, :mod:`helpers.pretrained`), each
picked from all 6 × 12 = 72 heads by one plain rule over the sentence's real tokens
(queries 1 … n−2: not ``[CLS]`` at 0 nor ``[SEP]`` at n−1):

=================  ====================================================================
``previous token``  largest mean weight on the key one step back, ``w[i, i-1]``
``next token``      largest mean weight on the key one step ahead, ``w[i, i+1]``
``[CLS]``           largest mean weight on position 0, ``w[i, 0]``
``broad``           smallest mean of each row's largest weight (weight spread out)
=================  ====================================================================

Notebook 06 (§9–12) runs the model with the course's own layer and classifies every head
over many sentences; here the model is only read, to show what is coming.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RULES = ("previous token", "next token", "[CLS]", "broad")
"""The patterns :func:`learned_heads` can pick, in the order it returns them."""


@dataclass(frozen=True)
class LearnedHeads:
    """The heads picked on one text.

    Attributes
    ----------
    tokens : tuple of str, length n
        The text's word pieces, with ``[CLS]`` first and ``[SEP]`` last.
    rules : tuple of str
        The pattern each head was picked for (from :data:`RULES`).
    positions : tuple of (layer, head)
        Where each head sits, both counted from 1 (as every figure of the course counts heads).
    scores : tuple of float
        The value of each rule for its head (for ``broad``: the mean largest weight of a row).
    weights : ndarray, shape (k, n, n), float64
        The picked heads' attention weights on the text; each row sums to 1.
    """

    tokens: tuple[str, ...]
    rules: tuple[str, ...]
    positions: tuple[tuple[int, int], ...]
    scores: tuple[float, ...]
    weights: np.ndarray

    @property
    def titles(self) -> list[str]:
        """One panel title per head, e.g. ``"layer 1 · head 3\\nprevious token"``."""
        return [f"layer {l} · head {h}\n{r}" for (l, h), r in zip(self.positions, self.rules,
                                                                   strict=True)]


def rule_scores(attentions: np.ndarray) -> dict[str, np.ndarray]:
    """Each rule's value for every head, from the weights ``(layers, h, n, n)`` of one text.

    Returns ``{rule: array (layers, h)}``; the queries are the real tokens ``1 … n-2``.
    """
    a = np.asarray(attentions, dtype=np.float64)
    if a.ndim != 4 or a.shape[2] != a.shape[3] or a.shape[2] < 4:
        raise ValueError(f"attentions must have shape (layers, h, n, n) with n >= 4, "
                         f"got {a.shape}")
    n = a.shape[2]
    q = np.arange(1, n - 1)  # the real tokens' rows
    return {
        "previous token": a[:, :, q, q - 1].mean(axis=-1),
        "next token": a[:, :, q, q + 1].mean(axis=-1),
        "[CLS]": a[:, :, q, 0].mean(axis=-1),
        "broad": a[:, :, q, :].max(axis=-1).mean(axis=-1),
    }


def learned_heads(text: str = "The cat sat on the mat.",
                  rules: tuple[str, ...] = RULES) -> LearnedHeads:
    """Run the pretrained model on ``text`` and pick one head per rule (see the module).

    Needs the model package that ``make setup`` installs (:func:`helpers.pretrained.load_model`).
    Taught in notebook 02 §6 and notebook 04 §5; notebook 06 reproduces these heads.
    """
    unknown = [r for r in rules if r not in RULES]
    if unknown or not rules:
        raise ValueError(f"rules must be a non-empty subset of {RULES}, got {rules!r}")
    from helpers.pretrained import encode, load_model  # loads ~90 MB: only when asked

    model = load_model()
    batch = model.tokenize(text)
    out = encode(model, batch.ids, batch.attention_mask)
    a = np.stack([w[0] for w in out.attentions]).astype(np.float64)  # (layers, h, n, n)
    scores = rule_scores(a)
    picked = []
    for rule in rules:
        s = scores[rule]
        flat = int(np.argmin(s) if rule == "broad" else np.argmax(s))
        layer, head = np.unravel_index(flat, s.shape)
        picked.append((rule, (int(layer) + 1, int(head) + 1), float(s[layer, head])))
    return LearnedHeads(
        tokens=tuple(batch.tokens[0]),
        rules=tuple(r for r, _, _ in picked),
        positions=tuple(p for _, p, _ in picked),
        scores=tuple(s for _, _, s in picked),
        weights=np.stack([a[l - 1, h - 1] for _, (l, h), _ in picked]),
    )
