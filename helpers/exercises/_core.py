"""The exercise registry: cases, known mistakes, exercises, and finding one by its id."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from helpers.exercises._call import Outcome, call
from helpers.exercises._compare import PRECISION, Comparison, arrays
from helpers.exercises._judge import problem

_ID = re.compile(r"(\d\d)\.(\d+)")
_REGISTRY: dict[str, Exercise] = {}

__all__ = ["Case", "Exercise", "Mistake", "Outcome", "exercise_ids", "get", "register"]


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


@dataclass(eq=False)
class Exercise:
    """An exercise: the reference (whose name and signature the learner's function must have),
    its cases, its known mistakes, how results are compared, and where it is taught."""

    id: str
    reference: Callable[..., Any]
    cases: tuple[Case, ...]
    mistakes: tuple[Mistake, ...]
    taught: str
    compare: Comparison | Callable[[Any, Any], str | None] = field(default_factory=arrays)
    no_warnings: bool = False  # a RuntimeWarning fails a case even when the values are right
    difficulty: int = 0  # 1 (warm-up), 2 (core) or 3 (hard); shown by check and the statement
    minutes: int = 0  # expected minutes for a first attempt
    hints: tuple[str, ...] = ()  # graded hints, gentlest first, that ``hint()`` gives in turn
    # Less precise float dtypes the statement allows for the answer (e.g. ("float32",)): such
    # an answer is compared within that dtype's precision (``_compare.PRECISION``).
    allowed_dtypes: tuple[str, ...] = ()
    # A function meant to update its arguments (a training step) is judged on
    # after_call(returned, *args, **kwargs), read after the call, not on what it returns.
    after_call: Callable[..., Any] | None = None

    @property
    def name(self) -> str:
        return self.reference.__name__

    @property
    def signature(self) -> str:
        return f"{self.name}{inspect.signature(self.reference)}"

    @property
    def notebook(self) -> str:
        """The notebook's number, ``"02"`` for exercise ``"02.1"``."""
        return self.id.split(".")[0]

    def run(self, fn: Callable[..., Any]) -> list[Outcome]:
        """``fn``'s outcome on every case (fresh copies of the inputs, nothing raised)."""
        return [call(fn, c.args, c.kwargs, self._params, self.after_call) for c in self.cases]

    @cached_property
    def expected(self) -> list[Outcome]:
        outcomes = self.run(self.reference)
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
        return [self.run(m.fn) for m in self.mistakes]

    @cached_property
    def mistake_cases(self) -> list[set[int]]:
        """For each mistake, the (1-based) cases where it differs from the reference."""
        return [
            {
                n
                for n, (c, o, w) in enumerate(zip(self.cases, outs, self.expected, strict=True), 1)
                if problem(self, c, o, w) is not None
            }
            for outs in self.mistake_outcomes
        ]

    @property
    def _params(self) -> list[str]:
        return list(inspect.signature(self.reference).parameters)


def _validate(ex: Exercise) -> None:
    if not _ID.fullmatch(ex.id):
        raise ValueError(f"exercise id must look like '02.1', got {ex.id!r}")
    if ex.id in _REGISTRY:
        raise ValueError(f"exercise {ex.id} is registered twice")
    if ex.difficulty not in (0, 1, 2, 3):
        raise ValueError(f"exercise {ex.id}: difficulty must be 1, 2 or 3, got {ex.difficulty!r}")
    if not (isinstance(ex.minutes, int) and ex.minutes >= 0):
        raise ValueError(f"exercise {ex.id}: minutes must be a whole number, got {ex.minutes!r}")
    if isinstance(ex.hints, str) or not all(isinstance(h, str) and h for h in ex.hints):
        raise TypeError(f"exercise {ex.id}: hints must be a tuple of non-empty strings")
    unknown = [d for d in ex.allowed_dtypes if d not in PRECISION]
    if isinstance(ex.allowed_dtypes, str) or unknown:
        raise ValueError(
            f"exercise {ex.id}: allowed_dtypes must be a tuple of {sorted(PRECISION)}, "
            f"got {ex.allowed_dtypes!r}"
        )


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to the registry (each ``exNN`` module calls this for its exercises)."""
    _validate(exercise)
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
