"""The learner's record of checks and hints: one JSON object a line, appended, never rewritten.

Where: ``$ATTENTION_PROGRESS_FILE`` when set, else ``$XDG_DATA_HOME/attention-from-scratch/
progress.jsonl`` (``~/.local/share/...`` without ``XDG_DATA_HOME``): outside the repository, so
it survives a ``git pull``, a fresh clone and a deleted workspace. The test targets point
``ATTENTION_PROGRESS_FILE`` at a throw-away file, so a test run never writes the real one.

* **Appending is safe with several kernels**: each record is one ``os.write`` of one line to a
  file opened with ``O_APPEND`` (the kernel appends it whole at the end), under an exclusive
  ``flock`` where the OS has one. If the file does not end with a newline (a write cut short),
  the record starts with one, so it never merges with the broken line.
* **Reading never fails**: a line that is not a valid record (truncated, garbage, an unknown
  kind) is skipped and counted; every valid line is used.
* **A place that cannot be written** does not stop a check: the record is kept for this
  session only, and the caller is told why it was not saved.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:  # POSIX; on Windows the O_APPEND single write alone keeps records whole
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

ENV = "ATTENTION_PROGRESS_FILE"
VERSION = 1
_UNSAVED: list[dict[str, Any]] = []  # records of this session that could not be written


def progress_file() -> Path:
    """The learner's progress file (read from the environment on every call)."""
    chosen = os.environ.get(ENV)
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "attention-from-scratch" / "progress.jsonl"


def now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def append(entry: dict[str, Any]) -> str | None:
    """Append one record; None when it was saved, else why it was not (it is kept in memory)."""
    entry = {"v": VERSION, "time": now(), **entry}
    path = progress_file()
    data = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size > 0:
                os.lseek(fd, size - 1, os.SEEK_SET)
                if os.read(fd, 1) not in (b"\n", b""):
                    data = b"\n" + data  # the last line was cut short: start a new one
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(f"only {written} of {len(data)} bytes were written")
        finally:
            os.close(fd)  # closing releases the lock
    except OSError as err:
        _UNSAVED.append(entry)
        reason = err.strerror or str(err)
        return f"cannot write {path} ({reason})"
    return None


def _valid(entry: Any) -> bool:
    if not (isinstance(entry, dict) and isinstance(entry.get("id"), str)):
        return False
    if not isinstance(entry.get("time"), str):
        return False
    if entry.get("event") == "check":
        return isinstance(entry.get("passed"), bool) and (
            entry.get("mistake") is None or isinstance(entry.get("mistake"), str)
        )
    if entry.get("event") == "hint":
        level, mistake = entry.get("level"), entry.get("mistake")
        return (isinstance(level, int) and level >= 1) or isinstance(mistake, str)
    return False


@dataclass
class Records:
    """The valid records, in the order they were written, and what could not be read."""

    path: Path
    entries: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # 1-based numbers of unreadable lines
    error: str | None = None  # the file exists but cannot be read

    def problems(self) -> str | None:
        """One sentence on what could not be read, or None."""
        if self.error:
            return f"Could not read {self.path} ({self.error}); showing this session only."
        if not self.skipped:
            return None
        lines = ", ".join(map(str, self.skipped[:10])) + (", …" if len(self.skipped) > 10 else "")
        n = len(self.skipped)
        return (
            f"{self.path}: {n} unreadable line{'s' if n > 1 else ''} skipped "
            f"(line{'s' if n > 1 else ''} {lines}); every other record is used."
        )


def read() -> Records:
    """Every valid record of the progress file, then this session's unsaved ones."""
    records = Records(progress_file())
    try:
        data = records.path.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as err:
        data, records.error = b"", err.strerror or str(err)
    for n, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            entry = None
        if _valid(entry):
            records.entries.append(entry)
        else:
            records.skipped.append(n)
    records.entries.extend(_UNSAVED)
    return records
