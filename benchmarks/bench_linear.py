"""Time against sequence length: dense, tiled and linear attention, and their log-log slopes.

Run from the repository root::

    .venv/bin/python benchmarks/bench_linear.py           # full run, about half a minute
    .venv/bin/python benchmarks/bench_linear.py --quick   # smoke run, about a second

One head, ``d = 64``, float64, BLAS on one thread (the numbers then measure the
algorithms, not how threads share the cores). Each entry is the median of
``--reps`` calls after one untimed call. Dense and tiled attention do
``O(N² d)`` work and stop at ``--max-quadratic``; linear attention (``elu + 1``,
plain and causal, and Performer random features with ``r = 256``) does
``O(N r d)`` and runs to ``--max-linear``. The slopes are least-squares fits of
``log time`` against ``log N`` over the lengths from 1024 on (below that, fixed
per-call costs dominate); the last column is dense time / linear time at each N
where both ran, measured in this one run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from helpers import attention, draw_random_features, linear_attention, tiled_attention

D = 64
SEED = 0


def median_time(fn: Callable[..., object], args: tuple, reps: int) -> float:
    """Median wall-clock seconds of ``reps`` calls of ``fn(*args)`` after one untimed call."""
    fn(*args)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(lengths: Sequence[int], max_quadratic: int, reps: int) -> dict[str, dict[int, float]]:
    """Seconds per call, ``{method: {N: seconds}}``."""
    rng = np.random.default_rng(SEED)
    features = draw_random_features(D, 256, rng)
    methods: dict[str, Callable[..., object]] = {
        "dense": lambda Q, K, V: attention(Q, K, V),
        "tiled": lambda Q, K, V: tiled_attention(Q, K, V),
        "linear elu": lambda Q, K, V: linear_attention(Q, K, V),
        "linear elu causal": lambda Q, K, V: linear_attention(Q, K, V, causal=True),
        "linear random r=256": lambda Q, K, V: linear_attention(Q, K, V, feature_map=features),
    }
    results: dict[str, dict[int, float]] = {name: {} for name in methods}
    with threadpool_limits(limits=1, user_api="blas"):
        for n in lengths:
            Q, K, V = (rng.standard_normal((n, D)) for _ in range(3))  # (N, d) each
            for name, fn in methods.items():
                if name in ("dense", "tiled") and n > max_quadratic:
                    continue
                results[name][n] = median_time(fn, (Q, K, V), reps)
    return results


def slope(times: dict[int, float], from_n: int) -> float:
    ns = sorted(n for n in times if n >= from_n)
    if len(ns) < 2:  # too few long lengths (quick runs): fit them all
        ns = sorted(times)
    # the least-squares exponent p of time ~ N^p (helpers.course.plotting.loglog_slope, without
    # importing matplotlib)
    return float(np.polyfit(np.log(ns), np.log([times[n] for n in ns]), 1)[0])


def report(results: dict[str, dict[int, float]], from_n: int) -> str:
    names = list(results)
    lengths = sorted({n for times in results.values() for n in times})
    lines = ["| N | " + " | ".join(f"{name} (ms)" for name in names) + " | dense / linear elu |",
             "|---" * (len(names) + 2) + "|"]
    for n in lengths:
        cells = [f"{results[name][n] * 1e3:.2f}" if n in results[name] else "" for name in names]
        ratio = (f"{results['dense'][n] / results['linear elu'][n]:.1f}"
                 if n in results["dense"] else "")
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {ratio} |")
    lines.append(f"| slope (N >= {from_n}) | "
                 + " | ".join(f"{slope(results[name], from_n):.2f}" for name in names) + " | |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--reps", type=int, default=5, help="timed calls per entry")
    parser.add_argument("--max-quadratic", type=int, default=4096, help="longest dense/tiled N")
    parser.add_argument("--max-linear", type=int, default=65536, help="longest linear N")
    args = parser.parse_args(argv)
    if args.quick:
        lengths, max_quadratic, reps, from_n = [64, 128, 256], 128, 1, 64
    else:
        lengths = [2**k for k in range(8, 17) if 2**k <= args.max_linear]
        max_quadratic, reps, from_n = args.max_quadratic, args.reps, 1024
    results = run(lengths, max_quadratic, reps)
    text = report(results, from_n)
    print(f"One head, d = {D}, float64, one BLAS thread, median of {reps} calls\n")
    print(text)
    return {"results": results, "report": text}


if __name__ == "__main__":
    main()
