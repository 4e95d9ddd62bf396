"""helpers.pretrained: tokens, the NumPy encoder against PyTorch's layers, padding, pooling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.pretrained.bert import embed, encode, l2_normalize, mean_pool, sentence_embeddings
from helpers.pretrained.model import load_model
from helpers.pretrained.torch_reference import torch_attention_layer, torch_encoder_outputs

# float32 throughout. Measured: at most 3.4e-6 between our layers and PyTorch's, for hidden
# states of magnitude up to about 10 (float32's spacing there is 1e-6).
TOL = 1e-5
CAT = "The cat sat on the mat."
PAIR = ["A cat is sitting on a mat.", "Stock markets fell sharply today."]


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def padded(model):
    batch = model.tokenize([CAT, "Tokenization splits words."])
    return batch, encode(model, batch.ids, batch.attention_mask)


def test_sentence_becomes_wordpiece_tokens(model):
    batch = model.tokenize(CAT)
    assert batch.tokens == (("[CLS]", "the", "cat", "sat", "on", "the", "mat", ".", "[SEP]"),)
    vocab = model.tokenizer.get_vocab()
    assert batch.ids[0].tolist() == [vocab[t] for t in batch.tokens[0]]
    assert batch.ids[0, 0] == 101 and batch.ids[0, -1] == 102  # BERT's [CLS] and [SEP]
    assert batch.ids.shape == (1, 9)  # padding off: not the 128 of tokenizer.json
    assert batch.attention_mask.all() and not batch.type_ids.any()
    assert batch.word_ids[0].tolist() == [-1, 0, 1, 2, 3, 4, 5, 6, -1]


def test_a_long_word_splits_into_pieces_of_one_word(model):
    batch = model.tokenize("Tokenization")
    assert batch.tokens[0] == ("[CLS]", "token", "##ization", "[SEP]")
    assert batch.word_ids[0].tolist() == [-1, 0, 0, -1]


def test_a_batch_is_padded_to_the_longest(padded, model):
    batch, _ = padded
    n_long, n_short = (len(t) for t in batch.tokens)
    assert batch.ids.shape == (2, n_long) and n_short < n_long
    assert batch.lengths.tolist() == [n_long, n_short]
    assert (batch.ids[1, n_short:] == model.config.pad_token_id).all()
    assert batch.attention_mask[1].tolist() == [True] * n_short + [False] * (n_long - n_short)
    assert (batch.word_ids[1, n_short:] == -1).all()


def test_tokenize_refuses_a_tokenizer_padding_to_128(model):
    model.tokenizer.enable_padding(length=128)
    try:
        with pytest.raises(ValueError, match="no_padding"):
            model.tokenize(CAT)
    finally:
        model.tokenizer.no_padding()
    with pytest.raises(TypeError, match="texts must be"):
        model.tokenize([])


def test_encode_shapes_and_dtypes(padded, model):
    batch, out = padded
    B, L = batch.ids.shape
    assert len(out.hidden_states) == 7 and len(out.attentions) == 6
    for h in out.hidden_states:
        assert h.shape == (B, L, 384) and h.dtype == np.float32
    for a in out.attentions:
        assert a.shape == (B, 12, L, L) and a.dtype == np.float32
        np.testing.assert_allclose(a.sum(axis=-1), 1.0, atol=1e-5)
        assert (a[1][..., ~batch.attention_mask[1]] == 0).all()  # no weight on padding
    assert out.last_hidden_state is out.hidden_states[-1]


def test_embeddings_are_the_three_tables_summed_then_normalised(model):
    batch = model.tokenize(CAT)
    w = model.weights
    L = batch.ids.shape[1]
    total = (w["embeddings.word_embeddings.weight"][batch.ids[0]]
             + w["embeddings.position_embeddings.weight"][:L]
             + w["embeddings.token_type_embeddings.weight"][0]).astype(np.float64)
    ln = torch.nn.LayerNorm(384, eps=1e-12)
    with torch.no_grad():
        ln.weight.copy_(torch.from_numpy(w["embeddings.LayerNorm.weight"].copy()))
        ln.bias.copy_(torch.from_numpy(w["embeddings.LayerNorm.bias"].copy()))
        want = ln(torch.from_numpy(total.astype(np.float32))).numpy()
    np.testing.assert_allclose(embed(model, batch.ids)[0], want, rtol=0, atol=TOL)


def test_layer_0_attention_equals_torch_multihead_attention(model):
    x = embed(model, model.tokenize(CAT).ids)  # (1, 9, 384)
    ours, ours_w = model.attention_layer(0)(x)
    with torch.inference_mode():
        t = torch.from_numpy(x)
        theirs, theirs_w = torch_attention_layer(model, 0)(t, t, t, need_weights=True,
                                                           average_attn_weights=False)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(ours_w, theirs_w.numpy(), rtol=0, atol=2e-6)  # measured 6e-7
    mha = model.attention_layer(0)
    assert mha.W_q.dtype == np.float32 and mha.W_q.shape == (384, 384)
    np.testing.assert_array_equal(mha.W_q, model.layer_weights(0)["attention.self.query.weight"].T)


def test_every_layer_equals_torch_transformer_encoder_layer(padded, model):
    batch, out = padded
    reference = torch_encoder_outputs(model, out.hidden_states[0], batch.attention_mask)
    real = batch.attention_mask  # (B, L): compare real tokens only
    for layer, theirs in enumerate(reference):
        ours = out.hidden_states[layer + 1]
        diff = np.abs(ours - theirs)[real].max()
        assert diff < TOL, f"layer {layer}: max |ours - torch| = {diff:.2e}"


def test_padding_changes_no_real_token(padded, model):
    batch, out = padded
    short = model.tokenize("Tokenization splits words.")
    alone = encode(model, short.ids, short.attention_mask)
    n = short.ids.shape[1]
    for layer in range(7):
        np.testing.assert_allclose(out.hidden_states[layer][1, :n], alone.hidden_states[layer][0],
                                   rtol=0, atol=TOL)
    # Without the mask the [PAD] keys are attended to, and the real tokens change.
    unmasked = encode(model, batch.ids)
    assert np.abs(unmasked.last_hidden_state[1, :n] - alone.last_hidden_state[0]).max() > 0.01


def test_mean_pool_ignores_padding():
    hidden = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    keep = np.array([[True, True, True], [True, False, False]])
    np.testing.assert_array_equal(mean_pool(hidden, keep), [[2.0, 3.0], [6.0, 7.0]])
    with pytest.raises(ValueError, match=r"texts \[0\] have no real token"):
        mean_pool(hidden, np.array([[False] * 3, [True] * 3]))
    with pytest.raises(ValueError, match="zero vector"):
        l2_normalize(np.zeros((1, 3)))


def test_sentence_embeddings_rank_similar_sentences_closer(model):
    texts = [CAT, PAIR[0], PAIR[1]]
    emb = sentence_embeddings(model, texts)  # a padded batch of 3
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[1, 2] + 0.3
    alone = sentence_embeddings(model, PAIR[1])
    np.testing.assert_allclose(alone[0], emb[2], atol=TOL)  # padding left the mean alone


def test_bad_inputs_get_clear_errors(model):
    ids = model.tokenize(CAT).ids
    with pytest.raises(TypeError, match=r"attention_mask must be boolean.*astype\(bool\)"):
        encode(model, ids, np.ones(ids.shape, dtype=np.int64))
    with pytest.raises(ValueError, match=r"attention_mask must have the shape of token_ids"):
        encode(model, ids, np.ones((1, 3), dtype=bool))
    with pytest.raises(TypeError, match="token_ids must be an integer array"):
        encode(model, ids.astype(np.float32))
    with pytest.raises(ValueError, match=r"token_ids must have shape \(batch, L\)"):
        encode(model, ids[0])
    with pytest.raises(ValueError, match=r"token_ids must lie in \[0, 30521\]"):
        encode(model, ids + 30522)
    with pytest.raises(ValueError, match="the model has 512 positions"):
        encode(model, np.zeros((1, 513), dtype=np.int64))
    with pytest.raises(ValueError, match=r"token_type_ids must lie in \[0, 1\]"):
        encode(model, ids, token_type_ids=ids)
    with pytest.raises(ValueError, match=r"layer must lie in \[0, 5\]"):
        model.attention_layer(6)
    with pytest.raises(TypeError, match="layer must be an int"):
        model.layer_weights(1.0)
