"""Every pytest run (unit tests, nbval on the notebooks) records exercise checks in a throw-away
progress file, never in the learner's own (see helpers/exercises/_records.py).

The variable is set before nbval starts a kernel, and kernels inherit it.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_MADE: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    folder = tempfile.mkdtemp(prefix="attention-progress-")
    _MADE.append(folder)
    os.environ["ATTENTION_PROGRESS_FILE"] = os.path.join(folder, "progress.jsonl")


def pytest_unconfigure(config: pytest.Config) -> None:
    while _MADE:
        shutil.rmtree(_MADE.pop(), ignore_errors=True)
