"""scripts/test_portable.py (``make test-portable``): it applies each setting and reports failures.

The full run re-executes every notebook four or five times (minutes); here one tiny notebook whose
output depends on an environment variable shows that a setting reaches the kernel, that the cell
it breaks is named, and that a setting that changes nothing passes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "test_portable.py"
VARIABLE = "AFS_TEST_PORTABLE_VALUE"


@pytest.fixture(scope="module")
def portable():
    spec = importlib.util.spec_from_file_location("test_portable_script_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture
def env_notebook(portable, monkeypatch):
    """A notebook whose committed output is what its kernel prints when VARIABLE is unset.

    It lives in the git-ignored build/ folder: pytest names only files under its root folder.
    """
    monkeypatch.delenv(VARIABLE, raising=False)
    folder = portable.ROOT / "build" / "test_portable_script"
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    cell = nbformat.v4.new_code_cell(f"import os\nprint(os.environ.get({VARIABLE!r}, 'unset'))")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="unset\n")]
    cell.execution_count = 1
    nb.cells = [nbformat.v4.new_code_cell("1 + 1", execution_count=1, outputs=[
        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]), cell]
    path = folder / "env_check.ipynb"
    nbformat.write(nb, path)
    yield str(path.relative_to(portable.ROOT))
    path.unlink()


def test_a_setting_reaches_the_kernel_and_its_failure_is_named(portable, env_notebook,
                                                               monkeypatch, tmp_path):
    monkeypatch.setattr(portable, "REPORTS", tmp_path / "reports")
    same = portable.run_setting("unchanged", {VARIABLE: None}, [env_notebook], workers=1)
    assert same.ok and same.passed == 2 and not same.failed
    changed = portable.run_setting(f"{VARIABLE}=1", {VARIABLE: "1"}, [env_notebook], workers=1)
    assert not changed.ok and changed.passed == 1 and changed.returncode == 1
    assert changed.failed == ["build/test_portable_script/env_check.ipynb::Cell 1"]
    assert changed.kernel != "?" and changed.threads.isdigit()  # the probe ran under the setting
    report = portable.summary([same, changed])
    assert f"FAILED under {VARIABLE}=1" in report and "env_check.ipynb::Cell 1" in report
    assert "FAILED under unchanged" not in report


def test_a_kernel_openblas_does_not_apply_fails_the_setting(portable):
    outcome = portable.Outcome("x", kernel="Haswell", threads="2")
    assert "uses Haswell" in portable.ignored_request({"OPENBLAS_CORETYPE": "Sandybridge"},
                                                      outcome)
    assert portable.ignored_request({"OPENBLAS_CORETYPE": "haswell"}, outcome) == ""
    katmai = portable.Outcome("x", kernel="Katmai", threads="2")  # OpenBLAS's name for Prescott
    assert portable.ignored_request({"OPENBLAS_CORETYPE": "Prescott"}, katmai) == ""
    assert "2 thread" in portable.ignored_request({"OPENBLAS_NUM_THREADS": "1"}, outcome)
    outcome.torch_cpu = "DEFAULT"  # PyTorch on a CPU without AVX2
    assert "uses DEFAULT" in portable.ignored_request({"ATEN_CPU_CAPABILITY": "avx2"}, outcome)
    outcome.torch_cpu = "AVX2"
    assert portable.ignored_request({"ATEN_CPU_CAPABILITY": "avx2"}, outcome) == ""
    outcome.passed, outcome.returncode, outcome.ignored = 10, 0, "not applied"
    assert not outcome.ok


def test_standard_settings(portable, monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    labels = [label for label, _ in portable.standard_settings()]
    assert labels == ["default", "OPENBLAS_CORETYPE=Prescott", "OPENBLAS_CORETYPE=Sandybridge",
                      "OPENBLAS_NUM_THREADS=1", "ATEN_CPU_CAPABILITY=avx2"]
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # a forced kernel: also OpenBLAS's choice
    settings = dict(portable.standard_settings())
    assert settings["OPENBLAS_CORETYPE unset"] == {"OPENBLAS_CORETYPE": None}
    assert "OPENBLAS_CORETYPE" not in portable.setting_env({"OPENBLAS_CORETYPE": None})
    assert portable.setting_env({"OPENBLAS_NUM_THREADS": "1"})["OPENBLAS_CORETYPE"] == "Haswell"


def test_parse_setting_and_node_path(portable):
    assert portable.parse_setting("A=1 B=x") == ("A=1 B=x", {"A": "1", "B": "x"})
    assert portable.parse_setting("default") == ("default", {})
    with pytest.raises(Exception, match="NAME=VALUE"):
        portable.parse_setting("OPENBLAS_CORETYPE")
    assert (portable.node_path("notebooks.solutions.06_validation_real_inputs.ipynb")
            == "notebooks/solutions/06_validation_real_inputs.ipynb")
