"""Run independent NumPy blocks on several threads, with BLAS kept to one thread each.

NumPy releases the GIL inside matrix products and ufunc loops, so Python threads
that each work on their own ``(batch, head, rows)`` block really run in
parallel. The catch is the BLAS library behind ``@``: OpenBLAS starts its own
threads for every product above a small size, and two Python threads each
asking for two BLAS threads on a two-core machine fight over the cores (the
product then runs several times slower, not faster). So while the blocks run,
OpenBLAS is switched to one thread and switched back afterwards.

Only OpenBLAS as shipped inside NumPy's wheels is controlled (the library is
found next to NumPy and driven through ``ctypes``). With any other BLAS the
control is unavailable and :func:`run_blocks` runs the blocks one after the
other on the calling thread, leaving the BLAS to parallelise each product.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

import numpy as np

T = TypeVar("T")

# (get, set) function names of NumPy's bundled OpenBLAS, newest naming first.
_OPENBLAS_SYMBOLS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)
_MAX_WORKERS = 8  # beyond this, the blocks of an attention call are too few to share


def usable_cores() -> int:
    """Number of CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@functools.cache
def _openblas_thread_control() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """Return ``(get_num_threads, set_num_threads)`` of NumPy's OpenBLAS, or None."""
    numpy_dir = os.path.dirname(np.__file__)
    candidates = glob.glob(os.path.join(numpy_dir + ".libs", "*openblas*"))  # Linux wheels
    candidates += glob.glob(os.path.join(numpy_dir, ".dylibs", "*openblas*"))  # macOS wheels
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: this returns the same library
        except OSError:
            continue
        for get_name, set_name in _OPENBLAS_SYMBOLS:
            get = getattr(lib, get_name, None)
            set_ = getattr(lib, set_name, None)
            if get is not None and set_ is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                set_.restype, set_.argtypes = None, [ctypes.c_int]
                return get, set_
    return None


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
    """Switch OpenBLAS to one thread for the block, then restore its thread count.

    The thread count is a process-wide setting, so callers are serialised by a
    lock: two attention calls from different threads never restore each
    other's setting half-way.
    """
    control = _openblas_thread_control()
    assert control is not None
    get, set_ = control
    with _blas_lock:
        before = get()
        set_(1)
        try:
            yield
        finally:
            set_(before)


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
    if _openblas_thread_control() is None:
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
