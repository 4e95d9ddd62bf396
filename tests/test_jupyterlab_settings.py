"""JupyterLab opens the notebooks as they are committed, without a news pop-up (``make lab``).

JupyterLab writes the running kernel's ``kernelspec`` into a notebook it opens; when that
differs from the committed one, the notebook is marked modified at once and autosave rewrites
the tracked file. The browser session that proves ``git status`` stays clean is in
``tests/site/test_jupyterlab_session.py``; these are the fast checks behind it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted(
    (ROOT / "notebooks" / "solutions").glob("*.ipynb"))
SETTINGS = ROOT / "jupyterlab-settings" / "overrides.json"
SCHEMAS = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"


@pytest.fixture(scope="module")
def installed_kernel() -> dict:
    spec = KernelSpecManager().get_kernel_spec("python3")
    return {"display_name": spec.display_name, "language": spec.language, "name": "python3"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_committed_kernelspec_is_the_installed_kernel(path: Path, installed_kernel: dict) -> None:
    metadata = nbformat.read(path, as_version=4).metadata
    assert dict(metadata.get("kernelspec", {})) == installed_kernel, (
        f"{path.name}: JupyterLab would rewrite this kernelspec on opening the notebook"
    )
    assert metadata.get("language_info", {}).get("name") == "python"


def test_settings_override_only_known_settings_with_valid_values() -> None:
    overrides = json.loads(SETTINGS.read_text(encoding="utf-8"))
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    for plugin, values in overrides.items():
        package, name = plugin.split(":")
        schema = json.loads((SCHEMAS / package / f"{name}.json").read_text(encoding="utf-8"))
        for key, value in values.items():
            prop = schema["properties"].get(key)
            assert prop is not None, f"{plugin} has no setting {key!r}"
            allowed = [c["const"] for c in prop.get("oneOf", [])]
            assert value in allowed if allowed else isinstance(
                value, {"boolean": bool, "string": str, "number": (int, float)}[prop["type"]]
            ), f"{plugin}.{key} = {value!r} does not fit {prop}"


@pytest.mark.parametrize(("target", "opens"), [("lab", "my-work/01_math_utilities.ipynb"),
                                               ("lab-course", "notebooks/01_math_utilities.ipynb")])
def test_make_lab_uses_the_settings_and_opens_notebook_01(target: str, opens: str) -> None:
    """`make lab` opens the learner's copy of notebook 01, `make lab-course` the course's."""
    dry = subprocess.run(["make", "-n", "-o", ".venv/.installed", target], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    command = next(line for line in dry.replace("\\\n", " ").splitlines() if "jupyter lab" in line)
    assert "--LabApp.app_settings_dir=jupyterlab-settings" in command
    assert re.search(r"--ServerApp.root_dir=\.(\s|$)", command)
    assert command.rstrip().endswith(opens)
