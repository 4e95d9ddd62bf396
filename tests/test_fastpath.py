"""The fast multi-head attention path equals the readable reference path."""

from __future__ import annotations

import os

import numpy as np
import pytest

import helpers.fastpath.fused_mha as fast_mha
import helpers.fastpath.threads as parallel
from helpers import MultiHeadAttention, multi_head_attention
from helpers.multihead import project_and_attend, project_and_attend_reference

NAMES_W = ("W_q", "W_k", "W_v", "W_o")
NAMES_B = ("b_q", "b_k", "b_v", "b_o")


def make_params(rng, d, dtype, bias):
    params = {n: (rng.standard_normal((d, d)) / np.sqrt(d)).astype(dtype) for n in NAMES_W}
    for n in NAMES_B:
        params[n] = rng.standard_normal(d).astype(dtype) if bias else None
    return params


def assert_same(fast, ref, dtype):
    (out_f, w_f), (out_r, w_r) = fast, ref
    assert out_f.shape == out_r.shape and w_f.shape == w_r.shape
    assert out_f.dtype == out_r.dtype == dtype and w_f.dtype == w_r.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(w_f, w_r, rtol=0, atol=tol)
    np.testing.assert_allclose(out_f, out_r, rtol=0, atol=tol * max(1.0, np.abs(out_r).max()))


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def workers(request, monkeypatch):
    """Run the fast path serially and on two threads (the ranges split differently)."""
    n = request.param
    # The pinned NumPy wheel ships OpenBLAS, which threadpoolctl reads: never skip.
    assert parallel.blas_threads() is not None, "threadpoolctl found no BLAS to read"
    monkeypatch.setattr(parallel, "num_workers", lambda: n)
    monkeypatch.setattr(fast_mha, "num_workers", lambda: n)
    return n


@pytest.fixture(params=[1 << 18, 700], ids=["default-tiles", "small-tiles"])
def tiles(request, monkeypatch):
    """Default tiles, and tiny ones that force ragged row tiles and single-head groups."""
    monkeypatch.setattr(fast_mha, "TILE_ELEMENTS", request.param)
    return request.param


CASES = [
    # (batch or None for 2-D tokens, L_q, L_k or None for self-attention, d, h, bias)
    (3, 17, None, 16, 4, False),
    (2, 33, None, 24, 3, True),
    (None, 29, None, 16, 2, True),
    (1, 1, None, 8, 8, False),  # one token, d_k = 1
    (2, 19, 27, 16, 4, True),  # cross-attention, L_q != L_k
    (None, 40, 9, 12, 3, False),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_fast_equals_reference(case, dtype, workers, tiles):
    B, L_q, L_k, d, h, bias = case
    rng = np.random.default_rng(L_q * 100 + d)
    lead = () if B is None else (B,)
    q = rng.standard_normal((*lead, L_q, d)).astype(dtype)
    k = q if L_k is None else rng.standard_normal((*lead, L_k, d)).astype(dtype)
    params = make_params(rng, d, dtype, bias)
    for v in (k, k.copy()):  # shared and separate key/value arrays take different projections
        args = (q, k, v, params, h)
        for mask in masks(rng, lead, h, L_q, k.shape[-2], dtype):
            assert_same(project_and_attend(*args, mask), project_and_attend_reference(*args, mask),
                        dtype)


def masks(rng, lead, h, L_q, L_k, dtype):
    """No mask, and every kind the reference accepts, including fully masked rows."""
    causal = np.tril(np.ones((L_q, L_k), dtype=bool))
    yield None
    yield causal
    # padding-style (B, 1, 1, L_k), or (1, 1, L_k) for 2-D tokens; some rows may lose every key
    keep = rng.random((*lead, 1, 1, L_k)) < 0.6
    yield keep
    yield np.zeros((L_q, L_k), dtype=bool)  # every row fully masked: zeros, no warning
    yield np.where(causal, 0.0, -np.inf)  # float64 additive mask, cast to the scores' dtype
    # per-head bias (B, h, L_q, L_k) or (h, L_q, L_k), of the other float dtype
    other = np.float32 if dtype == np.float64 else np.float64
    yield rng.standard_normal((*lead, h, L_q, L_k)).astype(other)


def test_fully_masked_rows_are_zero(workers):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 8)).astype(np.float32)
    W = [(rng.standard_normal((8, 8)) / 3).astype(np.float32) for _ in range(4)]
    mask = np.ones((2, 1, 6, 6), dtype=bool)
    mask[1, :, 2, :] = False  # query 2 of sequence 1 may attend to nothing
    out, weights = multi_head_attention(x, *W, num_heads=2, mask=mask)
    np.testing.assert_array_equal(weights[1, :, 2], 0.0)
    np.testing.assert_allclose(weights[0].sum(-1), 1.0, rtol=1e-6)
    assert np.isfinite(out).all()


def test_float32_stays_float32(workers):
    # A causal mask that really masks: boolean, and its float form (0 / -inf, float64).
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 50, 16)).astype(np.float32)
    W = [(rng.standard_normal((16, 16)) / 4).astype(np.float32) for _ in range(4)]
    causal = np.tril(np.ones((50, 50), dtype=bool))
    for mask in (causal, np.where(causal, 0.0, -np.inf)):
        out, weights = multi_head_attention(x, *W, num_heads=4, mask=mask)
        assert out.dtype == weights.dtype == np.float32
        assert np.all(weights[..., ~causal] == 0.0)  # the future really is hidden
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)


def test_mixed_dtypes_raise_naming_both():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    W = [rng.standard_normal((8, 8)) for _ in range(4)]  # float64 weights
    params = dict(zip(NAMES_W, W, strict=True)) | dict.fromkeys(NAMES_B)
    pattern = r"query is float32 but W_q is float64.*W_q\.astype\(np\.float32\)"
    for run in (project_and_attend, project_and_attend_reference):
        with pytest.raises(TypeError, match=pattern):
            run(x, x, x, params, 2)


def test_weights_changed_between_calls_are_used():
    # The fused [W_q | W_k | W_v] must never be served from a stale cache.
    layer = MultiHeadAttention(8, 2, seed=0, dtype=np.float32)
    x = np.random.default_rng(4).standard_normal((1, 5, 8)).astype(np.float32)
    _, before = layer(x)
    layer.W_k *= 3.0  # in place: same array object, new values
    _, after = layer(x)
    assert not np.allclose(before, after)
    params = layer.parameters()
    np.testing.assert_allclose(after, project_and_attend_reference(x, x, x, params, 2, None)[1],
                               atol=1e-6)


def test_inputs_are_not_modified(workers):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 9, 8)).astype(np.float32)
    W = [(rng.standard_normal((8, 8)) / 3).astype(np.float32) for _ in range(4)]
    mask = np.tril(np.ones((9, 9), dtype=bool))
    copies = [a.copy() for a in (x, *W, mask)]
    multi_head_attention(x, *W, num_heads=2, mask=mask)
    for a, c in zip((x, *W, mask), copies, strict=True):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_tokens_are_rejected(bad):
    x = np.ones((2, 4, 8), dtype=np.float32)
    x[1, 2, 3] = bad
    W = [np.eye(8, dtype=np.float32)] * 4
    with pytest.raises(ValueError, match=r"x contains NaN or infinity \(1 of 64 entries, the first "
                       r"at index \(1, 2, 3\)"):
        multi_head_attention(x, *W, num_heads=2)


@pytest.mark.parametrize("name", NAMES_W + NAMES_B)
def test_non_finite_parameters_are_rejected_by_name(name, workers):
    x = np.ones((2, 4, 8), dtype=np.float32)
    params = make_params(np.random.default_rng(0), 8, np.float32, bias=True)
    params[name][(0, 0)[:params[name].ndim]] = np.nan
    for run in (project_and_attend, project_and_attend_reference):
        with pytest.raises(ValueError, match=f"{name} contains NaN or infinity"):
            run(x, x, x, params, 2)


def test_errors_in_a_worker_leave_blas_threads_alone(monkeypatch):
    get = parallel.blas_threads
    before = get()
    monkeypatch.setattr(parallel, "num_workers", lambda: 2)
    monkeypatch.setattr(fast_mha, "num_workers", lambda: 2)
    monkeypatch.setattr(fast_mha, "TILE_ELEMENTS", 64)  # many tiles: the NaN lands on a worker
    x = np.ones((2, 64, 8), dtype=np.float32)
    W = [np.eye(8, dtype=np.float32) for _ in range(4)]
    W[0][:, 1] = W[1][:, 1] = 1e30  # finite, but the scores overflow float32 in the tiles
    with pytest.raises(ValueError, match="overflow"):
        multi_head_attention(x, *W, num_heads=2)
    assert get() == before
    multi_head_attention(np.ones((2, 64, 8), dtype=np.float32), *[np.eye(8, dtype=np.float32)] * 4,
                         num_heads=2)
    assert get() == before


def test_run_blocks_covers_every_item_once():
    seen: list[int] = []
    parallel.run_blocks([lambda a, b: seen.extend(range(a, b))] * 2, [7, 3])
    assert sorted(seen) == sorted([*range(7), *range(3)])


def test_an_overflowing_score_under_a_mask_is_rejected(workers):
    # One score overflows (+inf) exactly where a -inf mask entry sits: inf + -inf would be
    # NaN in one position while the row's other scores stay finite. Scores are checked
    # before the mask, so both paths reject it (and no RuntimeWarning escapes: pytest
    # turns RuntimeWarnings into errors for this project).
    x = np.ones((1, 3, 4), dtype=np.float32)
    x[0, 0] = 3e19  # q_0 · k_0 = 4 · 1.5e19 · 3e19 overflows; other scores stay finite
    W = [np.eye(4, dtype=np.float32) for _ in range(4)]
    mask = np.zeros((3, 3), dtype=np.float32)
    mask[0, 0] = -np.inf
    for run in (multi_head_attention, reference_mha):
        with pytest.raises(ValueError, match="overflow"):
            run(x, *W, num_heads=1, mask=mask)


def reference_mha(x, W_q, W_k, W_v, W_o, num_heads, mask):
    params = dict(zip(NAMES_W, (W_q, W_k, W_v, W_o), strict=True)) | dict.fromkeys(NAMES_B)
    return project_and_attend_reference(x, x, x, params, num_heads, mask)


def test_results_do_not_share_memory_with_the_next_call(workers):
    # Work arrays are reused between calls; what a call returns never is.
    rng = np.random.default_rng(6)
    W = [(rng.standard_normal((16, 16)) / 4).astype(np.float32) for _ in range(4)]
    x1, x2 = (rng.standard_normal((2, 10, 16)).astype(np.float32) for _ in range(2))
    out1, w1 = multi_head_attention(x1, *W, num_heads=4)
    kept = out1.copy(), w1.copy()
    out2, w2 = multi_head_attention(x2, *W, num_heads=4)
    np.testing.assert_array_equal(out1, kept[0])
    np.testing.assert_array_equal(w1, kept[1])
    assert not np.shares_memory(out1, out2) and not np.shares_memory(w1, w2)
    multi_head_attention(rng.standard_normal((3, 7, 16)).astype(np.float32), *W, num_heads=4)
    again = multi_head_attention(x1, *W, num_heads=4)  # after a call of another shape
    np.testing.assert_allclose(again[0], kept[0], atol=1e-6)


def test_concurrent_calls_from_several_threads(workers):
    # Each calling thread has its own work arrays (serial calls run with no lock at all).
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(7)
    W = [(rng.standard_normal((32, 32)) / 6).astype(np.float32) for _ in range(4)]
    xs = [rng.standard_normal((2, 150, 32)).astype(np.float32) for _ in range(4)]
    params = dict(zip(NAMES_W, W, strict=True)) | dict.fromkeys(NAMES_B)
    expected = [project_and_attend_reference(x, x, x, params, 4, None)[0] for x in xs]

    def run(i: int) -> float:
        """Largest error over repeated calls, while the other threads call too."""
        return max(float(np.abs(multi_head_attention(xs[i], *W, num_heads=4)[0]
                                - expected[i]).max()) for _ in range(15))

    with ThreadPoolExecutor(len(xs)) as pool:
        errors = list(pool.map(run, range(len(xs))))
    assert max(errors) < 1e-5, errors


@pytest.mark.parametrize(("dtype", "big"), [(np.float32, 16.0), (np.float64, 40.0)])
def test_rows_far_below_the_tiles_maximum(dtype, big, workers):
    # One token scores (big² · scale) against itself; the others' rows lie far below that
    # tile-wide maximum, beyond the exponent range: the tile must use per-row maxima.
    x = np.zeros((1, 5, 4), dtype=dtype)
    x[0, :, 0] = [big, 1.0, 0.5, -1.0, 2.0]
    x[0, :, 1] = [0.0, 1.0, -1.0, 0.3, 0.0]
    W = [np.eye(4, dtype=dtype) for _ in range(4)]
    params = dict(zip(NAMES_W, W, strict=True)) | dict.fromkeys(NAMES_B)
    fast = multi_head_attention(x, *W, num_heads=1)
    ref = project_and_attend_reference(x, x, x, params, 1, None)
    assert np.isfinite(fast[1]).all()
    assert_same(fast, ref, dtype)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_can_still_attend():
    # A forked child has none of the parent's pool threads; it must start its own, not hang.
    import multiprocessing

    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 40, 16)).astype(np.float32)
    W = [(rng.standard_normal((16, 16)) / 4).astype(np.float32) for _ in range(4)]
    expected, _ = multi_head_attention(x, *W, num_heads=4)  # parent's pool now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        out, _ = pool.apply_async(multi_head_attention, (x, *W, 4)).get(timeout=60)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_need_weights_false_on_two_threads_equals_the_reference(monkeypatch):
    # Without the weights array each thread normalises its tiles in a buffer of its own;
    # tiles big enough for NumPy to release the GIL would expose a buffer shared by threads.
    monkeypatch.setattr(parallel, "num_workers", lambda: 2)
    monkeypatch.setattr(fast_mha, "num_workers", lambda: 2)
    monkeypatch.setattr(fast_mha, "TILE_ELEMENTS", 1 << 13)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 400, 32))
    params = make_params(rng, 32, np.float64, bias=True)
    expected = project_and_attend_reference(x, x, x, params, 4)[0]
    for _ in range(8):
        out, weights = project_and_attend(x, x, x, params, 4, need_weights=False)
        assert weights is None
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


# ------------------------------------------------------------------- shortcuts of the fast path
def test_inputs_that_are_the_same_memory_share_one_projection():
    x = np.arange(2 * 5 * 8, dtype=np.float32).reshape(2, 5, 8)
    names = lambda *a: [n for n, _ in fast_mha.input_groups(*a)]  # noqa: E731
    assert names(x, x, x) == names(x, x.view(), x[...]) == ["qkv"]  # one (B·L, d) @ (d, 3d)
    assert names(x, x.copy(), x.copy()) == ["q", "k", "v"]  # equal values, other memory
    assert names(x[:, :4], x, x) == ["q", "kv"] and names(x, x, x[:, ::-1]) == ["qk", "v"]
    assert names(x, x.astype(np.float64), x) == ["qv", "k"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_projections_equal_the_reference_for_every_grouping(dtype, workers):
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
def test_softmax_with_and_without_the_shift_equals_the_reference(dtype, top, workers):
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
