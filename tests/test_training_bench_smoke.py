"""Smoke test of benchmarks/bench_training.py: it runs and writes its reports (never its speed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_training.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_training", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture
def one_torch_thread():
    # In-process only: on a busy machine PyTorch's second thread waits for a core for ~0.1 s
    # per step at these tiny sizes. (The real benchmark runs each library in its own process.)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_quick_run_writes_both_reports(bench, tmp_path, one_torch_thread):
    (tmp_path / "benchmark.md").write_text("# Attention benchmark\n\n## Multi-head\n\ntable\n")
    argv = ["--quick", "--in-process", "--reps", "1", "--out-dir", str(tmp_path)]
    result = bench.main(argv)
    own = (tmp_path / "benchmark_training.md").read_text()
    assert result["section"] in own
    for size in bench.QUICK_SIZES:
        assert str(size) in own  # one row per (batch, seq, d_model, heads)
    assert result["agreement"] < 1e-4
    assert all(t > 0 for lib in ("numpy", "torch") for t in result["result"][lib]["median"])
    # The attention section is kept and the training section added once, even on a second run.
    bench.main(argv)
    shared = (tmp_path / "benchmark.md").read_text()
    assert "## Multi-head\n\ntable" in shared
    assert shared.count(bench.SECTION) == 1


def test_section_is_replaced_in_the_middle_of_the_report(bench, tmp_path):
    cfg = bench.Config(out_dir=tmp_path)
    (tmp_path / "benchmark.md").write_text(
        f"# A\n\n{bench.SECTION}\n\nold numbers\n\n## Later section\n\nkept\n")
    bench.write_reports(cfg, f"{bench.SECTION}\n\nnew numbers\n")
    text = (tmp_path / "benchmark.md").read_text()
    assert "old numbers" not in text and "new numbers" in text
    assert "## Later section\n\nkept" in text and text.count(bench.SECTION) == 1


def test_flop_count(bench):
    # Forward 4 · 2·B·L·d² + 2 · 2·B·L²·d; the backward pass counted as twice the forward.
    assert bench.step_flops(1, 1, 1) == 3 * 12
    assert bench.step_flops(2, 3, 5) == 3 * (8 * 2 * 3 * 25 + 4 * 2 * 9 * 5)
