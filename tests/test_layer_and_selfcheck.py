"""The MultiHeadAttention layer's set-up, and the exercise self-checks."""

import numpy as np
import pytest

from helpers import MultiHeadAttention, attention, multi_head_attention, softmax
from helpers.selfcheck import SelfCheckError, check_function, check_raises


def test_layer_init_is_seeded_xavier():
    a, b, c = (MultiHeadAttention(64, 8, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.W_q, b.W_q)
    assert not np.array_equal(a.W_q, c.W_q)
    limit = np.sqrt(6 / 128)
    for W in (a.W_q, a.W_k, a.W_v, a.W_o):
        assert np.abs(W).max() <= limit
        assert abs(W.var() - limit**2 / 3) < 0.1 * limit**2 / 3  # Var U(-a, a) = a²/3
    assert a.num_parameters == 4 * 64 * 64 + 4 * 64
    assert MultiHeadAttention(64, 8, bias=False).num_parameters == 4 * 64 * 64
    assert "parameters=16,640" in repr(a)


def test_layer_equals_function_without_bias():
    rng = np.random.default_rng(0)
    layer = MultiHeadAttention(12, 3, bias=False, seed=0)
    x = rng.standard_normal((2, 5, 12))
    out, w = layer(x)
    ref_out, ref_w = multi_head_attention(x, layer.W_q, layer.W_k, layer.W_v, layer.W_o, 3)
    np.testing.assert_allclose(out, ref_out, rtol=1e-13)
    np.testing.assert_allclose(w, ref_w, rtol=1e-13)


def test_layer_biases_are_used():
    rng = np.random.default_rng(1)
    layer = MultiHeadAttention(8, 2, seed=0)
    x = rng.standard_normal((4, 8))
    before, _ = layer(x)
    layer.b_o = layer.b_o + 1.0
    after, _ = layer(x)
    np.testing.assert_allclose(after, before + 1.0, rtol=1e-13)


def test_layer_float32():
    layer = MultiHeadAttention(8, 2, seed=0, dtype=np.float32)
    out, w = layer(np.ones((1, 3, 8), dtype=np.float32))
    assert out.dtype == np.float32 and w.dtype == np.float32


def naive_softmax(x):
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def test_check_function_passes_a_correct_solution(capsys):
    cases = [(np.array([1.0, 2.0, 3.0]),), (np.random.default_rng(0).standard_normal((3, 4)),)]
    check_function(naive_softmax, softmax, cases)
    assert "matches the reference on all 2 cases" in capsys.readouterr().out


def test_check_function_reports_wrong_axis_as_a_known_mistake():
    def wrong_axis(x):
        return softmax(x, axis=0)

    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(SelfCheckError, match="Likely mistake: normalised over axis 0"):
        check_function(wrong_axis, softmax, [(x,)],
                       mistakes={"normalised over axis 0": lambda x: softmax(x, axis=0)})


def test_check_function_reports_shape_nan_exception_and_stub():
    x = np.ones((2, 3))
    with pytest.raises(SelfCheckError, match=r"shape \(3, 2\), expected \(2, 3\) \(transposed\?\)"):
        check_function(lambda x: softmax(x).T, softmax, [(x,)])
    with pytest.raises(SelfCheckError, match="NaN"):
        check_function(naive_softmax, softmax, [(np.array([1000.0, 0.0]),)])
    with pytest.raises(SelfCheckError, match="raised ZeroDivisionError"):
        check_function(lambda x: 1 / 0, softmax, [(x,)])
    with pytest.raises(SelfCheckError, match="not written yet"):
        def stub(x):
            raise NotImplementedError
        check_function(stub, softmax, [(x,)])
    with pytest.raises(SelfCheckError, match=r"differs at index \(0, 1\)"):
        def off(x):
            p = softmax(x)
            p[0, 1] += 0.1
            return p
        check_function(off, softmax, [(x,)])


def test_check_function_compares_tuples():
    rng = np.random.default_rng(1)
    Q, K, V = (rng.standard_normal((3, 4)) for _ in range(3))

    def unscaled(Q, K, V):
        w = softmax(Q @ K.T)
        return w @ V, w

    with pytest.raises(SelfCheckError, match=r"\(result 0\)"):
        check_function(unscaled, attention, [(Q, K, V)])


def test_check_raises():
    check_raises(attention, [(np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 4)))])
    with pytest.raises(SelfCheckError, match="accepted bad input"):
        check_raises(lambda x: x, [(1,)])
