"""The static site in ``outputs/html/`` (``make html``), read as a learner would read it.

Static checks parse the HTML; browser checks open each page from ``file://`` in headless
Chromium with the network unreachable and ask the page itself whether its equations were
typeset by the local MathJax and its figures decoded. One screenshot of a notebook page
with equations and a figure is kept as ``outputs/site_screenshot.png``.

Run with ``make test-site`` (builds the site first). Nothing here builds or executes notebooks;
a missing site or a missing Chromium fails the test rather than skipping it.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
from bs4 import BeautifulSoup
from PIL import Image

if TYPE_CHECKING:
    from conftest import Chromium

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "outputs" / "html"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LESSON_PAGES = [nb.stem + ".html" for nb in NOTEBOOKS]
ALL_PAGES = ["index.html", *LESSON_PAGES, "learning_journal.html"]
SCREENSHOT = ROOT / "outputs" / "site_screenshot.png"
SCREENSHOT_PAGE = "02_single_head_attention.html"  # equations and the first attention heatmap

# MathJax 2 declares a font at url(about:blank) on purpose, to measure fallback widths;
# Chromium refuses it. That one failure is expected; every other one is a defect.
EXPECTED_FAILURES = {"about:blank"}

# Display math left as text, or TeX commands outside MathJax's output, mean typesetting failed.
RAW_TEX = re.compile(r"\$\$|\\(?:frac|sqrt|text|mathrm|mathbf|sum|top|left|right|begin|end|cdot)\b")


def soup_of(page: str) -> BeautifulSoup:
    return BeautifulSoup((SITE / page).read_text(encoding="utf-8"), "html.parser")


def test_there_are_seven_notebooks() -> None:
    assert len(NOTEBOOKS) == 7, f"expected the course's seven notebooks, found {len(NOTEBOOKS)}"


# ------------------------------------------------------------------------ static checks


def test_index_lists_every_notebook_in_order(site: Path) -> None:
    index = soup_of("index.html")
    assert index.title is not None and "Attention from Scratch" in index.title.get_text()
    assert index.find("h2", string=re.compile("What you will learn")), "no learning objectives"
    links = index.select("ol.lessons a.lesson-title")
    assert [a["href"] for a in links] == LESSON_PAGES
    for a, summary, nb in zip(links, index.select("ol.lessons .lesson-summary"), NOTEBOOKS,
                              strict=True):
        assert a.get_text().startswith(nb.name[:2]), f"title {a.get_text()!r} lacks its number"
        assert len(summary.get_text(strip=True)) > 20, f"no one-line summary for {nb.name}"
        assert (site / a["href"]).is_file()


@pytest.mark.parametrize("position", range(len(LESSON_PAGES)), ids=LESSON_PAGES)
def test_page_links_to_previous_and_next(site: Path, position: int) -> None:
    page = soup_of(LESSON_PAGES[position])
    want_prev = [LESSON_PAGES[position - 1]] * 2 if position > 0 else []
    want_next = [LESSON_PAGES[position + 1]] * 2 if position + 1 < len(LESSON_PAGES) else []
    assert [a["href"] for a in page.select("nav.course-nav a[rel=prev]")] == want_prev
    assert [a["href"] for a in page.select("nav.course-nav a[rel=next]")] == want_next
    assert len(page.select("nav.course-nav a[href='index.html']")) == 2


@pytest.mark.parametrize("page", ALL_PAGES)
def test_page_loads_nothing_from_the_network(site: Path, page: str) -> None:
    html = (site / page).read_text(encoding="utf-8")
    soup = BeautifulSoup(html, "html.parser")
    remote = [
        f"<{el.name} {attr}={el[attr]}>"
        for el in soup.find_all(["script", "link", "img", "iframe", "source", "embed"])
        for attr in ("src", "href")
        if el.get(attr) and (urlsplit(el[attr]).scheme in {"http", "https"}
                             or el[attr].startswith("//"))
    ]
    remote += re.findall(r"(?:url\(|import\(|@import)\s*['\"]?(?:https?:)?//[^'\")\s]+", html)
    assert remote == [], f"{page} fetches from the network: {remote}"
    scripts = [el["src"] for el in soup.find_all("script", src=True)]
    assert any(s.startswith("mathjax/MathJax.js") for s in scripts), f"{page}: {scripts}"


@pytest.mark.parametrize("page", ALL_PAGES)
def test_local_links_resolve(site: Path, page: str) -> None:
    soup = soup_of(page)
    broken = []
    for el in soup.find_all(["a", "img", "link", "script"]):
        for attr in ("href", "src"):
            value = el.get(attr)
            if not value:
                continue
            parts = urlsplit(value)
            if parts.scheme or parts.netloc or not (parts.path or parts.fragment):
                continue
            target = site / unquote(parts.path) if parts.path else site / page
            if not target.is_file():
                broken.append(value)
            elif parts.fragment and target.suffix == ".html":
                # A browser tries the fragment as written, then percent-decoded.
                ids = {el["id"] for el in BeautifulSoup(target.read_text(encoding="utf-8"),
                                                        "html.parser").find_all(id=True)}
                if parts.fragment not in ids and unquote(parts.fragment) not in ids:
                    broken.append(value)
    assert broken == [], f"{page} links to missing files or anchors: {broken}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.name for nb in NOTEBOOKS])
def test_executed_copy_matches_its_notebook(site: Path, notebook: Path) -> None:
    copy = ROOT / "build" / "executed" / notebook.name
    assert copy.is_file(), f"{copy} missing: the site was built without this notebook"
    original = nbformat.read(notebook, as_version=4)
    executed = nbformat.read(copy, as_version=4)
    assert [c.source for c in executed.cells] == [c.source for c in original.cells], (
        f"{copy.name} is stale: rebuild the site"
    )
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.name for nb in NOTEBOOKS])
def test_page_shows_every_cell_and_folds_solutions(site: Path, notebook: Path) -> None:
    nb = nbformat.read(ROOT / "build" / "executed" / notebook.name, as_version=4)
    page = soup_of(notebook.stem + ".html")
    assert len(page.select(".jp-Cell")) == sum(c.cell_type != "raw" for c in nb.cells)
    solutions = sum("solution" in c.metadata.get("tags", []) for c in nb.cells)
    assert len(page.select("details.solution .jp-CodeCell")) == solutions
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert len(page.select(".jp-OutputArea-output img")) >= figures


# The figures the notebooks of the course save in outputs/.
PROMISED_FIGURES = {"attention_heatmap.png", "multihead_comparison.png", "scaling_ablation.png",
                    "complexity.png"}


def test_figures_saved_by_notebooks_are_gathered(site: Path) -> None:
    saved = set(PROMISED_FIGURES)
    for notebook in NOTEBOOKS:
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type == "code":
                saved |= set(re.findall(r"\.\./outputs/([\w.-]+\.(?:png|svg))", cell.source))
    index = soup_of("index.html")
    shown = {Path(img["src"]).name for img in index.select(".figures img")}
    assert saved <= shown, f"saved by the notebooks but not on the site: {saved - shown}"
    for name in shown:
        with Image.open(site / "figures" / name) as image:
            assert image.width > 0 and image.height > 0


# ------------------------------------------------------------------------ in the browser

WAIT_FOR_MATHJAX = """
new Promise(resolve => {
  const start = Date.now();
  (function poll() {
    const hub = window.MathJax && window.MathJax.Hub;
    if (hub && hub.Startup && hub.Startup.signal.posted.includes("End")) {
      hub.Queue(function () { resolve(true); });   // after any typesetting still queued
    } else if (Date.now() - start > 30000) {
      resolve(false);
    } else {
      setTimeout(poll, 50);
    }
  })();
})
"""

INSPECT = """
(() => {
  const copy = document.body.cloneNode(true);
  copy.querySelectorAll("script, style, code, pre, .MathJax_Preview, .MathJax, " +
                        ".MathJax_Display, .MJX_Assistive_MathML").forEach(n => n.remove());
  const prose = copy.textContent;
  return {
    sources: document.querySelectorAll('script[type^="math/tex"]').length,
    rendered: document.querySelectorAll("span.MathJax").length,
    // TeX that failed to parse (noErrors shows it verbatim) or used an undefined macro
    // (noUndefined shows the macro name in red).
    errors: Array.from(document.querySelectorAll("span.MathJax")).filter(el =>
      el.querySelector(".noError, .merror") ||
      /<merror>|<mtext mathcolor="red">\\\\/.test(el.getAttribute("data-mathml") || "")
    ).map(el => (document.getElementById(el.id.replace(/-Frame$/, "")) || el).textContent),
    prose: prose,
    images: Array.from(document.images).map(img => ({
      src: img.src.slice(0, 80), complete: img.complete, width: img.naturalWidth})),
    fonts: Array.from(document.fonts).map(f => [f.family, f.status]),
  };
})()
"""


def open_page(browser: Chromium, page: str) -> dict:
    browser.open((SITE / page).as_uri())
    ready = browser.evaluate(WAIT_FOR_MATHJAX, timeout=40)
    facts = browser.evaluate(INSPECT)
    facts["mathjax"] = ready
    facts["network"] = browser.network_events()
    facts["exceptions"] = [e["params"]["exceptionDetails"] for e in browser.events
                           if e["method"] == "Runtime.exceptionThrown"]
    return facts


@pytest.mark.parametrize("page", ALL_PAGES)
def test_page_renders_offline(site: Path, browser: Chromium, page: str) -> None:
    facts = open_page(browser, page)
    events = facts["network"]

    requests = [e["params"]["request"]["url"] for e in events
                if e["method"] == "Network.requestWillBeSent"]
    remote = [u for u in requests if urlsplit(u).scheme not in {"file", "data", "about"}]
    assert remote == [], f"{page} requested {remote}"
    url_of = {e["params"]["requestId"]: e["params"]["request"]["url"] for e in events
              if e["method"] == "Network.requestWillBeSent"}
    failed = [(url_of.get(e["params"]["requestId"]), e["params"]["errorText"]) for e in events
              if e["method"] == "Network.loadingFailed"
              and url_of.get(e["params"]["requestId"]) not in EXPECTED_FAILURES]
    assert failed == [], f"{page} failed to load {failed}"
    assert facts["exceptions"] == [], f"JavaScript errors on {page}: {facts['exceptions']}"

    assert facts["mathjax"], f"MathJax did not load or finish on {page}"
    if page != "learning_journal.html":  # the learner's own text may hold no equation
        assert facts["sources"] > 0, f"no equation was typeset on {page}"
    assert facts["rendered"] == facts["sources"], (
        f"{page}: {facts['sources']} equations found, {facts['rendered']} rendered"
    )
    assert facts["errors"] == [], f"{page}: TeX that MathJax could not typeset: {facts['errors']}"
    leftover = sorted(set(RAW_TEX.findall(facts["prose"])))
    assert leftover == [], f"{page} shows raw TeX in its text: {leftover}"
    stix = {status for family, status in facts["fonts"] if family.startswith("STIXMathJax")}
    assert "error" not in stix, f"MathJax fonts on {page}: {facts['fonts']}"
    if facts["sources"]:
        assert "loaded" in stix, f"MathJax's local fonts did not load on {page}: {facts['fonts']}"

    broken = [img for img in facts["images"] if not img["complete"] or img["width"] <= 0]
    assert broken == [], f"{page}: images that did not load: {broken}"
    if page in LESSON_PAGES or soup_of(page).select(".figures img"):
        assert facts["images"], f"{page} shows no image"


def _region(browser: Chromium, selector: str, below: float | None = None) -> dict | None:
    """Page-coordinate box of the first element matching ``selector`` (below a y, if given)."""
    return browser.evaluate(f"""
      (() => {{
        const els = Array.from(document.querySelectorAll({selector!r})).map(el => {{
          const r = el.getBoundingClientRect();
          return {{x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}};
        }}).filter(r => r.width > 0 && r.height > 0);
        const below = {"null" if below is None else below};
        const pick = below === null ? els : els.filter(r => r.y < below);
        return pick.length ? pick[below === null ? 0 : pick.length - 1] : null;
      }})()
    """)


def _capture(browser: Chromium, top: float, bottom: float) -> Image.Image:
    width = browser.evaluate("document.documentElement.scrollWidth")
    shot = browser.call("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": max(0.0, top), "width": width, "height": bottom - max(0.0, top),
                 "scale": 1},
    })
    return Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")


def test_screenshot_shows_equations_and_a_figure(site: Path, browser: Chromium) -> None:
    page = SCREENSHOT_PAGE if SCREENSHOT_PAGE in LESSON_PAGES else LESSON_PAGES[0]
    facts = open_page(browser, page)
    assert facts["mathjax"] and facts["rendered"] > 0
    browser.call("Emulation.setDeviceMetricsOverride",
                 {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    figure = _region(browser, ".jp-OutputArea-output img")
    assert figure is not None, f"{page} has no figure to show"
    equation = _region(browser, ".MathJax_Display", below=figure["y"])
    equation = equation or _region(browser, ".MathJax_Display")
    assert equation is not None, f"{page} has no displayed equation to show"
    fig_bottom = figure["y"] + figure["height"] + 20
    if equation["y"] < figure["y"] and fig_bottom - equation["y"] <= 1500:
        image = _capture(browser, equation["y"] - 60, fig_bottom)
    else:
        top = _capture(browser, equation["y"] - 60, equation["y"] + equation["height"] + 60)
        bottom = _capture(browser, figure["y"] - 40, fig_bottom)
        image = Image.new("RGB", (max(top.width, bottom.width), top.height + bottom.height + 6),
                          "#d0d7de")
        image.paste(top, (0, 0))
        image.paste(bottom, (0, top.height + 6))
    image.save(SCREENSHOT)
    with Image.open(SCREENSHOT) as saved:
        assert saved.width >= 600 and saved.height >= 200
        colours = saved.convert("L").getextrema()
        assert colours[1] - colours[0] > 100, "the screenshot is blank"
