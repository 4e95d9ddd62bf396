"""Benchmark one training step of the NumPy ``MultiHeadAttention`` against PyTorch autograd.

Run from the repository root::

    .venv/bin/python benchmarks/bench_training.py            # full run, about a minute
    .venv/bin/python benchmarks/bench_training.py --quick    # smoke run, a few seconds

One training step is the forward pass of multi-head self-attention and the backward pass from
a fixed upstream gradient ``d_out``, returning the gradient of the input and of all four weight
matrices: ``helpers.MultiHeadAttention`` (``layer(x, need_weights=False)``, then
``layer.backward(d_out)``, gradients zeroed before each step) against
``torch.nn.MultiheadAttention`` on the CPU (training mode, ``batch_first=True``,
``need_weights=False``, ``out.backward(d_out)``, ``.grad`` reset to None before each step).
Both float32, no bias, no mask, the same weights and inputs, at the sizes of
``bench_attention.py``. FLOPs counted: the forward pass of ``bench_attention.mha_flops`` and
twice as much for the backward pass (two products per product of the forward pass).

Method as in ``bench_attention.py``: each library runs in its own child process (BLAS and
OpenMP threads of one library would slow the other), ``warmup`` untimed steps, then the median of
at least ``reps`` timed ones; ``--rounds`` alternating rounds, the best median kept. The report is
printed, written to ``outputs/benchmark_training.md``, and its section replaces the previous
training section of ``outputs/benchmark.md`` (or is appended to it), so that it sits beside
``bench_attention.py``'s report whichever of the two ran last.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_attention import MHA_SIZES, median_time, mha_inputs
from bench_report import (
    fmt_ms,
    markdown_table,
    mha_flops,
    numpy_setup,
    ratio_range,
    replace_section,
    torch_setup,
)

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
QUICK_SIZES = [(2, 16, 32, 4), (1, 64, 32, 4)]
SECTION = "## Training step: forward + backward (float32)"


@dataclass
class Config:
    """What to run. ``isolate=False`` runs every measurement in this process (smoke tests)."""

    sizes: list[tuple[int, int, int, int]] = field(default_factory=lambda: list(MHA_SIZES))
    warmup: int = 2
    reps: int = 10
    rounds: int = 2
    min_seconds: float = 1.0
    isolate: bool = True
    out_dir: Path = ROOT / "outputs"


def step_flops(batch: int, seq: int, d_model: int) -> int:
    """FLOPs of a forward pass plus a backward pass (twice the forward): ``3 * mha_flops``."""
    return 3 * mha_flops(batch, seq, d_model)


def upstream_gradient(batch: int, seq: int, d_model: int) -> np.ndarray:
    """The fixed ``d_out (B, L, d)`` both libraries backpropagate, float32."""
    rng = np.random.default_rng(SEED + 1)
    return rng.standard_normal((batch, seq, d_model), dtype=np.float32)


def numpy_layer(d_model: int, heads: int, weights: Sequence[np.ndarray]) -> Any:
    from helpers import MultiHeadAttention

    layer = MultiHeadAttention(d_model, heads, bias=False, dtype=np.float32)
    layer.W_q, layer.W_k, layer.W_v, layer.W_o = (w.copy() for w in weights)
    return layer


def torch_module(d_model: int, heads: int, weights: Sequence[np.ndarray]) -> Any:
    """``nn.MultiheadAttention`` in training mode holding ``weights`` (x @ W -> W.T in PyTorch)."""
    import torch

    module = torch.nn.MultiheadAttention(d_model, heads, bias=False, batch_first=True)
    W_q, W_k, W_v, W_o = (torch.from_numpy(np.ascontiguousarray(w.T)) for w in weights)
    with torch.no_grad():
        module.in_proj_weight.copy_(torch.cat([W_q, W_k, W_v]))
        module.out_proj.weight.copy_(W_o)
    return module.train()


def numpy_step(layer: Any, x: np.ndarray, d_out: np.ndarray) -> tuple[np.ndarray, dict]:
    layer.zero_grad()
    layer(x, need_weights=False)
    return layer.backward(d_out), layer.grads


def torch_step(module: Any, xt: Any, d_out_t: Any) -> tuple[Any, list]:
    for p in module.parameters():
        p.grad = None
    xt.grad = None
    out = module(xt, xt, xt, need_weights=False)[0]
    out.backward(d_out_t)
    return xt.grad, [p.grad for p in module.parameters()]


# ============================================================================ child tasks
def task_numpy(sizes: list[list[int]], warmup: int, reps: int,
               min_seconds: float = 0.0) -> dict[str, Any]:
    results = []
    for batch, seq, d_model, heads in sizes:
        x, weights = mha_inputs(batch, seq, d_model)
        layer, d_out = numpy_layer(d_model, heads, weights), upstream_gradient(batch, seq, d_model)
        results.append(median_time(lambda layer=layer, x=x, d_out=d_out:
                                   numpy_step(layer, x, d_out), warmup, reps, min_seconds))
    return {"results": results, "setup": numpy_setup(), "version": np.__version__}


def task_torch(sizes: list[list[int]], warmup: int, reps: int,
               min_seconds: float = 0.0) -> dict[str, Any]:
    import torch

    results = []
    for batch, seq, d_model, heads in sizes:
        x, weights = mha_inputs(batch, seq, d_model)
        module = torch_module(d_model, heads, weights)
        xt = torch.from_numpy(x).requires_grad_()
        d_out_t = torch.from_numpy(upstream_gradient(batch, seq, d_model))
        results.append(median_time(lambda module=module, xt=xt, d_out_t=d_out_t:
                                   torch_step(module, xt, d_out_t), warmup, reps, min_seconds))
    return {"results": results, "setup": torch_setup(), "version": torch.__version__}


TASKS: dict[str, Callable[..., dict[str, Any]]] = {"numpy": task_numpy, "torch": task_torch}


def run_task(cfg: Config, name: str, **kwargs: Any) -> dict[str, Any]:
    """Run one task, in its own child process when ``cfg.isolate``."""
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
def check_agreement(sizes: Sequence[tuple[int, int, int, int]]) -> float:
    """Largest relative difference of dx and the weight gradients at the smallest size."""
    import torch

    batch, seq, d_model, heads = min(sizes, key=lambda s: mha_flops(*s[:3]))
    x, weights = mha_inputs(batch, seq, d_model)
    d_out = upstream_gradient(batch, seq, d_model)
    dx, grads = numpy_step(numpy_layer(d_model, heads, weights), x, d_out)
    module = torch_module(d_model, heads, weights)
    xt = torch.from_numpy(x).requires_grad_()
    t_dx, _ = torch_step(module, xt, torch.from_numpy(d_out))
    W_in = module.in_proj_weight.grad.numpy()  # (3d, d), rows W_q^T; W_k^T; W_v^T
    theirs = {"W_q": W_in[:d_model].T, "W_k": W_in[d_model:2 * d_model].T,
              "W_v": W_in[2 * d_model:].T, "W_o": module.out_proj.weight.grad.numpy().T}
    pairs = [(dx, t_dx.numpy())] + [(grads[k], theirs[k]) for k in theirs]
    gap = max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in pairs)
    if not gap < 1e-4:
        raise AssertionError(f"NumPy and PyTorch gradients disagree by {gap:.2e} (relative)")
    return gap


def measure(cfg: Config) -> dict[str, Any]:
    """Both libraries at every size; per library and size the best round's median and min."""
    sizes = [list(s) for s in cfg.sizes]
    runs: dict[str, list[dict[str, Any]]] = {"numpy": [], "torch": []}
    for _ in range(cfg.rounds):
        for lib in runs:  # one process per library per round, alternating
            runs[lib].append(run_task(cfg, lib, sizes=sizes, warmup=cfg.warmup, reps=cfg.reps,
                                      min_seconds=cfg.min_seconds))
    return {lib: {
        "median": [min(r["results"][i]["median"] for r in rs) for i in range(len(sizes))],
        "rounds": [[r["results"][i]["median"] for r in rs] for i in range(len(sizes))],
        "setup": rs[0]["setup"], "version": rs[0]["version"],
    } for lib, rs in runs.items()}


def build_section(cfg: Config, result: dict[str, Any], agreement: float) -> str:
    np_res, pt_res = result["numpy"], result["torch"]
    rows = []
    for i, (batch, seq, d_model, heads) in enumerate(cfg.sizes):
        flops = step_flops(batch, seq, d_model)
        t_np, t_pt = np_res["median"][i], pt_res["median"][i]
        rows.append([f"({batch}, {seq}, {d_model}, {heads})", f"{flops / 1e9:.2f}", fmt_ms(t_np),
                     f"{flops / t_np / 1e9:.0f}", fmt_ms(t_pt), f"{flops / t_pt / 1e9:.0f}",
                     f"**{t_np / t_pt:.2f}**", ratio_range(np_res["rounds"][i],
                                                          pt_res["rounds"][i])])
    lines = [
        SECTION, "",
        f"One step: forward pass and backward pass of multi-head self-attention from a fixed "
        f"upstream gradient, returning dx and the gradients of W_q, W_k, W_v, W_o; no bias, no "
        f"mask. NumPy {np_res['version']} (`helpers.MultiHeadAttention`) against PyTorch "
        f"{pt_res['version']} autograd, each in its own process; best median of {cfg.rounds} "
        f"alternating round(s), at least {cfg.reps} timed steps each. The gradients agree to "
        f"{agreement:.1e} (largest relative difference, smallest size). FLOPs: 3 × the forward "
        f"pass's.", "",
        f"- NumPy: {np_res['setup']}", f"- PyTorch: {pt_res['setup']}", "",
        markdown_table(["(batch, seq, d_model, heads)", "GFLOP", "NumPy ms", "NumPy GFLOP/s",
                        "PyTorch ms", "PyTorch GFLOP/s", "NumPy / PyTorch",
                        "ratio per round"], rows),
    ]
    return "\n".join(lines) + "\n"


def write_reports(cfg: Config, section: str) -> None:
    """``benchmark_training.md`` (this report) and this section inside ``benchmark.md``."""
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    header = (f"# Training-step benchmark\n\n- Machine: {platform.machine()}, {os.cpu_count()} "
              f"logical CPUs, Python {platform.python_version()}\n\n")
    (cfg.out_dir / "benchmark_training.md").write_text(header + section)
    replace_section(cfg.out_dir / "benchmark.md", SECTION, section)


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Config]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few repetitions")
    parser.add_argument("--in-process", action="store_true", help="no child processes")
    parser.add_argument("--rounds", type=int, help="alternating rounds per library (default 2)")
    parser.add_argument("--reps", type=int, help="timed steps per measurement (default 10)")
    parser.add_argument("--out-dir", type=Path, help="where to write the reports")
    parser.add_argument("--task", help=argparse.SUPPRESS)  # internal: run one child task
    args = parser.parse_args(argv)
    cfg = Config()
    if args.quick:
        cfg = Config(sizes=list(QUICK_SIZES), warmup=1, reps=3, rounds=1, min_seconds=0.0)
    cfg.isolate = not args.in_process
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
        print(json.dumps(TASKS[spec.pop("name")](**spec)))
        return {}
    agreement = check_agreement(cfg.sizes)
    print("training step: NumPy and PyTorch ...", flush=True)
    result = measure(cfg)
    section = build_section(cfg, result, agreement)
    print()
    print(section)
    write_reports(cfg, section)
    print(f"wrote {cfg.out_dir / 'benchmark_training.md'} and its section in benchmark.md")
    return {"result": result, "section": section, "agreement": agreement}


if __name__ == "__main__":
    main()
