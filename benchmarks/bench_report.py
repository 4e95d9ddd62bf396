"""The report of benchmarks/bench_attention.py: its Markdown tables and its figure.

Kept beside the script that measures; nothing here times anything.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MiB = 2**20
HEAD_DIM = 64  # d of the one-head tiled/dense comparison


def numpy_setup() -> str:
    """This process's NumPy: its BLAS (as threadpoolctl sees it) and the fast path's threads."""
    from threadpoolctl import threadpool_info

    from helpers.fastpath import blas_pin
    from helpers.fastpath.threads import num_workers

    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    lib = (f"{blas[0]['internal_api']} {blas[0]['version']}, "
           f"{blas[0].get('architecture') or 'unknown'} kernel") if blas else "an unknown BLAS"
    workers = num_workers()
    if blas_pin.available() and workers > 1:
        return f"{lib}; {workers} threads of the fast path, each product on 1 BLAS thread"
    return f"{lib}; {workers} thread(s) of the fast path, BLAS {blas[0]['num_threads']} thread(s)"


def torch_setup() -> str:
    """How this process's PyTorch computes: its BLAS, CPU capability and intra-op threads."""
    import torch

    blas = next((part.split("=")[1] for part in torch.__config__.show().replace(",", " ").split()
                 if part.startswith("BLAS_INFO=")), "unknown")
    return (f"{blas} BLAS, CPU capability {torch.backends.cpu.get_cpu_capability()}; "
            f"{torch.get_num_threads()} threads")


def replace_section(path: Path, title: str, section: str) -> None:
    """Write ``section`` (starting with ``title``) into the Markdown report at ``path``, in place
    of a previous section of that title (it runs to the next ``## ``), or at its end."""
    text = path.read_text() if path.exists() else "# Attention benchmark\n"
    if title in text:
        before, _, after = text.partition(title)
        rest = after.split("\n## ", 1)
        text = before.rstrip("\n") + "\n" + ("\n## " + rest[1] if len(rest) > 1 else "")
    path.write_text(text.rstrip("\n") + "\n\n" + section)


def ratio_range(ours: Sequence[float], theirs: Sequence[float]) -> str:
    """The NumPy/PyTorch ratio of each round (round i of one against round i of the other)."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return f"{min(ratios):.2f}–{max(ratios):.2f}" if len(ratios) > 1 else f"{ratios[0]:.2f}"


def mha_flops(batch: int, seq: int, d_model: int) -> int:
    """FLOPs of one MHA forward: 4 projections of ``2·B·L·d²``, ``QK^T`` and ``PV`` ``2·B·L²·d``."""
    return 4 * 2 * batch * seq * d_model**2 + 2 * 2 * batch * seq**2 * d_model


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}" if seconds >= 0.01 else f"{seconds * 1e3:.2f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def slope(lengths: Sequence[int], values: Sequence[float | None]) -> float | None:
    from helpers.course.plotting import loglog_slope

    pairs = [(x, y) for x, y in zip(lengths, values, strict=True) if y is not None and y > 0]
    if len(pairs) < 2:
        return None
    xs, ys = zip(*pairs, strict=True)
    return loglog_slope(xs, ys)


def build_report(cfg: Any, matmul: dict[str, Any], mha: dict[str, Any],
                 attn: dict[str, list[dict[str, Any] | None]], agreement: float | None) -> str:
    peak = matmul["gflops"]
    parts = [
        "# Attention benchmark",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}, NumPy {np.__version__}"
        + (f", PyTorch {mha['torch_mha']['version']}" if "torch_mha" in mha else ""),
        f"- NumPy: {mha['numpy_mha']['setup']}",
        *([f"- PyTorch: {mha['torch_mha']['setup']}"] if "torch_mha" in mha else []),
        f"- float32 matmul rate ({cfg.matmul_n}³ in NumPy): **{peak:.0f} GFLOP/s** "
        f"(median {fmt_ms(matmul['median'])} ms)",
        f"- Timing: {cfg.warmup} warm-up calls, then the median of at least {cfg.reps} calls "
        f"(of more, up to 200, filling about {cfg.min_seconds:g} s, for fast MHA sizes); best of "
        f"{cfg.rounds} alternating round(s); each library in its own process",
    ]
    if agreement is not None:
        parts.append(f"- NumPy and PyTorch agree to {agreement:.1e} (max abs difference)")
    parts += ["", "## Multi-head self-attention (float32, weights returned)", ""]
    rows = []
    for i, (batch, seq, d_model, heads) in enumerate(cfg.mha_sizes):
        flops = mha_flops(batch, seq, d_model)
        t_np = mha["numpy_mha"]["median"][i]
        row = [f"({batch}, {seq}, {d_model}, {heads})", f"{flops / 1e9:.2f}", fmt_ms(t_np),
               f"{flops / t_np / 1e9:.0f}", f"{flops / t_np / 1e9 / peak:.0%}"]
        if "torch_mha" in mha:
            t_pt = mha["torch_mha"]["median"][i]
            row += [fmt_ms(t_pt), f"{flops / t_pt / 1e9:.0f}", f"{flops / t_pt / 1e9 / peak:.0%}",
                    f"**{t_np / t_pt:.2f}**", ratio_range(mha["numpy_mha"]["rounds"][i],
                                                         mha["torch_mha"]["rounds"][i])]
        else:
            row += ["n/a"] * 5
        rows.append(row)
    parts.append(markdown_table(
        ["(batch, seq, d_model, heads)", "GFLOP", "NumPy ms", "NumPy GFLOP/s", "NumPy % matmul",
         "PyTorch ms", "PyTorch GFLOP/s", "PyTorch % matmul", "NumPy / PyTorch",
         "ratio per round"], rows))
    parts += ["", f"## Tiled against dense attention (one head, d = {HEAD_DIM}, float32)", ""]
    rows = []
    for j, length in enumerate(cfg.tiled_lengths):
        row = [str(length), f"{length * length * 4 / MiB:.0f}"]
        for method in ("dense", "tiled", "tiled causal"):
            r = attn[method][j]
            row += ["—", "—"] if r is None else [fmt_ms(r["median"]), peak_text(r)]
        dense, tiled = attn["dense"][j], attn["tiled"][j]
        row.append("—" if dense is None else f"{tiled['median'] / dense['median']:.2f}")
        rows.append(row)
    parts.append(markdown_table(
        ["L", "L² weights MiB", "dense ms", "dense peak MiB", "tiled ms", "tiled peak MiB",
         "causal tiled ms", "causal peak MiB", "tiled / dense time"], rows))
    parts += ["", "Growth with L (log-log slope of time, and of peak memory above the inputs):", ""]
    rows = []
    for method in ("dense", "tiled", "tiled causal"):
        times = [None if r is None else r["median"] for r in attn[method]]
        extra = [None if r is None else working_memory(r) for r in attn[method]]
        s_t, s_m = slope(cfg.tiled_lengths, times), slope(cfg.tiled_lengths, extra)
        rows.append([method, "—" if s_t is None else f"{s_t:.2f}",
                     "—" if s_m is None else f"{s_m:.2f}"])
    parts.append(markdown_table(["method", "time slope", "memory slope"], rows))
    parts += ["", "Peak memory is the peak resident set size of the process that ran the "
              "measurement (Python, NumPy, inputs and output included). At L = 16384 dense "
              f"attention's float32 weights alone take {16384**2 * 4 / 2**30:.0f} GiB, and the "
              "scores and exponentials as much again."]
    if any(length > cfg.dense_max_len for length in cfg.tiled_lengths):
        parts[-1] += f" Dense attention was not run above L = {cfg.dense_max_len}."
    return "\n".join(parts) + "\n"


def working_memory(result: dict[str, Any]) -> float | None:
    """Peak RSS above the baseline measured after imports and inputs (bytes), if known."""
    if "peak_rss" not in result:
        return None
    return max(result["peak_rss"] - result["baseline_rss"], 1)


def peak_text(result: dict[str, Any]) -> str:
    return f"{result['peak_rss'] / MiB:.0f}" if "peak_rss" in result else "n/a"


def plot_report(cfg: Any, matmul: dict[str, Any], mha: dict[str, Any],
                attn: dict[str, list[dict[str, Any] | None]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    labels = [f"B={b}\nL={s}\nd={d}" for b, s, d, _ in cfg.mha_sizes]
    x = np.arange(len(labels))
    libs = [("numpy_mha", "NumPy (helpers)"), ("torch_mha", "PyTorch")]
    for k, (lib, name) in enumerate(lib for lib in libs if lib[0] in mha):
        rates = [mha_flops(b, s, d) / t / 1e9
                 for (b, s, d, _), t in zip(cfg.mha_sizes, mha[lib]["median"], strict=True)]
        bars = axes[0].bar(x + (k - 0.5) * 0.38, rates, width=0.38, label=name)
        axes[0].bar_label(bars, labels=[f"{r / matmul['gflops']:.0%}" for r in rates], fontsize=8)
    axes[0].axhline(matmul["gflops"], color="grey", linestyle="--",
                    label=f"matmul {cfg.matmul_n}³: {matmul['gflops']:.0f}")
    axes[0].set_xticks(x, labels)
    axes[0].set_ylabel("GFLOP/s (label: % of the matmul rate)")
    axes[0].set_title("Multi-head attention, float32")
    axes[0].set_ylim(0, 1.45 * max(matmul["gflops"], *(b.get_height() for b in axes[0].patches)))
    axes[0].legend(fontsize=8, loc="upper right")
    for ax, key, ylabel, scale in ((axes[1], "median", "median time (s)", 1.0),
                                   (axes[2], "peak_rss", "peak RSS (MiB)", 1 / MiB)):
        for method in ("dense", "tiled", "tiled causal"):
            pts = [(L, r[key] * scale) for L, r in zip(cfg.tiled_lengths, attn[method], strict=True)
                   if r is not None and key in r]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, marker="o", label=method)
        if not ax.lines:  # --in-process runs measure no per-process memory
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length L")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[1].set_title(f"Attention time, one head, d={HEAD_DIM}")
    axes[2].set_title("Peak memory of the process")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
