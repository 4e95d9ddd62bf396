"""Run independent NumPy blocks on several threads, with the BLAS kept to one thread meanwhile.

NumPy releases the GIL inside matrix products and ufunc loops, so Python threads
that each work on their own ``(batch, head, rows)`` block really run in
parallel. The catch is the BLAS library behind ``@``: OpenBLAS starts its own
threads for every product above a small size, and two Python threads each
asking for two BLAS threads on a two-core machine fight over the cores (the
product then runs several times slower, not faster).

So while the blocks run, NumPy's OpenBLAS is pinned to one thread by
:mod:`helpers.fastpath.blas_pin`, in a way no user of threadpoolctl can observe: the
limits they set are the limits they read, and the ones the process keeps. A
``fork`` waits until the calls in progress have finished (a product that is
using OpenBLAS's threads when another thread forks would hang for good, with
or without this module), so a child never starts pinned.

When the BLAS cannot be pinned (another BLAS than NumPy's OpenBLAS, or its
OpenMP build), the blocks use ``usable_cores() // blas_threads`` threads: all
cores when the user limited the BLAS to one thread, else fewer, down to the
calling thread alone with the BLAS parallelising each product itself.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from helpers.fastpath import blas_pin as _blas_pin

_MAX_WORKERS = 8  # beyond this, the blocks of an attention call are too few to share


def usable_cores() -> int:
    """Number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@functools.cache
def _blas_libraries() -> tuple[object, ...]:
    """threadpoolctl's handles on NumPy's BLAS (all loaded BLAS libraries if it cannot tell).

    Built once: inspecting the loaded libraries costs ~0.1 ms; reading a thread
    count through a ready handle ~1 µs.
    """
    libs = ThreadpoolController().select(user_api="blas").lib_controllers
    numpy_dir = Path(np.__file__).resolve().parent
    bundled = {numpy_dir.parent / "numpy.libs", numpy_dir / ".libs"}
    own = [lib for lib in libs if Path(lib.filepath).resolve().parent in bundled]
    return tuple(own or libs)


def blas_threads() -> int | None:
    """The BLAS thread count as the user set it (also during a call), or None if unknown."""
    if _blas_pin.available():
        return _blas_pin.user_threads()
    counts = [n for lib in _blas_libraries() if (n := lib.get_num_threads()) is not None]
    return max(counts) if counts else None


def num_workers() -> int:
    """Threads :func:`run_blocks` uses: the usable cores, at most 8.

    Without a BLAS that can be pinned: ``usable_cores() // blas_threads()`` (at
    least 1), or 1 when the BLAS threading cannot be read.
    """
    if _blas_pin.available():
        return min(usable_cores(), _MAX_WORKERS)
    threads = blas_threads()
    if threads is None or threads < 1:
        return 1
    return max(1, min(usable_cores() // threads, _MAX_WORKERS))


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()

# ---- fork gate. OpenBLAS shuts its thread pool down when the process forks; a product that
# is using the pool in another thread at that moment then waits forever (plain NumPy
# `a @ b` in a thread while another thread forks hangs the same way). So a fork waits until
# the calls running here have finished, and new calls wait until the fork is done.
_gate = threading.Condition()
_active = 0  # calls of run_blocks in progress
_forking = False
_inside = threading.local()  # .depth > 0 on a thread already inside a call (nested calls pass)


@contextlib.contextmanager
def _fork_gate() -> Iterator[None]:
    global _active
    if getattr(_inside, "depth", 0):
        yield
        return
    with _gate:
        while _forking:
            _gate.wait()
        _active += 1
    _inside.depth = 1
    try:
        yield
    finally:
        _inside.depth = 0
        with _gate:
            _active -= 1
            _gate.notify_all()


def _before_fork() -> None:
    """Wait for the calls in progress; hold the gate (no new call starts) through the fork."""
    global _forking
    _gate.acquire()
    _forking = True
    while _active and not getattr(_inside, "depth", 0):  # a stage that forks: do not wait on it
        _gate.wait()


def _after_fork_in_parent() -> None:
    global _forking
    _forking = False
    _gate.notify_all()
    _gate.release()


def _after_fork_in_child() -> None:
    """In a forked child only the forking thread exists: no pool threads, no calls running."""
    global _pools_lock, _gate, _active, _forking
    _pools_lock = threading.Lock()
    _pools.clear()
    _gate = threading.Condition()
    _active, _forking = 0, False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


def _pool(workers: int) -> ThreadPoolExecutor:
    """This process's pool of ``workers - 1`` helper threads (the caller is the other one)."""
    with _pools_lock:
        pool = _pools.get(workers)
        if pool is None:
            pool = _pools[workers] = ThreadPoolExecutor(
                max_workers=workers - 1, thread_name_prefix="helpers-attention"
            )
        return pool


def _run_range(stage: Callable[[int, int], None], start: int, stop: int) -> None:
    """Run one range with floating-point warnings off: every caller checks its results for
    NaN and infinity itself and raises a clear error (warnings are per thread, so the
    caller's own ``np.errstate`` would not reach a pool thread)."""
    depth = getattr(_inside, "depth", 0)
    _inside.depth = depth + 1  # a pool thread runs inside the caller's call
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            stage(start, stop)
    finally:
        _inside.depth = depth


def run_blocks(
    stages: Sequence[Callable[[int, int], None]],
    num_items: Sequence[int],
    workers: int | None = None,
) -> None:
    """Run each stage over its items, split into one contiguous range per thread.

    ``stages[s](start, stop)`` must process items ``start .. stop-1`` of stage
    ``s`` and write its results into arrays that no other range touches. Stage
    ``s + 1`` starts only when every range of stage ``s`` has finished (so a
    stage may read what the previous one wrote). A stage with no items is
    skipped. An exception raised in any range is re-raised here. ``workers``
    defaults to :func:`num_workers`; with more than one, the BLAS is pinned to
    one thread meanwhile. A ``fork`` from another thread waits until the call
    has finished (see the fork gate above).
    """
    workers = num_workers() if workers is None else max(1, int(workers))
    with _fork_gate():
        if workers == 1:
            _run_stages(stages, num_items, workers)
        else:
            with _blas_pin.single_threaded_blas():
                _run_stages(stages, num_items, workers)


def _run_stages(stages: Sequence[Callable[[int, int], None]], num_items: Sequence[int],
                workers: int) -> None:
    if workers == 1:
        for stage, n in zip(stages, num_items, strict=True):
            if n:
                _run_range(stage, 0, n)
        return
    pool = _pool(workers)
    for stage, n in zip(stages, num_items, strict=True):
        if not n:
            continue
        parts = min(workers, n)
        bounds = [n * i // parts for i in range(parts + 1)]
        futures = [pool.submit(_run_range, stage, bounds[i], bounds[i + 1])
                   for i in range(1, parts)]
        try:
            _run_range(stage, bounds[0], bounds[1])  # the calling thread takes the first range
        finally:
            wait(futures)  # never leave a range running behind an exception
        for future in futures:
            future.result()  # re-raises a range's exception
