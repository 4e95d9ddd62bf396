"""Keep NumPy's OpenBLAS at one thread while the fast path's own threads run -- invisibly.

Why pin at all: two of our threads each running a two-thread OpenBLAS product on
two cores fight over the cores (OpenBLAS threads spin while they wait); with
the BLAS at one thread per product, our threads share the cores cleanly. Left
multi-threaded instead, the fast path measured 1.4-1.6x slower on an idle
2-core machine and several times slower on a busy one.

Why it is delicate: OpenBLAS's thread count (pthreads build, as in NumPy's
wheels) is one process-wide number. A pin that simply sets it to 1 and back
goes wrong in three ways, all measured:

1. threadpoolctl ignores limits set from a thread other than the first one to
   set them, so after a plain ``threadpool_limits(2)`` in the main thread, a pin
   from another thread silently did nothing (2-4x slower).
2. A user's ``with threadpool_limits(n)`` that overlaps a call reads the
   temporary 1 as "the original" and restores it afterwards: the process is
   left at one BLAS thread.
3. A ``fork`` during a call leaves the child at one thread.

So this module (a) sets the count through OpenBLAS's own function, not through
threadpoolctl's gate; (b) while a pin is active, answers threadpoolctl for this
library with the user's value and *records* what the user sets instead of
applying it, then applies the latest request when the last pin ends -- so
every user of threadpoolctl sees exactly the limits they set, and the process
ends with them; (c) is never active during a fork (``helpers.fastpath.threads`` makes a
fork wait until the calls in progress end). Code that calls OpenBLAS through
other means than threadpoolctl during a call would see the 1.

Only NumPy's OpenBLAS with the pthreads threading layer is pinned; with any
other BLAS, :func:`available` is False and the fast path instead divides the
cores by the BLAS threads (see :func:`helpers.fastpath.threads.num_workers`).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import threadpoolctl

_lock = threading.RLock()
_depth = 0  # pins in progress (calls from several threads may overlap)
_user_threads = 0  # the user's value while pinned


class _Lib:
    """NumPy's OpenBLAS: its threadpoolctl handle and its own get/set functions."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.filepath = controller.filepath
        self.get = self._symbol("openblas_get_num_threads")
        self.set = self._symbol("openblas_set_num_threads")
        self.get.restype = ctypes.c_int
        self.set.argtypes = [ctypes.c_int]

    def _symbol(self, name: str) -> Any:
        for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
            try:
                return getattr(self.controller.dynlib, f"{prefix}{name}{suffix}")
            except AttributeError:
                continue
        raise AttributeError(name)


@functools.cache
def _numpy_openblas() -> _Lib | None:
    """NumPy's bundled OpenBLAS (pthreads layer), or None when there is no such library."""
    libs = threadpoolctl.ThreadpoolController().select(internal_api="openblas").lib_controllers
    numpy_dir = Path(np.__file__).resolve().parent
    bundled = {numpy_dir.parent / "numpy.libs", numpy_dir / ".libs"}
    for controller in libs:
        if (Path(controller.filepath).resolve().parent in bundled
                and getattr(controller, "threading_layer", None) == "pthreads"):
            try:
                lib = _Lib(controller)
            except AttributeError:
                return None
            _install_threadpoolctl_view()
            return lib
    return None


def available() -> bool:
    """Whether the BLAS can be pinned (NumPy's OpenBLAS, pthreads layer)."""
    return _numpy_openblas() is not None


def user_threads() -> int | None:
    """The BLAS thread count as the user set it (also while a pin is active), or None."""
    lib = _numpy_openblas()
    if lib is None:
        return None
    with _lock:
        return _user_threads if _depth else int(lib.get())


def real_threads() -> int | None:
    """The thread count OpenBLAS uses right now (1 while a pin is active), or None."""
    lib = _numpy_openblas()
    return None if lib is None else int(lib.get())


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with NumPy's OpenBLAS at one thread; afterwards the user's value."""
    global _depth, _user_threads
    lib = _numpy_openblas()
    if lib is None:
        yield
        return
    with _lock:
        if _depth == 0:
            _user_threads = int(lib.get())
            if _user_threads != 1:
                lib.set(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and int(lib.get()) != _user_threads:
                lib.set(_user_threads)


def _after_fork_in_child() -> None:
    """A fork never happens during a pin (:mod:`~helpers.fastpath.threads` waits); reset anyway."""
    global _lock, _depth
    _lock = threading.RLock()
    _depth = 0


# ---- what threadpoolctl reports and sets for NumPy's OpenBLAS while a pin is active
_original: dict[str, Any] = {}


def _install_threadpoolctl_view() -> None:
    """Route threadpoolctl's reads and writes of this library through the pin's bookkeeping.

    Its controlling-thread rule (limits from non-controlling threads are ignored)
    is kept: only the final write, ``_real_set_num_threads``, is intercepted.
    """
    cls = threadpoolctl.OpenBLASController
    if _original or not hasattr(cls, "_real_set_num_threads"):
        return
    _original["get"], _original["set"] = cls.get_num_threads, cls._real_set_num_threads

    def get_num_threads(self: Any) -> Any:
        with _lock:
            if _depth and self.filepath == _pinned_path():
                return _user_threads
            return _original["get"](self)

    def _real_set_num_threads(self: Any, num_threads: int) -> Any:
        global _user_threads
        with _lock:
            if _depth and self.filepath == _pinned_path():
                _user_threads = int(num_threads)  # applied when the last pin ends
                return None
            return _original["set"](self, num_threads)

    cls.get_num_threads = get_num_threads
    cls._real_set_num_threads = _real_set_num_threads


def _pinned_path() -> str | None:
    lib = _numpy_openblas()
    return None if lib is None else lib.filepath


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
