"""The built site (``make html``, in ``outputs/html/``) read as HTML: structure and offline use.

Nothing here builds or executes a notebook; a missing site fails every test (it is not a skip).
The browser checks are in ``test_site_browser.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from PIL import Image
from site_layout import (
    ALL_PAGES,
    CONTENT_PAGES,
    LESSON_PAGES,
    NOTEBOOKS,
    ROOT,
    SOLUTION_PAGES,
    SOLUTIONS,
    alt_problem,
    notebook_of,
    read_notebook,
    resolve,
    saved_figures,
    soup_of,
)

NOTEBOOK_PAGES = [*LESSON_PAGES, *SOLUTION_PAGES]
PAGE_BYTES_LIMIT = 600_000  # a long notebook page is ~270 KB; images are files, not inlined
INLINE_STYLE_LIMIT = 2_000  # characters: the stylesheets are shared files, not copied per page


def test_the_course_has_its_notebooks() -> None:
    numbers = [nb.name[:2] for nb in NOTEBOOKS]
    assert numbers[:7] == [f"{i:02d}" for i in range(1, 8)], numbers


def test_every_page_was_built(site: Path) -> None:
    missing = [page for page in ALL_PAGES if not (site / page).is_file()]
    assert missing == [], f"pages missing from {site}: {missing}"


# ------------------------------------------------------------------------ home page


def test_home_page_has_title_objectives_and_course_map(site: Path) -> None:
    home = soup_of("index.html")
    assert "Attention from Scratch" in home.title.get_text()
    assert home.find("h1").get_text(strip=True).startswith("Attention from Scratch")
    headings = [h.get_text(strip=True).rstrip("#") for h in home.find_all("h2")]
    assert "What you will learn" in headings and "Course map" in headings, headings
    objectives = home.find(id="what-you-will-learn").find_all("li")
    assert len(objectives) >= 5
    items = home.select(".course-map ol > li")
    assert [resolve("index.html", li.a["href"]) for li in items] == LESSON_PAGES
    for li, nb in zip(items, NOTEBOOKS, strict=True):
        title, *summary = li.find_all("p")
        assert title.get_text().startswith(nb.name[:2]), f"{title.get_text()!r} lacks its number"
        assert summary and len(summary[0].get_text(strip=True)) > 30, f"no summary: {nb.name}"


@pytest.mark.parametrize("page", CONTENT_PAGES)
def test_sidebar_lists_every_notebook(site: Path, page: str) -> None:
    sidebar = soup_of(page).select_one(".bd-sidebar-primary")
    assert sidebar is not None, f"{page} has no course sidebar"
    linked = {resolve(page, a["href"]) for a in sidebar.find_all("a", href=True)}
    wanted = {*LESSON_PAGES, "solutions.html", "learning_journal.html", "gallery.html"}
    assert wanted <= linked, f"{page}: sidebar lacks {sorted(wanted - linked)}"


@pytest.mark.parametrize("position", range(len(LESSON_PAGES)), ids=LESSON_PAGES)
def test_lesson_links_to_previous_and_next(site: Path, position: int) -> None:
    page = LESSON_PAGES[position]
    soup = soup_of(page)
    prev = [resolve(page, a["href"]) for a in soup.select(".prev-next-area a.left-prev")]
    nxt = [resolve(page, a["href"]) for a in soup.select(".prev-next-area a.right-next")]
    assert prev == [LESSON_PAGES[position - 1] if position else "index.html"]
    if position + 1 < len(LESSON_PAGES):
        assert nxt == [LESSON_PAGES[position + 1]]
    else:
        assert nxt == ["solutions.html"]


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_page_offers_its_notebook_for_download(site: Path, page: str) -> None:
    soup = soup_of(page)
    links = [resolve(page, a["href"]) for a in soup.select(".dropdown-download-buttons a")]
    source = notebook_of(page)
    wanted = f"_sources/{source.relative_to(ROOT).as_posix()}"
    assert wanted in links, f"{page}: download links {links}"
    downloaded = nbformat.read(site / wanted, as_version=4)
    assert [c.source for c in downloaded.cells] == [c.source for c in read_notebook(source).cells]


# ------------------------------------------------------------------------ offline, small pages


REMOTE = re.compile(r"""(?:url\(|@import|import\()\s*['"]?((?:https?:)?//[^'")\s]+)""")


@pytest.mark.parametrize("page", ALL_PAGES)
def test_page_loads_nothing_from_the_network(site: Path, page: str) -> None:
    html = (site / page).read_text(encoding="utf-8")
    soup = soup_of(page)
    remote = [
        f"<{el.name} {attr}={el[attr]}>"
        for el in soup.find_all(["script", "link", "img", "iframe", "source", "embed", "video"])
        for attr in ("src", "href")
        if el.get(attr) and (urlsplit(el[attr]).scheme in {"http", "https"}
                             or el[attr].startswith("//"))
        and not (el.name == "link" and el.get("rel") in (["canonical"], ["author"]))
    ]
    remote += REMOTE.findall(html)
    assert remote == [], f"{page} fetches from the network: {remote}"


def test_stylesheets_load_nothing_from_the_network(site: Path) -> None:
    remote = {
        str(css.relative_to(site)): found
        for css in sorted((site / "_static").rglob("*.css"))
        if (found := REMOTE.findall(css.read_text(encoding="utf-8", errors="replace")))
    }
    assert remote == {}, f"stylesheets that fetch fonts or styles from the network: {remote}"


@pytest.mark.parametrize("page", [p for p in CONTENT_PAGES if p != "index.html"])
def test_equations_use_the_local_mathjax(site: Path, page: str) -> None:
    soup = soup_of(page)
    if not soup.select(".math"):
        return  # no equation on this page (the browser test checks every page that has one)
    scripts = [resolve(page, s["src"]) for s in soup.find_all("script", src=True)]
    mathjax = [s for s in scripts if s and s.split("?")[0].endswith("MathJax.js")]
    assert len(mathjax) == 1 and mathjax[0].startswith("_static/mathjax/MathJax.js"), (
        f"{page} loads MathJax from {mathjax}"
    )
    assert (site / "_static" / "mathjax" / "MathJax.js").is_file()


@pytest.mark.parametrize("page", ALL_PAGES)
def test_page_is_small_and_shares_its_stylesheets(site: Path, page: str) -> None:
    size = (site / page).stat().st_size
    assert size < PAGE_BYTES_LIMIT, f"{page} is {size} bytes"
    inline = [len(style.get_text()) for style in soup_of(page).find_all("style")]
    assert all(n < INLINE_STYLE_LIMIT for n in inline), f"{page} inlines CSS: {inline} characters"
    sheets = [link["href"] for link in soup_of(page).find_all("link", rel="stylesheet")]
    assert any("course.css" in href for href in sheets), f"{page}: {sheets}"


@pytest.mark.parametrize("page", ALL_PAGES)
def test_local_links_resolve(site: Path, page: str) -> None:
    soup = soup_of(page)
    broken = []
    ids_of: dict[str, set[str]] = {}
    for el in soup.find_all(["a", "img", "link", "script"]):
        for attr in ("href", "src"):
            value = el.get(attr)
            target = resolve(page, value) if value else None
            if target is None or (value.startswith("#") and len(value) == 1):
                continue
            path = site / target
            if not path.is_file():
                broken.append(value)
                continue
            fragment = unquote(urlsplit(value).fragment)
            if fragment and path.suffix == ".html":
                if target not in ids_of:
                    ids_of[target] = {e["id"] for e in soup_of(target).find_all(id=True)}
                if fragment not in ids_of[target]:
                    broken.append(value)
    assert broken == [], f"{page} links to missing files or anchors: {broken}"


# ------------------------------------------------------------------------ notebook pages


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_page_shows_every_code_cell_and_figure(site: Path, page: str) -> None:
    nb = read_notebook(notebook_of(page))
    soup = soup_of(page)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(soup.select("div.cell")) == len(code)
    images = sum(
        "image/png" in out.get("data", {}) for c in code for out in c.get("outputs", [])
    )
    shown = len(soup.select("div.cell_output img"))
    assert shown >= images, f"{page}: {images} figures in the notebook, {shown} on the page"
    errors = soup.select("div.cell_output .output.traceback")
    assert errors == [], f"{page} shows an error traceback"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_solutions_are_folded(site: Path, page: str) -> None:
    """Every cell tagged ``solution`` or ``hide-input`` shows its code only when unfolded."""
    nb = read_notebook(notebook_of(page))
    tagged = [c for c in nb.cells if c.cell_type == "code"
              and {"solution", "hide-input"} & set(c.metadata.get("tags", []))]
    soup = soup_of(page)
    folded = [cell for cell in soup.select("div.cell")
              if cell.select_one("details.hide > div.cell_input")]
    assert len(folded) == len(tagged), f"{page}: {len(tagged)} solutions, {len(folded)} folded"
    for cell in soup.select("div.cell.tag_solution, div.cell.tag_hide-input"):
        code = cell.select_one("div.cell_input")
        assert code is not None and code.find_parent("details") is not None, (
            f"{page}: a solution's code is shown unfolded"
        )
        assert "open" not in code.find_parent("details").attrs


def test_solutions_have_pages_of_their_own(site: Path) -> None:
    assert SOLUTIONS, "no notebooks/solutions/*.ipynb: the exercise solutions have no pages"
    listed = {resolve("solutions.html", a["href"])
              for a in soup_of("solutions.html").select("article a[href]")}
    assert set(SOLUTION_PAGES) <= listed, f"solutions.html lacks {set(SOLUTION_PAGES) - listed}"
    for page in SOLUTION_PAGES:
        nb = read_notebook(notebook_of(page))
        hidden = [c for c in nb.cells if "hide-input" in c.metadata.get("tags", [])]
        assert hidden, f"{notebook_of(page).name}: no cell tagged hide-input"


@pytest.mark.parametrize("page", CONTENT_PAGES)
def test_every_image_has_alt_text(site: Path, page: str) -> None:
    """Alt text comes from the cell metadata ``{"mystnb": {"image": {"alt": "..."}}}``."""
    soup = soup_of(page)
    page_cells = soup.select("div.cell")
    code_ids = []
    if page.startswith("notebooks/"):
        code_ids = [c.get("id", "?") for c in read_notebook(notebook_of(page)).cells
                    if c.cell_type == "code"]
    problems = []
    for img in soup.select("article img"):
        problem = alt_problem(img.get("alt"), img.get("src", ""))
        if problem:
            cell = img.find_parent("div", class_="cell")
            where = ""
            if cell is not None and len(code_ids) == len(page_cells):
                where = f"(cell id {code_ids[page_cells.index(cell)]})"
            heading = img.find_previous(["h2", "h3"])
            section = heading.get_text(" ", strip=True).rstrip("#¶ ") if heading else "(top)"
            problems.append(f"{problem} {where} in section {section!r}")
    assert problems == [], f"{page}: images without a description:\n" + "\n".join(problems)


def test_gallery_shows_every_saved_figure(site: Path) -> None:
    figures = saved_figures()
    assert {"scaling_ablation.png", "multihead_comparison.png"} <= set(figures)
    gallery = soup_of("gallery.html")
    shown = {}
    for figure in gallery.select("figure.course-figure"):
        img = figure.find("img")
        shown[figure.figcaption.code.get_text()] = (img, figure.figcaption)
    assert set(shown) == set(figures), f"gallery {sorted(shown)} vs saved {sorted(figures)}"
    for name, (img, caption) in shown.items():
        nb_path, alt = figures[name]
        assert img["alt"] == (alt or name)
        link = resolve("gallery.html", caption.a["href"])
        assert link == f"notebooks/{nb_path.stem}.html", f"{name} credited to {link}"
        with Image.open(site / resolve("gallery.html", img["src"])) as image:
            assert image.width > 100 and image.height > 100
