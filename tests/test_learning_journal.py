"""learning_journal.md stays in step with the notebooks.

Each notebook's *Reflection* section sends the learner to one section of the journal; that
section must exist under its exact heading and list the same questions, in the same order,
followed by an interview-practice part, a checklist and room for notes.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
JOURNAL = ROOT / "learning_journal.md"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
HEADINGS = {
    "01": "01 · Math utilities",
    "02": "02 · Single-head attention",
    "03": "03 · Masking",
    "04": "04 · Multi-head attention",
    "05": "05 · The MultiHeadAttention class",
    "06": "06 · Validation with real inputs",
    "07": "07 · Comparison with PyTorch",
    "08": "08 · Capstone: training the layer",
    "09": "09 · Positions and long sequences",
}
PARTS = ["Reflection", "Interview practice", "Checklist", "Notes"]


def numbered_items(markdown: str) -> list[str]:
    """Text of each item of the numbered lists in ``markdown``, whitespace normalised.

    An item is its first paragraph: the numbered line and the indented lines right after it
    (the journal's ``*Answer:*`` line, after a blank line, is not part of the question).
    """
    items: list[list[str]] = []
    open_item = False
    for line in markdown.splitlines():
        start = re.match(r"^\d+\.\s+(.*)", line)
        if start:
            items.append([start.group(1)])
            open_item = True
        elif open_item and line.startswith(" ") and line.strip():
            items[-1].append(line.strip())
        else:
            open_item = False
    return [" ".join(" ".join(item).split()) for item in items]


def journal_sections() -> dict[str, str]:
    text = JOURNAL.read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def subsections(section: str) -> dict[str, str]:
    parts = re.split(r"^### (.+)$", section, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def reflection_cell(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    cells = [c.source for c in nb.cells
             if c.cell_type == "markdown" and re.search(r"^#+ .*Reflection", c.source, re.M)]
    assert len(cells) == 1, f"{notebook.name}: expected one Reflection section, found {len(cells)}"
    return cells[0]


def test_journal_has_the_seven_sections_in_order() -> None:
    assert list(journal_sections()) == list(HEADINGS.values())


@pytest.mark.parametrize("number", list(HEADINGS))
def test_section_has_every_part(number: str) -> None:
    parts = subsections(journal_sections()[HEADINGS[number]])
    assert list(parts) == PARTS
    assert re.findall(r"^- \[ \] \S", parts["Checklist"], flags=re.M), "empty checklist"
    assert parts["Notes"].strip(), "no room for notes"
    answers = parts["Reflection"].count("*Answer:*")
    assert answers == len(numbered_items(parts["Reflection"])), "a question without room to answer"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.name for nb in NOTEBOOKS])
def test_reflection_questions_match_the_notebook(notebook: Path) -> None:
    heading = HEADINGS[notebook.name[:2]]
    cell = reflection_cell(notebook)
    assert heading in cell, f"{notebook.name} does not point to the journal section {heading!r}"
    assert "learning_journal.md" in cell
    asked = numbered_items(cell)
    assert asked, f"{notebook.name} asks no numbered reflection questions"
    section = subsections(journal_sections()[heading])
    assert numbered_items(section["Reflection"]) == asked, (
        f"learning_journal.md, section {heading!r}, must list the Reflection questions of "
        f"{notebook.name} word for word and in order"
    )
    link = f"notebooks/{notebook.name}"
    assert link in journal_sections()[heading], f"section {heading!r} does not link {link}"
