"""Where the course's notebooks are, for messages that point the learner to one."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (helpers is installed editable)


def course_notebook(nb: str) -> Path | None:
    """``notebooks/NN_*.ipynb`` of notebook ``nb`` ('02'), or None when it is not there."""
    found = sorted((ROOT / "notebooks").glob(f"{nb}_*.ipynb"))
    return found[0] if found else None


def title(nb: str) -> str:
    """'02 · Single-head attention': the notebook's heading (its file name, or 'notebook 02')."""
    path = course_notebook(nb)
    if path is None:
        return f"notebook {nb}"
    try:
        first = json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"]
        heading = "".join(first).splitlines()[0]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        heading = ""
    if heading.startswith(f"# {nb} "):
        return heading[2:].replace("`", "")
    return f"{nb} · {path.stem[3:].replace('_', ' ')}"


def solutions(nb: str) -> str:
    """The worked solutions of notebook ``nb``, as a path from the repository's root."""
    path = course_notebook(nb)
    if path is not None and (ROOT / "notebooks" / "solutions" / path.name).is_file():
        return f"notebooks/solutions/{path.name}"
    return f"notebooks/solutions/ (notebook {nb})"
