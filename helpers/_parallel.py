"""Run independent NumPy blocks on several threads, with BLAS kept to one thread each.

NumPy releases the GIL inside matrix products and ufunc loops, so Python threads
that each work on their own ``(batch, head, rows)`` block really run in
parallel. The catch is the BLAS library behind ``@``: OpenBLAS starts its own
threads for every product above a small size, and two Python threads each
asking for two BLAS threads on a two-core machine fight over the cores (the
product then runs several times slower, not faster). So while the blocks run,
the BLAS is switched to one thread and switched back afterwards.

The switch is made with ``threadpoolctl``, which knows OpenBLAS, MKL, BLIS and
FlexiBLAS. If it finds no BLAS it can control, :func:`run_blocks` runs the
blocks one after the other on the calling thread, leaving the BLAS to
parallelise each product.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

from threadpoolctl import ThreadpoolController

T = TypeVar("T")

_MAX_WORKERS = 8  # beyond this, the blocks of an attention call are too few to share


def usable_cores() -> int:
    """Number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@functools.cache
def _blas_controller() -> ThreadpoolController | None:
    """threadpoolctl's handle on the BLAS libraries loaded in this process, or None.

    Built once: inspecting the loaded libraries costs ~0.1 ms, limiting through
    a ready controller ~10 µs. NumPy's BLAS is loaded with NumPy, so it is
    always among them.
    """
    controller = ThreadpoolController().select(user_api="blas")
    return controller if controller.lib_controllers else None


_blas_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}


def _forget_after_fork() -> None:
    """In a forked child: the parent's pool threads do not exist there, and a lock
    held by one of them would never be released. Start afresh."""
    global _blas_lock
    _blas_lock = threading.Lock()
    _pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Switch the BLAS to one thread for the block, then restore its thread count.

    The thread count is a process-wide setting, so callers are serialised by a
    lock: two attention calls from different threads never restore each
    other's setting half-way.
    """
    controller = _blas_controller()
    assert controller is not None
    with _blas_lock, controller.limit(limits=1):
        yield


def _pool(workers: int) -> ThreadPoolExecutor:
    """This process's pool of ``workers - 1`` helper threads (the caller is the other one)."""
    pool = _pools.get(workers)
    if pool is None:
        pool = _pools[workers] = ThreadPoolExecutor(
            max_workers=workers - 1, thread_name_prefix="helpers-attention"
        )
    return pool


def num_workers() -> int:
    """Threads :func:`run_blocks` uses: the usable cores (at most 8), or 1 without BLAS control."""
    if _blas_controller() is None:
        return 1
    return min(usable_cores(), _MAX_WORKERS)


def run_blocks(stages: Sequence[Callable[[int, int], None]], num_items: Sequence[int]) -> None:
    """Run each stage over its items, split into one contiguous range per thread.

    ``stages[s](start, stop)`` must process items ``start .. stop-1`` of stage
    ``s`` and write its results into arrays that no other range touches. Stage
    ``s + 1`` starts only when every range of stage ``s`` has finished (so a
    stage may read what the previous one wrote). An exception raised in any
    range is re-raised here.
    """
    workers = num_workers()
    if workers == 1:
        for stage, n in zip(stages, num_items, strict=True):
            stage(0, n)
        return
    pool = _pool(workers)
    with _single_threaded_blas():
        for stage, n in zip(stages, num_items, strict=True):
            parts = min(workers, n)
            bounds = [n * i // parts for i in range(parts + 1)]
            futures = [pool.submit(stage, bounds[i], bounds[i + 1]) for i in range(1, parts)]
            try:
                stage(bounds[0], bounds[1])  # the calling thread takes the first range
            finally:
                wait(futures)  # never leave a range running behind an exception
            for future in futures:
                future.result()  # re-raises a range's exception
