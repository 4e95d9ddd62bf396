"""Sphinx configuration of the course site: Sphinx + myst-nb + sphinx-book-theme.

``make html`` runs ``sphinx-build -c site build/site/src outputs/html``; the extension
``scripts/course_site.py`` stages the notebooks and pages into ``build/site/src`` first.
Everything the site loads is local: MathJax 2 from the pinned ``jupyter-server-mathjax``
package, the theme's own fonts and scripts, and no widget JavaScript from a CDN.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "site"
sys.path.insert(0, str(ROOT / "scripts"))

import course_site  # noqa: E402  (needs the path above)

project = "Attention from Scratch"
author = "the Attention from Scratch authors"
copyright = "the Attention from Scratch authors"
html_title = project
language = "en"

extensions = ["myst_nb", "course_site"]
root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "_figures"]

# ---------------------------------------------------------------------------- notebooks
# Execute in the staged copy of notebooks/ (cwd = the notebook's folder, as in JupyterLab);
# cache the results by notebook code *and* library version, in build/.
nb_execution_mode = "cache"
nb_execution_cache_path = str(BUILD / "cache" / course_site.library_digest())
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 600
nb_output_folder = str(BUILD / "jupyter_execute")
nb_merge_streams = True
# No widget manager JavaScript from a CDN: an explorer shows its static HTML (hover heatmap).
nb_ipywidgets_js: dict = {}
nb_mime_priority_overrides = [
    ("html", "application/vnd.jupyter.widget-view+json", None),
    ("html", "application/vnd.jupyter.widget-state+json", None),
]
nb_render_markdown_format = "myst"

for _old in (BUILD / "cache").glob("*") if (BUILD / "cache").is_dir() else ():
    if _old.name != Path(nb_execution_cache_path).name:
        shutil.rmtree(_old, ignore_errors=True)

# ---------------------------------------------------------------------------- markdown
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_dmath_double_inline = True
myst_heading_anchors = 4
myst_heading_slug_func = "course_site.jupyter_slug"
# MyST would write a MathJax 3/4 configuration; the site uses MathJax 2 (configured below),
# which finds exactly the \( \) and \[ \] delimiters Sphinx writes around math.
myst_update_mathjax = False

# ---------------------------------------------------------------------------- math, offline
course_static_dir = str(BUILD / "static")
# MathJax 2 of the pinned jupyter-server-mathjax package: its combined configuration, HTML-CSS
# output with the STIX-Web fonts the package ships (course.css keeps the hidden MathML for
# screen readers off the TeX fonts it does not ship).
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
mathjax2_config = {
    # Exactly the delimiters Sphinx writes around math.
    "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]},
    # Automatic line breaks: a formula longer than a phone's line wraps instead of being cut.
    "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web",
                 "imageFont": None, "linebreaks": {"automatic": True}},
    # The fast preview would draw with MathJax's TeX fonts, which the package does not ship.
    "fast-preview": {"disabled": True},
    "messageStyle": "none",
}

# ---------------------------------------------------------------------------- theme
html_theme = "sphinx_book_theme"
html_static_path = ["_static", course_static_dir]
html_css_files = ["course.css"]
html_js_files = ["course.js"]
html_last_updated_fmt = None
html_copy_source = True
html_sourcelink_suffix = ""
html_show_sphinx = False
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "use_source_button": False,
    "use_issues_button": False,
    "use_edit_page_button": False,
    "navigation_with_keys": False,
    "search_bar_text": "Search the course…",
}
