"""The README's commands for a machine without ``make`` do what the Makefile's recipes do.

README.md, section "Without make", gives the set-up, ``make lab`` and ``make test`` as plain
commands: a bash block (Linux, macOS) and a PowerShell block (Windows). Each block has three
parts: the set-up, then the commands after a comment line ``# make lab``, then those after
``# make test``. This test asks ``make -n -B`` which commands each recipe runs today and
compares them with both blocks, after removing what is only make's bookkeeping:

* ``test -x .venv/bin/python || PYTHON -m venv .venv`` is ``<any python> -m venv .venv``;
* ``touch .venv/.installed`` (the set-up stamp) and pip's ``--quiet`` are dropped;
* ``--allow-root`` (added by the recipe when run as root) is dropped: the README mentions it;
* Windows paths ``.venv\\Scripts\\python`` count as ``.venv/bin/python``;
* a folder of notebooks (``notebooks``) counts as the notebooks pytest collects from it, so it
  matches the Makefile's list of every notebook.

Variables the Makefile exports (``export NAME := value``) must be set by both blocks
(``export NAME=value``; ``$env:NAME = "value"``). When a recipe changes, the failure message
prints the commands the README needs, ready to paste.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"
PARTS = ("setup", "lab", "test")
# make's variables that would change the recipes if inherited from a calling make or the shell.
MAKE_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PYTHON", "VENV")


# ----------------------------------------------------------------- the Makefile's side
def make_commands(target: str) -> list[str]:
    """The command lines ``make -n -B target`` prints (every recipe, prerequisites first)."""
    env = {k: v for k, v in os.environ.items() if k not in MAKE_ENV}
    run = subprocess.run(["make", "-n", "-B", "--no-print-directory", target], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True)
    text = re.sub(r"\\\n\s*", " ", run.stdout)  # join continued lines
    return [line.strip() for line in text.splitlines() if line.strip()]


def makefile_exports() -> dict[str, str]:
    """``export NAME := value`` lines of the Makefile."""
    pattern = re.compile(r"^export\s+(\w+)\s*:?=\s*(\S*)\s*$", re.M)
    return dict(pattern.findall(MAKEFILE.read_text()))


# ----------------------------------------------------------------- the README's side
def readme_blocks() -> dict[str, str]:
    """The bash and PowerShell code blocks of the README's "Without make" section."""
    section, level, fenced = [], 0, False
    for line in README.read_text().splitlines():
        fenced ^= line.startswith("```")
        heading = None if fenced else re.match(r"(#+) ", line)
        if level and heading and len(heading.group(1)) <= level:
            break  # the next section at the same or a higher level
        if level:
            section.append(line)
        elif heading and re.fullmatch(r"#+ Without `?make`?", line):
            level = len(heading.group(1))
    assert level, "README.md needs a section 'Without make'"
    text = "\n".join(section) + "\n"
    blocks = dict(re.findall(r"^```(bash|powershell)\n(.*?)^```", text, re.M | re.S))
    assert set(blocks) == {"bash", "powershell"}, f"found blocks: {sorted(blocks)}"
    return blocks


def split_block(block: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(variables it sets, {"setup"|"lab"|"test": command lines}) of one README block."""
    env: dict[str, str] = {}
    parts: dict[str, list[str]] = {part: [] for part in PARTS}
    part = "setup"
    for raw in block.splitlines():
        line = raw.strip()
        marker = re.fullmatch(r"#\s*make (\w+)\b.*", line)
        if marker:
            part = marker.group(1)
            assert part in PARTS, f"unknown part {line!r}"
            continue
        line = re.sub(r"\s+#.*$", "", line) if not line.startswith("#") else ""
        if not line:
            continue
        assignment = (re.fullmatch(r"export\s+(\w+)=(\S*)", line)
                      or re.fullmatch(r"\$env:(\w+)\s*=\s*\"?([^\"]*)\"?", line))
        if assignment:
            env[assignment.group(1)] = assignment.group(2)
        else:
            parts[part].append(line)
    return env, parts


# ----------------------------------------------------------------- common form
def notebooks_under(arg: str) -> list[str]:
    """The notebooks pytest would collect from ``arg`` (a notebook, a folder, or neither)."""
    path = ROOT / arg
    hidden = any(part.startswith(".") for part in Path(arg).parts)  # `.venv`
    if arg.endswith(".ipynb") or hidden or path.resolve() == ROOT or not path.is_dir():
        return [arg] if arg.endswith(".ipynb") else []
    found = []
    for folder, subfolders, files in os.walk(path):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]  # as pytest skips them
        found += [Path(folder, f).relative_to(ROOT).as_posix() for f in files
                  if f.endswith(".ipynb")]
    return sorted(found)


def normalise(line: str) -> tuple[str, ...]:
    """One command in the common form described in the module docstring; () to drop it."""
    line = line.split("||")[-1].strip()  # `test -x .venv/bin/python || python -m venv .venv`
    line = line.replace("\\", "/").replace(".venv/Scripts/", ".venv/bin/")
    argv = shlex.split(line)
    if not argv or (argv[0] == "touch" and argv[1:] == [".venv/.installed"]):
        return ()
    if argv[1:3] == ["-m", "venv"] or argv[2:4] == ["-m", "venv"]:  # `py -3.11 -m venv`
        argv = ["<python>", *argv[argv.index("-m"):]]
    argv = [a for a in argv if a not in ("--quiet", "--allow-root")]
    words, notebooks = [], []
    for arg in argv:
        found = notebooks_under(arg) if not arg.startswith("-") else []
        if found:
            notebooks += found
        else:
            words.append(arg)
    return (*words, *(["<notebooks>", *sorted(set(notebooks))] if notebooks else []))


def normalised(lines: list[str]) -> list[tuple[str, ...]]:
    return [cmd for cmd in map(normalise, lines) if cmd]


def readme_form(line: str) -> str:
    """How a recipe's command is written in the README's bash block (for the failure message)."""
    line = line.split("||")[-1].strip()
    argv = [a for a in shlex.split(line) if a not in ("--quiet", "--allow-root")]
    if argv[1:3] == ["-m", "venv"]:
        argv[0] = "python3.11"
    nbs = [a for a in argv if a.endswith(".ipynb")]
    if len(nbs) > 1:  # the full list of notebooks: the folder says the same
        argv = [a for a in argv if not a.endswith(".ipynb")] + ["notebooks"]
    return shlex.join(argv)


@pytest.fixture(scope="module")
def recipes() -> dict[str, list[str]]:
    if shutil.which("make") is None:
        pytest.skip("`make` is not installed: nothing to compare the README's commands with")
    setup = make_commands("setup")
    out = {"setup": setup}
    for target in ("lab", "test"):
        # Prerequisites come first; the set-up's commands belong to the set-up part only.
        out[target] = [line for line in make_commands(target) if line not in setup]
    return out


def test_the_makefile_recipes_are_what_this_test_expects(recipes):
    assert any(re.search(r"-m venv \.venv$", line) for line in recipes["setup"])
    assert any("jupyter lab" in line for line in recipes["lab"])
    assert any("pytest" in line and "--nbval" in line for line in recipes["test"])


@pytest.mark.parametrize("shell", ["bash", "powershell"])
def test_readme_commands_equal_the_makefile_recipes(recipes, shell):
    env, parts = split_block(readme_blocks()[shell])
    assert env == makefile_exports(), f"{shell}: the README must set {makefile_exports()}"
    for part in PARTS:
        want, got = normalised(recipes[part]), normalised(parts[part])
        paste = "\n".join(readme_form(line) for line in recipes[part]
                          if normalise(line))
        assert got == want, (
            f"README.md, 'Without make', {shell} block, part '{part}' differs from the "
            f"Makefile's recipe. The recipe runs (bash form):\n{paste}"
        )


def test_normalise_catches_a_changed_command():
    """The comparison is not vacuous: a dropped flag, another file or a missing notebook count."""
    base = normalise(".venv/bin/python -m pytest -n 2 --nbval tests notebooks")
    assert base == normalise(r".venv\Scripts\python -m pytest -n 2 --nbval tests notebooks")
    assert base[-1].endswith(".ipynb") and "<notebooks>" in base
    assert base != normalise(".venv/bin/python -m pytest -n 2 tests notebooks")
    assert base != normalise(".venv/bin/python -m pytest -n 2 --nbval tests")
    one = normalise(".venv/bin/python -m pytest -n 2 --nbval tests notebooks/03_masking.ipynb")
    assert one != base
    assert normalise("touch .venv/.installed") == ()
    assert normalise("test -x .venv/bin/python || /usr/bin/python3.11 -m venv .venv") == \
        normalise("py -3.13 -m venv .venv") == ("<python>", "-m", "venv", ".venv")
