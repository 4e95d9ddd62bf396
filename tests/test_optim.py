"""helpers.training.optim: SGD, Adam and AdamW equal torch.optim's over many steps (float64)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from helpers.training.optim import SGD, Adam, AdamW, warmup_cosine

STEPS = 60
SHAPES = {"W": (5, 3), "b": (3,), "s": ()}


def quadratic_grads(params: dict[str, np.ndarray], targets: dict[str, np.ndarray]):
    """Gradient of sum((p - t)^2 * (1 + p^2)): nonlinear, so the path depends on every step."""
    return {k: 2 * (p - targets[k]) * (1 + p * p) + 2 * p * (p - targets[k]) ** 2
            for k, p in params.items()}


def run_both(ours_cls, torch_cls, kwargs, torch_kwargs=None, steps=STEPS):
    rng = np.random.default_rng(0)
    start = {k: np.array(rng.standard_normal(s)) for k, s in SHAPES.items()}
    targets = {k: rng.standard_normal(s) for k, s in SHAPES.items()}
    ours = {k: v.copy() for k, v in start.items()}
    arrays = dict(ours)  # the same objects: updated in place
    opt = ours_cls(ours, **kwargs)
    theirs = {k: torch.tensor(v, requires_grad=True) for k, v in start.items()}
    t_opt = torch_cls(list(theirs.values()), **(torch_kwargs or kwargs))
    worst = 0.0
    for _ in range(steps):
        opt.step(quadratic_grads(ours, targets))
        t_opt.zero_grad()
        for k, t in theirs.items():
            g = quadratic_grads({k: t.detach().numpy()}, targets)[k]
            t.grad = torch.from_numpy(np.asarray(g))
        t_opt.step()
        for k in ours:
            ref = theirs[k].detach().numpy()
            worst = max(worst, float(np.max(np.abs(ours[k] - ref) / (np.abs(ref) + 1e-3))))
    assert all(ours[k] is arrays[k] for k in ours), "parameters must be updated in place"
    assert all(not np.allclose(ours[k], start[k]) for k in ours), "nothing was trained"
    return worst


@pytest.mark.parametrize("kwargs", [
    {"lr": 0.01},
    {"lr": 0.01, "momentum": 0.9},
    {"lr": 0.01, "momentum": 0.9, "dampening": 0.5, "weight_decay": 0.1},
    {"lr": 0.01, "momentum": 0.8, "nesterov": True},
])
def test_sgd_equals_torch(kwargs):
    assert run_both(SGD, torch.optim.SGD, kwargs) <= 1e-12


@pytest.mark.parametrize("kwargs", [
    {"lr": 1e-3},
    {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6},
    {"lr": 0.02, "weight_decay": 0.1},
])
def test_adam_equals_torch(kwargs):
    assert run_both(Adam, torch.optim.Adam, kwargs) <= 1e-12


@pytest.mark.parametrize("kwargs", [{"lr": 0.02}, {"lr": 0.02, "weight_decay": 0.5}])
def test_adamw_equals_torch(kwargs):
    assert run_both(AdamW, torch.optim.AdamW, kwargs) <= 1e-12


def test_adam_and_adamw_decay_differently():
    # Same weight decay, one step: L2 in Adam is normalised away, AdamW shrinks the weights.
    p1, p2 = {"w": np.array([10.0, 0.1])}, {"w": np.array([10.0, 0.1])}
    zero = {"w": np.zeros(2)}
    Adam(p1, lr=0.1, weight_decay=0.01).step(zero)
    AdamW(p2, lr=0.1, weight_decay=0.01).step(zero)
    # Adam: g = 0.01 w, normalised by |g| -> every entry moves by about lr, whatever its size.
    np.testing.assert_allclose(p1["w"], [10.0 - 0.1, 0.1 - 0.1], atol=1e-6)
    # AdamW: w *= 1 - lr * wd, and the zero gradient moves nothing.
    np.testing.assert_allclose(p2["w"], [10.0 * 0.999, 0.1 * 0.999], rtol=1e-15)


def test_first_adam_step_has_size_lr_thanks_to_bias_correction():
    g = np.array([1e-4, -3.0, 50.0])
    p = {"w": np.zeros(3)}
    Adam(p, lr=0.01).step({"w": g})
    np.testing.assert_allclose(p["w"], -0.01 * np.sign(g), rtol=1e-3)


def test_step_does_not_modify_the_gradients():
    g = {"w": np.ones(3)}
    keep = g["w"].copy()
    for opt in (SGD({"w": np.zeros(3)}, momentum=0.9, weight_decay=0.1),
                Adam({"w": np.zeros(3)}, weight_decay=0.1)):
        opt.step(g)
        opt.step(g)
        np.testing.assert_array_equal(g["w"], keep)


@pytest.mark.parametrize("grads, error, words", [
    ({}, ValueError, "missing ['w']"),
    ({"w": np.zeros(3), "x": np.zeros(1)}, ValueError, "unknown ['x']"),
    ({"w": np.zeros((3, 1))}, ValueError, "shape (3, 1)"),
    ({"w": np.array([1.0, np.nan, 0.0])}, ValueError, "NaN"),
    ({"w": np.zeros(3, dtype=int)}, TypeError, "floating"),
    ([np.zeros(3)], TypeError, "dict"),
])
def test_bad_gradients_get_clear_errors(grads, error, words):
    opt = Adam({"w": np.zeros(3)})
    with pytest.raises(error) as info:
        opt.step(grads)
    assert words in str(info.value)


@pytest.mark.parametrize("make, error, words", [
    (lambda: Adam({"w": np.zeros(3, dtype=int)}), TypeError, "floating-point"),
    (lambda: Adam([np.zeros(3)]), TypeError, "dict"),
    (lambda: Adam({"w": np.zeros(3)}, lr=0), ValueError, "lr"),
    (lambda: Adam({"w": np.zeros(3)}, lr=-1.0), ValueError, "lr"),
    (lambda: Adam({"w": np.zeros(3)}, betas=(0.9, 1.0)), ValueError, "betas"),
    (lambda: Adam({"w": np.zeros(3)}, betas=0.9), TypeError, "betas"),
    (lambda: SGD({"w": np.zeros(3)}, nesterov=True), ValueError, "nesterov"),
    (lambda: SGD({"w": np.zeros(3)}, momentum="0.9"), TypeError, "momentum"),
])
def test_bad_settings_get_clear_errors(make, error, words):
    with pytest.raises(error) as info:
        make()
    assert words in str(info.value)


def test_read_only_parameter_is_rejected():
    w = np.zeros(3)
    w.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        SGD({"w": w})


def test_warmup_cosine_schedule():
    f = [warmup_cosine(t, warmup=4, total=12) for t in range(13)]
    np.testing.assert_allclose(f[:4], [0.25, 0.5, 0.75, 1.0])  # linear warm-up, 1 at its end
    assert f[4] == 1.0 and f[8] == pytest.approx(0.5) and f[12] == pytest.approx(0.0)
    assert all(a >= b for a, b in itertools.pairwise(f[3:])), "decays monotonically"
    # What torch's LambdaLR does with it: the rate of step t is lr * f(t).
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: warmup_cosine(t, warmup=4, total=12))
    for t in range(12):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * f[t], rel=1e-15)
        opt.step()
        sched.step()
    for bad in ({"warmup": 0, "total": 5}, {"warmup": 5, "total": 5}, {"warmup": 2.0, "total": 5}):
        with pytest.raises(ValueError):
            warmup_cosine(1, **bad)


def test_warmup_convention_is_step_plus_one_over_warmup():
    """Ours: (step + 1) / warmup, so step 0 already moves. The other common convention,
    step / warmup, starts at a rate of 0: ours at step t is that one at step t + 1."""
    warmup, total = 5, 20
    ours = [warmup_cosine(t, warmup=warmup, total=total) for t in range(warmup)]
    common = [t / warmup for t in range(warmup + 1)]
    assert ours[0] == 1 / warmup and common[0] == 0.0
    assert ours == common[1:]
    assert ours[-1] == 1.0 and warmup_cosine(warmup, warmup=warmup, total=total) == 1.0


@pytest.mark.parametrize("min_lr", [0.0, 0.1, 0.5, 1.0])
def test_warmup_cosine_min_lr_floor(min_lr):
    warmup, total = 4, 14
    f = [warmup_cosine(t, warmup=warmup, total=total, min_lr=min_lr) for t in range(total + 5)]
    plain = [warmup_cosine(t, warmup=warmup, total=total) for t in range(total + 5)]
    assert f[:warmup] == plain[:warmup]  # the warm-up does not depend on the floor
    assert f[warmup] == 1.0
    assert f[total] == pytest.approx(min_lr, abs=1e-15)
    assert all(v == pytest.approx(min_lr, abs=1e-15) for v in f[total:])  # stays on the floor
    assert min(f[warmup:]) >= min_lr - 1e-15
    # the cosine is rescaled onto [min_lr, 1]: f = min_lr + (1 - min_lr) * plain
    np.testing.assert_allclose(f[warmup:], [min_lr + (1 - min_lr) * p for p in plain[warmup:]],
                               rtol=0, atol=1e-15)
    mid = (warmup + total) // 2
    assert f[mid] == pytest.approx((1 + min_lr) / 2)


def test_warmup_cosine_with_min_lr_zero_is_bit_for_bit_the_plain_schedule():
    for t in range(30):
        assert warmup_cosine(t, warmup=5, total=25, min_lr=0.0) == warmup_cosine(
            t, warmup=5, total=25)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), True, "0.1", None])
def test_warmup_cosine_rejects_a_bad_min_lr(bad):
    with pytest.raises(ValueError, match="min_lr"):
        warmup_cosine(3, warmup=2, total=10, min_lr=bad)
