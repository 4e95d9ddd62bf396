"""The learner's work kept apart from the course (issue 20): my-work/, made by ``make lab``."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.exercises import _records, workspace

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _notebook(*cells: tuple[str, str]) -> dict:
    return {
        "cells": [
            {"cell_type": kind, "id": f"cell-{n}", "metadata": {},
             "source": src.splitlines(keepends=True),
             **({"outputs": [], "execution_count": None} if kind == "code" else {})}
            for n, (kind, src) in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }


def _write(path: Path, nb: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n")


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    _write(root / "notebooks" / "01_first.ipynb", _notebook(
        ("markdown", "# 01 · First\nSolutions: [here](solutions/01_first.ipynb).\n"
                     "Journal: [yours](../learning_journal.md), next [02](02_second.ipynb)."),
        ("code", "x = 1"),
    ))
    _write(root / "notebooks" / "02_second.ipynb", _notebook(("code", "y = 2")))
    _write(root / "notebooks" / "solutions" / "01_first.ipynb", _notebook(("code", "x = 1")))
    (root / "learning_journal.md").write_text("# Journal\n")
    return root


def test_the_first_make_copies_every_notebook_and_the_journal(course):
    said = workspace.make(course)
    dest = course / "my-work"
    assert sorted(p.name for p in dest.iterdir()) == [
        ".course-copies.json", "01_first.ipynb", "02_second.ipynb", "README.md",
        "learning_journal.md",
    ]
    assert said[0].startswith("made my-work/ for your own copies")
    assert "copied notebooks/02_second.ipynb to my-work/02_second.ipynb" in said
    assert "copied learning_journal.md to my-work/learning_journal.md" in said
    first = (dest / "01_first.ipynb").read_text()
    assert "](../notebooks/solutions/01_first.ipynb)" in first
    assert "](learning_journal.md)" in first and "](02_second.ipynb)" in first
    assert "](solutions/" not in first and "../learning_journal.md" not in first
    # a notebook without outward links is copied byte for byte
    assert (dest / "02_second.ipynb").read_bytes() == (
        course / "notebooks" / "02_second.ipynb").read_bytes()
    assert (dest / "learning_journal.md").read_text() == "# Journal\n"


def test_a_copy_is_never_overwritten_and_a_new_notebook_is_copied(course):
    workspace.make(course)
    mine = course / "my-work" / "01_first.ipynb"
    mine.write_text("my own work")
    (course / "my-work" / "learning_journal.md").write_text("my answers")
    _write(course / "notebooks" / "03_third.ipynb", _notebook(("code", "z = 3")))
    said = workspace.make(course)
    assert said == ["copied notebooks/03_third.ipynb to my-work/03_third.ipynb"]
    assert mine.read_text() == "my own work"
    assert (course / "my-work" / "learning_journal.md").read_text() == "my answers"
    assert workspace.make(course) == []


def test_a_changed_course_notebook_is_announced_and_the_copy_kept(course):
    workspace.make(course)
    _write(course / "notebooks" / "02_second.ipynb", _notebook(("code", "y = 20")))
    said = workspace.make(course)
    assert said == [
        "notebooks/02_second.ipynb has changed since my-work/02_second.ipynb was copied: your "
        "copy is kept; to start again from the new version, rename your copy and run make lab"
    ]
    assert "y = 2\"" in (course / "my-work" / "02_second.ipynb").read_text()
    (course / "my-work" / "02_second.ipynb").rename(course / "my-work" / "02_second-mine.ipynb")
    assert workspace.make(course) == ["copied notebooks/02_second.ipynb to my-work/02_second.ipynb"]
    assert workspace.make(course) == []


def test_in_a_git_checkout_the_announcement_gives_the_diff_to_read(course):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=course,
                       check=True, capture_output=True)

    git("init", "-q")
    git("add", "notebooks", "learning_journal.md")
    git("commit", "-q", "-m", "course")
    first = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=course,
                           capture_output=True, text=True, check=True).stdout.strip()
    workspace.make(course)
    (course / "learning_journal.md").write_text("# Journal\n- a new checklist item\n")
    assert workspace.make(course) == [
        f"learning_journal.md has changed since my-work/learning_journal.md was copied (the "
        f"changes: git diff {first} -- learning_journal.md): your copy is kept; copy what you "
        "want from the new version into yours"
    ]
    shown = subprocess.run(["git", "diff", first, "--", "learning_journal.md"], cwd=course,
                           capture_output=True, text=True, check=True).stdout
    assert "+- a new checklist item" in shown


def test_every_link_of_every_copy_leads_somewhere_from_my_work():
    dest = ROOT / "my-work"  # where the copies would be; nothing is written here
    for source in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(workspace._personal(source.read_bytes()))
        for cell in nb["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for target in LINK.findall("".join(cell["source"])):
                if "://" in target or target.startswith("mailto:"):
                    continue
                path = (dest / target).resolve()
                exists = path.exists() or (
                    path.parent == dest and (ROOT / "notebooks" / path.name).is_file()
                ) or (path == dest / "learning_journal.md")
                assert exists, f"{source.name}: the link {target} leads nowhere from my-work/"


def test_the_journal_link_leads_to_the_learners_own_journal():
    for source in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        text = workspace._personal(source.read_bytes()).decode()
        assert "](../learning_journal.md" not in text and "](solutions/" not in text


# --------------------------------------------------------------------------- check-my-work
def test_check_my_work_runs_each_copy_and_prints_the_progress(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(_records.ENV, str(tmp_path / "progress.jsonl"))
    monkeypatch.setattr(_records, "_UNSAVED", [])
    work = tmp_path / "root" / "my-work"
    _write(work / "01_solved.ipynb", _notebook(
        ("code", "from helpers.exercises import check, reference"),
        ("code", 'check("01.2", reference("01.2"))\nopen("cwd.txt", "w").write("here")'),
    ))
    _write(work / "02_broken.ipynb", _notebook(("code", "a = 1"), ("code", "\nundefined_name + 1")))
    code = workspace.main(["check", "--root", str(tmp_path / "root")])
    out = capfd.readouterr().out
    assert code == 1
    assert re.search(r"  ✓ 01_solved\.ipynb  ran top to bottom \(\d+ s\)\n", out)
    assert ("  ✗ 02_broken.ipynb  stopped at code cell 2: NameError: name 'undefined_name' is "
            "not defined\n      undefined_name + 1\n") in out
    assert (work / "cwd.txt").read_text() == "here"  # the kernel started in the copy's folder
    assert "  ✓ 01.2  log_softmax" in out and "Total: 1 of " in out
    assert json.loads((work / "02_broken.ipynb").read_text())["cells"][1]["outputs"] == []


def test_check_my_work_runs_one_notebook_given_after_the_options(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv(_records.ENV, str(tmp_path / "progress.jsonl"))
    work = tmp_path / "my-work"
    _write(work / "01_one.ipynb", _notebook(("code", "a = 1")))
    _write(work / "02_broken.ipynb", _notebook(("code", "undefined_name")))
    code = workspace.main(["check", "--folder", "my-work", "--root", str(tmp_path),
                           str(work / "01_one.ipynb")])
    out = capfd.readouterr().out
    assert code == 0 and "01_one.ipynb  ran top to bottom" in out and "02_broken" not in out


def test_check_my_work_without_copies_says_how_to_make_them(tmp_path, capsys):
    assert workspace.main(["check", "--root", str(tmp_path)]) == 1
    assert "my-work/ has no notebooks yet: make lab makes your copies." in capsys.readouterr().out


# --------------------------------------------------------------------------- make test
def _make_dry_run(cwd: Path, target: str) -> str:
    return subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", str(VENV / ".installed"), target,
         f"VENV={VENV}"], cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout


def test_make_test_never_collects_the_learners_copies(tmp_path):
    """A clone with a solved copy in my-work/: what `make test` runs collects the course only."""
    root = tmp_path / "clone"
    for name in ("Makefile", "pyproject.toml", ".gitignore"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, root / name)
    course_nb = _notebook(("code", "print(1 + 1)"))
    course_nb["cells"][0]["outputs"] = [{"name": "stdout", "output_type": "stream", "text": "2\n"}]
    _write(root / "notebooks" / "01_course.ipynb", course_nb)
    _write(root / "notebooks" / "solutions" / "01_course.ipynb", course_nb)
    (root / "tests").mkdir()
    (root / "tests" / "test_course.py").write_text("def test_course():\n    assert True\n")
    solved = _notebook(("code", "import os\nprint(os.getpid())"))  # output differs every run
    _write(root / "my-work" / "01_course.ipynb", solved)
    (root / "my-work" / "test_mine.py").write_text("def test_mine():\n    assert False\n")
    (root / "my-work" / "scratch.py").write_text("import os\n")  # an unused import: ruff F401

    commands = _make_dry_run(root, "test")
    assert "my-work" not in commands
    joined = commands.replace("\\\n", " ").splitlines()
    argv = shlex.split(next(line for line in joined if "-m pytest" in line))
    assert argv[argv.index("-n") : argv.index("-n") + 4] == ["-n", "2", "--dist", "loadscope"]
    del argv[argv.index("-n") : argv.index("-n") + 4]  # the same collection without workers
    collected = subprocess.run([*argv, "--collect-only", "-q", "-p", "no:cacheprovider"],
                               cwd=root, capture_output=True, text=True)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "my-work" not in collected.stdout and "01_course.ipynb" in collected.stdout
    everything = subprocess.run(  # `pytest --nbval .`: the whole folder, my-work/ skipped
        [sys.executable, "-m", "pytest", "--nbval", "--collect-only", "-q", "-p",
         "no:cacheprovider", "-p", "no:xdist", "."],
        cwd=root, capture_output=True, text=True)
    assert everything.returncode == 0, everything.stdout + everything.stderr
    assert "my-work" not in everything.stdout and "test_course.py" in everything.stdout
    ruff = subprocess.run([str(VENV / "bin" / "ruff"), "check", "."], cwd=root,
                          capture_output=True, text=True)
    assert "my-work" not in ruff.stdout
    ignored = subprocess.run(["git", "check-ignore", "-q", "my-work/01_course.ipynb"],
                             cwd=ROOT)
    assert ignored.returncode == 0  # git status never shows the learner's work


def test_make_lab_makes_the_copies_then_opens_my_work():
    commands = _make_dry_run(ROOT, "lab")
    make_line, lab_line = [line for line in commands.splitlines() if line.strip()][:2]
    assert make_line.endswith("-m helpers.exercises.workspace make --folder my-work")
    assert "jupyter lab --ServerApp.root_dir=." in lab_line
    assert "--LabApp.app_settings_dir=jupyterlab-settings" in lab_line
    assert lab_line.endswith("my-work/01_math_utilities.ipynb")
    assert ("--allow-root" in lab_line) == (os.geteuid() == 0)
    course = _make_dry_run(ROOT, "lab-course")
    assert course.strip().endswith("notebooks/01_math_utilities.ipynb")
    assert "workspace" not in course
