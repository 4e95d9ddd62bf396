"""Training the attention layer with our own gradients: the capstone, notebook 08.

* :mod:`helpers.training.optim` -- ``SGD``, ``Adam``, ``AdamW`` updating arrays in place
* :mod:`helpers.training.module` -- ``Module``: parameters, accumulated ``grads``, ``zero_grad``
* :mod:`helpers.training.layers` -- ``Linear``, ``Embedding``, ``LayerNorm``, ``FeedForward``,
  each with its backward pass
* :mod:`helpers.training.losses` -- ``softmax_cross_entropy`` and its gradient
* :mod:`helpers.training.tiny_transformer` -- ``TinyTransformer``: embedding, positions,
  pre-/post-LN blocks around :class:`helpers.MultiHeadAttention`, read-out
* :mod:`helpers.training.tasks` -- ``ReversalTask``, the data
* :mod:`helpers.training.loop` -- ``train_step``, ``train``, ``accuracy``
* :mod:`helpers.training.generate` -- greedy ``generate`` with or without the KV cache
* :mod:`helpers.training.own_functions` -- ``use_own_functions`` and ``AdamFromFunction``:
  train through the learner's own functions (attention, LayerNorm, embedding, loss, Adam)
* :mod:`helpers.training.torch_model` -- the PyTorch twin (imports torch; not imported here)
"""

from helpers.training.generate import Generation, generate
from helpers.training.layers import (
    Embedding,
    FeedForward,
    LayerNorm,
    Linear,
    gelu_backward,
    layer_norm_backward,
)
from helpers.training.loop import accuracy, train, train_step
from helpers.training.losses import IGNORE_INDEX, softmax_cross_entropy
from helpers.training.optim import SGD, Adam, AdamW, warmup_cosine
from helpers.training.own_functions import AdamFromFunction, use_own_functions
from helpers.training.tasks import ReversalTask
from helpers.training.tiny_transformer import ModelConfig, TinyTransformer

__all__ = [
    "IGNORE_INDEX",
    "SGD",
    "Adam",
    "AdamFromFunction",
    "AdamW",
    "Embedding",
    "FeedForward",
    "Generation",
    "LayerNorm",
    "Linear",
    "ModelConfig",
    "ReversalTask",
    "TinyTransformer",
    "accuracy",
    "gelu_backward",
    "generate",
    "layer_norm_backward",
    "softmax_cross_entropy",
    "train",
    "train_step",
    "use_own_functions",
    "warmup_cosine",
]
