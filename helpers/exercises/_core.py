"""The exercise registry, a safe call of the learner's function, and the report of a check."""

from __future__ import annotations

import copy
import importlib
import inspect
import pkgutil
import re
import traceback
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from helpers.exercises._compare import Comparison, arrays, describe

_ID = re.compile(r"(\d\d)\.(\d+)")
_REGISTRY: dict[str, Exercise] = {}


@dataclass(frozen=True)
class Case:
    """One call: its arguments, what it tests, and optionally the error it must raise."""

    args: tuple[Any, ...]
    note: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    raises: type[Exception] | None = None


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: a function computing it, what is wrong, where the idea is taught."""

    name: str
    explanation: str
    taught: str
    fn: Callable[..., Any]
    hint: str = ""  # the first hint ``hint()`` gives after ``check`` named this mistake


@dataclass
class Outcome:
    """What one call did: returned ``value`` or raised ``error``, and what else happened."""

    value: Any = None
    error: Exception | None = None
    warnings: tuple[str, ...] = ()
    mutated: str | None = None  # name of an argument the call changed in place
    call_problem: str | None = None  # the function cannot be called with these arguments
    line: str | None = None  # the learner's line that raised


@dataclass(eq=False)
class Exercise:
    """An exercise: the reference (whose name and signature the learner's function must have),
    its cases, its known mistakes, how results are compared, and where it is taught."""

    id: str
    reference: Callable[..., Any]
    cases: tuple[Case, ...]
    mistakes: tuple[Mistake, ...]
    taught: str
    compare: Comparison = field(default_factory=arrays)
    no_warnings: bool = False  # a RuntimeWarning fails a case even when the values are right
    difficulty: int = 0  # 1 (warm-up), 2 (core) or 3 (hard); shown by check and the statement
    minutes: int = 0  # expected minutes for a first attempt
    hints: tuple[str, ...] = ()  # graded hints, gentlest first, that ``hint()`` gives in turn
    # A function meant to update its arguments (a training step) is judged on
    # after_call(returned, *args, **kwargs), read after the call, not on what it returns.
    after_call: Callable[..., Any] | None = None

    @property
    def name(self) -> str:
        return self.reference.__name__

    @property
    def signature(self) -> str:
        return f"{self.name}{inspect.signature(self.reference)}"

    @cached_property
    def expected(self) -> list[Outcome]:
        outcomes = [call(self.reference, case, self._params, self.after_call)
                    for case in self.cases]
        for case, out in zip(self.cases, outcomes, strict=True):
            if (
                (out.error is not None) != (case.raises is not None)
                or out.mutated
                or (self.no_warnings and out.warnings)
            ):
                raise RuntimeError(f"the reference of {self.id} fails its own case {case.note!r}")
        return outcomes

    @cached_property
    def mistake_outcomes(self) -> list[list[Outcome]]:
        return [[call(m.fn, case, self._params, self.after_call) for case in self.cases]
                for m in self.mistakes]

    @cached_property
    def mistake_cases(self) -> list[set[int]]:
        """For each mistake, the (1-based) cases where it differs from the reference."""
        return [
            {
                n
                for n, (c, o, w) in enumerate(zip(self.cases, outs, self.expected, strict=True), 1)
                if _problem(self, c, o, w) is not None
            }
            for outs in self.mistake_outcomes
        ]

    @property
    def _params(self) -> list[str]:
        return list(inspect.signature(self.reference).parameters)


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (each ``exNN`` module calls this for its exercises)."""
    if not _ID.fullmatch(exercise.id):
        raise ValueError(f"exercise id must look like '02.1', got {exercise.id!r}")
    if exercise.id in _REGISTRY:
        raise ValueError(f"exercise {exercise.id} is registered twice")
    _REGISTRY[exercise.id] = exercise
    return exercise


def _modules() -> list[str]:
    import helpers.exercises as package

    return sorted(
        m.name for m in pkgutil.iter_modules(package.__path__) if re.fullmatch(r"ex\d\d", m.name)
    )


def exercise_ids() -> list[str]:
    """Every registered id, in course order ('01.1', '01.2', …)."""
    for module in _modules():
        importlib.import_module(f"helpers.exercises.{module}")
    return sorted(_REGISTRY, key=lambda i: tuple(int(p) for p in i.split(".")))


def get(exercise_id: str) -> Exercise:
    """The exercise with this id; its notebook's module is imported on first use."""
    if not isinstance(exercise_id, str):
        raise TypeError(
            f"exercise_id must be a string such as '02.1', got {type(exercise_id).__name__}"
        )
    match = _ID.fullmatch(exercise_id)
    if match is None:
        raise ValueError(
            f"exercise_id must look like '02.1' (notebook 02, exercise 1), got {exercise_id!r}"
        )
    if f"ex{match.group(1)}" in _modules():
        importlib.import_module(f"helpers.exercises.ex{match.group(1)}")
    if exercise_id not in _REGISTRY:
        known = [i for i in _REGISTRY if i.startswith(match.group(1) + ".")]
        raise ValueError(
            f"there is no exercise {exercise_id}; notebook {match.group(1)} has {known or 'none'}"
        )
    return _REGISTRY[exercise_id]


def _same(a: Any, b: Any) -> bool:
    """True when ``a`` still equals its pristine copy ``b`` (arrays, containers, layers)."""
    if isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=b.dtype.kind in "fc"))
        )
    if isinstance(b, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
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


def call(fn: Callable[..., Any], case: Case, params: list[str], after_call=None) -> Outcome:
    """Call ``fn`` on fresh copies of the case's arguments; never raises, never warns."""
    args, kwargs = copy.deepcopy(case.args), copy.deepcopy(dict(case.kwargs))
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError as err:
        return Outcome(call_problem=str(err))
    except ValueError:  # no signature available (a builtin): just call it
        pass
    out = Outcome()
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn", under="ignore"):
        warnings.simplefilter("always")
        try:
            out.value = fn(*args, **kwargs)
        except Exception as err:  # the learner's code may raise anything
            out.error, out.line = err, _learner_line(fn, err)
    out.warnings = tuple(dict.fromkeys(str(w.message) for w in caught))
    if after_call is not None:  # the arguments are meant to change (see Exercise.after_call)
        out.value = out.value if out.error else after_call(out.value, *args, **kwargs)
        return out
    names = params + [k for k in kwargs if k not in params]
    for name, given, pristine in zip(
        names, [*args, *kwargs.values()], [*case.args, *case.kwargs.values()], strict=False
    ):
        if not _same(given, pristine):
            out.mutated = name
            break
    return out


def _problem(ex: Exercise, case: Case, got: Outcome, want: Outcome) -> str | None:
    """None when the learner's outcome is right for this case, else what is wrong."""
    if got.call_problem:
        return f"it cannot be called as {ex.signature}: {got.call_problem}"
    if case.raises is not None:
        if isinstance(got.error, case.raises):
            return None
        if got.error is not None:
            raised = f"{type(got.error).__name__}: {got.error}"
            return f"it raised {raised}; expected a {case.raises.__name__}"
        return f"it returned {describe(got.value)}; expected it to raise a {case.raises.__name__}"
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
    if got.value is None:
        return "it returned None: is the return statement missing?"
    problem = ex.compare(got.value, want.value)
    if problem is None and ex.no_warnings and got.warnings:
        return (
            f"the values are right, but NumPy warned: {got.warnings[0]} — "
            "the result must come without warnings"
        )
    if problem is not None and got.warnings:
        problem += f"\n  NumPy warned: {'; '.join(got.warnings)}"
    return problem


def _agrees(ex: Exercise, case: Case, a: Outcome, b: Outcome) -> bool:
    """Whether two outcomes count as the same answer (for recognising a known mistake)."""
    if a.call_problem or b.call_problem:
        return False
    if case.raises is not None:  # on a must-raise case only "raised or not" matters
        return (a.error is None) == (b.error is None)
    if a.error is not None or b.error is not None:
        return type(a.error) is type(b.error)
    if a.value is None or b.value is None:
        return a.value is None and b.value is None
    try:
        if ex.compare(a.value, b.value) is None:
            return True
    except Exception:  # two wrong answers the comparison was not made for
        pass
    return _equivalent(a.value, b.value)  # e.g. two float masks where a boolean one is expected


def _equivalent(a: Any, b: Any) -> bool:
    """Plain equality of two values of any kind (arrays within a tight tolerance)."""
    if isinstance(a, tuple | list) or isinstance(b, tuple | list):
        return (
            isinstance(a, tuple | list)
            and isinstance(b, tuple | list)
            and len(a) == len(b)
            and all(map(_equivalent, a, b))
        )
    try:
        x, y = np.asarray(a), np.asarray(b)
    except Exception:
        return False
    if x.shape != y.shape or x.dtype.kind != y.dtype.kind:
        return False
    if x.dtype.kind in "biuf" and y.dtype.kind in "biuf":
        return bool(
            np.allclose(x.astype(float), y.astype(float), rtol=1e-6, atol=1e-9, equal_nan=True)
        )
    try:
        return bool(a == b)
    except Exception:
        return False
