"""Running a check and the report the learner reads."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from helpers.exercises._compare import describe
from helpers.exercises._core import Case, Exercise, get
from helpers.exercises._judge import lower_precision, problem, recognise


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
    mistakes: tuple[str, ...] = ()  # every mistake named, ``mistake`` first

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.report

    def _ipython_display_(self) -> None:
        """Show nothing: :func:`check` has already printed the report."""


def effort(ex: Exercise) -> str:
    """' (difficulty 2 of 3, about 15 min)': the part of the report's first line after the name."""
    parts = []
    if ex.difficulty:
        parts.append(f"difficulty {ex.difficulty} of 3")
    if ex.minutes:
        parts.append(f"about {ex.minutes} min")
    return f" ({', '.join(parts)})" if parts else ""


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
    return judge(get(exercise_id), fn)


def judge(ex: Exercise, fn: Any) -> CheckResult:
    """Check ``fn`` against ``ex`` (registered or not) and write the report; records nothing."""
    head = f"Exercise {ex.id} · {ex.name}{effort(ex)}"
    total = len(ex.cases)

    def result(
        report: str,
        *,
        passed: bool = False,
        attempted: bool = True,
        mistakes: tuple[str, ...] = (),
        ok: int = 0,
        failed: tuple[int, ...] = (),
    ) -> CheckResult:
        first = mistakes[0] if mistakes else None
        return CheckResult(ex.id, passed, attempted, first, ok, total, failed, report, mistakes)

    if not callable(fn):
        return result(
            f"{head}: expected your function {ex.name}, got {describe(fn)}.", attempted=False
        )
    got = ex.run(fn)
    if all(isinstance(o.error, NotImplementedError) for o in got):
        return result(
            f"{head}: not attempted yet — write the function above, then run this cell.",
            attempted=False,
        )
    problems = [problem(ex, c, g, w) for c, g, w in zip(ex.cases, got, ex.expected, strict=True)]
    failed = tuple(n for n, p in enumerate(problems, 1) if p is not None)
    if not failed:
        lows = {lower_precision(g.value, w.value) for g, w in zip(got, ex.expected, strict=True)}
        lows &= set(ex.allowed_dtypes)  # said only of a dtype the statement allows
        within = f" (compared in {', '.join(sorted(lows))} precision)" if lows else ""
        return result(f"{head}: ✓ all {total} cases pass{within}.", passed=True, ok=total)
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
    if ex.hints or known:  # a named mistake always gives a first hint (hints.py)
        lines.append(f'Stuck? hint("{ex.id}") gives a hint.')
    else:
        lines.append(
            f'No hints for this exercise yet; hint("{ex.id}") points to the worked solution.'
        )
    return result(
        "\n".join(lines),
        mistakes=tuple(m.name for m in known),
        ok=total - len(failed),
        failed=failed,
    )
