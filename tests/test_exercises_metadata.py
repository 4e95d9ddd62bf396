"""Every exercise says what it costs and helps before the solution, the same way everywhere.

The registry (difficulty 1-3, minutes, two or three graded hints) is what ``check`` and ``hint``
show; the statements in the notebooks must show the same: the heading of each statement in the
course notebook and in its solutions notebook ends with "(difficulty d of 3, about m min)", and
where the course notebook folds the hints into the statement, they are the registry's, in order.
"""

import json
import re
from pathlib import Path

import pytest

from helpers.exercises._core import exercise_ids, get

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_every_exercise_has_difficulty_minutes_and_graded_hints(exercise_id):
    ex = get(exercise_id)
    assert ex.difficulty in (1, 2, 3), f"{exercise_id}: difficulty {ex.difficulty!r}"
    assert 0 < ex.minutes <= 90, f"{exercise_id}: minutes {ex.minutes!r}"
    assert 2 <= len(ex.hints) <= 3, f"{exercise_id}: {len(ex.hints)} hints"
    assert all(isinstance(h, str) and len(h.split()) >= 5 for h in ex.hints), exercise_id
    assert len(set(ex.hints)) == len(ex.hints), f"{exercise_id}: a hint is repeated"


def _statement(path: Path, exercise_id: str) -> str:
    """The statement from its heading on (a cell may hold the section's text before it)."""
    heading = re.compile(rf"^##+ Exercise {re.escape(exercise_id)} — ", re.M)
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    found = [
        text[m.start():] for text in ("".join(c["source"]) for c in cells
                                      if c["cell_type"] == "markdown")
        if (m := heading.search(text))
    ]
    assert len(found) == 1, f"{path.name}: {len(found)} statements of exercise {exercise_id}"
    return found[0]


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_statements_show_what_check_and_hint_show(exercise_id):
    ex = get(exercise_id)
    name = next(NOTEBOOKS.glob(f"{ex.notebook}_*.ipynb")).name
    course = _statement(NOTEBOOKS / name, exercise_id)
    solution = _statement(NOTEBOOKS / "solutions" / name, exercise_id)
    shown = f"(difficulty {ex.difficulty} of 3, about {ex.minutes} min)"
    for text in (course, solution):
        assert text.splitlines()[0].endswith(shown), text.splitlines()[0]
    fold = r"<summary>Hint (\d+) of (\d+)</summary>\s*(.*?)\s*</details>"
    folded = re.findall(fold, course, re.S)
    assert len(folded) == course.count("<summary>Hint"), "hints folded as 'Hint k of n'"
    if folded:  # the course notebook folds the hints into the statement: the registry's, in order
        n = len(ex.hints)
        assert [(int(k), int(of)) for k, of, _ in folded] == [(k, n) for k in range(1, n + 1)]
        assert [" ".join(t.split()) for *_, t in folded] == [" ".join(h.split()) for h in ex.hints]
