"""Plain-NumPy building blocks shared by the exercise modules (references and mistakes)."""

from __future__ import annotations

import math

import numpy as np

from helpers.exercises._compare import Comparison, arrays, tuple_of
from helpers.exercises._core import Mistake

INF = np.inf
pair = tuple_of(arrays(), arrays(), names=("output", "weights"))


def _softmax(z, axis=-1):
    """Stable softmax in plain NumPy; an all -inf slice gives zeros."""
    peak = np.max(z, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    e = np.exp(z - peak)
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def softmax_one_max(z, axis=-1):
    """The mistake "one maximum for the whole array": ``z.max()`` without ``axis``. A row far
    below that maximum underflows to exp(…) = 0 everywhere, and 0/0 = NaN."""
    e = np.exp(z - z.max())
    return e / e.sum(axis=axis, keepdims=True)


def softmax_one_max_guarded(z, axis=-1):
    """The same mistake with notebook 01 §8's safe max and guarded division: the rows far below
    the one maximum come out as all zeros instead of NaN."""
    peak = z.max()
    e = np.exp(z - (peak if np.isfinite(peak) else 0.0))
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def one_max_mistake(wrong_fn, *, guarded=False,
                    hint="Over which axis did you take the maximum you subtract?") -> Mistake:
    """The catalogued mistake of a softmax with one maximum for the whole array, taught in
    notebook 01 §9: ``wrong_fn`` is the exercise's function computed with
    :func:`softmax_one_max` (``guarded=True``: :func:`softmax_one_max_guarded`)."""
    explanation = ("softmax must subtract each row's own maximum (axis=-1, keepdims=True); one "
                   "maximum for every row sends the rows far below it to exp(…) = 0, and "
                   + ("the guarded division then hides the 0/0 behind zero weights." if guarded
                      else "0/0."))
    name = "one maximum for the whole array" + (", with the guarded division" if guarded else "")
    return Mistake(name, explanation, "notebook 01 §9", wrong_fn, hint=hint)


def _naive(z, axis=-1):
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _t(x):
    return np.swapaxes(x, -1, -2)


def _attend(Q, K, V, bias=None, keep=None, softmax=_softmax, scale=True):
    """Plain attention: ``bias`` is added to the scaled scores, ``keep`` (bool) masks them."""
    s = Q @ _t(K) / (math.sqrt(Q.shape[-1]) if scale else 1.0)
    if keep is not None:
        s = np.where(keep, s, -INF)
    if bias is not None:
        s = s + bias
    w = softmax(s)
    return w @ V, w


def in_answer_precision(
    rtol: float = 1e-9, atol: float = 1e-12, *, rtol32: float = 3e-5, atol32: float = 3e-5
) -> Comparison:
    """``arrays(rtol, atol)``, but compared within float32's tolerance ``rtol32``/``atol32``
    when the answer or the expected result is float32 (a float32 case, or a float32 answer).

    float32 keeps about 7 significant digits; a sine of an angle of 50 radians computed in
    float32 loses one more (the angle's own rounding, about 50 · 6e-8): float32 versions of
    06.1 measured 1.7e-6 and 3.2e-6 from the float64 table, so a float32 answer to a float64
    case passes within ``rtol32``/``atol32`` = 3e-5. Every catalogued mistake of the exercises
    using this is wrong by far more than that.
    """
    exact, single = arrays(rtol, atol), arrays(rtol32, atol32)

    def compare(got, want):
        if np.float32 in (getattr(got, "dtype", None), getattr(want, "dtype", None)):
            return single(got, want)
        return exact(got, want)

    return compare
