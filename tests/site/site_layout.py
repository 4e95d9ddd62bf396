"""What the site should contain, read from the repository (shared by the site tests)."""

from __future__ import annotations

import functools
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "outputs" / "html"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))

LESSON_PAGES = [f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS]
SOLUTION_PAGES = [f"notebooks/solutions/{nb.stem}.html" for nb in SOLUTIONS]
OTHER_PAGES = ["index.html", "solutions.html", "learning_journal.html", "gallery.html"]
CONTENT_PAGES = ["index.html", *LESSON_PAGES, "solutions.html", *SOLUTION_PAGES,
                 "learning_journal.html", "gallery.html"]
ALL_PAGES = [*CONTENT_PAGES, "search.html"]

FIGURE_NAME = re.compile(r"""["']([\w.-]+\.(?:png|svg))["']""")


@functools.cache
def _parsed(page: str, mtime: float) -> BeautifulSoup:
    return BeautifulSoup((SITE / page).read_text(encoding="utf-8"), "html.parser")


def soup_of(page: str) -> BeautifulSoup:
    """The page parsed (once per build of it); do not modify the result."""
    return _parsed(page, (SITE / page).stat().st_mtime)


def resolve(page: str, href: str) -> str | None:
    """Site-relative path that ``href`` on ``page`` points to (None for other schemes)."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc:
        return None
    if not parts.path:
        return page
    return posixpath.normpath(posixpath.join(posixpath.dirname(page), unquote(parts.path)))


def notebook_of(page: str) -> Path:
    for nb in (*NOTEBOOKS, *SOLUTIONS):
        if page == f"notebooks/{nb.relative_to(ROOT / 'notebooks').with_suffix('.html')}":
            return nb
    raise KeyError(page)


def read_notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def saved_figures() -> dict[str, tuple[Path, str | None]]:
    """Figure name -> (notebook that saves it last, alt text of the cell that names it)."""
    found: dict[str, tuple[Path, str | None]] = {}
    for nb_path in NOTEBOOKS:
        for cell in read_notebook(nb_path).cells:
            if cell.cell_type != "code":
                continue
            for name in FIGURE_NAME.findall(cell.source):
                alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt")
                previous = found.get(name, (None, None))[1]
                found[name] = (nb_path, alt or previous)
    return found


def alt_problem(alt: str | None, src: str) -> str | None:
    """Why ``alt`` is not a description of the image at ``src`` (None if it is one)."""
    if alt is None or not alt.strip():
        return "no alt text"
    name = posixpath.basename(urlsplit(src).path)
    if alt.strip() in {src, name} or re.fullmatch(r"[\w./-]+\.(png|svg|jpe?g|gif)", alt.strip()):
        return f"alt text is a file name ({alt!r})"
    if len(alt.split()) < 3:
        return f"alt text too short to describe a figure ({alt!r})"
    return None
