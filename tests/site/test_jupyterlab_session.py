"""``make lab`` on a clone of the repository, driven by headless Chromium like a learner.

The clone holds the committed files only. ``make lab`` makes the learner's copies in
``my-work/`` and starts JupyterLab on them with the repository's settings; instead of a desktop
browser it is given a recorder for the address it would open, and Chromium opens that address.
The test waits for each notebook to load and its kernel to be idle, with autosave every second
(set in a throw-away user-settings folder), and checks that no notebook is marked modified, no
news pop-up appears, the file browser shows ``my-work/``, and after JupyterLab stops ``git
status`` of the clone is clean and the copies are still as ``make lab`` made them.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from site_layout import ROOT

from helpers.exercises import workspace

if TYPE_CHECKING:
    from conftest import Chromium

VENV = Path(sys.prefix)  # the .venv running the tests: make lab uses it as it is
AUTOSAVE_SECONDS = 1
SETTLE_SECONDS = 3 * AUTOSAVE_SECONDS + 1  # long enough for autosave to write a modified file
OPENED_TOO = ["notebooks/08_capstone_training.ipynb", "notebooks/solutions/03_masking.ipynb"]

LAB_FACTS = """(() => ({
  current: Array.from(document.querySelectorAll('.lm-TabBar-tab.jp-mod-current'))
      .map(t => t.textContent.trim()).filter(Boolean),
  dirty: Array.from(document.querySelectorAll('.lm-TabBar-tab.jp-mod-dirty'))
      .map(t => t.textContent.trim()),
  kernel: (document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) ' +
            '.jp-Notebook-ExecutionIndicator') || {dataset: {}}).dataset.status || null,
  cells: document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').length,
  toasts: Array.from(document.querySelectorAll('.Toastify__toast')).map(t => t.textContent),
  folder: (document.querySelector('.jp-FileBrowser .jp-BreadCrumbs') || {}).textContent || '',
  files: Array.from(document.querySelectorAll('.jp-FileBrowser .jp-DirListing-itemText'))
      .map(e => e.textContent),
}))()"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """``make lab`` running in a fresh clone; yields the clone, the address and the process."""
    tmp = tmp_path_factory.mktemp("lab")
    clone = tmp / "repo"
    subprocess.run(["git", "clone", "--quiet", "--local", str(ROOT), str(clone)], check=True)
    address = tmp / "address.txt"
    recorder = tmp / "record_address.py"
    recorder.write_text(f"import sys\nopen({str(address)!r}, 'w').write(sys.argv[1])\n")
    docmanager = tmp / "user-settings" / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(
        json.dumps({"autosaveInterval": AUTOSAVE_SECONDS}))
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(tmp / "user-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTER_CONFIG_DIR=str(tmp / "config"),
               JUPYTER_DATA_DIR=str(tmp / "data"))
    browser_command = f"{sys.executable} {recorder} %s"
    flags = (f"--ServerApp.ip=127.0.0.1 --ServerApp.port={_free_port()} "
             f"--ServerApp.port_retries=0 --IdentityProvider.token=course-test "
             f"--ServerApp.browser={shlex.quote(browser_command)}")
    log = (tmp / "lab.log").open("w")
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-o", str(VENV / ".installed"), "lab",
         f"VENV={VENV}", f"LAB_FLAGS={flags}"],
        cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (address.is_file() and address.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = (tmp / "lab.log").read_text()
                pytest.fail(f"make lab did not open a browser; its log:\n{log_text}")
            time.sleep(0.2)
        yield {"clone": clone, "address": address.read_text(), "process": process}
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen) -> None:
    """Stop ``make lab`` and JupyterLab under it (their own process group, started above)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # JupyterLab stops its kernels and exits
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _settle(browser: Chromium, name: str) -> dict:
    """Wait until ``name`` is the current tab, its cells are drawn and its kernel is idle."""
    browser.wait_until(
        f"(f => f.current.includes({name!r}) && f.cells > 0 && f.kernel === 'idle')"
        f"({LAB_FACTS})", timeout=90)
    time.sleep(SETTLE_SECONDS)
    return browser.evaluate(LAB_FACTS)


def test_make_lab_leaves_the_notebooks_unmodified(lab: dict, browser: Chromium) -> None:
    browser.set_width(1280, 900)
    browser.open(lab["address"])  # the page make lab opens: notebook 01
    href = browser.wait_until("location.href.includes('/lab/') && location.href", timeout=60)
    assert "/lab/tree/my-work/01_math_utilities.ipynb" in href, href
    facts = _settle(browser, "01_math_utilities.ipynb")
    browser.screenshot(ROOT / "outputs" / "site_jupyterlab_1280.png")
    assert facts["dirty"] == [], f"opening notebook 01 marked {facts['dirty']} modified"
    news = [t for t in facts["toasts"] if "news" in t.lower()]
    assert news == [], f"JupyterLab greets the learner with {news}"
    assert facts["folder"].strip("/ ") == "my-work", f"file browser shows {facts['folder']!r}"
    assert {"01_math_utilities.ipynb", "learning_journal.md", "README.md"} <= set(facts["files"])

    base = browser.evaluate("location.origin")
    for path in OPENED_TOO:
        if not (lab["clone"] / path).is_file():
            pytest.fail(f"{path} is not in the repository")
        browser.open(f"{base}/lab/tree/{path}")
        facts = _settle(browser, Path(path).name)
        assert facts["dirty"] == [], f"opening {path} marked {facts['dirty']} modified"

    _stop(lab["process"])
    status = subprocess.run(["git", "status", "--porcelain"], cwd=lab["clone"],
                            capture_output=True, text=True, check=True).stdout
    assert status == "", f"JupyterLab changed the repository:\n{status}"
    for course in sorted((lab["clone"] / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        copy = lab["clone"] / "my-work" / course.name
        assert copy.read_bytes() == workspace._personal(course.read_bytes()), f"{copy} changed"
