"""The ``MultiHeadAttention`` layer (notebook 05) and the parts it is built from.

* :mod:`helpers.mha.layer` -- the class: parameters, ``forward``, ``backward``, ``train``/``eval``
* :mod:`helpers.mha.parameters` -- Xavier initialisation and the validated weight attributes
* :mod:`helpers.mha.inputs` -- checks of the tokens, ``d_out`` and options of a call
* :mod:`helpers.mha.forward` -- the forward pass, keeping what the backward pass needs
* :mod:`helpers.mha.backward` -- the backward pass through every weight and input (notebook 08)
* :mod:`helpers.mha.dropout` -- inverted dropout on the attention weights
* :mod:`helpers.mha.from_torch` -- copying a ``torch.nn.MultiheadAttention`` (notebook 07)

Both passes are laid out by the fast path (:mod:`helpers.fastpath`: tiles, threads, reused arrays).
"""

from helpers.mha.layer import MultiHeadAttention

__all__ = ["MultiHeadAttention"]
