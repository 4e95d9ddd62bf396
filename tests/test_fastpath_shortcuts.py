"""The fast path's shortcuts equal the reference path, and its work arrays stay within budget:
fused projections of inputs that are the same memory, softmax with or without a shift, the
layer's record arrays lent for the backward pass and reused, whole-sequence scheduling."""

from __future__ import annotations

import numpy as np
import pytest
from test_fastpath import NAMES_B, NAMES_W, assert_same, make_params, workers  # noqa: F401

import helpers.fastpath.fused_mha as fast_mha
import helpers.fastpath.threads as parallel
from helpers import MultiHeadAttention
from helpers.multihead import project_and_attend, project_and_attend_reference


# ------------------------------------------------------------------- shortcuts of the fast path
def test_inputs_that_are_the_same_memory_share_one_projection():
    x = np.arange(2 * 5 * 8, dtype=np.float32).reshape(2, 5, 8)
    names = lambda *a: [n for n, _ in fast_mha.input_groups(*a)]  # noqa: E731
    assert names(x, x, x) == names(x, x.view(), x[...]) == ["qkv"]  # one (B·L, d) @ (d, 3d)
    assert names(x, x.copy(), x.copy()) == ["q", "k", "v"]  # equal values, other memory
    assert names(x[:, :4], x, x) == ["q", "kv"] and names(x, x, x[:, ::-1]) == ["qk", "v"]
    assert names(x, x.astype(np.float64), x) == ["qv", "k"]


@pytest.mark.usefixtures("workers")  # on 1 and on 2 threads
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_projections_equal_the_reference_for_every_grouping(dtype):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((2, 9, 16)).astype(dtype)
    params = make_params(rng, 16, dtype, bias=True)
    mask = np.tril(np.ones((9, 9), dtype=bool))
    ref = project_and_attend_reference(x, x, x, params, 4, mask)
    for q, k, v in [(x, x, x), (x, x.view(), x[...]), (x, x.copy(), x.copy()),
                    (x.copy(), x, x), (x, x, x.copy())]:
        for need in (True, False):
            out, w = project_and_attend(q, k, v, params, 4, mask, need_weights=need)
            assert_same((out, w if need else ref[1]), ref, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_same_array_three_times_gives_three_gradients_of_one_projection(dtype):
    rng = np.random.default_rng(11)
    layer = MultiHeadAttention(16, 4, seed=2, dtype=dtype)
    x = rng.standard_normal((2, 7, 16)).astype(dtype)
    g = rng.standard_normal((2, 7, 16)).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    layer(x, x.copy(), x.copy())
    separate = layer.backward(g)
    layer(x, x, x)  # one fused projection, still one gradient per argument
    fused = layer.backward(g)
    layer(x)
    summed = layer.backward(g)
    for a, b in zip(fused, separate, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol)
    np.testing.assert_allclose(sum(fused), summed, rtol=0, atol=3 * tol)


@pytest.mark.parametrize(("dtype", "top"), [(np.float32, 50.0), (np.float32, 100.0),
                                            (np.float64, 500.0), (np.float64, 800.0)])
@pytest.mark.usefixtures("workers")
def test_softmax_with_and_without_the_shift_equals_the_reference(dtype, top):
    # Largest scores below the limit under which a tile is exponentiated without a shift (60 in
    # float32, 600 in float64), and above the point where exp overflows (88.7, 709.8): the
    # tile must then be shifted. The reference always shifts each row by its own maximum.
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 6, 4)).astype(dtype)
    x[:, :, 0] = np.linspace(-1.0, 1.0, 6)
    W = [np.eye(4, dtype=dtype) for _ in range(4)]
    W[0][0, 0] = W[1][0, 0] = np.sqrt(2 * top)  # q·k / sqrt(d_k) reaches about `top`
    params = dict(zip(NAMES_W, W, strict=True)) | dict.fromkeys(NAMES_B)
    for mask in (None, np.tril(np.ones((6, 6), dtype=bool)), np.zeros((6, 6), dtype=np.float32)):
        fast = project_and_attend(x, x, x, params, 1, mask)
        assert_same(fast, project_and_attend_reference(x, x, x, params, 1, mask), dtype)


# ------------------------------------------------------------------- work arrays
def test_lent_arrays_come_back_only_when_nothing_refers_to_them():
    from helpers.fastpath import scratch

    lent = {"test lent": scratch.lend("test lent", (4, 4), np.float32)}
    assert "test lent" not in scratch._holder().arrays  # out of the thread's keeping meanwhile
    view = lent["test lent"][1:]
    scratch.give_back(lent)
    assert not lent and "test lent" not in scratch._holder().arrays  # the view refers to it
    again = scratch.lend("test lent", (4, 4), np.float32)
    assert not np.shares_memory(again, view)
    address = again.ctypes.data
    scratch.give_back({"test lent": again})
    assert "test lent" not in scratch._holder().arrays  # `again` still refers to it
    lent = {"test lent": again}
    del again
    scratch.give_back(lent)  # nothing else refers to it: kept, and lent again next time
    assert scratch.lend("test lent", (4, 4), np.float32).ctypes.data == address
    scratch.keep_only([])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("need_weights", [True, False])
def test_a_training_loop_reuses_the_records_arrays_with_the_same_results(dtype, need_weights):
    from helpers.fastpath import scratch

    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 12, 16)).astype(dtype)
    g = rng.standard_normal((2, 12, 16)).astype(dtype)
    mask = rng.random((2, 1, 12, 12)) < 0.7
    mask[0, 0, 3] = False  # a fully masked row

    def step(layer):
        out, w = layer(x, mask=mask, need_weights=need_weights)
        return out, w, layer.backward(g), {n: a.copy() for n, a in layer.grads.items()}

    scratch.keep_only([])
    layer = MultiHeadAttention(16, 4, dropout=0.2, seed=3, dtype=dtype)
    first = step(layer)
    def kept() -> dict[str, int]:  # the addresses only: a reference would stop the reuse
        return {n: a.ctypes.data for n, a in scratch._holder().arrays.items()
                if n.startswith("layer ")}

    before = kept()
    assert {"layer projection qkv", "layer heads", "layer weights"} <= set(before)
    layer.zero_grad()
    layer.dropout_rng = np.random.default_rng(np.random.SeedSequence(3).spawn(1)[0])
    second = step(layer)  # the same masks: the same numbers, from the same memory
    assert kept() == before
    returned = [r for r in second[:3] if r is not None]  # output, weights, dx
    assert not any(r.ctypes.data <= a < r.ctypes.data + r.nbytes
                   for a in before.values() for r in returned)
    for a, b in zip(first[:3], second[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    for n in first[3]:
        np.testing.assert_array_equal(first[3][n], second[3][n])
    if need_weights:  # the weights returned by the first step were never reused
        np.testing.assert_array_equal(first[1], second[1])
    scratch.keep_only([])


def test_training_threads_keep_at_most_the_total_budget(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    import helpers.mha.backward as backward
    from helpers.fastpath import scratch

    monkeypatch.setattr(scratch, "PER_THREAD_BYTES", 48 << 10)
    monkeypatch.setattr(scratch, "TOTAL_BYTES", 96 << 10)
    for module in (fast_mha, backward):  # every array in the user's threads, none in the pool's
        monkeypatch.setattr(module, "num_workers", lambda: 1)
    scratch.keep_only([])
    before = scratch.held_bytes()[1]
    rng = np.random.default_rng(14)
    x, g = (rng.standard_normal((2, 32, 32)).astype(np.float32) for _ in range(2))
    peaks = []

    def train(seed: int) -> None:
        layer = MultiHeadAttention(32, 4, seed=seed, dtype=np.float32)
        for _ in range(3):
            layer(x)
            layer.backward(g)
            mine, total = scratch.held_bytes()
            peaks.append((mine, total))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(train, range(8)))
    assert max(m for m, _ in peaks) <= 48 << 10 and max(t for _, t in peaks) <= 96 << 10
    assert max(t for _, t in peaks) > 48 << 10  # several threads did keep arrays
    assert scratch.held_bytes()[1] == before  # released when the threads ended


@pytest.mark.skipif(not hasattr(__import__("mmap"), "MADV_HUGEPAGE"), reason="Linux only")
def test_large_arrays_come_from_the_system_on_huge_page_boundaries():
    from helpers.fastpath import scratch

    a = scratch.new_array((scratch.SYSTEM_BYTES // 4,), np.float32)
    assert a.ctypes.data % scratch.HUGE_PAGE == 0 and a.flags.writeable and not a.flags.owndata
    small = scratch.new_array((16,), np.float32)
    assert small.flags.owndata


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_whole_sequence_and_staged_schedules_agree(dtype, monkeypatch):
    # 4 sequences on 1 or 2 threads: whole sequences per thread in the forward pass; on 3:
    # every stage shared. The backward pass splits its stages differently on each.
    import helpers.mha.backward as backward

    rng = np.random.default_rng(15)
    x, g = (rng.standard_normal((4, 10, 16)).astype(dtype) for _ in range(2))
    kv = rng.standard_normal((4, 7, 16)).astype(dtype)
    mask = rng.random((4, 1, 10, 7)) < 0.7
    results = []
    for n in (1, 2, 3):
        for module in (parallel, fast_mha, backward):
            monkeypatch.setattr(module, "num_workers", lambda n=n: n)
        layer = MultiHeadAttention(16, 4, seed=4, dtype=dtype)
        out, w = layer(x, kv, mask=mask)
        results.append((out, w, *layer.backward(g), *layer.grads.values()))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=tol * max(1.0, np.abs(a).max()))
