"""A learner's function that changes its inputs in place is caught, also inside a dict (a cache,
parameters): ``_call._same`` compares a dict's keys and, recursively, its values."""

import numpy as np

from helpers.exercises import Case, Exercise, arrays, check
from helpers.exercises._call import _same, call
from helpers.exercises._check import judge


def _pristine():
    return {"W": np.arange(4.0).reshape(2, 2), "inner": {"b": np.ones(2), "t": (np.zeros(1),)}}


def test_an_unchanged_dict_is_the_same():
    assert _same(_pristine(), _pristine())


def test_a_value_changed_in_place_is_seen_at_any_depth():
    for change in (lambda d: d["W"].__imul__(2.0),
                   lambda d: d["inner"]["b"].__isub__(1.0),
                   lambda d: d["inner"]["t"][0].__iadd__(1.0)):
        changed = _pristine()
        change(changed)
        assert not _same(changed, _pristine())


def test_a_key_added_removed_or_replaced_is_seen():
    added, removed, replaced = _pristine(), _pristine(), _pristine()
    added["extra"] = np.zeros(1)
    del removed["W"]
    replaced["W"] = np.arange(4.0)  # same values, another shape
    assert not any(_same(d, _pristine()) for d in (added, removed, replaced))
    assert not _same([1.0], _pristine())  # not a dict any more


def test_a_dict_argument_changed_in_place_fails_the_case_and_names_the_argument():
    def scaled(x, params):
        return x * params["s"]

    def scaled_in_place(x, params):
        s = params["s"]
        s *= 2.0  # changes the caller's array
        return x * params["s"] / 2.0  # the right values

    ex = Exercise(id="98.2", reference=scaled, mistakes=(), taught="notebook 98 §2",
                  cases=(Case((np.ones(3), {"s": np.array(3.0)}), "a scale in a dict"),),
                  compare=arrays(rtol=1e-12, atol=0.0))
    assert judge(ex, scaled).passed
    outcome = call(scaled_in_place, ex.cases[0].args, {}, ["x", "params"])
    assert outcome.mutated == "params"
    result = judge(ex, scaled_in_place)
    assert not result.passed
    assert "it changed its argument params in place" in result.report
    assert ex.cases[0].args[1]["s"] == 3.0  # the case itself is untouched


def test_08_4_an_answer_that_rescales_a_weight_or_the_cache_in_place_is_rejected():
    """The review's two attempts: every gradient right, but W_q or cache["Q"] changed."""
    from helpers.exercises import reference

    right = reference("08.4")

    def rescales_W_q(d_out, cache, params):
        s = 1.0 / np.sqrt(cache["Q"].shape[-1])
        dx, grads = right(d_out, cache, params)
        W_q = params["W_q"]
        W_q *= s  # "fold the scale into W_q": the layer's own weight during training
        return dx, grads

    def unscales_Q(d_out, cache, params):
        s = 1.0 / np.sqrt(cache["Q"].shape[-1])
        dx, grads = right(d_out, cache, params)
        cache["Q"] /= s
        return dx, grads

    for attempt, argument in ((rescales_W_q, "params"), (unscales_Q, "cache")):
        result = check("08.4", attempt)
        assert not result.passed and result.cases_passed == 0, result.report
        assert f"it changed its argument {argument} in place" in result.report
