"""Work arrays of the fast path, reused between calls of one thread, within a byte budget.

Allocating the projections and the heads' outputs anew on every call costs
more than it seems: freed large blocks go back to the operating system, and the
next call pays a page fault per 4 KiB it touches (35 % of the time at B=8,
L=128, d=256). So each thread keeps the arrays of its latest call and reuses
them when the next call has the same shapes.

What is kept is bounded:

* an array is kept only while this thread holds at most
  :data:`PER_THREAD_BYTES` and the whole process at most :data:`TOTAL_BYTES`
  (larger arrays are simply allocated per call, which for them costs little
  next to the work they hold);
* at the end of a call a thread drops the arrays that call did not use
  (:func:`keep_only`), so a large call of one kind never stays behind later
  calls of another;
* a thread's arrays are released when the thread ends.

What a call *returns* is never one of these arrays.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterable

import numpy as np

MiB = 1 << 20
PER_THREAD_BYTES = 16 * MiB
"""Largest total a thread keeps: enough for B=4, L=512, d=512 in float32."""
TOTAL_BYTES = 32 * MiB
"""Largest total all threads together keep."""

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


def _drop(holder: _Holder, name: str) -> None:
    array = holder.arrays.pop(name, None)
    if array is not None:
        with _lock:
            holder.held[0] -= array.nbytes
            _total[0] -= array.nbytes


def work_array(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised array of this thread, the same one as last time for the same
    ``name``, shape and dtype (when it fitted the budget); otherwise a new one."""
    holder = _holder()
    array = holder.arrays.get(name)
    if array is not None and array.shape == shape and array.dtype == dtype:
        return array
    _drop(holder, name)
    array = np.empty(shape, dtype=dtype)
    with _lock:
        if (holder.held[0] + array.nbytes <= PER_THREAD_BYTES
                and _total[0] + array.nbytes <= TOTAL_BYTES):
            holder.arrays[name] = array
            holder.held[0] += array.nbytes
            _total[0] += array.nbytes
    return array


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
