"""Smoke test of benchmarks/bench_attention.py: it runs and writes its report (never its speed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_attention.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_attention", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_quick_run_writes_the_report(bench, tmp_path):
    argv = ["--quick", "--in-process", "--reps", "1", "--out-dir", str(tmp_path)]
    result = bench.main(argv)
    report = (tmp_path / "benchmark.md").read_text()
    assert report == result["report"]
    assert (tmp_path / "benchmark.png").stat().st_size > 0
    for size in bench.QUICK_MHA_SIZES:
        assert str(size) in report  # one row per (batch, seq, d_model, heads)
    for length in bench.QUICK_TILED_LENGTHS:
        assert f"\n| {length} |" in report  # one row per attention length
    assert "NumPy / PyTorch" in report and "time slope" in report
    timings = result["mha"]["numpy_mha"]["median"]
    assert len(timings) == len(bench.QUICK_MHA_SIZES) and all(t > 0 for t in timings)


def test_flop_count(bench):
    # Projections 4 · 2·B·L·d² and scores plus weighted sum 2 · 2·B·L²·d.
    assert bench.mha_flops(1, 1, 1) == 8 + 4
    assert bench.mha_flops(2, 3, 5) == 8 * 2 * 3 * 25 + 4 * 2 * 9 * 5


def test_child_task_runs_in_its_own_process(bench):
    # One real child process, as the full benchmark uses: it reports its own peak memory.
    cfg = bench.Config()
    result = bench.run_task(cfg, "attention", method="tiled", length=32, warmup=0, reps=1)
    assert result["median"] > 0
    assert result["peak_rss"] >= result["baseline_rss"] > 0


def test_thread_memory_benchmark_writes_its_section(tmp_path):
    # Two real child processes (eight threads each, tiny sizes): the table, never a judgement.
    spec = importlib.util.spec_from_file_location(
        "bench_thread_memory", SCRIPT.parent / "bench_thread_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "benchmark.md").write_text("# Attention benchmark\n\n## Multi-head\n\ntable\n")
    section = module.main(["--quick", "--out-dir", str(tmp_path)])
    report = (tmp_path / "benchmark.md").read_text()
    assert section in report and "## Multi-head\n\ntable" in report
    assert "`multi_head_attention`" in section and "layer forward + backward" in section
