"""Work arrays of the fast path: reused between calls of one thread within a byte budget, the
rest given back to the operating system as soon as it is freed.

Two costs of allocating a large array anew on every call, both measured:

* **page faults.** Memory fresh from the system is mapped in one 4 KiB page at a time on first
  touch: a training step at B=8, L=128, d=256 faulted 3,500 times (14 MB), about a fifth of
  its time. So each thread keeps the arrays of its latest call and reuses them.
* **memory kept by idle threads.** glibc's ``malloc`` serves each thread from its own arena and
  does not give a freed block back while it is below a threshold that grows up to 32 MiB: eight
  user threads calling the layer at B=16, L=512, d=256 left 30-50 MB each behind, even after
  they ended. So what is not kept comes straight from the system (an anonymous ``mmap``) and
  goes straight back when it is freed.

What is kept is bounded: at most :data:`PER_THREAD_BYTES` by a thread and :data:`TOTAL_BYTES`
by all threads together; a call drops the arrays it did not use (:func:`keep_only`); a
thread's arrays are freed when the thread ends. What a call *returns* is never a kept array.
The layer's forward pass *lends* the arrays its backward pass needs (:func:`lend`); they come
back (:func:`give_back`) once the backward pass is done, unless something still refers to them.
"""

from __future__ import annotations

import math
import mmap
import os
import sys
import threading
import weakref
from collections.abc import Iterable

import numpy as np

MiB = 1 << 20
PER_THREAD_BYTES = 16 * MiB
"""Largest total a thread keeps: a training step at B=8, L=128, d=256 in float32 (13 MiB)."""
TOTAL_BYTES = 32 * MiB
"""Largest total all threads together keep."""
SYSTEM_BYTES = 4 * MiB
"""Work arrays from this size on come from the system (``mmap``), not from ``malloc``: from
4 MiB on, huge pages make their page faults few (below, ``malloc``'s reuse is cheaper)."""

HUGE_PAGE = 2 * MiB
_lock = threading.RLock()  # re-entrant: a finalizer may run while this thread holds it
_total = [0]  # bytes kept by all threads
_holders: weakref.WeakSet[_Holder] = weakref.WeakSet()


class _Holder:
    """One thread's kept arrays; ``held[0]`` is their size, shared with the finalizer."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.held = [0]
        weakref.finalize(self, _release, self.held)
        _holders.add(self)


def _release(held: list[int]) -> None:
    with _lock:
        _total[0] -= held[0]
        held[0] = 0


_local = threading.local()


def _holder() -> _Holder:
    holder = getattr(_local, "holder", None)
    if holder is None:
        holder = _local.holder = _Holder()
    return holder


def new_array(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised array; from ``SYSTEM_BYTES`` on, backed by its own anonymous ``mmap``
    (freed: given back to the system at once; on Linux in huge pages: few page faults).
    Not for what a call returns: fresh memory from the system costs its zeroing and, on several
    threads, more (a returned 4 MiB array made the 2-thread forward 1 ms slower)."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < SYSTEM_BYTES:
        return np.empty(shape, dtype=dtype)
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.ndarray(shape, dtype=dtype, buffer=mmap.mmap(-1, nbytes))
    # private (shared anonymous memory gets no huge pages), starting on a 2 MiB boundary
    buffer = mmap.mmap(-1, nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buffer.madvise(mmap.MADV_HUGEPAGE)
    offset = -np.frombuffer(buffer, np.uint8, 1).ctypes.data % HUGE_PAGE
    return np.ndarray(shape, dtype=dtype, buffer=buffer, offset=offset)


def _drop(holder: _Holder, name: str) -> np.ndarray | None:
    array = holder.arrays.pop(name, None)
    if array is not None:
        with _lock:
            holder.held[0] -= array.nbytes
            _total[0] -= array.nbytes
    return array


def _keep(holder: _Holder, name: str, array: np.ndarray) -> None:
    with _lock:
        if (holder.held[0] + array.nbytes <= PER_THREAD_BYTES
                and _total[0] + array.nbytes <= TOTAL_BYTES):
            holder.arrays[name] = array
            holder.held[0] += array.nbytes
            _total[0] += array.nbytes


def work_array(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised array of this thread, the same one as last time for the same
    ``name``, shape and dtype (when it fitted the budget); otherwise a new one."""
    holder = _holder()
    array = holder.arrays.get(name)
    if array is not None and array.shape == shape and array.dtype == dtype:
        return array
    _drop(holder, name)
    array = new_array(shape, dtype)
    _keep(holder, name, array)
    return array


def lend(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Like :func:`work_array`, but the array leaves this thread's keeping (and its budget)
    until :func:`give_back`: for arrays that outlive the call."""
    array = work_array(name, shape, dtype)
    _drop(_holder(), name)
    return array


def give_back(arrays: dict[str, np.ndarray]) -> None:
    """Keep the lent ``arrays`` (emptied) again, in the calling thread, each only if nothing else
    refers to it: no record, no view (a view refers to its base)."""
    holder = _holder()
    for name in list(arrays):
        array = arrays.pop(name, None)  # None: another thread gave it back first
        if array is not None and sys.getrefcount(array) == 2 and name not in holder.arrays:
            _keep(holder, name, array)  # referred to by `array` and the argument only


def keep_only(names: Iterable[str]) -> None:
    """Drop this thread's arrays whose names are not in ``names``."""
    holder = _holder()
    keep = set(names)
    for name in [n for n in holder.arrays if n not in keep]:
        _drop(holder, name)


def held_bytes() -> tuple[int, int]:
    """Bytes kept by this thread and by all threads."""
    return _holder().held[0], _total[0]


def _after_fork_in_child() -> None:
    """Only the forking thread exists in the child: count its arrays alone (the other
    threads' holders are freed whenever Python gets to it; they must then subtract 0)."""
    global _lock
    _lock = threading.RLock()
    mine = _holder()
    for holder in list(_holders):
        if holder is not mine:
            holder.held[0] = 0
            holder.arrays.clear()
    _total[0] = mine.held[0]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
