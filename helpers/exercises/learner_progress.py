"""``progress()``: what the learner has done, from the record every ``check`` appends.

``progress()`` returns ``{exercise_id: "passed" | "attempted" | "not attempted"}`` for every
exercise of the course and prints a table per notebook. The status is that of the **latest**
check of the exercise (a solution that later breaks is "attempted" again, with "passed before"
in the table); a stub's check ("not attempted yet") records nothing. ``make progress``, or
``python -m helpers.exercises progress``, prints the same table. The file and how it is kept
safe are described in ``helpers/exercises/_records.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from helpers.exercises import _records
from helpers.exercises._core import Exercise, exercise_ids, get
from helpers.exercises._notebooks import title

PASSED, ATTEMPTED, NOT_ATTEMPTED = "passed", "attempted", "not attempted"
_MARK = {PASSED: "✓", ATTEMPTED: "✗", NOT_ATTEMPTED: "·"}


def _local(time: str) -> str:
    try:
        return datetime.fromisoformat(time).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return time


def _effort(ex: Exercise) -> str:
    """'difficulty 2/3, 15 min' (what the exercise sets of the two)."""
    parts = [f"difficulty {ex.difficulty}/3" if ex.difficulty else ""]
    parts.append(f"{ex.minutes} min" if ex.minutes else "")
    return ", ".join(p for p in parts if p)


class _Summary:
    """What the records say about one exercise."""

    def __init__(self) -> None:
        self.checks: list[dict[str, Any]] = []
        self.hints = 0

    @property
    def status(self) -> str:
        if not self.checks:
            return NOT_ATTEMPTED
        return PASSED if self.checks[-1]["passed"] else ATTEMPTED

    def detail(self) -> str:
        if not self.checks:
            return ""
        n, last = len(self.checks), self.checks[-1]
        text = f"{n} check{'s' if n > 1 else ''}, last {_local(last['time'])}"
        if not last["passed"]:
            if last.get("cases_total"):
                text += f", {last.get('cases_passed', 0)} of {last['cases_total']} cases"
            if last.get("mistake"):
                text += f", {last['mistake']}"
            if any(c["passed"] for c in self.checks):
                text += ", passed before"
        if self.hints:
            text += f", {self.hints} hint{'s' if self.hints > 1 else ''}"
        return text


def summarise(ids: Iterable[str], entries: list[dict[str, Any]]) -> dict[str, _Summary]:
    summary = {i: _Summary() for i in ids}
    for e in entries:
        s = summary.get(e["id"])
        if s is None:  # an exercise the course no longer has
            continue
        if e["event"] == "check":
            s.checks.append(e)
        else:
            s.hints += 1
    return summary


def table(summary: dict[str, _Summary]) -> str:
    """The per-notebook table ``progress()`` prints."""
    lines: list[str] = []
    notebooks: dict[str, list[str]] = {}
    for i in summary:
        notebooks.setdefault(i.split(".")[0], []).append(i)
    width = max((len(get(i).name) for i in summary), default=0)
    for nb, ids in notebooks.items():
        passed = sum(summary[i].status == PASSED for i in ids)
        lines.append(f"{title(nb)}: {passed} of {len(ids)} passed")
        for i in ids:
            ex, s = get(i), summary[i]
            effort = _effort(ex)
            row = f"  {_MARK[s.status]} {i:<5} {ex.name:<{width}}  {s.status:<13}"
            extra = "; ".join(p for p in (effort, s.detail()) if p)
            lines.append((row + ("  " + extra if extra else "")).rstrip())
        lines.append("")
    counts = [sum(s.status == k for s in summary.values()) for k in (PASSED, ATTEMPTED)]
    lines.append(
        f"Total: {counts[0]} of {len(summary)} exercises passed, {counts[1]} attempted, "
        f"{len(summary) - sum(counts)} not attempted."
    )
    return "\n".join(lines)


def progress(show: bool = True) -> dict[str, str]:
    """``{exercise_id: "passed" | "attempted" | "not attempted"}`` for every exercise.

    With ``show`` (the default) also prints the table per notebook, where the record lives,
    and any line of it that could not be read (skipped; the other records are used).
    """
    records = _records.read()
    summary = summarise(exercise_ids(), records.entries)
    if show:
        print(f"Progress recorded in {records.path}\n")
        print(table(summary))
        if records.problems():
            print(f"\nNote: {records.problems()}")
    return {i: s.status for i, s in summary.items()}
