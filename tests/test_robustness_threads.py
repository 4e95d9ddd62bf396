"""The fast path and BLAS threads: it never changes the user's BLAS limits, never runs its own
threads on top of a multi-threaded BLAS, and keeps its work arrays within a byte budget."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from threadpoolctl import OpenBLASController, ThreadpoolController, threadpool_limits

import helpers.fastpath.fused_mha as fast_mha
import helpers.fastpath.threads as parallel
from helpers import multi_head_attention

CORES = parallel.usable_cores()
_NUMPY_BLAS = ThreadpoolController().select(user_api="blas").lib_controllers[0]


def blas_threads() -> int:
    """NumPy's BLAS thread count as threadpoolctl reports it (what the user sees)."""
    return _NUMPY_BLAS.get_num_threads()


def _raw_symbol():
    for name in ("openblas_get_num_threads", "scipy_openblas_get_num_threads64_",
                 "openblas_get_num_threads64_"):
        if hasattr(_NUMPY_BLAS.dynlib, name):
            return getattr(_NUMPY_BLAS.dynlib, name)
    raise AssertionError("no openblas_get_num_threads in NumPy's BLAS")


_RAW = _raw_symbol()


def real_blas_threads() -> int:
    """The threads OpenBLAS itself uses right now, read from the library, not threadpoolctl."""
    return int(_RAW())


@pytest.fixture
def blas_state():
    """The BLAS thread count before the test; restored (and threadpoolctl's notion of the
    controlling thread cleared) afterwards, whatever the test did."""
    before = blas_threads()
    yield before
    OpenBLASController.clear_controlling_thread(force=True)
    ThreadpoolController().select(user_api="blas").limit(limits=before)
    OpenBLASController.clear_controlling_thread(force=True)
    assert blas_threads() == real_blas_threads() == before


def inputs(seed=0, B=2, L=64, d=32):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, L, d)).astype(np.float32)
    W = [(rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32) for _ in range(4)]
    return x, W


def spy_on_stages(monkeypatch):
    """Record, for every stage range the fast path runs: its thread, the BLAS threads then
    (OpenBLAS's own count), and what threadpoolctl reports to the user."""
    seen: list[tuple[int, int, int]] = []
    real = fast_mha.run_blocks

    def spying(stages, num_items, *args):
        def wrap(stage):
            def run(a, b):
                seen.append((threading.get_ident(), real_blas_threads(), blas_threads()))
                stage(a, b)
            return run
        return real([wrap(s) for s in stages], num_items, *args)

    monkeypatch.setattr(fast_mha, "run_blocks", spying)
    return seen


def in_thread(f):
    out: list = []
    t = threading.Thread(target=lambda: out.append(f()))
    t.start()
    t.join()
    return out[0]


@pytest.mark.parametrize("user_limit", [1, 2])
def test_a_call_pins_the_blas_without_the_user_seeing_it(user_limit, blas_state, monkeypatch):
    seen = spy_on_stages(monkeypatch)
    x, W = inputs()
    expected = multi_head_attention(x, *W, 4)[0]
    seen.clear()
    with threadpool_limits(limits=user_limit, user_api="blas"):
        out = multi_head_attention(x, *W, 4)[0]
        assert blas_threads() == real_blas_threads() == user_limit
    assert blas_threads() == real_blas_threads() == blas_state
    threads = len({ident for ident, _, _ in seen})
    assert threads == min(CORES, 8)
    assert {user for _, _, user in seen} == {user_limit}  # the user's view, even during the call
    if threads > 1:
        assert {real for _, real, _ in seen} == {1}  # one BLAS thread per product meanwhile
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_without_a_pinnable_blas_the_cores_are_divided(blas_state, monkeypatch):
    from helpers.fastpath import blas_pin as _blas_pin

    monkeypatch.setattr(_blas_pin, "available", lambda: False)
    monkeypatch.setattr(parallel, "usable_cores", lambda: 8)
    for limit, workers in [(1, 8), (2, 4), (3, 2), (8, 1), (16, 1)]:
        with threadpool_limits(limits=limit, user_api="blas"):
            assert parallel.num_workers() == workers


def test_after_a_plain_user_limit_calls_from_other_threads_still_pin(blas_state, monkeypatch):
    # The reproduction: a plain threadpool_limits(2) in the main thread made later
    # pins from other threads silently fail (two of our threads times two BLAS threads on
    # two cores: 2-4x slower).
    seen = spy_on_stages(monkeypatch)
    threadpool_limits(limits=2, user_api="blas")  # plain call: this thread now "controls"
    x, W = inputs(1)
    in_thread(lambda: multi_head_attention(x, *W, 4))
    threads = len({ident for ident, _, _ in seen})
    real = {r for _, r, _ in seen}
    assert threads * max(real) <= max(CORES, 1)  # never oversubscribed
    assert blas_threads() == real_blas_threads() == 2


def set_baseline(n: int) -> None:
    """Set the BLAS threads from a short-lived thread, so no live thread "controls" them in
    threadpoolctl's sense (it ignores limits from other threads while one does)."""
    in_thread(lambda: threadpool_limits(limits=n, user_api="blas"))
    assert blas_threads() == n


def test_a_user_limit_overlapping_a_call_is_honoured_and_restored(blas_state):
    # A call runs in thread T; meanwhile the main thread enters and leaves its own
    # threadpool_limits. The user reads what they set throughout; the BLAS gets it as soon
    # as the call ends; afterwards the value from before the block, not the call's 1.
    set_baseline(2)
    entered, user_done = threading.Event(), threading.Event()
    inside_call: list[tuple[int, int]] = []

    def stage(a, b):
        entered.set()
        assert user_done.wait(10)
        inside_call.append((blas_threads(), real_blas_threads()))

    t = threading.Thread(target=parallel.run_blocks, args=([stage, stage], [1, 1], 2))
    t.start()
    assert entered.wait(10)
    with threadpool_limits(limits=3, user_api="blas"):
        assert blas_threads() == 3  # what the user set, not the call's pin
        user_done.set()
        t.join()
        assert inside_call == [(3, 1)] * 2  # the call kept one BLAS thread meanwhile
        assert real_blas_threads() == 3  # applied when the call ended
    assert blas_threads() == real_blas_threads() == 2  # the value before the user's block


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_during_a_call_waits_for_it_and_the_child_has_the_users_threads(blas_state):
    # A fork while OpenBLAS runs a product in another thread hangs that product for good
    # (OpenBLAS shuts its pool down at fork). So a fork requested during a call waits for
    # the call to end; the child then has the user's BLAS threads, not a temporary value.
    set_baseline(2)
    entered, release = threading.Event(), threading.Event()

    def stage(a, b):
        entered.set()
        assert release.wait(10)

    t = threading.Thread(target=parallel.run_blocks, args=([stage, stage], [1, 1], 2))
    t.start()
    assert entered.wait(10)
    child_threads: list[int] = []

    def fork_and_read():
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report its BLAS threads and leave at once
            os.write(write_end, str(blas_threads()).encode())
            os._exit(0)
        os.close(write_end)
        child_threads.append(int(os.read(read_end, 16)))
        os.close(read_end)
        os.waitpid(pid, 0)

    forker = threading.Thread(target=fork_and_read)
    forker.start()
    forker.join(0.3)
    assert forker.is_alive() and not child_threads  # the fork waits for the call
    release.set()
    t.join(10)
    forker.join(10)
    assert child_threads == [2]
    assert real_blas_threads() == 2


# ------------------------------------------------------------------- work arrays
@pytest.fixture
def small_budget(monkeypatch):
    """Budgets of 64 KiB per thread and 128 KiB in all, so small calls exercise them."""
    from helpers.fastpath import scratch as _scratch

    monkeypatch.setattr(_scratch, "PER_THREAD_BYTES", 64 << 10)
    monkeypatch.setattr(_scratch, "TOTAL_BYTES", 128 << 10)
    _scratch.keep_only([])
    yield _scratch
    _scratch.keep_only([])


def test_work_arrays_stay_within_the_budget(small_budget):
    from helpers.multihead import project_and_attend

    held = small_budget.held_bytes
    kept = small_budget._holder().arrays  # this thread's arrays by name
    x, W = inputs(2, B=2, L=16, d=32)  # projections 2·16·96·4 = 12 KiB, heads 4 KiB
    multi_head_attention(x, *W, 4)
    assert held()[0] == 16 << 10 and set(kept) == {"projection qkv", "heads"}
    first = kept["projection qkv"]
    multi_head_attention(x, *W, 4)
    assert kept["projection qkv"] is first  # reused by the next call of the same shape
    q = np.ascontiguousarray(x[:, :5])
    p = dict(zip(("W_q", "W_k", "W_v", "W_o"), W, strict=True)) | dict.fromkeys(
        ("b_q", "b_k", "b_v", "b_o"))
    project_and_attend(q, x, x, p, 4)  # cross-attention: what self-attention kept is dropped
    assert set(kept) == {"projection q", "projection kv", "heads"}
    assert held()[0] == (2 * 5 * 32 + 2 * 16 * 64 + 2 * 5 * 32) * 4
    big, Wb = inputs(3, B=4, L=64, d=64)  # projections 192 KiB: above the budget, not kept
    multi_head_attention(big, *Wb, 4)
    assert held()[0] <= 64 << 10 and "projection qkv" not in kept


def _held_by_live_threads(work, n: int = 8) -> int:
    """Bytes (as tracemalloc sees NumPy's allocations) still held while ``n`` threads that
    each ran ``work()`` are alive."""
    import tracemalloc

    barrier = threading.Barrier(n + 1)
    done = threading.Event()

    def worker():
        work()  # the results are dropped at once
        barrier.wait()
        done.wait(10)

    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        threads = [threading.Thread(target=worker) for _ in range(n)]
        for t in threads:
            t.start()
        barrier.wait()  # every thread has done its work and is still alive
        held = tracemalloc.get_traced_memory()[0] - base
        done.set()
        for t in threads:
            t.join()
    finally:
        tracemalloc.stop()
    return held


def test_many_user_threads_hold_at_most_the_total_budget(small_budget):
    # Measured from the outside, against threads that only allocate a small array: what 8
    # threads keep after one call each stays within the 128 KiB budget (8 · 32 KiB without;
    # the slack covers each thread's small bookkeeping objects).
    x, W = inputs(4, B=2, L=32, d=32)  # 32 KiB of work arrays per call
    total_before = small_budget.held_bytes()[1]
    control = _held_by_live_threads(lambda: np.ones(16).sum())
    held = _held_by_live_threads(lambda: multi_head_attention(x, *W, 4)) - control
    limit = (128 << 10) + (40 << 10)
    assert held <= limit, f"{held / 1024:.0f} KiB held"
    assert 8 * (32 << 10) > limit  # so keeping everything would fail
    assert small_budget.held_bytes()[1] == total_before  # the threads' arrays went with them
