"""Attention from Scratch: the course's NumPy attention library.

Import everything the notebooks need from here::

    from helpers import softmax, attention, create_causal_mask, create_padding_mask
    from helpers import split_heads, combine_heads, multi_head_attention, MultiHeadAttention
"""

from helpers.attention import attention, combine_heads, softmax, split_heads
from helpers.feature_maps import draw_random_features
from helpers.linear_attention import linear_attention, linear_attention_weights
from helpers.masks import create_causal_mask, create_padding_mask
from helpers.math_utils import entropy, logsumexp, softmax_jacobian
from helpers.mha import MultiHeadAttention
from helpers.multihead import multi_head_attention
from helpers.positional import positional_shift_matrix, sinusoidal_positional_encoding
from helpers.rope import apply_rope, rope_layout_permutation
from helpers.tiled import tiled_attention

__all__ = [
    "MultiHeadAttention",
    "apply_rope",
    "attention",
    "combine_heads",
    "create_causal_mask",
    "create_padding_mask",
    "draw_random_features",
    "entropy",
    "linear_attention",
    "linear_attention_weights",
    "logsumexp",
    "multi_head_attention",
    "positional_shift_matrix",
    "rope_layout_permutation",
    "sinusoidal_positional_encoding",
    "softmax",
    "softmax_jacobian",
    "split_heads",
    "tiled_attention",
]
