"""Exercise 08.6, one whole training step: it is judged on its returned loss and on the model's
parameters after it (the check's cases stay untouched); every known mistake, written as a learner
would, is caught and named; unlisted wrong attempts are caught; the reference is the library's
train_step."""

import copy

import numpy as np
from exercise_catalogue import catalogue_tests

from helpers.exercises import check, reference
from helpers.exercises._core import get
from helpers.training import SGD, Adam, softmax_cross_entropy, train_step


# ------------------------------------------------------------------------------ 08.6
def step_no_zero(model, optimizer, inputs, targets):
    loss, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(dlogits)
    optimizer.step(model.grads)
    return loss


def step_zero_at_end(model, optimizer, inputs, targets):
    loss, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(dlogits)
    optimizer.step(model.grads)
    model.zero_grad()  # only afterwards: the gradients the model arrived with are added in
    return loss


def step_zero_late(model, optimizer, inputs, targets):
    model.zero_grad()
    loss, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(dlogits)
    model.zero_grad()
    optimizer.step(model.grads)
    return loss


def step_without_update(model, optimizer, inputs, targets):
    model.zero_grad()
    loss, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(dlogits)
    return loss


def step_loss_after(model, optimizer, inputs, targets):
    model.zero_grad()
    _, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(dlogits)
    optimizer.step(model.grads)
    return softmax_cross_entropy(model(inputs), targets)[0]


def step_uphill(model, optimizer, inputs, targets):
    model.zero_grad()
    loss, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(-dlogits)
    optimizer.step(model.grads)
    return loss


def step_params(model, optimizer, inputs, targets):
    model.zero_grad()
    loss, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(dlogits)
    optimizer.step(model.parameters())
    return loss


CATALOGUED = {
    "08.6": {
        "gradients not zeroed first": step_no_zero,
        "the optimizer stepped on zero gradients": step_zero_late,
        "no optimizer step": step_without_update,
        "loss after the update": step_loss_after,
        "stepped uphill": step_uphill,
        "parameters handed to the optimizer": step_params,
    },
}


def step_twice(model, optimizer, inputs, targets):
    loss = train_step(model, optimizer, inputs, targets)
    optimizer.step(model.grads)
    return loss


def step_own_adam(model, optimizer, inputs, targets):
    model.zero_grad()
    loss, dlogits = softmax_cross_entropy(model(inputs), targets)
    model.backward(dlogits)
    Adam(model.parameters(), lr=optimizer.lr).step(model.grads)  # a new optimizer every step
    return loss


def step_all_positions(model, optimizer, inputs, targets):
    model.zero_grad()
    counted = np.where(targets == -100, 0, targets)  # "no target" read as class 0
    loss, dlogits = softmax_cross_entropy(model(inputs), counted)
    model.backward(dlogits)
    optimizer.step(model.grads)
    return loss


def step_no_return(model, optimizer, inputs, targets):
    train_step(model, optimizer, inputs, targets)


def step_sum_loss(model, optimizer, inputs, targets):
    model.zero_grad()
    loss, dlogits = softmax_cross_entropy(model(inputs), targets)
    N = int((targets != -100).sum())
    model.backward(dlogits * N)  # the gradient of the summed loss
    optimizer.step(model.grads)
    return loss * N


UNLISTED = {
    "08.6": [step_twice, step_own_adam, step_all_positions, step_no_return, step_sum_loss],
}


(
    test_catalogued_mistake_is_caught_and_named,
    test_the_catalogue_is_written_out_here,
    test_unlisted_wrong_attempt_is_caught,
) = catalogue_tests(CATALOGUED, UNLISTED)


def test_a_step_before_backward_is_named_for_what_happened():
    """zero_grad, forward, step, backward: the optimizer stepped on the zeroed gradients; the
    learner did zero them before the backward pass, so that advice would be wrong."""
    def step_before_backward(model, optimizer, inputs, targets):
        model.zero_grad()
        loss, dlogits = softmax_cross_entropy(model(inputs), targets)
        optimizer.step(model.grads)
        model.backward(dlogits)
        return loss

    result = check("08.6", step_before_backward)
    assert result.mistake == "the optimizer stepped on zero gradients", result.report
    assert "or the step before backward" in result.report
    assert "zero them before the backward pass" not in result.report


def test_a_right_step_that_also_zeroes_at_the_end_passes():
    def one_step(model, optimizer, inputs, targets):
        model.zero_grad()
        loss = train_step(model, optimizer, inputs, targets)
        model.zero_grad()  # also at the end: harmless
        return np.float64(loss)
    assert check("08.6", one_step).passed


def test_a_training_step_is_judged_on_the_model_after_it_and_the_cases_stay_untouched():
    cases = get("08.6").cases
    before = [copy.deepcopy(c.args[0].parameters()) for c in cases]
    assert check("08.6", reference("08.6")).passed
    for c, kept in zip(cases, before, strict=True):
        assert all(np.array_equal(p, kept[k]) for k, p in c.args[0].parameters().items())
    # A step that leaves the parameters alone is caught although its loss is right.
    result = check("08.6", step_without_update)
    assert not result.passed and "parameters are wrong after the step" in result.report


def test_08_6_reference_is_the_library_train_step():
    for case in get("08.6").cases:
        a, b = copy.deepcopy(case.args), copy.deepcopy(case.args)
        assert reference("08.6")(*a) == train_step(*b)
        for name, p in a[0].parameters().items():
            assert np.array_equal(p, b[0].parameters()[name]), name
    assert any(isinstance(c.args[1], SGD) for c in get("08.6").cases)
