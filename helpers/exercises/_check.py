"""Running a check: recognising known mistakes, and the report the learner reads."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from helpers.exercises._compare import describe
from helpers.exercises._core import Case, Exercise, Mistake, Outcome, _agrees, _problem, call, get


def recognise(ex: Exercise, got: list[Outcome], failed: tuple[int, ...]) -> list[Mistake]:
    """The known mistakes the learner reproduces; those explaining the first failure first.

    A mistake is recognised when the learner's outcome equals the mistake's on every case where
    the mistake goes wrong (so two mistakes made together are both recognised).
    """
    found: list[tuple[bool, int, int, Mistake]] = []
    for order, (m, outcomes, wrong) in enumerate(
        zip(ex.mistakes, ex.mistake_outcomes, ex.mistake_cases, strict=True)
    ):
        if (
            wrong
            and wrong <= set(failed)
            and all(_agrees(ex, ex.cases[n - 1], got[n - 1], outcomes[n - 1]) for n in wrong)
        ):
            found.append((failed[0] not in wrong, -len(wrong), order, m))
    return [m for *_, m in sorted(found, key=lambda t: t[:3])]


@dataclass(frozen=True)
class CheckResult:
    """The result of :func:`check`. ``bool(result)`` is ``result.passed``."""

    exercise_id: str
    passed: bool
    attempted: bool
    mistake: str | None
    cases_passed: int
    cases_total: int
    failed_cases: tuple[int, ...]
    report: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.report

    def _ipython_display_(self) -> None:
        """Show nothing: :func:`check` has already printed the report."""


def _describe_input(name: str, value: Any, keyword: bool) -> str:
    if isinstance(value, np.ndarray):
        small = 0 < value.size <= 6 and value.dtype.kind in "biuf"
        text = f"{value.dtype} {value.shape}"
        if small:
            text += " " + " ".join(np.array2string(value, precision=4, separator=", ").split())
        return f"{name}: {text}"
    sep = "=" if keyword else " = "
    if hasattr(value, "parameters") and callable(value.parameters):
        return f"{name}: {value!r}"
    return f"{name}{sep}{describe(value)}"


def _describe_case(ex: Exercise, n: int, case: Case) -> str:
    names = list(inspect.signature(ex.reference).parameters)
    parts = [_describe_input(name, arg, False) for name, arg in zip(names, case.args, strict=False)]
    parts += [_describe_input(name, arg, True) for name, arg in case.kwargs.items()]
    return f"case {n} — {case.note}\n  inputs: " + "; ".join(parts)


def run_check(exercise_id: str, fn: Any) -> CheckResult:
    """Check ``fn`` against the exercise; see :func:`helpers.exercises.check`."""
    ex = get(exercise_id)
    head = f"Exercise {ex.id} · {ex.name}"
    total = len(ex.cases)

    def result(
        report: str,
        *,
        passed: bool = False,
        attempted: bool = True,
        mistake: str | None = None,
        ok: int = 0,
        failed: tuple[int, ...] = (),
    ) -> CheckResult:
        return CheckResult(ex.id, passed, attempted, mistake, ok, total, failed, report)

    if not callable(fn):
        return result(
            f"{head}: expected your function {ex.name}, got {describe(fn)}.", attempted=False
        )
    got = [call(fn, case, ex._params, ex.after_call) for case in ex.cases]
    if all(isinstance(o.error, NotImplementedError) for o in got):
        return result(
            f"{head}: not attempted yet — write the function above, then run this cell.",
            attempted=False,
        )
    problems = [_problem(ex, c, g, w) for c, g, w in zip(ex.cases, got, ex.expected, strict=True)]
    failed = tuple(n for n, p in enumerate(problems, 1) if p is not None)
    if not failed:
        return result(f"{head}: ✓ all {total} cases pass.", passed=True, ok=total)
    first = failed[0]
    lines = [
        f"{head}: ✗ {total - len(failed)} of {total} cases pass.",
        "First failing " + _describe_case(ex, first, ex.cases[first - 1]),
        f"  {problems[first - 1]}",
    ]
    known = recognise(ex, got, failed)
    for m in known:
        lines.append(f"Known mistake — {m.name}: {m.explanation} (taught in {m.taught})")
    explained = set().union(*(ex.mistake_cases[ex.mistakes.index(m)] for m in known))
    unexplained = [n for n in failed if n not in explained]
    if not known:
        lines.append(f"Not one of the known mistakes; the idea is taught in {ex.taught}.")
    elif unexplained:
        which = ", ".join(map(str, unexplained))
        lines.append(
            f"Case {which} also fails" if len(unexplained) == 1 else f"Cases {which} also fail"
        )
        lines[-1] += " for another reason."
    if len(failed) > 1:
        lines.append("Failing cases: " + ", ".join(map(str, failed)) + ".")
    return result(
        "\n".join(lines),
        mistake=known[0].name if known else None,
        ok=total - len(failed),
        failed=failed,
    )
