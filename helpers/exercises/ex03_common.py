"""Plain-NumPy pieces shared by the exercises of notebooks 03 and 04 (03.2, 03.5, 04.5)."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._compare import arrays, tuple_of

_NAMES = ("output", "weights")
_PAIR64 = tuple_of(arrays(dtype="same"), arrays(dtype="same"), names=_NAMES)
_PAIR32 = tuple_of(  # float32 keeps about 7 digits: compare to its precision, not float64's
    arrays(rtol=1e-4, atol=1e-6, dtype="same"), arrays(rtol=1e-4, atol=1e-6, dtype="same"),
    names=_NAMES,
)


def pair_in_input_dtype(got, want):
    """Compare ``(output, weights)``: each in the reference's dtype (float32 inputs give float32
    results, float64 give float64), float32 within float32's precision."""
    float32 = isinstance(want, tuple) and np.asarray(want[0]).dtype == np.float32
    return (_PAIR32 if float32 else _PAIR64)(got, want)


def promoted(fn):
    """``fn`` as a learner writes it with ``np.sqrt(d_k)`` (a NumPy float64) instead of
    ``math.sqrt``: float32 inputs come back float64 (notebook 01 §6)."""

    def wrong(Q, K, V, *rest, **kwargs):
        d_k = Q.shape[-1]
        Q64 = Q * (np.sqrt(d_k) / math.sqrt(d_k))  # the factor is 1.0, but a NumPy float64
        return fn(Q64, K, V, *rest, **kwargs)

    return wrong


def plain_softmax(z, axis=-1):
    """The stable softmax of notebook 01 §8 without the safe max: an all -inf row gives NaN."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
