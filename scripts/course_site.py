"""The parts of the course site that Sphinx and myst-nb cannot do by configuration alone.

``site/conf.py`` loads this module as a Sphinx extension. It

1. **stages the sources** (``config-inited``): mirrors ``site/*.md``, the numbered notebooks,
   ``notebooks/solutions/*.ipynb`` and ``learning_journal.md`` into the build's source folder
   (``build/site/src``) with the repository's layout, so myst-nb executes each notebook with
   its working directory in a copy of ``notebooks/`` (``notebooks/`` itself is never written)
   and relative links resolve as in JupyterLab. A file is rewritten only when its content
   changed, so Sphinx and the execution cache see an unchanged notebook as unchanged.
   Cells tagged ``solution`` also get myst-nb's ``hide-input`` tag in the copy: a page never
   shows an answer unfolded;
2. puts MathJax 2 from the pinned ``jupyter-server-mathjax`` package at ``_static/mathjax``;
3. provides the ``course-figures`` directive of the gallery page: every figure a notebook
   saves into ``outputs/`` (a ``"name.png"`` string in its code), with the alt text of the
   cell that saves it and a link to that notebook. The gallery is read after every notebook
   (so after their execution) and on every build;
4. gives headings JupyterLab's anchors (``jupyter_slug``), so a link such as
   ``03_masking.ipynb#1-·-The-causal-mask,-two-ways`` works in JupyterLab and on the site.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parent.parent
SITE_SOURCES = ROOT / "site"
GALLERY_DOC = "gallery"
# Pages whose directives list notebooks, solutions or figures: read again on every build.
GENERATED_LISTS = ("index", "solutions", GALLERY_DOC)
FIGURE_NAME = re.compile(r"""["']([\w.-]+\.(?:png|svg))["']""")

logger = logging.getLogger(__name__)


def library_digest(root: Path = ROOT) -> str:
    """Digest of the library the notebooks import and of the pinned packages.

    Part of the execution cache's path: myst-nb's cache matches a notebook by its code alone,
    so without this a change to ``helpers/`` would leave stale outputs on the site.
    """
    digest = hashlib.sha256()
    files = [*sorted((root / "helpers").rglob("*.py")), root / "requirements.txt"]
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def jupyter_slug(title: str) -> str:
    """The anchor JupyterLab gives a heading: its text with every space replaced by ``-``."""
    return title.strip().replace(" ", "-")


# --------------------------------------------------------------------------- staging


def course_notebooks(root: Path = ROOT) -> list[Path]:
    """``notebooks/NN_*.ipynb`` in course order."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def solution_notebooks(root: Path = ROOT) -> list[Path]:
    """``notebooks/solutions/*.ipynb`` in name order."""
    return sorted((root / "notebooks" / "solutions").glob("*.ipynb"))


def _staged_notebook(path: Path) -> bytes:
    """The notebook's bytes, with ``hide-input`` added to every cell tagged ``solution``."""
    raw = path.read_bytes()
    nb = json.loads(raw)
    changed = False
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "solution" in tags and "hide-input" not in tags:
            cell["metadata"]["tags"] = [*tags, "hide-input"]
            changed = True
    if not changed:
        return raw
    return (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def stage_sources(srcdir: Path, root: Path = ROOT) -> list[str]:
    """Mirror the site's sources into ``srcdir``; return the files (re)written.

    Files already there with the same content are left alone (their modification times tell
    Sphinx nothing changed); files no longer in the repository are removed.
    """
    wanted: dict[Path, bytes] = {}
    for page in sorted(SITE_SOURCES.glob("*.md")):
        wanted[srcdir / page.name] = page.read_bytes()
    for nb in course_notebooks(root):
        wanted[srcdir / "notebooks" / nb.name] = _staged_notebook(nb)
    for nb in solution_notebooks(root):
        wanted[srcdir / "notebooks" / "solutions" / nb.name] = _staged_notebook(nb)
    journal = root / "learning_journal.md"
    if journal.is_file():
        wanted[srcdir / journal.name] = journal.read_bytes()

    written = []
    for target, content in wanted.items():
        if target.is_file() and target.read_bytes() == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(str(target.relative_to(srcdir)))
    for stale in sorted(p for p in srcdir.rglob("*") if p.is_file()):
        if stale not in wanted and stale.suffix in {".md", ".ipynb"}:
            stale.unlink()
    return written


def mathjax_folder() -> Path:
    """MathJax 2 as shipped by the pinned ``jupyter-server-mathjax`` package."""
    import jupyter_server_mathjax

    folder = Path(jupyter_server_mathjax.__file__).resolve().parent / "static"
    if not (folder / "MathJax.js").is_file():
        raise RuntimeError(f"no MathJax.js in {folder}: is jupyter-server-mathjax installed?")
    return folder


def link_mathjax(static_dir: Path) -> None:
    """Make ``static_dir/mathjax`` point at MathJax, so Sphinx copies it to ``_static/mathjax``."""
    static_dir.mkdir(parents=True, exist_ok=True)
    link = static_dir / "mathjax"
    source = mathjax_folder()
    if link.is_symlink() and link.resolve() == source:
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    link.symlink_to(source, target_is_directory=True)


def _on_config_inited(app: Sphinx, config) -> None:
    written = stage_sources(Path(app.srcdir))
    if written:
        logger.info(f"staged {len(written)} changed source file(s): {', '.join(written)}")
    link_mathjax(Path(config.course_static_dir))


# --------------------------------------------------------------------------- gallery


def _title(nb: dict, fallback: str) -> str:
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            match = re.search(r"^#\s+(.+?)\s*$", "".join(cell["source"]), flags=re.MULTILINE)
            if match:
                return match.group(1).replace("`", "")
    return fallback


def saved_figures(notebooks: list[Path]) -> list[dict]:
    """Figures the notebooks save: one entry per name, credited to the last notebook naming it.

    Each entry: ``name``, ``doc`` (the notebook's document name), ``title`` (its heading) and
    ``alt`` (``mystnb.image.alt`` of the first code cell naming the figure, or ``None``).
    """
    found: dict[str, dict] = {}
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        title = _title(nb, path.stem)
        for cell in nb.get("cells", []):
            if cell.get("cell_type") != "code":
                continue
            for name in FIGURE_NAME.findall("".join(cell["source"])):
                alt = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")
                previous = found.pop(name, None)
                found[name] = {
                    "name": name, "doc": f"notebooks/{path.stem}", "title": title,
                    "alt": alt or (previous or {}).get("alt"),
                }
    return list(found.values())


class CourseFigures(SphinxDirective):
    """``course-figures``: every figure the notebooks save in ``outputs/``, with its notebook."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        srcdir = Path(self.env.srcdir)
        outputs = ROOT / "outputs"
        copies = srcdir / "_figures"
        copies.mkdir(exist_ok=True)
        result: list[nodes.Node] = []
        for figure in saved_figures(sorted((srcdir / "notebooks").glob("[0-9][0-9]_*.ipynb"))):
            source = outputs / figure["name"]
            if not source.is_file():
                logger.warning(
                    f"{figure['doc']} names {figure['name']} but outputs/{figure['name']} does "
                    "not exist: run that notebook (or delete build/site to re-execute all)",
                    location=(self.env.docname, self.lineno), type="course", subtype="figure",
                )
                continue
            shutil.copy2(source, copies / figure["name"])
            self.env.note_dependency(str(source))
            alt = figure["alt"]
            if not alt:
                # The site test fails on an image whose alt text is its file name.
                logger.info(
                    f"{figure['doc']}: the cell that saves {figure['name']} has no alt text "
                    '(cell metadata {"mystnb": {"image": {"alt": "..."}}})'
                )
                alt = figure["name"]
            node = nodes.figure(classes=["course-figure"])
            node += nodes.image(uri=f"/_figures/{figure['name']}", alt=alt)
            caption = nodes.caption()
            caption += nodes.literal(text=figure["name"])
            caption += nodes.Text(", saved by ")
            ref = addnodes.pending_xref(
                "", refdomain="std", reftype="doc", reftarget=f"/{figure['doc']}",
                refexplicit=True, refwarn=True,
            )
            ref += nodes.inline(text=figure["title"])
            caption += ref
            node += caption
            result.append(node)
        if not result:
            logger.warning("no figure saved by any notebook was found in outputs/",
                           location=(self.env.docname, self.lineno), type="course",
                           subtype="figure")
        return result


class CourseMap(SphinxDirective):
    """``course-map``: the notebooks in order, each with its title and one-line summary.

    Content: one line per notebook, ``NN_name.ipynb | summary (MyST markdown)``. The title
    comes from the notebook's first heading. A notebook without a summary is a warning; a
    summary of a notebook that is not (yet) in the course is left out.
    """

    has_content = True

    def run(self) -> list[nodes.Node]:
        summaries = {}
        for line in self.content:
            if line.strip():
                name, _, summary = line.partition("|")
                summaries[name.strip()] = summary.strip()
        items = []
        srcdir = Path(self.env.srcdir)
        for path in sorted((srcdir / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            summary = summaries.get(path.name)
            if not summary:
                logger.warning(f"course-map: no summary for {path.name}",
                               location=(self.env.docname, self.lineno), type="course",
                               subtype="map")
                summary = ""
            title = _title(json.loads(path.read_text(encoding="utf-8")), path.stem)
            items.append(f"1. [{title}](notebooks/{path.name})\n\n   {summary}\n")
        container = nodes.container(classes=["course-map"])
        container += self.parse_text_to_nodes("\n".join(items))
        return [container]


class CourseSolutions(SphinxDirective):
    """``course-solutions``: a table of contents of ``notebooks/solutions/*``, or a note.

    (A glob toctree would warn, and so fail the build, while the folder is still empty.)
    """

    has_content = False

    def run(self) -> list[nodes.Node]:
        srcdir = Path(self.env.srcdir)
        docs = [f"notebooks/solutions/{p.stem}"
                for p in sorted((srcdir / "notebooks" / "solutions").glob("*.ipynb"))]
        if not docs:
            return self.parse_text_to_nodes("No solutions notebook has been written yet.")
        toctree = "\n".join(["```{toctree}", ":titlesonly:", "", *docs, "```"])
        return self.parse_text_to_nodes(toctree)


class ReadmeIsTheHomePage(SphinxPostTransform):
    """A link to the repository's ``README.md`` (the course overview) goes to the home page.

    In JupyterLab such a link opens the README; the site has its home page instead.
    """

    default_priority = 5  # before MyST resolves its references (9)

    def run(self, **kwargs) -> None:
        for node in list(self.document.findall(addnodes.pending_xref)):
            target = node.get("reftarget", "")
            if node.get("reftype") == "myst" and Path(target).name == "README.md":
                uri = self.app.builder.get_relative_uri(self.env.docname,
                                                        self.config.root_doc)
                ref = nodes.reference("", "", internal=True, refuri=uri)
                ref += node.children
                node.replace_self(ref)


def _myst_nb_outputs_in_build(app: Sphinx) -> None:
    """Keep myst-nb's extracted outputs in ``build/site`` (it defaults to beside outdir)."""
    app.env.mystnb_config = app.env.mystnb_config.copy(
        output_folder=str(ROOT / "build" / "site" / "jupyter_execute")
    )


def _read_gallery_last(app: Sphinx, env, docnames: list[str]) -> None:
    if GALLERY_DOC in docnames:
        docnames.remove(GALLERY_DOC)
        docnames.append(GALLERY_DOC)


def _pages_made_from_other_files(app: Sphinx, env, added, changed, removed) -> list[str]:
    """Read the home, solutions and gallery pages on every build (they list other files)."""
    return [doc for doc in GENERATED_LISTS if doc in env.found_docs]


def setup(app: Sphinx) -> dict:
    app.add_config_value("course_static_dir", str(ROOT / "build" / "site" / "static"), "env")
    app.connect("config-inited", _on_config_inited)
    app.add_directive("course-figures", CourseFigures)
    app.add_directive("course-map", CourseMap)
    app.add_directive("course-solutions", CourseSolutions)
    app.add_post_transform(ReadmeIsTheHomePage)
    app.connect("builder-inited", _myst_nb_outputs_in_build, priority=900)
    app.connect("env-get-outdated", _pages_made_from_other_files)
    app.connect("env-before-read-docs", _read_gallery_last)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
