"""Progress that survives (issue 20): every check recorded, safely, and never a crash."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from helpers.exercises import _records, check, progress, reference
from helpers.exercises._core import exercise_ids, get

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def progress_file(tmp_path, monkeypatch):
    path = tmp_path / "progress.jsonl"
    monkeypatch.setenv(_records.ENV, str(path))
    monkeypatch.setattr(_records, "_UNSAVED", [])
    return path


def _stub(*args, **kwargs):
    raise NotImplementedError


def _wrong_scores(Q, K):
    return Q @ np.swapaxes(K, -1, -2)  # no scale


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_each_attempt_is_recorded_and_a_stub_is_not(progress_file):
    check("02.1", _stub)
    check("02.1", 42)
    assert not progress_file.exists()
    check("02.1", _wrong_scores)
    check("02.1", reference("02.1"))
    first, second = _lines(progress_file)
    assert first["event"] == "check" and first["id"] == "02.1" and first["passed"] is False
    assert first["mistake"] == "no scale"
    assert first["cases_total"] == len(get("02.1").cases) > first["cases_passed"]
    assert first["time"].endswith("+00:00") and first["v"] == 1
    assert second["passed"] is True and second["mistake"] is None


def test_progress_returns_every_exercise_and_prints_a_table_per_notebook(progress_file, capsys):
    check("02.1", _wrong_scores)
    check("01.2", reference("01.2"))
    capsys.readouterr()
    status = progress()
    assert list(status) == exercise_ids()
    assert status["02.1"] == "attempted" and status["01.2"] == "passed"
    assert {status[i] for i in status if i not in ("01.2", "02.1")} == {"not attempted"}
    out = capsys.readouterr().out
    assert out.startswith(f"Progress recorded in {progress_file}\n\n01 · Math utilities")
    n02 = sum(i.startswith("02.") for i in status)
    assert f"\n\n02 · Single-head attention: 0 of {n02} passed\n" in out
    assert "  ✓ 01.2  log_softmax" in out and "  · 01.1  softmax_with_temperature" in out
    row = next(line for line in out.splitlines() if " 02.1 " in line)
    assert "attempted" in row and "1 check, last " in row and "no scale" in row
    n = len(status)
    assert out.rstrip().endswith(
        f"Total: 1 of {n} exercises passed, 1 attempted, {n - 2} not attempted."
    )
    assert progress(show=False) == status and capsys.readouterr().out == ""


def test_the_latest_check_decides_and_the_table_remembers_a_pass(progress_file, capsys):
    check("02.1", reference("02.1"))
    check("02.1", _wrong_scores)
    assert progress()["02.1"] == "attempted"
    assert "passed before" in capsys.readouterr().out


def test_outputs_do_not_depend_on_the_progress_state(progress_file, capsys):
    def reports():
        check("02.1", _stub)
        check("02.1", reference("02.1"))
        check("02.1", _wrong_scores)
        return capsys.readouterr().out

    empty = reports()
    for _ in range(3):
        reports()
    assert reports() == empty


# --------------------------------------------------------------------------- safety
_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from helpers.exercises import _records, check, reference
    start, n, k = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    while not start.exists():
        time.sleep(0.001)
    for i in range(n):
        _records.append({"event": "check", "id": "02.1", "passed": False, "mistake": f"w{k}-{i}"})
    result = check("02.1", reference("02.1"))
    assert result.passed and not _records._UNSAVED
    """
)


def test_several_kernels_checking_at_once_lose_no_record(progress_file, tmp_path):
    start = tmp_path / "go"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(start), "2000", str(k)],
                         env=dict(os.environ), stdout=subprocess.DEVNULL)
        for k in range(4)
    ]
    start.touch()
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0, 0]
    records = _records.read()
    assert records.skipped == [] and len(records.entries) == 4 * 2001
    written = {e["mistake"] for e in records.entries if e["mistake"]}
    assert written == {f"w{k}-{i}" for k in range(4) for i in range(2000)}
    assert sum(e["passed"] for e in records.entries) == 4


def test_a_truncated_last_line_is_reported_and_the_next_record_is_whole(progress_file, capsys):
    check("02.1", _wrong_scores)
    check("01.2", reference("01.2"))
    whole = progress_file.read_bytes()
    progress_file.write_bytes(whole + whole.splitlines(keepends=True)[0][:37])  # cut short
    assert progress()["02.1"] == "attempted"
    out = capsys.readouterr().out
    assert f"Note: {progress_file}: 1 unreadable line skipped (line 3); every other" in out
    check("02.1", reference("02.1"))  # must not be glued to the broken line
    records = _records.read()
    assert records.skipped == [3] and len(records.entries) == 3
    assert progress(show=False)["02.1"] == "passed"


def test_garbage_lines_are_skipped_one_by_one(progress_file, capsys):
    good = {"v": 1, "event": "check", "id": "01.1", "passed": True, "mistake": None,
            "time": "2025-01-01T10:00:00+00:00"}
    bad = [b"\xff\xfe\x00 binary", b"not json at all", b'{"id": 3}', b"[1, 2]",
           json.dumps({**good, "passed": "yes"}).encode(),
           json.dumps({**good, "event": "x"}).encode(),
           json.dumps({**good, "event": "hint", "level": 0}).encode()]
    lines = [json.dumps(good).encode(), *bad, b"", json.dumps({**good, "id": "01.2"}).encode()]
    progress_file.write_bytes(b"\n".join(lines) + b"\n")
    status = progress()
    assert status["01.1"] == status["01.2"] == "passed"
    out = capsys.readouterr().out
    assert "7 unreadable lines skipped (lines 2, 3, 4, 5, 6, 7, 8); every other record" in out


def test_an_unwritable_place_does_not_stop_check(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "progress.jsonl"  # a file cannot hold a folder: never writable
    monkeypatch.setenv(_records.ENV, str(target))
    monkeypatch.setattr(_records, "_UNSAVED", [])
    result = check("02.1", reference("02.1"))
    assert result.passed
    out = capsys.readouterr().out
    assert out.startswith(result.report + "\n")
    assert f"(Progress not saved: cannot write {target} (" in out
    assert "ATTENTION_PROGRESS_FILE to a file you can write.)" in out
    assert progress(show=False)["02.1"] == "passed"  # kept for this session


def test_a_folder_in_place_of_the_file_is_reported_not_raised(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "progress.jsonl"
    folder.mkdir()
    monkeypatch.setenv(_records.ENV, str(folder))
    monkeypatch.setattr(_records, "_UNSAVED", [])
    assert check("02.1", _wrong_scores).mistake == "no scale"
    assert "Progress not saved" in capsys.readouterr().out
    assert progress()["02.1"] == "attempted"
    assert f"Could not read {folder}" in capsys.readouterr().out


def test_the_default_file_is_outside_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv(_records.ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert _records.progress_file() == tmp_path / "attention-from-scratch" / "progress.jsonl"
    monkeypatch.delenv("XDG_DATA_HOME")
    default = _records.progress_file()
    assert default == Path.home() / ".local/share/attention-from-scratch/progress.jsonl"
    assert ROOT not in default.parents


def test_test_runs_never_write_the_learners_file():
    """The root conftest.py points every pytest run (and the kernels nbval starts) elsewhere."""
    chosen = Path(os.environ[_records.ENV])
    assert Path(tempfile.gettempdir()) in chosen.parents
    assert chosen.name == "progress.jsonl" and "attention-progress-" in chosen.parent.name


def test_the_command_line_and_make_progress_print_the_table(progress_file):
    check("01.2", reference("01.2"))
    env = dict(os.environ, **{_records.ENV: str(progress_file)})
    module = subprocess.run([sys.executable, "-m", "helpers.exercises", "progress"],
                            env=env, capture_output=True, text=True, check=True)
    assert "  ✓ 01.2  log_softmax" in module.stdout and module.stderr == ""
    venv = Path(sys.prefix)
    made = subprocess.run(
        ["make", "--no-print-directory", "-s", "-o", str(venv / ".installed"), "progress",
         f"VENV={venv}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )
    assert made.stdout == module.stdout
