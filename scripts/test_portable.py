"""Same outputs on every machine: re-run every notebook under strict nbval with each BLAS setting.

``make test-portable`` runs this script. A committed text output must not depend on the CPU, the
BLAS kernel, the number of threads or the operating system (CONTRIBUTING.md, "Determinism under
nbval"). One machine cannot be every machine, but it can run the same notebooks with other
kernels of the BLAS NumPy uses (OpenBLAS picks one per CPU; ``OPENBLAS_CORETYPE`` forces
another), with one thread instead of several (a matrix product split across threads adds its
partial sums in another order) and with PyTorch's AVX2 kernels instead of its AVX-512 ones.
Each setting re-executes every notebook, course and solutions, under ``pytest --nbval`` in a
fresh process with that environment; each must pass. It needs a NumPy that uses OpenBLAS (the
wheels for Linux and Windows on x86-64).

Before each run the script asks a Python process started with the same environment which
OpenBLAS kernel and thread count NumPy actually got (``threadpoolctl.threadpool_info()``) and
which vector instructions PyTorch's kernels use, and prints them: a setting the library ignored
would otherwise pass without testing anything. OpenBLAS built for x86-64 names its Prescott
kernel "Katmai" (the older core names are aliases of Prescott there), so that is what the
Prescott run reports.

    .venv/bin/python scripts/test_portable.py                       # every setting, every notebook
    .venv/bin/python scripts/test_portable.py notebooks/06_*.ipynb  # every setting, some notebooks
    .venv/bin/python scripts/test_portable.py --setting OPENBLAS_CORETYPE=SkylakeX  # another one

The exit status is 0 only if every setting passed; the summary names each setting that failed
and the cells that failed under it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
REPORTS = ROOT / "build" / "portable"

# (label, environment changes; None removes a variable). Each run starts from the environment
# `make test` sees and changes only its own variables. "default" changes nothing: OpenBLAS's
# choice for this CPU (or the kernel OPENBLAS_CORETYPE already names), as many threads as cores.
# Prescott is OpenBLAS's generic SSE3 kernel, Sandybridge its AVX kernel (no FMA: products and
# sums rounded separately); Haswell/Zen are AVX2 + FMA, SkylakeX AVX-512. PyTorch (the reference
# of notebooks 05-08) picks its own kernels by CPU too: ATEN_CPU_CAPABILITY=avx2 gives the ones a
# CPU without AVX-512 runs (most laptops).
SETTINGS: tuple[tuple[str, dict[str, str | None]], ...] = (
    ("default", {}),
    ("OPENBLAS_CORETYPE=Prescott", {"OPENBLAS_CORETYPE": "Prescott"}),
    ("OPENBLAS_CORETYPE=Sandybridge", {"OPENBLAS_CORETYPE": "Sandybridge"}),
    ("OPENBLAS_NUM_THREADS=1", {"OPENBLAS_NUM_THREADS": "1"}),
    ("ATEN_CPU_CAPABILITY=avx2", {"ATEN_CPU_CAPABILITY": "avx2"}),
)
# When the environment already forces a kernel, one more run lets OpenBLAS choose for this CPU,
# as it does on a learner's machine.
OWN_CHOICE = ("OPENBLAS_CORETYPE unset", {"OPENBLAS_CORETYPE": None})

# OpenBLAS built for x86-64 reports its Prescott kernel under the name of its alias Katmai.
KERNEL_ALIASES = {"prescott": "katmai"}

PROBE = """
import json
import numpy
import torch
from threadpoolctl import threadpool_info
blas = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
print(json.dumps({
    "numpy": numpy.__version__,
    "blas": [[i.get("architecture"), i.get("num_threads"), i.get("version")] for i in blas],
    "torch_cpu": torch.backends.cpu.get_cpu_capability(),
}))
"""


@dataclass
class Outcome:
    """What one setting's run gave: the kernels it used and its test counts."""

    label: str
    kernel: str = "?"
    threads: str = "?"
    torch_cpu: str = "?"
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: int = 0
    returncode: int = -1
    seconds: float = 0.0
    ignored: str = ""  # why the setting did not take effect, if it did not

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.failed and self.passed > 0 and not self.ignored


def setting_env(changes: dict[str, str | None]) -> dict[str, str]:
    """This process's environment with ``changes`` made (None removes a variable)."""
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def standard_settings() -> list[tuple[str, dict[str, str | None]]]:
    """The standard settings, plus OpenBLAS's own choice if the environment forces a kernel."""
    settings = list(SETTINGS)
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if forced:
        settings[0] = (f"default (inherits OPENBLAS_CORETYPE={forced})", {})
        settings.insert(1, OWN_CHOICE)
    return settings


def probe(env: dict[str, str], outcome: Outcome) -> None:
    """Fill in the OpenBLAS kernel, its threads and PyTorch's CPU capability under ``env``."""
    run = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         cwd=ROOT, check=False)
    if run.returncode != 0:
        raise SystemExit(f"{outcome.label}: the probe process failed:\n{run.stderr}")
    info = json.loads(run.stdout.strip().splitlines()[-1])
    if not info["blas"]:
        raise SystemExit(f"{outcome.label}: NumPy does not use OpenBLAS here; "
                         "the OPENBLAS_* settings would test nothing")
    outcome.kernel = ", ".join(sorted({str(arch) for arch, _, _ in info["blas"]}))
    outcome.threads = ", ".join(sorted({str(n) for _, n, _ in info["blas"]}))
    outcome.torch_cpu = info["torch_cpu"]
    version = info["blas"][0][2]
    print(f"  NumPy {info['numpy']} with OpenBLAS {version}: kernel {outcome.kernel}, "
          f"{outcome.threads} thread(s); PyTorch CPU kernels: {outcome.torch_cpu}", flush=True)
    outcome.ignored = ignored_request(env, outcome)
    if outcome.ignored:
        print(f"  NOT APPLIED: {outcome.ignored}", flush=True)


def ignored_request(env: dict[str, str], outcome: Outcome) -> str:
    """Why the probe shows a requested kernel or thread count was ignored ("" if it was not)."""
    wanted = env.get("OPENBLAS_CORETYPE", "").lower()
    if wanted and outcome.kernel.lower() not in {wanted, KERNEL_ALIASES.get(wanted, wanted)}:
        return f"OPENBLAS_CORETYPE={env['OPENBLAS_CORETYPE']} but OpenBLAS uses {outcome.kernel}"
    threads = env.get("OPENBLAS_NUM_THREADS")
    if threads and outcome.threads != threads:
        return f"OPENBLAS_NUM_THREADS={threads} but OpenBLAS uses {outcome.threads} thread(s)"
    capability = env.get("ATEN_CPU_CAPABILITY")
    if capability and outcome.torch_cpu.lower() != capability.lower():
        return f"ATEN_CPU_CAPABILITY={capability} but PyTorch uses {outcome.torch_cpu}"
    return ""


def node_path(classname: str) -> str:
    """JUnit's ``notebooks.solutions.06_x.ipynb`` -> ``notebooks/solutions/06_x.ipynb``."""
    if classname.endswith(".ipynb"):
        return classname.removesuffix(".ipynb").replace(".", "/") + ".ipynb"
    return classname


def read_junit(path: Path, outcome: Outcome) -> None:
    """Count passed, failed and skipped cells from pytest's JUnit XML report."""
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{node_path(case.get('classname', ''))}::{case.get('name', '')}"
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            outcome.failed.append(name)
        elif "skipped" in tags:
            outcome.skipped += 1
        else:
            outcome.passed += 1


def run_setting(label: str, changes: dict[str, str | None], notebooks: list[str],
                workers: int) -> Outcome:
    """Re-execute ``notebooks`` under strict nbval with ``changes`` made to the environment."""
    outcome = Outcome(label)
    env = setting_env(changes)
    print(f"\n=== {label}", flush=True)
    probe(env, outcome)
    REPORTS.mkdir(parents=True, exist_ok=True)
    junit = REPORTS / (re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_").lower() + ".xml")
    junit.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE),
           f"--junitxml={junit}"]
    cmd += ["-n", str(workers), "--dist", "loadscope"] if workers > 1 else ["-p", "no:xdist"]
    start = time.perf_counter()
    outcome.returncode = subprocess.run(cmd + notebooks, env=env, cwd=ROOT, check=False).returncode
    outcome.seconds = time.perf_counter() - start
    if junit.exists():
        read_junit(junit, outcome)
    return outcome


def summary(outcomes: list[Outcome]) -> str:
    """A table of the runs, then each failing setting with its failing cells."""
    width = max(len("setting"), *(len(o.label) for o in outcomes))
    header = (f"{'setting':{width}s} | OpenBLAS kernel | threads | PyTorch CPU | passed | failed "
              "| time  | result")
    lines = ["", header, "-" * len(header)]
    for o in outcomes:
        lines.append(f"{o.label:{width}s} | {o.kernel:15s} | {o.threads:7s} | {o.torch_cpu:11s} "
                     f"| {o.passed:6d} | {len(o.failed):6d} | {o.seconds:4.0f} s "
                     f"| {'passed' if o.ok else 'FAILED'}")
    for o in outcomes:
        if not o.ok:
            lines.append(f"\nFAILED under {o.label} (pytest exit status {o.returncode}):")
            if o.ignored:
                lines.append(f"  the setting was not applied: {o.ignored}")
            lines += [f"  {name}" for name in o.failed] or ["  (no cell reported: see above)"]
    return "\n".join(lines)


def parse_setting(text: str) -> tuple[str, dict[str, str | None]]:
    """``"A=1 B=2"`` -> ``("A=1 B=2", {"A": "1", "B": "2"})``; ``"default"`` -> no change."""
    if text == "default":
        return text, {}
    pairs = [item.partition("=") for item in text.split()]
    if not pairs or any(not name or not sep for name, sep, _ in pairs):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE [NAME=VALUE ...], got {text!r}")
    return text, {name: value for name, _, value in pairs}


def default_notebooks() -> list[str]:
    """Every course notebook and every solutions notebook, in order."""
    paths = sorted(ROOT.glob("notebooks/[0-9][0-9]_*.ipynb"))
    paths += sorted(ROOT.glob("notebooks/solutions/*.ipynb"))
    return [str(p.relative_to(ROOT)) for p in paths]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: all)")
    parser.add_argument("--setting", action="append", type=parse_setting, metavar="'A=1 B=2'",
                        help="run this setting instead of the standard ones (repeatable; "
                             "'default' = the environment unchanged)")
    parser.add_argument("--workers", type=int, default=2, help="pytest-xdist workers (default 2)")
    args = parser.parse_args(argv)
    settings = args.setting or standard_settings()
    notebooks = args.notebooks or default_notebooks()
    outcomes = [run_setting(label, extra, notebooks, args.workers) for label, extra in settings]
    print(summary(outcomes))
    failed = [o.label for o in outcomes if not o.ok]
    if failed:
        print(f"\nSettings that failed: {', '.join(failed)}")
        return 1
    print(f"\nAll {len(outcomes)} settings passed on {len(notebooks)} notebooks.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
