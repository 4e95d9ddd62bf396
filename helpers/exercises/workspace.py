"""The learner's own copies of the course, kept apart from it: ``my-work/``.

``make lab`` runs ``python -m helpers.exercises.workspace make`` before it opens JupyterLab on
``my-work/01_math_utilities.ipynb``:

* ``my-work/`` (git-ignored) is made on first use and gets a copy of every course notebook
  ``notebooks/NN_*.ipynb`` and of ``learning_journal.md`` that it does not have yet — a
  notebook added to the course later is copied on the next ``make lab``;
* an existing copy is **never** overwritten (the file is created with ``O_EXCL``); when the
  course's version has changed since the copy was made, ``make lab`` says so with the ``git
  diff`` that shows the changes (``my-work/.course-copies.json`` keeps each copy's sha256 and
  commit), and the learner decides (rename a copy to get the new one on the next ``make lab``);
* in the copies, the links that lead out of ``notebooks/`` are rewritten to work from
  ``my-work/``: ``solutions/…`` → ``../notebooks/solutions/…`` and ``../learning_journal.md`` →
  the learner's own ``learning_journal.md``; nothing else changes.

The kernel of a copy starts in ``my-work/``; ``helpers`` is installed, so ``check``, ``hint``
and ``progress`` work unchanged, and figures still go to the repository's ``outputs/``.
Because ``my-work/`` is ignored by git, ``git pull`` never touches it, and ``make test``
(which tests the course's own notebooks) never sees it.

``make check-my-work`` runs ``python -m helpers.exercises.workspace check``: every copy is run
top to bottom in a fresh kernel (nbconvert's ``ExecutePreprocessor``; the files are not
written), then the progress table is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FOLDER = "my-work"
JOURNAL = "learning_journal.md"
MANIFEST = ".course-copies.json"  # each copied file's sha256 and the course commit it came from
LINKS = (
    ("](solutions/", "](../notebooks/solutions/"),
    ("](../learning_journal.md", "](learning_journal.md"),
)
README = """# Your own copies of the course

`make lab` made this folder and opens JupyterLab here. The notebooks and `learning_journal.md`
in it are **yours**: fill in the exercises and write your answers here. Nothing in the course
writes to them — `git pull` never touches this folder (it is ignored by git), `make test` tests
the course's notebooks in `notebooks/`, not these, and `make lab` never overwrites a copy.

- A notebook the course adds later is copied here by the next `make lab`.
- When the course changes a notebook you already have (or the journal), `make lab` tells you,
  with the `git diff` command that shows what changed. To start again from the new version of a
  notebook, rename your copy (e.g. `03_masking.ipynb` → `03_masking-mine.ipynb`) and run
  `make lab` again.
- `make check-my-work` re-runs every notebook here top to bottom and prints your progress;
  `make progress` prints the progress alone.
- The worked solutions are in `../notebooks/solutions/`.
"""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _personal(data: bytes) -> bytes:
    """The course notebook's bytes with its outward links pointing where they lead from here."""
    nb = json.loads(data.decode("utf-8"))
    changed = False
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell["source"]
        text = "".join(source) if isinstance(source, list) else source
        new = text
        for old, replacement in LINKS:
            new = new.replace(old, replacement)
        if new != text:
            cell["source"] = new.splitlines(keepends=True) if isinstance(source, list) else new
            changed = True
    if not changed:
        return data
    return (json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def _create(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new file ``path``; False (and nothing written) if it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return True


def _commit(root: Path) -> str | None:
    """The course's current commit (short), or None outside a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict):
        return {}
    return {k: v for k, v in manifest.items() if isinstance(v, dict) and "sha256" in v}


def _write_manifest(folder: Path, manifest: dict[str, dict[str, Any]]) -> None:
    tmp = folder / f"{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)  # write-and-rename: never half a manifest


def course_files(root: Path) -> list[Path]:
    """The files a workspace copies: the course notebooks in order, then the journal."""
    notebooks = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    journal = root / JOURNAL
    return notebooks + ([journal] if journal.is_file() else [])


def make(root: Path, folder: str = FOLDER) -> list[str]:
    """Make ``root/folder`` and copy in what it lacks; returns one line per thing done or seen."""
    dest = root / folder
    dest.mkdir(exist_ok=True)
    said = []
    if _create(dest / "README.md", README.encode("utf-8")):
        said.append(f"made {folder}/ for your own copies of the course (see {folder}/README.md)")
    manifest = _read_manifest(dest)
    commit = _commit(root)
    for source in course_files(root):
        data = source.read_bytes()
        target = dest / source.name
        rel = source.relative_to(root).as_posix()
        if _create(target, _personal(data) if source.suffix == ".ipynb" else data):
            manifest[source.name] = {"sha256": _digest(data), "commit": commit}
            said.append(f"copied {rel} to {folder}/{source.name}")
            continue
        copied = manifest.get(source.name)
        if copied is None or copied["sha256"] == _digest(data):
            continue
        since = copied.get("commit")
        changes = f" (the changes: git diff {since} -- {rel})" if since else ""
        then = (
            "copy what you want from the new version into yours"
            if source.name == JOURNAL
            else "to start again from the new version, rename your copy and run make lab"
        )
        said.append(
            f"{rel} has changed since {folder}/{source.name} was copied{changes}: "
            f"your copy is kept; {then}"
        )
    _write_manifest(dest, manifest)
    return said


def _first_error(nb: Any) -> tuple[int, str, str]:
    """(code cell number, first source line, 'Name: message') of the first cell that failed."""
    code = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = next((s for s in cell.source.splitlines() if s.strip()), "")
                return code, first.strip(), f"{out.get('ename')}: {out.get('evalue')}"
    return 0, "", ""


def run(paths: list[Path], timeout: int = 600) -> bool:
    """Run each notebook top to bottom in a fresh kernel started in its folder; print one line
    each. The files are not written. True when every one ran to the end."""
    import nbformat
    from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

    width = max((len(p.name) for p in paths), default=0)
    ok = True
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.monotonic()
        try:
            ExecutePreprocessor(timeout=timeout, kernel_name="python3").preprocess(
                nb, {"metadata": {"path": str(path.parent)}}
            )
        except CellExecutionError as err:
            ok = False
            n, line, error = _first_error(nb)
            error = error or str(err).strip().splitlines()[-1]
            print(f"  ✗ {path.name:<{width}}  stopped at code cell {n}: {error}")
            if line:
                print(f"      {line}")
            continue
        print(f"  ✓ {path.name:<{width}}  ran top to bottom ({time.monotonic() - start:.0f} s)")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.exercises.workspace")
    parser.add_argument("command", choices=("make", "check"))
    parser.add_argument("notebooks", nargs="*", help="check: only these notebooks")
    parser.add_argument("--folder", default=FOLDER)
    parser.add_argument("--root", type=Path, default=Path.cwd())
    args = parser.parse_intermixed_args(argv)
    root = args.root.resolve()
    if args.command == "make":
        for line in make(root, args.folder):
            print(line)
        return 0
    dest = root / args.folder
    paths = [Path(p).resolve() for p in args.notebooks] or sorted(
        dest.glob("[0-9][0-9]*.ipynb")
    )
    if not paths:
        print(f"{args.folder}/ has no notebooks yet: make lab makes your copies.")
        return 1
    print("Running your notebooks top to bottom (their files are not changed):")
    ok = run(paths)
    print()
    from helpers.exercises.learner_progress import progress

    progress()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
