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

