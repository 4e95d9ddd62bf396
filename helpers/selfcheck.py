"""Self-checks for the exercises: compare a learner's function with the reference.

A check runs the learner's function on several inputs and, on the first
disagreement, raises :class:`SelfCheckError` with a message that says *what*
is wrong (an exception, a shape, NaN, a value at a given index) and, when the
wrong answer matches a known mistake, *which* mistake it is.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np


class SelfCheckError(AssertionError):
    """Raised when an exercise solution disagrees with the reference."""


def _describe(args: Sequence[Any]) -> str:
    parts = []
    for a in args:
        arr = np.asarray(a) if not callable(a) else None
        if arr is not None and arr.dtype.kind in "biuf" and arr.ndim > 0:
            parts.append(f"array{arr.shape}")
        else:
            parts.append(repr(a))
    return "(" + ", ".join(parts) + ")"


def _as_tuple(result: Any) -> tuple[Any, ...]:
    return result if isinstance(result, tuple) else (result,)


def _compare(got: Any, want: Any, rtol: float, atol: float) -> str | None:
    """Return None if ``got`` matches ``want``, else a sentence saying how it differs."""
    try:
        g = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return f"returned {type(got).__name__}, expected a numeric array"
    w = np.asarray(want, dtype=float)
    if g.shape != w.shape:
        hint = " (transposed?)" if g.shape == w.shape[::-1] and g.ndim == 2 else ""
        return f"has shape {g.shape}, expected {w.shape}{hint}"
    if not np.isfinite(g).all() and np.isfinite(w).all():
        return "contains NaN or infinity where the reference is finite"
    if not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
        err = np.array(np.abs(g - w))  # an array even for scalar results (0-d)
        err[np.isnan(err)] = np.inf
        idx = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
        where = f" at index {tuple(int(i) for i in idx)}" if idx else ""
        return f"differs{where}: got {float(g[idx]):.6g}, expected {float(w[idx]):.6g}"
    return None


def check_function(
    candidate: Callable[..., Any],
    reference: Callable[..., Any],
    cases: Sequence[Sequence[Any]],
    *,
    name: str | None = None,
    mistakes: Mapping[str, Callable[..., Any]] | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-9,
) -> None:
    """Check ``candidate`` against ``reference`` on every argument tuple in ``cases``.

    Parameters
    ----------
    candidate, reference : callable
        The learner's function and the trusted one. Tuple results are compared
        element by element (for example ``(output, weights)``).
    cases : sequence of argument tuples
        Inputs to call both with; they are copied so neither can modify them.
    name : str, optional
        Shown in messages; defaults to ``candidate.__name__``.
    mistakes : mapping from description to callable, optional
        Known wrong variants. When the candidate's wrong answer equals one of
        them, the message names that mistake.
    rtol, atol : float
        Tolerances of ``np.allclose``.

    Raises
    ------
    SelfCheckError
        On the first case that differs, with a message saying how.
    """
    label = name or getattr(candidate, "__name__", "your function")
    for n, args in enumerate(cases, 1):
        desc = _describe(args)
        try:
            # Overflow in the learner's code should show up as NaN/inf in the report below,
            # not as a RuntimeWarning on stderr.
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                got = candidate(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args])
        except NotImplementedError:
            raise SelfCheckError(
                f"{label} is not written yet: replace the NotImplementedError"
            ) from None
        except Exception as err:  # the learner's code may raise anything
            raise SelfCheckError(
                f"{label}{desc} raised {type(err).__name__}: {err}"
            ) from err
        want = _as_tuple(reference(*args))
        got_t = _as_tuple(got)
        if len(got_t) != len(want):
            raise SelfCheckError(
                f"{label}{desc} returned {len(got_t)} value(s), expected {len(want)}"
            )
        for i, (g, w) in enumerate(zip(got_t, want, strict=True)):
            problem = _compare(g, w, rtol, atol)
            if problem is None:
                continue
            part = f" (result {i})" if len(want) > 1 else ""
            message = f"case {n}: {label}{desc}{part} {problem}"
            for description, wrong in (mistakes or {}).items():
                if _compare(g, _as_tuple(wrong(*args))[i], rtol, atol) is None:
                    message += f"\nLikely mistake: {description}"
                    break
            raise SelfCheckError(message)
    print(f"✓ {label} matches the reference on all {len(cases)} cases")


def check_raises(
    candidate: Callable[..., Any],
    cases: Sequence[Sequence[Any]],
    *,
    expected: type[BaseException] | tuple[type[BaseException], ...] = ValueError,
    name: str | None = None,
) -> None:
    """Check that ``candidate`` rejects every bad input in ``cases`` with ``expected``."""
    label = name or getattr(candidate, "__name__", "your function")
    for n, args in enumerate(cases, 1):
        try:
            candidate(*args)
        except expected:
            continue
        except Exception as err:
            raise SelfCheckError(
                f"case {n}: {label}{_describe(args)} raised {type(err).__name__}: {err}; "
                f"expected {expected}"
            ) from err
        raise SelfCheckError(f"case {n}: {label}{_describe(args)} accepted bad input")
    print(f"✓ {label} rejects all {len(cases)} bad inputs")
