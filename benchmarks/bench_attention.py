"""Benchmark the course's NumPy attention against PyTorch, and tiled against dense attention.

Run from the repository root::

    .venv/bin/python benchmarks/bench_attention.py            # full run, about 1-2 minutes
    .venv/bin/python benchmarks/bench_attention.py --quick    # smoke run, a few seconds

Three measurements, each printed as a table and written to ``outputs/benchmark.md``
(with the figure ``outputs/benchmark.png``):

1. **The machine's float32 matmul rate**: ``A @ B`` with ``A, B`` of shape
   ``(2048, 2048)`` in NumPy, ``2 · 2048³`` FLOPs. It is the yardstick: every other
   result is also shown as a fraction of it.
2. **Multi-head self-attention**, ``helpers.multi_head_attention`` against
   ``torch.nn.MultiheadAttention`` (CPU, eval mode, ``batch_first=True``, no bias,
   ``need_weights=True, average_attn_weights=False`` so both return the per-head
   weights), float32, the same weights, at several ``(batch, seq, d_model, heads)``.
   FLOPs counted: projections ``4 · 2·B·L·d²`` plus scores and weighted sum
   ``2 · 2·B·L²·d``.
3. **Tiled against dense attention** for one head, ``d = 64``, float32, growing
   ``L``: median time and peak resident memory (RSS) of the process, and the
   log-log slopes of both against ``L``.

Method. Each library (and each attention length) is timed in its own child
process: BLAS and OpenMP threads keep spinning for a while after a call, so
interleaving NumPy and PyTorch calls in one process would slow both. A child
runs ``warmup`` untimed calls, then ``reps`` timed calls (for a fast MHA size,
as many more as fill about a second, at most 200), and reports their median.
With ``--rounds 2`` (the default) the NumPy and PyTorch processes run twice,
alternating, and the better median of the two rounds is kept: on a shared
machine that discards a round spoilt by someone else's job. A child also
reports its peak resident memory (``VmHWM``, its own address space's high-water
mark) when it finishes.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_report.py lies beside this file
from bench_report import HEAD_DIM, build_report, mha_flops, numpy_setup, plot_report, torch_setup

ROOT = Path(__file__).resolve().parents[1]
SEED = 0

# (batch, seq, d_model, heads)
MHA_SIZES = [(8, 128, 256, 8), (4, 512, 512, 8), (1, 2048, 512, 8)]
QUICK_MHA_SIZES = [(2, 16, 32, 4), (1, 64, 32, 4)]
TILED_LENGTHS = [1024, 2048, 4096, 8192, 16384]
QUICK_TILED_LENGTHS = [64, 128, 256]
MATMUL_N = 2048
QUICK_MATMUL_N = 256


@dataclass
class Config:
    """What to run. ``isolate=False`` runs every measurement in this process (smoke tests)."""

    mha_sizes: list[tuple[int, int, int, int]] = field(default_factory=lambda: list(MHA_SIZES))
    tiled_lengths: list[int] = field(default_factory=lambda: list(TILED_LENGTHS))
    dense_max_len: int = 16384  # dense at 16384 needs about 3 GiB: fine on a 24 GiB machine
    matmul_n: int = MATMUL_N
    warmup: int = 3
    reps: int = 10
    long_reps: int = 3  # repetitions for the slow attention lengths (>= 4096)
    rounds: int = 2
    min_seconds: float = 1.0  # fast MHA sizes: repeat (up to 200 calls) for about this long
    isolate: bool = True
    out_dir: Path = ROOT / "outputs"
    plot: bool = True


# ============================================================================ timing helpers
def median_time(fn: Callable[[], object], warmup: int, reps: int,
                min_seconds: float = 0.0) -> dict[str, float]:
    """Median and minimum wall time (seconds) of the timed calls after ``warmup`` calls.

    At least ``reps`` calls are timed, more (up to 200) for fast calls until about
    ``min_seconds`` have passed: a median over more calls is steadier.
    """
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    reps = max(reps, min(200, int(min_seconds / max(first, 1e-9))))
    times = [first]
    for _ in range(reps - 1):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median": float(np.median(times)), "min": float(np.min(times)), "reps": reps}


def mha_inputs(batch: int, seq: int, d_model: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The same float32 tokens ``(B, L, d)`` and four ``(d, d)`` weights for both libraries."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((batch, seq, d_model), dtype=np.float32)
    limit = math.sqrt(6.0 / (2 * d_model))  # Xavier-uniform, as both libraries initialise
    weights = [rng.uniform(-limit, limit, (d_model, d_model)).astype(np.float32) for _ in range(4)]
    return x, weights


def torch_mha(d_model: int, heads: int, weights: Sequence[np.ndarray]) -> Any:
    """``torch.nn.MultiheadAttention`` holding ``weights`` (x @ W convention -> W.T in PyTorch)."""
    import torch

    module = torch.nn.MultiheadAttention(d_model, heads, bias=False, batch_first=True).eval()
    W_q, W_k, W_v, W_o = (torch.from_numpy(np.ascontiguousarray(w.T)) for w in weights)
    with torch.no_grad():
        module.in_proj_weight.copy_(torch.cat([W_q, W_k, W_v]))
        module.out_proj.weight.copy_(W_o)
    return module


# ============================================================================ child tasks
def task_matmul(n: int, warmup: int, reps: int) -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    timing = median_time(lambda: a @ b, warmup, reps)
    return {**timing, "gflops": 2 * n**3 / timing["median"] / 1e9}


def task_numpy_mha(sizes: list[list[int]], warmup: int, reps: int,
                   min_seconds: float = 0.0) -> dict[str, Any]:
    from helpers import multi_head_attention

    results = []
    for batch, seq, d_model, heads in sizes:
        x, weights = mha_inputs(batch, seq, d_model)

        def call(x: np.ndarray = x, weights: list[np.ndarray] = weights, heads: int = heads):
            return multi_head_attention(x, *weights, heads)

        results.append(median_time(call, warmup, reps, min_seconds))
    return {"results": results, "setup": numpy_setup(), "version": np.__version__}


def task_torch_mha(sizes: list[list[int]], warmup: int, reps: int,
                   min_seconds: float = 0.0) -> dict[str, Any]:
    import torch

    results = []
    for batch, seq, d_model, heads in sizes:
        x, weights = mha_inputs(batch, seq, d_model)
        module = torch_mha(d_model, heads, weights)
        xt = torch.from_numpy(x)

        def call(module: Any = module, xt: Any = xt) -> object:
            with torch.inference_mode():
                return module(xt, xt, xt, need_weights=True, average_attn_weights=False)

        results.append(median_time(call, warmup, reps, min_seconds))
    return {"results": results, "setup": torch_setup(), "version": torch.__version__}


def task_attention(method: str, length: int, warmup: int, reps: int) -> dict[str, Any]:
    from helpers import attention, tiled_attention

    rng = np.random.default_rng(SEED)
    Q, K, V = (rng.standard_normal((length, HEAD_DIM), dtype=np.float32) for _ in range(3))
    baseline = peak_rss_self()  # imports + inputs, before any attention call
    fn = {
        "dense": lambda: attention(Q, K, V),  # materialises the (L, L) scores and weights
        "tiled": lambda: tiled_attention(Q, K, V),
        "tiled causal": lambda: tiled_attention(Q, K, V, causal=True),
    }[method]
    return {**median_time(fn, warmup, reps), "baseline_rss": baseline}


TASKS: dict[str, Callable[..., dict[str, Any]]] = {
    "matmul": task_matmul,
    "numpy_mha": task_numpy_mha,
    "torch_mha": task_torch_mha,
    "attention": task_attention,
}


def peak_rss_self() -> int:
    """Peak resident memory of this process so far, in bytes.

    On Linux this is ``VmHWM`` of ``/proc/self/status``: the high-water mark of
    the process's own address space. (``ru_maxrss`` of a child started with
    fork/exec also counts the parent's memory at the fork, e.g. an imported
    PyTorch, so it would overstate a small child.) Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS: bytes, Linux: KiB


def run_task(cfg: Config, name: str, **kwargs: Any) -> dict[str, Any]:
    """Run one task, in its own child process when ``cfg.isolate``.

    The child adds its own ``peak_rss`` (bytes) to the result; in-process runs
    have none, since this process's peak says nothing about one measurement.
    """
    if not cfg.isolate:
        return TASKS[name](**kwargs)
    done = subprocess.run(
        [sys.executable, __file__, "--task", json.dumps({"name": name, **kwargs})],
        stdout=subprocess.PIPE, cwd=ROOT, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark task {name} {kwargs} failed (exit {done.returncode})")
    return json.loads(done.stdout)


# ============================================================================ measurements
def check_agreement(sizes: Sequence[tuple[int, int, int, int]]) -> float | None:
    """Largest |NumPy - PyTorch| of outputs and weights at the smallest size (None: no torch)."""
    try:
        import torch
    except ImportError:
        return None
    from helpers import multi_head_attention

    batch, seq, d_model, heads = min(sizes, key=lambda s: mha_flops(*s[:3]))
    x, weights = mha_inputs(batch, seq, d_model)
    out, w = multi_head_attention(x, *weights, heads)
    with torch.inference_mode():
        t_out, t_w = torch_mha(d_model, heads, weights)(
            *(torch.from_numpy(x),) * 3, need_weights=True, average_attn_weights=False
        )
    diff = max(np.abs(out - t_out.numpy()).max(), np.abs(w - t_w.numpy()).max())
    if not diff < 1e-4:
        raise AssertionError(f"NumPy and PyTorch disagree by {diff:.2e}")
    return float(diff)


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def measure_mha(cfg: Config) -> dict[str, Any]:
    """Time both libraries at every size; keep, per library and size, the best round's median."""
    sizes = [list(s) for s in cfg.mha_sizes]
    libraries = ["numpy_mha"] + (["torch_mha"] if torch_available() else [])
    rounds: dict[str, list[dict[str, Any]]] = {lib: [] for lib in libraries}
    for _ in range(cfg.rounds):
        for lib in libraries:  # one process per library per round: A A A | B B B | A A A ...
            rounds[lib].append(run_task(cfg, lib, sizes=sizes, warmup=cfg.warmup, reps=cfg.reps,
                                        min_seconds=cfg.min_seconds))
    best: dict[str, Any] = {}
    for lib, runs in rounds.items():
        best[lib] = {
            "median": [min(r["results"][i]["median"] for r in runs) for i in range(len(sizes))],
            "min": [min(r["results"][i]["min"] for r in runs) for i in range(len(sizes))],
            "rounds": [[r["results"][i]["median"] for r in runs] for i in range(len(sizes))],
            "setup": runs[0]["setup"],
            "version": runs[0]["version"],
        }
    return best


def measure_attention(cfg: Config) -> dict[str, list[dict[str, Any] | None]]:
    """Dense and tiled attention at each length, each (length, method) in its own process."""
    results: dict[str, list[dict[str, Any] | None]] = {}
    for method in ("dense", "tiled", "tiled causal"):
        results[method] = []
        for length in cfg.tiled_lengths:
            if method == "dense" and length > cfg.dense_max_len:
                results[method].append(None)
                continue
            slow = length >= 4096
            results[method].append(run_task(
                cfg, "attention", method=method, length=length,
                warmup=1 if slow else cfg.warmup, reps=cfg.long_reps if slow else cfg.reps,
            ))
    return results


# ============================================================================ main
def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Config]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions")
    parser.add_argument("--in-process", action="store_true",
                        help="no child processes (no peak memory; for smoke tests)")
    parser.add_argument("--rounds", type=int, help="alternating rounds per library (default 2)")
    parser.add_argument("--reps", type=int, help="timed calls per measurement (default 10)")
    parser.add_argument("--out-dir", type=Path, help="where to write benchmark.md/.png")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--skip-tiled", action="store_true", help="skip tiled vs dense")
    parser.add_argument("--task", help=argparse.SUPPRESS)  # internal: run one child task
    args = parser.parse_args(argv)
    cfg = Config()
    if args.quick:
        cfg = Config(mha_sizes=list(QUICK_MHA_SIZES), tiled_lengths=list(QUICK_TILED_LENGTHS),
                     matmul_n=QUICK_MATMUL_N, warmup=1, reps=3, long_reps=1, rounds=1,
                     min_seconds=0.0)
    if args.skip_tiled:
        cfg.tiled_lengths = []
    cfg.isolate = not args.in_process
    cfg.plot = not args.no_plot
    if args.rounds is not None:
        cfg.rounds = args.rounds
    if args.reps is not None:
        cfg.reps = args.reps
    if args.out_dir is not None:
        cfg.out_dir = args.out_dir
    return args, cfg


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args, cfg = parse_args(argv)
    if args.task:  # child process: run one task, print its JSON result
        spec = json.loads(args.task)
        result = TASKS[spec.pop("name")](**spec)
        print(json.dumps({**result, "peak_rss": peak_rss_self()}))
        return {}
    agreement = check_agreement(cfg.mha_sizes)
    print("float32 matmul ...", flush=True)
    matmul = run_task(cfg, "matmul", n=cfg.matmul_n, warmup=cfg.warmup, reps=cfg.reps)
    print("multi-head attention ...", flush=True)
    mha = measure_mha(cfg)
    if cfg.tiled_lengths:
        print("tiled and dense attention ...", flush=True)
    attn = measure_attention(cfg)
    report = build_report(cfg, matmul, mha, attn, agreement)
    print()
    print(report)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    (cfg.out_dir / "benchmark.md").write_text(report)
    if cfg.plot:
        plot_report(cfg, matmul, mha, attn, cfg.out_dir / "benchmark.png")
    print(f"wrote {cfg.out_dir / 'benchmark.md'}" + (" and benchmark.png" if cfg.plot else ""))
    return {"matmul": matmul, "mha": mha, "attention": attn, "report": report}


if __name__ == "__main__":
    main()
