"""The hint ladder: ``hint("NN.k")`` gives the exercise's next hint, before any solution.

Each exercise has two or three graded hints (``Exercise.hints``), gentlest first, the last
close to the method but never the code. ``hint("02.1")`` prints and returns the next one:

1. if the last ``check`` of the exercise named a known mistake whose hint was not shown
   before, that hint comes first: the mistake's own (``Mistake.hint``) when it has one, else
   one made from the mistake itself — what is wrong and where the course teaches it;
2. then the exercise's hints in turn;
3. after the last one it points to ``reference("02.1")`` and the solutions notebook.

``hint("02.1", 2)`` shows hint 2 again (or ahead). The hints shown are recorded in the
progress file with the checks, so the ladder continues where it stopped in another session.
"""

from __future__ import annotations

from typing import Any

from helpers.exercises import _records
from helpers.exercises._core import Exercise, Mistake, get
from helpers.exercises._notebooks import solutions


def _state(ex: Exercise, entries: list[dict[str, Any]]) -> tuple[Mistake | None, bool, int]:
    """The mistake the last check named, whether its hint was ever shown, the highest level."""
    named: Mistake | None = None
    mistake_hints: set[str] = set()
    level = 0
    for e in entries:
        if e["id"] != ex.id:
            continue
        if e["event"] == "check":
            named = next((m for m in ex.mistakes if m.name == e.get("mistake")), None)
        elif e.get("mistake") is not None:
            mistake_hints.add(e["mistake"])
        else:
            level = max(level, int(e["level"]))
    return named, named is not None and named.name in mistake_hints, level


def mistake_hint(mistake: Mistake) -> str:
    """The first hint after ``check`` named ``mistake``: its own, or one made from it."""
    if mistake.hint:
        return mistake.hint
    explanation = mistake.explanation.strip()
    if not explanation.endswith((".", "!", "?")):
        explanation += "."
    return f"{explanation} Re-read {mistake.taught}, which teaches it."


def _after_the_last(ex: Exercise) -> str:
    return (
        f'reference("{ex.id}") returns the trusted function to compare with yours, and '
        f"{solutions(ex.notebook)} has the worked, commented solution."
    )


def next_hint(exercise_id: str, level: int | None = None) -> tuple[str, dict[str, Any] | None]:
    """The text ``hint`` prints, and the record to append (None when no hint was shown)."""
    ex = get(exercise_id)
    head = f"exercise {ex.id} · {ex.name}"
    total = len(ex.hints)
    if level is not None:
        if isinstance(level, bool) or not isinstance(level, int):
            raise TypeError(f"level must be a whole number, got {type(level).__name__}")
        if total == 0:
            return f"No hints for {head} yet. {_after_the_last(ex)}", None
        if not 1 <= level <= total:
            raise ValueError(f"{head} has hints 1 to {total}, got level={level}")
    else:
        named, shown, done = _state(ex, _records.read().entries)
        if named is not None and not shown:
            more = f'hint("{ex.id}") again gives hint {done + 1} of {total}.' if done < total else (
                _after_the_last(ex)
            )
            text = (
                f"Hint on the mistake check named ({named.name}), {head}:\n"
                f"  {mistake_hint(named)}\n"
            )
            return text + f"({more})", {"event": "hint", "id": ex.id, "mistake": named.name}
        if total == 0:
            return f"No hints for {head} yet. {_after_the_last(ex)}", None
        if done >= total:
            return (
                f"That was the last of the {total} hints for {head}. {_after_the_last(ex)}\n"
                f'(hint("{ex.id}", 1) shows hint 1 again.)',
                None,
            )
        level = done + 1
    text = f"Hint {level} of {total} for {head}:\n  {ex.hints[level - 1]}\n"
    if level < total:
        text += f'(hint("{ex.id}") again gives hint {level + 1}.)'
    else:
        text += f"(That was the last hint: {_after_the_last(ex)})"
    return text, {"event": "hint", "id": ex.id, "level": level}


class HintText(str):
    """A hint's text: a ``str`` that Jupyter does not show again after :func:`hint` printed it."""

    def _ipython_display_(self) -> None:
        """Show nothing: :func:`hint` has already printed the text."""


def hint(exercise_id: str, level: int | None = None) -> HintText:
    """Print and return the next hint of an exercise (``level``: that hint, 1-based).

    See the module docstring for the order. Raises ``ValueError``/``TypeError`` only for an
    unknown ``exercise_id`` or a ``level`` the exercise does not have.
    """
    text, entry = next_hint(exercise_id, level)
    if entry is not None:
        _records.append(entry)
    print(text)
    return HintText(text)
