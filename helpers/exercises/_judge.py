"""Judging a check: is one case right, and which known mistakes does the learner reproduce?

A known mistake is *named* only when it is that mistake (see :func:`recognise`):

* on every case where the mistake differs from the reference, the learner's outcome equals the
  mistake's — the same values (within the exercise's tolerance), the same dtype, the same
  in-place change of an argument (or none), and for a raised error the same type and message.
  (A dtype differing from the mistake's is no obstacle when it is the reference's and the
  learner's values are wrong: the learner made no dtype mistake, and the dtype the mistake
  function happens to compute in is not the mistake; see :func:`_dtypes_agree`.);
* a second mistake is named only when it explains a failing case that the ones named before it
  do not (so a mistake whose wrong cases are a subset of another's is not named with it);
* when some failures stay unexplained, a mistake is named only if at least one of its cases
  is telling: a one-bit answer (a single bool, or a count of 0 or ±1) can coincide with any
  other wrong answer, so agreement on such answers alone names a mistake only when the named
  mistakes explain every failing case.

An exercise may allow answers in a less precise dtype (``Exercise.allowed_dtypes``): such an
answer is compared in its own precision (``_compare.PRECISION``), and matches a mistake whose
only difference from the reference is not the dtype.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from helpers.exercises._call import Outcome
from helpers.exercises._compare import PRECISION, at_precision, describe
from helpers.exercises._format import article

if TYPE_CHECKING:
    from helpers.exercises._core import Case, Exercise, Mistake


# --------------------------------------------------------------------------- dtypes
def _float_dtypes(v: Any) -> Iterator[np.dtype]:
    if isinstance(v, tuple | list):
        for part in v:
            yield from _float_dtypes(part)
    elif isinstance(v, np.ndarray | np.generic):
        if v.dtype.kind == "f":
            yield v.dtype
    elif isinstance(v, float):
        yield np.dtype(np.float64)


def lower_precision(got: Any, want: Any) -> str | None:
    """The name of ``got``'s float dtype when it is less precise than ``want``'s, else None."""
    g, w = list(_float_dtypes(got)), list(_float_dtypes(want))
    if not g or not w:
        return None
    low = min(g, key=lambda d: d.itemsize)
    return low.name if low.itemsize < max(d.itemsize for d in w) else None


def _kind(v: Any, merged: frozenset[str] = frozenset()) -> Any:
    """What a value is, for 'same dtype': array or scalar, its dtype, a sequence's parts.

    Float dtypes named in ``merged`` count as one kind (answers the exercise allows).
    """
    if isinstance(v, tuple | list):
        return ("sequence", tuple(_kind(x, merged) for x in v))
    if isinstance(v, np.ndarray):
        shape, dtype = "array", v.dtype
    elif isinstance(v, np.generic):
        shape, dtype = "scalar", v.dtype
    elif isinstance(v, bool | int | float):
        shape, dtype = "scalar", np.asarray(v).dtype
    else:
        return ("object", type(v))
    if merged and dtype.name in merged:
        return (shape, "allowed float")
    return (shape, dtype)


# --------------------------------------------------------------------------- one case
def problem(ex: Exercise, case: Case, got: Outcome, want: Outcome) -> str | None:
    """None when the learner's outcome is right for this case, else what is wrong."""
    if got.call_problem:
        return f"it cannot be called as {ex.signature}: {got.call_problem}"
    if case.raises is not None:
        if isinstance(got.error, case.raises):
            return None
        wanted = f"{article(case.raises.__name__)} {case.raises.__name__}"
        if got.error is not None:
            raised = f"{type(got.error).__name__}: {got.error}"
            return f"it raised {raised}; expected {wanted}"
        return f"it returned {describe(got.value)}; expected it to raise {wanted}"
    if got.error is not None:
        where = f"\n  in the line: {got.line}" if got.line else ""
        stub = (
            " (part of the function is still the stub)"
            if isinstance(got.error, NotImplementedError)
            else ""
        )
        return f"it raised {type(got.error).__name__}: {got.error}{stub}{where}"
    if got.mutated:
        return (
            f"it changed its argument {got.mutated} in place; "
            "work on a copy (x = x - m, not x -= m)"
        )
    if got.value is None and want.value is not None:  # None is right where the reference says so
        return "it returned None: is the return statement missing?"
    low = lower_precision(got.value, want.value)
    allowed = low is not None and low in ex.allowed_dtypes
    found = (at_precision(ex.compare, low) if allowed else ex.compare)(got.value, want.value)
    if found is not None and low is not None and not allowed and _right_at(ex, low, got, want):
        high = max(_float_dtypes(want.value), key=lambda d: d.itemsize).name
        found += (
            f"\n  The values are right to {low} precision, but this exercise asks for {high}: "
            f"compute in {high} ({article(low)} {low} input or np.{low}(...) lowers the precision)."
        )
    if found is None and ex.no_warnings and got.warnings:
        return (
            f"the values are right, but NumPy warned: {got.warnings[0]} — "
            "the result must come without warnings"
        )
    if found is not None and got.warnings:
        found += f"\n  NumPy warned: {'; '.join(got.warnings)}"
    return found


def _right_at(ex: Exercise, low: str, got: Outcome, want: Outcome) -> bool:
    try:
        return at_precision(ex.compare, low)(got.value, want.value) is None
    except Exception:  # a comparison not made for this answer
        return False


# --------------------------------------------------------------------------- two outcomes
def agrees(ex: Exercise, case: Case, learner: Outcome, mistake: Outcome, ref: Outcome) -> bool:
    """Whether the learner's outcome is the mistake's on this case (see the module docstring)."""
    if learner.call_problem or mistake.call_problem or learner.mutated != mistake.mutated:
        return False
    if (learner.error is None) != (mistake.error is None):
        return False
    if learner.error is not None:
        return type(learner.error) is type(mistake.error) and str(learner.error) == str(
            mistake.error
        )
    if case.raises is not None:  # neither raised where an error is required
        return True
    if learner.value is None or mistake.value is None:
        return learner.value is None and mistake.value is None
    compare, tolerance = ex.compare, (1e-6, 1e-9)
    if _kind(learner.value) != _kind(mistake.value):
        if not _dtypes_agree(ex, learner.value, mistake.value, ref.value):
            return False
        low = lower_precision(learner.value, mistake.value)
        if low is not None:
            compare, tolerance = at_precision(compare, low), PRECISION.get(low, tolerance)
    try:
        if compare(learner.value, mistake.value) is None:
            return True
    except Exception:  # two wrong answers the comparison was not made for
        pass
    return equivalent(learner.value, mistake.value, *tolerance)  # e.g. two float masks


def _dtypes_agree(ex: Exercise, learner: Any, mistake: Any, ref: Any) -> bool:
    """Whether a learner's value whose dtype differs from the mistake's can still be the mistake.

    Yes when the learner's dtype is the reference's and the learner's values are wrong: the
    learner made no dtype mistake, so the mistake function's own dtype is not what is compared.
    Yes when the learner's dtype is one the exercise allows and the mistake's dtype is the
    reference's (the dtype is not part of the mistake). Otherwise no: a mistake about the dtype
    (float32 became float64) is named only for the same dtype.
    """
    if _kind(learner) == _kind(ref):
        try:
            return ex.compare(learner, ref) is not None
        except Exception:  # a comparison not made for this answer: not the reference's
            return True
    if not ex.allowed_dtypes or _kind(mistake) != _kind(ref):
        return False
    merged = frozenset({*ex.allowed_dtypes, "float64"})
    return _kind(learner, merged) == _kind(mistake, merged)


def equivalent(a: Any, b: Any, rtol: float = 1e-6, atol: float = 1e-9) -> bool:
    """Plain equality of two values of any kind (arrays within a tight tolerance)."""
    if isinstance(a, tuple | list) or isinstance(b, tuple | list):
        return (
            isinstance(a, tuple | list)
            and isinstance(b, tuple | list)
            and len(a) == len(b)
            and all(equivalent(x, y, rtol, atol) for x, y in zip(a, b, strict=True))
        )
    try:
        x, y = np.asarray(a), np.asarray(b)
    except Exception:
        return False
    if x.shape != y.shape or x.dtype.kind != y.dtype.kind:
        return False
    if x.dtype.kind in "biuf" and y.dtype.kind in "biuf":
        return bool(
            np.allclose(x.astype(float), y.astype(float), rtol=rtol, atol=atol, equal_nan=True)
        )
    try:
        return bool(a == b)
    except Exception:
        return False


# --------------------------------------------------------------------------- naming
def _telling(case: Case, out: Outcome) -> bool:
    """Whether agreeing on this outcome says more than one bit (see the module docstring)."""
    if case.raises is not None or out.error is not None or out.mutated:
        return True
    return _telling_value(out.value)


def _telling_value(v: Any) -> bool:
    if isinstance(v, tuple | list):
        return any(map(_telling_value, v))
    if v is None:
        return False
    arr = np.asarray(v) if isinstance(v, bool | int | float | np.generic | np.ndarray) else None
    if arr is None:
        return True
    if arr.size <= 1 and arr.dtype.kind == "b":
        return False
    return not (arr.size <= 1 and arr.dtype.kind in "iu" and abs(int(arr.ravel()[0])) <= 1)


def recognise(ex: Exercise, got: list[Outcome], failed: tuple[int, ...]) -> list[Mistake]:
    """The known mistakes the learner's outcomes reproduce, the one explaining the first failure
    (and the most cases) first; see the module docstring for the rules."""
    candidates = []
    for order, (m, outcomes, wrong) in enumerate(
        zip(ex.mistakes, ex.mistake_outcomes, ex.mistake_cases, strict=True)
    ):
        if wrong and wrong <= set(failed) and all(
            agrees(ex, ex.cases[n - 1], got[n - 1], outcomes[n - 1], ex.expected[n - 1])
            for n in wrong
        ):
            candidates.append(((failed[0] not in wrong, -len(wrong), order), m, wrong))
    chosen: list[tuple[Mistake, set[int]]] = []
    covered: set[int] = set()
    for _, m, wrong in sorted(candidates, key=lambda c: c[0]):
        if wrong - covered:
            chosen.append((m, wrong))
            covered |= wrong
    if set(failed) - covered:
        chosen = [
            (m, wrong)
            for m, wrong in chosen
            if any(_telling(ex.cases[n - 1], got[n - 1]) for n in wrong)
        ]
    return [m for m, _ in chosen]
