"""The memory a pool of user threads keeps after calling the attention layer (RSS, no timing).

Run from the repository root::

    .venv/bin/python benchmarks/bench_thread_memory.py            # about half a minute
    .venv/bin/python benchmarks/bench_thread_memory.py --quick    # small sizes, a few seconds

Eight threads of a ``ThreadPoolExecutor`` each make three calls at B=16, L=512, d=256, h=8,
float32, then sit idle until the pool shuts down. Two workloads: ``multi_head_attention``
(weights returned and dropped at once), and training steps of a ``MultiHeadAttention`` of the
thread's own (forward, backward). Each workload runs in a child process of its own, which
reports its resident set size (``VmRSS``) before the pool, while the pool's threads are idle,
and after the pool ended, with the bytes the fast path keeps for reuse
(:func:`helpers.fastpath.scratch.held_bytes`). Printed, and written as a section of
``outputs/benchmark.md``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import markdown_table, replace_section

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Memory kept by a pool of user threads"
THREADS = 8
MiB = 2**20


def rss() -> int:
    """This process's resident set size in bytes (Linux)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))


def measure(workload: str, size: list[int]) -> dict[str, float]:
    """Run the workload in 8 pool threads; RSS before, idle and after (child process)."""
    from helpers import MultiHeadAttention, multi_head_attention
    from helpers.fastpath import scratch

    B, L, d, h = size
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((B, L, d), dtype=np.float32) for _ in range(THREADS)]
    layers = [MultiHeadAttention(d, h, seed=i, dtype=np.float32) for i in range(THREADS)]

    def work(i: int) -> None:
        layer, x = layers[i], xs[i]
        for _ in range(3):
            if workload == "function":
                multi_head_attention(x, layer.W_q, layer.W_k, layer.W_v, layer.W_o, h)
            else:
                layer(x, need_weights=False)
                layer.backward(x)

    before = rss()
    pool = ThreadPoolExecutor(THREADS)
    list(pool.map(work, range(THREADS)))
    time.sleep(0.2)
    idle, kept = rss(), scratch.held_bytes()[1]
    pool.shutdown(wait=True)
    time.sleep(0.2)
    return {"before": before, "idle": idle, "kept": kept, "after": rss()}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="B=2, L=64, d=32")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "outputs")
    parser.add_argument("--task", help=argparse.SUPPRESS)  # internal: one child measurement
    args = parser.parse_args(argv)
    if args.task:
        spec = json.loads(args.task)
        print(json.dumps(measure(spec["workload"], spec["size"])))
        return ""
    size = [2, 64, 32, 4] if args.quick else [16, 512, 256, 8]
    rows = []
    for workload, what in (("function", "`multi_head_attention`"),
                           ("training", "layer forward + backward")):
        task = json.dumps({"workload": workload, "size": size})
        done = subprocess.run([sys.executable, __file__, "--task", task], cwd=ROOT, check=True,
                              stdout=subprocess.PIPE)
        r = json.loads(done.stdout)
        rows.append([what, f"{r['before'] / MiB:.0f}", f"{r['idle'] / MiB:.0f}",
                     f"{(r['idle'] - r['before']) / THREADS / MiB:.1f}",
                     f"{r['kept'] / MiB:.1f}", f"{r['after'] / MiB:.0f}"])
    section = "\n".join([
        SECTION, "",
        f"{THREADS} user threads each make 3 calls at (batch, seq, d_model, heads) = "
        f"{tuple(size)}, float32, then sit idle until the pool shuts down; resident memory "
        f"(RSS) of the process, each workload in its own process.", "",
        markdown_table(["workload", "before MiB", "pool idle MiB", "per idle thread MiB",
                        "kept for reuse MiB", "after shutdown MiB"], rows)]) + "\n"
    print(section)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    replace_section(args.out_dir / "benchmark.md", SECTION, section)
    return section


if __name__ == "__main__":
    main()
