"""Build the course's static site in ``outputs/html/``.

For every ``notebooks/NN_*.ipynb``, in order:

1. execute it top to bottom in a fresh ``python3`` kernel whose working directory is
   ``notebooks/`` (so ``../outputs/x.png`` lands in the repository's ``outputs/``, exactly
   as under JupyterLab) and save the executed copy to ``build/executed/`` -- the notebook
   in ``notebooks/`` is never written;
2. note the figures it saved to ``outputs/``;
3. render it with nbconvert's lab template (``scripts/site/nbconvert/course``), which adds
   previous/next navigation, folds exercise solutions, and loads MathJax from the site.

Then copy MathJax 2 from the ``jupyter-server-mathjax`` package into
``outputs/html/mathjax/``, gather the figures into ``outputs/html/figures/``, render the
learning journal, write ``index.html``, and check that no page needs the network.

Usage: ``python scripts/build_site.py`` (``make html``). Open ``outputs/html/index.html``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import mimetypes
import os
import re
import shutil
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import jinja2
import nbformat
from bs4 import BeautifulSoup
from markupsafe import Markup
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import markdown2html_mistune

ROOT = Path(__file__).resolve().parent.parent
SITE_SRC = Path(__file__).resolve().parent / "site"

COURSE = tomllib.loads((SITE_SRC / "course.toml").read_text(encoding="utf-8"))
COURSE_TITLE = COURSE["title"]

MATHJAX_PAGE = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
FIGURE_SUFFIXES = {".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp"}
JOURNAL = "learning_journal.md"


@dataclass
class Lesson:
    """One notebook of the course and what the build learns about it."""

    source: Path
    number: str
    title: str  # plain text, for <title>
    title_html: Markup  # inline markdown rendered, for links
    summary: Markup
    objectives: list[Markup]
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def page(self) -> str:
        return self.source.stem + ".html"


# --------------------------------------------------------------------------- reading


def _first_heading(source: str) -> str | None:
    match = re.search(r"^#\s+(.+?)\s*#*\s*$", source, flags=re.MULTILINE)
    return match.group(1).strip() if match else None


def _first_paragraph(source: str) -> str:
    """First prose paragraph of a markdown cell: not a heading, list, quote, table or math."""
    for block in re.split(r"\n\s*\n", source):
        block = block.strip()
        if not block or block[0] in "#-*>|<!" or block.startswith(("$$", "1.", "```")):
            continue
        return " ".join(block.split())
    return ""


def _first_sentence(text: str) -> str:
    # Ends at a full stop (or ! ?) followed by a space and a capital letter.
    return re.split(r"(?<=[.!?])\s+(?=[A-Z])", text, maxsplit=1)[0]


def _objectives(source: str) -> list[str]:
    """The first bulleted or numbered list of the introduction: the notebook's objectives."""
    items: list[str] = []
    for line in source.splitlines():
        item = re.match(r"^(?:[-*]|\d+\.)\s+(.*)", line)
        if item:
            items.append(item.group(1))
        elif items and line.startswith(" ") and line.strip():
            items[-1] += " " + line.strip()
        elif items:
            break
    return [re.sub(r"[;.]$", "", item.strip()) for item in items]


def _inline(markdown: str) -> Markup:
    """Markdown of one line (code spans, emphasis, math) as HTML without the <p>."""
    html = markdown2html_mistune(markdown).strip()
    return Markup(re.sub(r"^<p>(.*)</p>$", r"\1", html, flags=re.DOTALL))


def read_lesson(path: Path) -> Lesson:
    """Title, summary and objectives of a notebook, from its introduction and course.toml."""
    nb = nbformat.read(path, as_version=4)
    number = path.name[:2]
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    title = None
    summary = COURSE.get("summaries", {}).get(path.name, "")
    objectives: list[str] = []
    for source in markdown[:2]:
        title = title or _first_heading(source)
        body = re.sub(r"^#.*$", "", source, flags=re.MULTILINE)
        summary = summary or _first_sentence(_first_paragraph(body))
        objectives = objectives or _objectives(body)
    if title is None:
        title = path.stem[3:].replace("_", " ").capitalize()
    if not title.startswith(number):
        title = f"{number} · {title}"
    return Lesson(
        source=path, number=number, title=title.replace("`", ""), title_html=_inline(title),
        summary=_inline(summary), objectives=[_inline(item) for item in objectives],
    )


# --------------------------------------------------------------------------- executing


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts
    }


def _figure_stamps(outputs: Path) -> dict[Path, int]:
    return {
        p: p.stat().st_mtime_ns
        for p in outputs.iterdir()
        if p.is_file() and p.suffix.lower() in FIGURE_SUFFIXES
    }


def execute(lesson: Lesson, root: Path, executed_dir: Path, timeout: int) -> nbformat.NotebookNode:
    """Run a notebook in a fresh kernel (cwd ``notebooks/``); save the copy; note its figures."""
    outputs = root / "outputs"
    before = _figure_stamps(outputs)
    nb = nbformat.read(lesson.source, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout,
        record_timing=False,
        resources={"metadata": {"path": str(lesson.source.parent)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        raise SystemExit(f"\n{lesson.source.name} failed in a fresh kernel:\n{err}") from None
    lesson.seconds = time.perf_counter() - start
    after = _figure_stamps(outputs)
    lesson.figures = sorted(p for p, stamp in after.items() if before.get(p) != stamp)
    nbformat.write(nb, executed_dir / lesson.source.name)
    return nb


def _attribute_figures(lessons: list[Lesson], executed: list[nbformat.NotebookNode]) -> None:
    """Keep, for each notebook, the figures it wrote *and* names in its code.

    The time stamps alone would also credit a notebook with a figure that something else
    (JupyterLab, a test run) saved into outputs/ while it was executing. A figure no notebook
    names keeps its time-stamp attribution.
    """
    code = [
        "\n".join(c.source for c in nb.cells if c.cell_type == "code") for nb in executed
    ]
    for lesson, source in zip(lessons, code, strict=True):
        lesson.figures = [
            path for path in lesson.figures
            if path.name in source or not any(path.name in other for other in code)
        ]


# --------------------------------------------------------------------------- rendering


def _github_slug(text: str) -> str:
    """The anchor GitHub and JupyterLab-in-markdown links use for a heading."""
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _rewrite(soup: BeautifulSoup, base: Path, root: Path, pages: dict[str, str]) -> None:
    """Point links at site pages and embed local images, so every page stands alone.

    ``pages`` maps a repository file name (``03_masking.ipynb``, ``learning_journal.md``)
    to its page on the site. Images referenced by relative path (resolved against ``base``)
    become data URIs.
    """
    for a in soup.find_all("a", href=True):
        parts = urlsplit(a["href"])
        if parts.scheme or parts.netloc or not parts.path:
            continue
        name = Path(unquote(parts.path)).name
        anchor = f"#{parts.fragment}" if parts.fragment else ""
        target = (base / unquote(parts.path)).resolve()
        if name in pages:
            a["href"] = pages[name] + anchor
        elif target.exists() and target.is_relative_to(root):
            # Another file of the repository (README.md, helpers/...): the site lives in
            # outputs/html/ of the same checkout, so point two levels up.
            a["href"] = "../../" + target.relative_to(root).as_posix() + anchor
    for img in soup.find_all("img", src=True):
        parts = urlsplit(img["src"])
        if parts.scheme or parts.netloc:
            continue
        target = (base / unquote(parts.path)).resolve()
        if target.is_file() and target.is_relative_to(root):
            mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            data = base64.b64encode(target.read_bytes()).decode("ascii")
            img["src"] = f"data:{mime};base64,{data}"


def make_exporter(mathjax_url: str) -> HTMLExporter:
    exporter = HTMLExporter(
        template_name="course",
        extra_template_basedirs=[str(SITE_SRC / "nbconvert")],
        mathjax_url=mathjax_url,
        embed_images=True,
    )
    return exporter


def render_page(
    exporter: HTMLExporter,
    nb: nbformat.NotebookNode,
    *,
    title: str,
    base: Path,
    root: Path,
    pages: dict[str, str],
    course: dict | None,
) -> str:
    resources = {"metadata": {"name": title, "path": str(base)}, "course": course}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    soup = BeautifulSoup(body, "html.parser")
    _rewrite(soup, base, root, pages)
    return str(soup)


def render_journal(exporter: HTMLExporter, root: Path, pages: dict[str, str]) -> str:
    """The learning journal as a page: its questions and checklists, GitHub-style anchors."""
    source = (root / JOURNAL).read_text(encoding="utf-8")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(source)]
    course = {"title": COURSE_TITLE, "position": None, "prev": None, "next": None}
    html = render_page(
        exporter, nb, title=f"Learning journal · {COURSE_TITLE}", base=root, root=root,
        pages=pages, course=course,
    )
    soup = BeautifulSoup(html, "html.parser")
    for heading in soup.find_all(re.compile(r"^h[1-6]$")):
        text = heading.get_text().replace("¶", "")
        slug = _github_slug(text)
        if slug and heading.get("id") != slug and not soup.find(id=slug):
            heading.insert(0, soup.new_tag("a", id=slug))
    return str(soup)


def render_index(lessons: list[Lesson], figures: list[dict], mathjax_url: str) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(SITE_SRC), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return env.get_template("home.html.j2").render(
        title=COURSE_TITLE,
        tagline=COURSE["tagline"],
        objectives=[_inline(item) for item in COURSE["objectives"]],
        lessons=lessons,
        figures=figures,
        mathjax_url=mathjax_url,
    )


# --------------------------------------------------------------------------- checking


def network_dependencies(html: str) -> list[str]:
    """Every script, stylesheet, image, frame or font the page would fetch from another host."""
    soup = BeautifulSoup(html, "html.parser")
    found = []
    for tag, attr in (("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"),
                      ("source", "src"), ("video", "src"), ("audio", "src"), ("embed", "src")):
        for element in soup.find_all(tag):
            value = element.get(attr)
            if value and (urlsplit(value).scheme in {"http", "https"} or value.startswith("//")):
                found.append(f"<{tag} {attr}={value!r}>")
    for style in soup.find_all("style"):
        found += [f"@import/url({m})" for m in re.findall(r"url\(\s*['\"]?((?:https?:)?//[^)'\"]+)",
                                                          style.get_text())]
    for script in soup.find_all("script"):
        found += [f"import({m})" for m in re.findall(r"import\(\s*['\"]((?:https?:)?//[^'\"]+)",
                                                     script.get_text())]
    return found


# --------------------------------------------------------------------------- main


def mathjax_source() -> Path:
    import jupyter_server_mathjax

    static = Path(jupyter_server_mathjax.__file__).resolve().parent / "static"
    if not (static / "MathJax.js").is_file():
        raise SystemExit(f"MathJax not found in {static}: is jupyter-server-mathjax installed?")
    return static


def build(root: Path, mathjax_url: str, timeout: int) -> float:
    start = time.perf_counter()
    notebooks_dir = root / "notebooks"
    sources = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise SystemExit(f"no notebooks found in {notebooks_dir}")
    site = root / "outputs" / "html"
    executed_dir = root / "build" / "executed"
    (root / "outputs").mkdir(exist_ok=True)
    for folder in (site, executed_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    # Under `make`, MPLBACKEND=Agg is exported for scripts; a kernel that inherits it draws
    # nothing inline. Without it, ipykernel selects its inline backend as in JupyterLab.
    os.environ.pop("MPLBACKEND", None)

    lessons = [read_lesson(path) for path in sources]
    before = _tree_digest(notebooks_dir)
    executed = []
    for lesson in lessons:
        print(f"executing {lesson.source.relative_to(root)} ...", end=" ", flush=True)
        executed.append(execute(lesson, root, executed_dir, timeout))
        figures = ", ".join(p.name for p in lesson.figures) or "none"
        print(f"{lesson.seconds:.1f} s (figures written meanwhile: {figures})", flush=True)
        outputs = [out for cell in executed[-1].cells for out in cell.get("outputs", [])]
        stderr = sum(out.get("name") == "stderr" for out in outputs)
        if stderr:
            print(f"  warning: {stderr} output(s) on stderr in {lesson.source.name}", flush=True)
    if _tree_digest(notebooks_dir) != before:
        raise SystemExit("executing the notebooks changed files in notebooks/: they must not")
    _attribute_figures(lessons, executed)

    shutil.copytree(mathjax_source(), site / "mathjax")
    shutil.copy2(SITE_SRC / "site.css", site / "site.css")

    pages = {lesson.source.name: lesson.page for lesson in lessons}
    pages[JOURNAL] = "learning_journal.html"
    exporter = make_exporter(mathjax_url)
    for i, (lesson, nb) in enumerate(zip(lessons, executed, strict=True)):
        prev_lesson = lessons[i - 1] if i > 0 else None
        next_lesson = lessons[i + 1] if i + 1 < len(lessons) else None
        course = {
            "title": COURSE_TITLE,
            "position": i + 1,
            "count": len(lessons),
            "prev": prev_lesson and {"href": prev_lesson.page, "title": prev_lesson.title_html},
            "next": next_lesson and {"href": next_lesson.page, "title": next_lesson.title_html},
        }
        html = render_page(
            exporter, nb, title=f"{lesson.title} · {COURSE_TITLE}", base=notebooks_dir,
            root=root, pages=pages, course=course,
        )
        (site / lesson.page).write_text(html, encoding="utf-8")

    if (root / JOURNAL).is_file():
        (site / "learning_journal.html").write_text(
            render_journal(exporter, root, pages), encoding="utf-8"
        )

    # A figure saved by several notebooks is shown once, under the last one to write it.
    writers = {path: lesson for lesson in lessons for path in lesson.figures}
    figures = []
    (site / "figures").mkdir()
    for lesson in lessons:
        for path in (p for p in lesson.figures if writers[p] is lesson):
            shutil.copy2(path, site / "figures" / path.name)
            figures.append({
                "name": path.name,
                "src": f"figures/{path.name}",
                "href": f"figures/{path.name}",
                "alt": f"{path.stem.replace('_', ' ')} (saved by {lesson.source.name})",
                "lesson_page": lesson.page,
                "lesson_title": lesson.title_html,
            })
    (site / "index.html").write_text(
        render_index(lessons, figures, mathjax_url),
        encoding="utf-8",
    )

    problems = {
        page.name: deps
        for page in sorted(site.glob("*.html"))
        if (deps := network_dependencies(page.read_text(encoding="utf-8")))
    }
    if problems:
        raise SystemExit(f"pages that would load from the network: {problems}")

    seconds = time.perf_counter() - start
    print(f"site: {site.relative_to(root)}/index.html  ({len(lessons)} notebooks, "
          f"{len(figures)} figures, {seconds:.1f} s)")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="repository root (default: this script's repository)")
    parser.add_argument("--mathjax-url", default=MATHJAX_PAGE,
                        help="URL of MathJax.js used by every page (default: the local copy)")
    parser.add_argument("--timeout", type=int, default=300,
                        help="seconds one cell may run before the build fails")
    args = parser.parse_args(argv)
    build(args.root.resolve(), args.mathjax_url, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
