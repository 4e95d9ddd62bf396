"""Notebook 01's exercises: each known mistake, written as a learner would, is caught and named;
wrong attempts outside the catalogue are caught too."""


import numpy as np
import pytest
from exercise_catalogue import catalogue_tests


def stable(z, axis=-1):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def checked(f):  # a wrong temperature softmax that at least rejects T <= 0
    def g(x, T, axis=-1):
        if T <= 0:
            raise ValueError("T must be positive")
        return f(x, T, axis)

    return g


def no_keepdims_T(x, T, axis):
    z = x / T
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis)


def whole_array_T(x, T, axis):
    e = np.exp(x / T - np.max(x / T))
    return e / e.sum()


def lse_forgot_m(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def nan_on_empty_row(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def minus_1e9(x, axis=-1):
    x = np.where(x == -np.inf, -1e9, x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def global_max_T(x, T, axis=-1):
    if T <= 0:
        raise ValueError("T must be positive")
    z = x / T
    e = np.exp(z - np.max(z))  # one max for every row
    return e / e.sum(axis=axis, keepdims=True)


def global_max_guarded(x, axis=-1):  # the safe max and the guarded division, but one max
    m = np.max(x)
    if not np.isfinite(m):
        m = 0.0
    e = np.exp(x - m)
    s = e.sum(axis=axis, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


def mean_shift_T(x, T, axis=-1):  # "any constant cancels": the mean instead of the max
    if not T > 0:
        raise ValueError("T must be positive")
    z = x / T
    e = np.exp(z - z.mean(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax_mean_shift(x, axis=-1):
    c = np.mean(x, axis=axis, keepdims=True)
    return x - c - np.log(np.sum(np.exp(x - c), axis=axis, keepdims=True))


def mean_shift_guarded(x, axis=-1):  # the safe shift and the guarded division, by the mean
    c = x.mean(axis=axis, keepdims=True)
    c = np.where(np.isfinite(c), c, 0.0)
    e = np.exp(x - c)
    s = e.sum(axis=axis, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


def library_softmax(x, axis=-1, dtype=None):
    x = np.asarray(x, dtype=dtype)
    m = x.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(x - m)
    s = e.sum(axis=axis, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


CATALOGUED = {
    "01.1": {
        "multiplied by T": checked(lambda x, T, axis: stable(x * T, axis)),
        "ignored T": checked(lambda x, T, axis: stable(x, axis)),
        "ignored axis": checked(lambda x, T, axis: stable(x / T)),
        "no max shift": checked(
            lambda x, T, axis: np.exp(x / T) / np.exp(x / T).sum(axis, keepdims=True)
        ),
        "T not checked": lambda x, T, axis=-1: stable(np.asarray(x) / T, axis),
        "sum without keepdims": checked(no_keepdims_T),
        "normalised over the whole array": checked(whole_array_T),
        "one maximum for the whole array": global_max_T,
        "shifted by something other than the max": mean_shift_T,
    },
    "01.2": {
        "log of the softmax": lambda x, axis=-1: np.log(library_softmax(x, axis)),
        "no max trick": lambda x, axis=-1: x - np.log(np.sum(np.exp(x), axis=axis, keepdims=True)),
        "one maximum for the whole array": lambda x, axis=-1: (
            (x - x.max()) - np.log(np.exp(x - x.max()).sum(axis=axis, keepdims=True))
        ),
        "forgot the log of the sum": lambda x, axis=-1: x - np.max(x, axis=axis, keepdims=True),
        "forgot m in LSE": lse_forgot_m,
        "ignored axis": lambda x, axis=-1: (
            x
            - x.max(-1, keepdims=True)
            - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))
        ),
        "shifted by something other than the max": log_softmax_mean_shift,
    },
    "01.3": {
        "only diag(p)": lambda p, g: p * g,
        "forgot the factor p": lambda p, g: g - np.sum(p * g, axis=-1, keepdims=True),
        "summed over the whole array": lambda p, g: p * (g - np.sum(p * g)),
        "summed over the wrong axis": lambda p, g: p * (g - np.sum(p * g, axis=0, keepdims=True)),
        "sum of g instead of p · g": lambda p, g: p * (g - g.sum(axis=-1, keepdims=True)),
        "wrong sign of p pᵀ": lambda p, g: p * g + p * np.sum(p * g, axis=-1, keepdims=True),
        "sum without keepdims": lambda p, g: p * (g - np.sum(p * g, axis=-1)),
        "P(1−P)·dP": lambda p, g: p * (1 - p) * g,
    },
    "01.4": {
        "no max shift": lambda x, axis=-1: np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True),
        "NaN on an all -inf row": nan_on_empty_row,
        "uniform on an all -inf row": minus_1e9,
        "float32 became float64": lambda x, axis=-1: library_softmax(x, axis, dtype=float),
        "ignored axis": lambda x, axis=-1: library_softmax(x),
        "sum without keepdims": lambda x, axis=-1: (lambda e: e / e.sum(axis=axis))(
            np.exp(x - x.max(axis=axis, keepdims=True))
        ),
        "one maximum for the whole array": global_max_guarded,
        "shifted by something other than the max": mean_shift_guarded,
    },
}


def subtract_mean(x, T, axis=-1):
    if T <= 0:
        raise ValueError("T")
    return stable((x - x.mean()) * T, axis)


def global_max_guarded_T(x, T, axis=-1):  # no NaN, no warning: only the values are wrong
    if not T > 0:
        raise ValueError("T must be positive")
    z = x / T
    e = np.exp(z - z.max())
    s = e.sum(axis=axis, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


def global_max_nan_to_num(x, axis=-1):  # the fooling attempt of issue 20: NaN turned into 0
    finite = x[np.isfinite(x)]
    with np.errstate(all="ignore"):
        e = np.exp(x - (finite.max() if finite.size else 0.0))
        return np.nan_to_num(e / e.sum(axis=axis, keepdims=True)).astype(x.dtype)


def jacobian_loop(p, g):  # builds J for 1-D input only
    J = np.diag(p) - np.outer(p, p)
    return J @ g


def log_softmax_loop(x, axis=-1):  # loops over rows, ignores axis and batch
    out = np.empty_like(x)
    for i, row in enumerate(np.atleast_2d(x)):
        out.reshape(-1, x.shape[-1])[i] = row - row.max() - np.log(np.exp(row - row.max()).sum())
    return out


UNLISTED = {
    "01.1": [
        checked(lambda x, T, axis: stable(x, axis) ** (1 / T)),  # power instead of division
        checked(lambda x, T, axis: stable(x / T, axis).T.T[..., ::-1]),  # reversed
        checked(lambda x, T, axis: stable(x - T, axis)),  # subtracted T
        subtract_mean,
        lambda x, T, axis=-1: stable(x / abs(T) if T else x, axis),  # accepts T <= 0
        checked(lambda x, T, axis: np.round(stable(x / T, axis), 2)),  # rounded
        global_max_guarded_T,
        checked(  # computed in float32: the statement asks for float64
            lambda x, T, axis: stable(np.asarray(x, dtype=np.float32) / T, axis)
        ),
        checked(  # shifted by the min: overflows already at a low temperature
            lambda x, T, axis: (lambda z: (lambda e: e / e.sum(axis, keepdims=True))(
                np.exp(z - z.min(axis, keepdims=True))))(x / T)
        ),
    ],
    "01.2": [
        lambda x, axis=-1: np.log(np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True)),
        log_softmax_loop,
        lambda x, axis=-1: x - np.log(np.sum(np.exp(x - x.max()), axis=axis, keepdims=True)),
        lambda x, axis=-1: (x - x.max(axis, keepdims=True)) / np.exp(x).sum(axis, keepdims=True),
        lambda x, axis=-1: np.log(stable(x, axis) + 1e-12),
        lambda x, axis=-1: np.log(stable(x, axis) + 1e-300),  # finite, but wrong far below
        lambda x, axis=-1: x - np.log(np.exp(x).sum(axis=axis, keepdims=True) + 1e-300),
    ],
    "01.3": [
        lambda p, g: p * (g - p @ g if p.ndim == 1 else g - (p * g).sum(-1, keepdims=True)) * 2,
        lambda p, g: (np.diag(p) - np.outer(p, p)) @ g,  # only 1-D
        jacobian_loop,
        lambda p, g: p * g - p * p.sum(-1, keepdims=True) * g.sum(-1, keepdims=True),
        lambda p, g: g * (p - p**2) - p * (p * g).sum(-1, keepdims=True),
        lambda p, g: p * (g - (p * g).mean(-1, keepdims=True)),
    ],
    "01.4": [
        lambda x, axis=-1: np.nan_to_num(nan_on_empty_row(np.asarray(x, dtype=np.float64), axis)),
        lambda x, axis=-1: stable(np.clip(x, -700, 700), axis),
        lambda x, axis=-1: library_softmax(x, axis) + 0 * np.float64(1),  # promotes float32
        lambda x, axis=-1: (lambda e: e / e.sum(axis=axis, keepdims=True))(np.exp(x - x.max())),
        lambda x, axis=-1: np.where(np.isinf(x), 0.0, stable(np.where(np.isinf(x), 0, x), axis)),
        global_max_nan_to_num,
        lambda x, axis=-1: np.nan_to_num(mean_shift_guarded(x, axis)),  # NaN hidden as 0
    ],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


def test_a_float32_answer_to_01_1_is_told_the_statement_asks_for_float64():
    """Statement: 'The check's inputs are float64; return float64.' A float32 answer used to pass
    with '(compared in float32 precision)'."""
    from helpers.exercises import check

    result = check("01.1", UNLISTED["01.1"][-2])
    assert not result.passed and "compared in float32 precision" not in result.report
    assert "returned dtype float32; expected float64" in result.report
    assert "The values are right to float32 precision, but this exercise asks for float64" in (
        result.report
    )


@pytest.mark.parametrize("exercise_id", ["01.1", "01.2", "01.4"])
def test_a_shift_by_the_mean_fails_and_is_named(exercise_id):
    """Shifting by the mean passed 01.1, 01.2 and 01.4 when no slice's max was more than 709 above
    its mean; now a case has one, and the mistake is named."""
    from helpers.exercises import check

    result = check(exercise_id, CATALOGUED[exercise_id]["shifted by something other than the max"])
    assert not result.passed
    assert result.mistakes == ("shifted by something other than the max",), result.report
    assert "(taught in notebook 01 §8" in result.report
