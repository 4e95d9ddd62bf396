"""Attention from Scratch: the course's NumPy attention library.

Import everything the notebooks need from here::

    from helpers import softmax, attention, create_causal_mask, create_padding_mask
    from helpers import split_heads, combine_heads, multi_head_attention, MultiHeadAttention

The attention library, by the notebook that teaches it:

* 01 -- :mod:`helpers.math_utils` (softmax Jacobian, entropy, log-sum-exp)
* 02 -- :mod:`helpers.attention` (softmax, scaled dot-product attention),
  :mod:`helpers.diagnostics` (how peaked a row of weights is)
* 03 -- :mod:`helpers.masks`, :mod:`helpers.alibi`
* 04 -- :mod:`helpers.heads` (split and combine heads), :mod:`helpers.multihead`,
  :mod:`helpers.gqa` (grouped-query attention, cache sizes)
* 05 -- :mod:`helpers.mha` (the ``MultiHeadAttention`` layer), :mod:`helpers.kv_cache`
* 06 -- :mod:`helpers.positional` (sinusoids), :mod:`helpers.tiled` (tiled attention),
  :mod:`helpers.block_parts` (layer norm and GELU around attention)
* 07 -- :mod:`helpers.attention_backward` (the backward pass of attention)
* 09 -- :mod:`helpers.rope`, :mod:`helpers.linear_attention`, :mod:`helpers.feature_maps`

Beside it, each in a subpackage of its own: :mod:`helpers.pretrained` (a real pretrained
model, notebook 06), :mod:`helpers.training` (training the layer, notebook 08),
:mod:`helpers.exercises` and :mod:`helpers.course` (exercise checks, figures and explorers),
and :mod:`helpers.fastpath` (the speed-ups: nothing a learner needs to read).
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
