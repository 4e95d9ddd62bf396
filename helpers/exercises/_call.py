"""A safe call of the learner's function: fresh copies of the inputs, errors and warnings caught."""

from __future__ import annotations

import copy
import inspect
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Outcome:
    """What one call did: returned ``value`` or raised ``error``, and what else happened."""

    value: Any = None
    error: Exception | None = None
    warnings: tuple[str, ...] = ()
    mutated: str | None = None  # name of an argument the call changed in place
    call_problem: str | None = None  # the function cannot be called with these arguments
    line: str | None = None  # the learner's line that raised


def _same(a: Any, b: Any) -> bool:
    """True when ``a`` still equals its pristine copy ``b`` (arrays, sequences, dicts, layers)."""
    if isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=b.dtype.kind in "fc"))
        )
    if isinstance(b, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(b, Mapping):  # a dict of arrays (a cache, parameters): same keys, same values
        return (
            isinstance(a, Mapping)
            and a.keys() == b.keys()
            and all(_same(a[k], b[k]) for k in b)
        )
    if hasattr(b, "parameters") and callable(b.parameters):
        pa, pb = a.parameters(), b.parameters()
        return pa.keys() == pb.keys() and all(
            (x is None and y is None) or (x is not None and y is not None and _same(x, y))
            for x, y in ((pa[k], pb[k]) for k in pb)
        )
    return True


def _learner_line(fn: Callable[..., Any], err: BaseException) -> str | None:
    code = getattr(fn, "__code__", None)
    frames = [
        f
        for f in traceback.extract_tb(err.__traceback__)
        if code and f.filename == code.co_filename
    ]
    if not frames or not frames[-1].line:
        return None
    return frames[-1].line.strip()


def call(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    params: list[str],
    after_call: Callable[..., Any] | None = None,
) -> Outcome:
    """Call ``fn`` on fresh copies of ``args``/``kwargs``; never raises, never warns.

    ``params`` are the names of the reference's parameters, used to say which argument an
    in-place change hit. With ``after_call`` (a function meant to update its arguments, such
    as a training step), the outcome's value is ``after_call(returned, *args, **kwargs)`` read
    after the call, and changed arguments are not a problem.
    """
    given_args, given_kwargs = copy.deepcopy(args), copy.deepcopy(dict(kwargs))
    try:
        inspect.signature(fn).bind(*given_args, **given_kwargs)
    except TypeError as err:
        return Outcome(call_problem=str(err))
    except ValueError:  # no signature available (a builtin): just call it
        pass
    out = Outcome()
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn", under="ignore"):
        warnings.simplefilter("always")
        try:
            out.value = fn(*given_args, **given_kwargs)
        except Exception as err:  # the learner's code may raise anything
            out.error, out.line = err, _learner_line(fn, err)
    out.warnings = tuple(dict.fromkeys(str(w.message) for w in caught))
    if after_call is not None:  # the arguments are meant to change (see Exercise.after_call)
        if out.error is None:
            try:
                out.value = after_call(out.value, *given_args, **given_kwargs)
            except Exception as err:  # what came back cannot be read as the exercise expects
                out.error = err
        return out
    names = params + [k for k in given_kwargs if k not in params]
    for name, now, pristine in zip(
        names, [*given_args, *given_kwargs.values()], [*args, *kwargs.values()], strict=False
    ):
        if not _same(now, pristine):
            out.mutated = name
            break
    return out
