"""The site in headless Chromium, from ``file://``, with the network unreachable.

Every page is opened at a desktop width (1280 px) and a phone width (390 px) and asked whether
its equations were typeset by the local MathJax, its images decoded and described, and whether
it scrolls sideways. Search, the sidebar and folded solutions are used as a learner uses them.
Screenshots of a few pages at both widths are kept as ``outputs/site_<page>_<width>.png``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image
from site_layout import (
    ALL_PAGES,
    LESSON_PAGES,
    ROOT,
    SITE,
    SOLUTION_PAGES,
    alt_problem,
    notebook_of,
    read_notebook,
)

if TYPE_CHECKING:
    from conftest import Chromium

WIDTHS = {"desktop": 1280, "phone": 390}
SCREENSHOT_PAGES = ["index.html", "notebooks/02_single_head_attention.html", "gallery.html"]

# MathJax 2 declares a font at url(about:blank) on purpose, to measure fallback widths;
# Chromium refuses it. That one failure is expected; every other one is a defect.
EXPECTED_FAILURES = {"about:blank"}

# Display math left as text, or TeX commands outside MathJax's output, mean typesetting failed.
RAW_TEX = re.compile(
    r"\$\$|\\\(|\\\[|\\(?:frac|sqrt|text|mathrm|mathbf|sum|top|left|right|begin|end|cdot)\b"
)

WAIT_FOR_MATHJAX = """
new Promise(resolve => {
  const start = Date.now();
  (function poll() {
    const hub = window.MathJax && window.MathJax.Hub;
    if (!document.querySelector(".math")) {
      resolve("no math");
    } else if (hub && hub.Startup && hub.Startup.signal.posted.includes("End")) {
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
                        ".MathJax_Display, .MJX_Assistive_MathML, .highlight")
      .forEach(n => n.remove());
  const width = window.innerWidth;
  // Content wider than the screen must sit in a box that scrolls sideways by itself;
  // anything else either widens the page or is cut off where nobody can reach it.
  // (Off-canvas panels -- the folded sidebars, fixed or moved off the screen -- are not content.)
  const scrolls = el => {
    for (let a = el; a && a !== document.body; a = a.parentElement) {
      const style = getComputedStyle(a), box = a.getBoundingClientRect();
      if (style.position === "fixed" || box.left >= width || box.right <= 0) return true;
      const o = style.overflowX;
      if (a !== el && (o === "auto" || o === "scroll") &&
          a.getBoundingClientRect().right <= width + 1) {
        return true;
      }
    }
    return false;
  };
  const wide = Array.from(document.querySelectorAll("body *")).filter(el => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.right > width + 1 && el.checkVisibility() &&
           !el.closest(".MJX_Assistive_MathML") &&  // MathJax's hidden copy for screen readers
           !scrolls(el);
  }).filter(el => !Array.from(el.children).some(c => c.getBoundingClientRect().right > width + 1))
    .slice(0, 5).map(el => el.tagName + "." + el.className + " right=" +
                     Math.round(el.getBoundingClientRect().right));
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: width,
    wide: wide,
    sources: document.querySelectorAll('script[type^="math/tex"]').length,
    rendered: document.querySelectorAll("span.MathJax, div.MathJax_Display span.MathJax").length,
    errors: Array.from(document.querySelectorAll("span.MathJax")).filter(el =>
      el.querySelector(".noError, .merror") ||
      /<merror>|<mtext mathcolor="red">\\\\/.test(el.getAttribute("data-mathml") || "")
    ).map(el => (document.getElementById(el.id.replace(/-Frame$/, "")) || el).textContent),
    prose: copy.textContent,
    images: Array.from(document.images).map(img => ({
      src: img.getAttribute("src"), complete: img.complete, width: img.naturalWidth,
      alt: img.getAttribute("alt")})),
    fonts: Array.from(document.fonts).map(f => [f.family, f.status]),
  };
})()
"""


def open_page(browser: Chromium, page: str, width: int) -> dict:
    browser.set_width(width)
    browser.open((SITE / page).as_uri())
    facts = {"mathjax": browser.evaluate(WAIT_FOR_MATHJAX, timeout=40)}
    facts.update(browser.evaluate(INSPECT))
    facts["network"] = browser.network_events()
    facts["exceptions"] = [e["params"]["exceptionDetails"] for e in browser.events
                           if e["method"] == "Runtime.exceptionThrown"]
    return facts


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
@pytest.mark.parametrize("page", ALL_PAGES)
def test_page_in_the_browser(site: Path, browser: Chromium, page: str, width: int) -> None:
    facts = open_page(browser, page, width)

    events = facts["network"]
    url_of = {e["params"]["requestId"]: e["params"]["request"]["url"] for e in events
              if e["method"] == "Network.requestWillBeSent"}
    remote = [u for u in url_of.values() if urlsplit(u).scheme not in {"file", "data", "about"}]
    assert remote == [], f"{page} requested {remote}"
    failed = [(url_of.get(e["params"]["requestId"]), e["params"]["errorText"]) for e in events
              if e["method"] == "Network.loadingFailed"
              and url_of.get(e["params"]["requestId"]) not in EXPECTED_FAILURES]
    assert failed == [], f"{page} failed to load {failed}"
    assert facts["exceptions"] == [], f"JavaScript errors on {page}: {facts['exceptions']}"

    assert facts["scrollWidth"] <= facts["innerWidth"], (
        f"{page} at {width} px scrolls sideways: {facts['scrollWidth']} px wide; "
        f"widest elements: {facts['wide']}"
    )
    assert facts["wide"] == [], f"{page} at {width} px cuts off {facts['wide']}"

    assert facts["mathjax"], f"MathJax did not load or finish on {page}"
    assert facts["rendered"] >= facts["sources"], (
        f"{page}: {facts['sources']} equations found, {facts['rendered']} rendered"
    )
    assert facts["errors"] == [], f"{page}: TeX that MathJax could not typeset: {facts['errors']}"
    leftover = sorted(set(RAW_TEX.findall(facts["prose"])))
    assert leftover == [], f"{page} shows raw TeX in its text: {leftover}"
    stix = {status for family, status in facts["fonts"] if family.startswith("STIXMathJax")}
    assert "error" not in stix, f"MathJax fonts on {page}: {facts['fonts']}"
    if facts["sources"]:
        assert "loaded" in stix, f"MathJax's local fonts did not load on {page}: {facts['fonts']}"

    broken = [img["src"] for img in facts["images"] if not img["complete"] or img["width"] <= 0]
    assert broken == [], f"{page}: images that did not load: {broken}"
    undescribed = [(img["src"], problem) for img in facts["images"]
                   if (problem := alt_problem(img["alt"], img["src"] or ""))
                   and "/_static/" not in (img["src"] or "")]
    assert undescribed == [], f"{page}: images without a description: {undescribed}"
    if page in LESSON_PAGES:
        assert facts["images"], f"{page} shows no image"
        assert facts["sources"] > 0, f"no equation was typeset on {page}"


# ------------------------------------------------------------------------ using the site


def test_search_finds_the_masking_notebook(site: Path, browser: Chromium) -> None:
    browser.set_width(1280)
    browser.open((SITE / "search.html").as_uri())
    browser.wait_until("!!document.querySelector('.bd-search-container input[name=q]')")
    browser.evaluate("document.querySelector('.bd-search-container input[name=q]').focus()")
    browser.call("Input.insertText", {"text": "causal mask"})
    browser.events.clear()
    browser.press_enter()
    browser.wait_for_event("Page.loadEventFired")
    hrefs = browser.wait_until("""(() => {
        const links = Array.from(document.querySelectorAll('#search-results ul.search li a'));
        const done = document.querySelector('#search-results p.search-summary');
        return done && links.length ? links.map(a => a.getAttribute('href')) : null;
    })()""", timeout=30)
    assert "?q=causal+mask" in browser.evaluate("location.search + ''") or "q=causal" in (
        browser.evaluate("location.href"))
    pages = [h.split("#")[0].split("?")[0] for h in hrefs]
    assert "notebooks/03_masking.html" in pages[:3], f"results for 'causal mask': {pages}"


SIDEBAR_LINKS = """(() => {
  const root = document.querySelector(%s);
  if (!root) return null;
  return Array.from(root.querySelectorAll('a')).filter(a => {
    const r = a.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.right > 0 && r.left < innerWidth &&
           a.checkVisibility({visibilityProperty: true});
  }).map(a => new URL(a.getAttribute('href'), location.href).pathname.split('/html/')[1]);
})()"""


def test_sidebar_on_desktop_lists_every_notebook(site: Path, browser: Chromium) -> None:
    browser.set_width(1280)
    browser.open((SITE / LESSON_PAGES[1]).as_uri())
    visible = browser.evaluate(SIDEBAR_LINKS % json.dumps(".bd-sidebar-primary")) or []
    missing = [page for page in LESSON_PAGES if page not in visible]
    assert missing == [], f"desktop sidebar does not show {missing} (shows {visible})"


def test_sidebar_on_desktop_folds_away_from_its_button(site: Path, browser: Chromium) -> None:
    browser.set_width(1280)
    browser.open((SITE / LESSON_PAGES[1]).as_uri())
    browser.evaluate("""Array.from(document.querySelectorAll('button.primary-toggle'))
        .find(b => b.getBoundingClientRect().width > 0).click()""")
    hidden = browser.wait_until(SIDEBAR_LINKS % json.dumps(".bd-sidebar-primary")
                                + ".length === 0")
    assert hidden
    browser.evaluate("""Array.from(document.querySelectorAll('button.primary-toggle'))
        .find(b => b.getBoundingClientRect().width > 0).click()""")
    shown = browser.wait_until(SIDEBAR_LINKS % json.dumps(".bd-sidebar-primary"))
    assert set(LESSON_PAGES) <= set(shown)


def test_sidebar_on_a_phone_opens_from_its_button(site: Path, browser: Chromium) -> None:
    browser.set_width(390, 844)
    browser.open((SITE / LESSON_PAGES[1]).as_uri())
    before = browser.evaluate(SIDEBAR_LINKS % json.dumps(".bd-sidebar-primary")) or []
    assert not set(LESSON_PAGES) <= set(before), "on a phone the sidebar should start folded"
    browser.evaluate("""Array.from(document.querySelectorAll('button.primary-toggle'))
        .find(b => b.getBoundingClientRect().width > 0).click()""")
    visible = browser.wait_until(
        SIDEBAR_LINKS % json.dumps("#pst-primary-sidebar-modal") + "?.length > 0 && "
        + SIDEBAR_LINKS % json.dumps("#pst-primary-sidebar-modal"))
    missing = [page for page in LESSON_PAGES if page not in visible]
    assert missing == [], f"phone sidebar does not show {missing} (shows {visible})"


def test_on_this_page_contents_on_desktop_and_phone(site: Path, browser: Chromium) -> None:
    page = LESSON_PAGES[2]
    sections = [a for a in browser_sections(browser, page, 1280)]
    assert len(sections) >= 5, f"desktop 'on this page' lists {sections}"
    browser.set_width(390, 844)
    browser.open((SITE / page).as_uri())
    assert not browser.evaluate(SIDEBAR_LINKS % json.dumps(".bd-sidebar-secondary"))
    browser.evaluate("""Array.from(document.querySelectorAll('button.secondary-toggle'))
        .find(b => b.getBoundingClientRect().width > 0).click()""")
    shown = browser.wait_until(
        SIDEBAR_LINKS % json.dumps("#pst-secondary-sidebar-modal") + "?.length > 0 && "
        + SIDEBAR_LINKS % json.dumps("#pst-secondary-sidebar-modal"))
    assert len(shown) == len(sections), f"phone 'on this page': {shown}"


def browser_sections(browser: Chromium, page: str, width: int) -> list[str]:
    browser.set_width(width)
    browser.open((SITE / page).as_uri())
    return browser.evaluate(SIDEBAR_LINKS % json.dumps(".bd-sidebar-secondary")) or []


FOLDED = """Array.from(document.querySelectorAll('details.hide')).map(d => ({
  open: d.open,
  code: d.querySelector('div.cell_input').checkVisibility(),
}))"""


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_solutions_unfold_on_click(site: Path, browser: Chromium, width: int) -> None:
    pages = [p for p in [*SOLUTION_PAGES, *LESSON_PAGES]
             if any({"solution", "hide-input"} & set(c.metadata.get("tags", []))
                    for c in read_notebook(notebook_of(p)).cells)]
    assert pages, "no page has a folded solution"
    browser.set_width(width)
    browser.open((SITE / pages[0]).as_uri())
    before = browser.evaluate(FOLDED)
    assert before and all(not d["open"] and not d["code"] for d in before), before
    browser.evaluate("document.querySelector('details.hide > summary').click()")
    after = browser.evaluate(FOLDED)
    assert after[0]["open"] and after[0]["code"], after[0]
    assert all(not d["open"] for d in after[1:]), "one click unfolded more than one solution"


# ------------------------------------------------------------------------ screenshots


def _not_blank(path: Path) -> None:
    with Image.open(path) as image:
        grey = np.asarray(image.convert("L"))
    assert grey.max() - grey.min() > 100 and grey.std() > 10, f"{path.name} looks blank"


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
@pytest.mark.parametrize("page", SCREENSHOT_PAGES)
def test_screenshot(site: Path, browser: Chromium, page: str, width: int) -> None:
    """First screen of the page, and for a lesson its first figure, as a learner sees them."""
    open_page(browser, page, width)
    name = Path(page).stem.split("_")[0]
    path = ROOT / "outputs" / f"site_{name}_{width}.png"
    browser.screenshot(path)
    _not_blank(path)
    if page in LESSON_PAGES:
        browser.evaluate("document.querySelector('div.cell_output img').scrollIntoView()")
        browser.evaluate("new Promise(r => setTimeout(r, 200))")
        figure = ROOT / "outputs" / f"site_{name}_figure_{width}.png"
        browser.screenshot(figure)
        _not_blank(figure)


# ------------------------------------------------------------------------ hover heatmaps

HOVER_FACTS = """Array.from(document.querySelectorAll('.attention-hover svg')).map(svg => ({
  width: svg.getBoundingClientRect().width,
  cells: svg.querySelectorAll('rect.cell').length,
  titled: Array.from(svg.querySelectorAll('rect.cell')).filter(r =>
    /: (\\d\\.\\d{3}|masked)$/.test((r.querySelector('title') || {}).textContent || '')).length,
}))"""


def test_hover_heatmap_works_offline_in_the_browser(browser: Chromium, tmp_path: Path) -> None:
    """A page with only a HoverHeatmap's HTML: drawn, one tooltip per cell, nothing fetched."""
    from helpers import create_causal_mask, softmax
    from helpers.course.hover import HoverHeatmap

    scores = np.random.default_rng(0).normal(size=(2, 5, 5))
    weights = softmax(np.where(create_causal_mask(5), scores, -np.inf), axis=-1)
    page = tmp_path / "hover.html"
    heatmap = HoverHeatmap(weights, list("abcde"), mask=create_causal_mask(5))
    page.write_text('<!doctype html><meta charset=utf-8><meta name="viewport" '
                    'content="width=device-width"><body>' + heatmap._repr_html_(),
                    encoding="utf-8")
    browser.set_width(390)
    events = browser.open(page.as_uri())
    remote = [e["params"]["request"]["url"] for e in events
              if e["method"] == "Network.requestWillBeSent" and e["params"]["request"]["url"]
              != page.as_uri()]
    assert remote == []
    facts = browser.evaluate(HOVER_FACTS)
    assert facts == [{"width": facts[0]["width"], "cells": 50, "titled": 50}]
    assert 0 < facts[0]["width"] <= 390
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390


def test_hover_heatmaps_on_the_site_have_a_tooltip_per_cell(site: Path, browser: Chromium) -> None:
    """Every hover heatmap or explorer a lesson shows (cells of notebooks 02, 04, 06)."""
    browser.set_width(1280)
    for page in LESSON_PAGES:
        browser.open((SITE / page).as_uri())
        for facts in browser.evaluate(HOVER_FACTS):
            assert facts["width"] > 0 and facts["cells"] > 0, f"{page}: {facts}"
            assert facts["titled"] == facts["cells"], f"{page}: cells without weight: {facts}"
