"""Regressions of defects the fuzz suite found (issue 10; tests/fuzz/KNOWN_FAILURES.md, I and J).

I: a param's state is created at its first step from the options of that step, as torch does, not
from the options at registration (ASGD's ``eta``, Rprop's ``step_size``); Adagrad's is created
with the param, as in torch. J: the functional calls check every array they write back (scalar
state, step counts) before the step changes anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import optrs
import optrs.functional as F
from optrs import optim

# Every optimizer with per-param state that `step(grads)` drives (LBFGS takes a closure).
STATEFUL = [optim.SGD, optim.Adagrad, optim.Adadelta, optim.RMSprop, optim.Adam, optim.AdamW, optim.Adamax,
            optim.NAdam, optim.RAdam, optim.Rprop, optim.ASGD, optim.Lion, optim.ADOPT, optim.LAMB,
            optim.ScheduleFreeAdamW, optim.Muon, optim.Adafactor]
EXTRA: dict[type[Any], dict[str, Any]] = {optim.SGD: {"momentum": 0.9}}


def _grads(count: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return [[rng.standard_normal((3, 4)).astype(np.float32)] for _ in range(count)]


def _run(cls: type[Any], lr: float, edit_to: float | None, steps: int = 3) -> tuple[np.ndarray, dict[str, Any]]:
    p = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    opt = cls([p], lr=lr, **EXTRA.get(cls, {}))
    if isinstance(opt, optim.ScheduleFreeAdamW):
        opt.train()
    if edit_to is not None:
        opt.param_groups[0]["lr"] = edit_to
    for grads in _grads(steps):
        opt.step(grads)
    return p, {k: np.array(v, copy=True) for k, v in opt.state[p].items()}


def _assert_same(got: tuple[np.ndarray, dict[str, Any]], expected: tuple[np.ndarray, dict[str, Any]]) -> None:
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1].keys() == expected[1].keys()
    for name in got[1]:
        np.testing.assert_array_equal(got[1][name], expected[1][name], err_msg=name)


@pytest.mark.parametrize("cls", STATEFUL, ids=lambda c: c.__name__)
def test_lr_edited_before_the_first_step_is_the_lr_the_state_starts_from(cls: type[Any]) -> None:
    _assert_same(_run(cls, 0.01, 0.003), _run(cls, 0.003, None))


def test_asgd_and_rprop_state_starts_from_the_lr_of_the_first_step() -> None:
    # Reproducer I, with torch 2.13's numbers.
    p = np.ones(1, np.float32)
    opt = optim.ASGD([p], lr=0.01)
    opt.param_groups[0]["lr"] = 1.0
    opt.step([np.ones(1, np.float32)])
    assert p[0] == pytest.approx(-0.00010001659393310547, abs=1e-9)
    assert float(opt.state[p]["eta"]) == pytest.approx(0.9999250173568726, rel=1e-6)
    assert float(opt.state[p]["mu"]) == 1.0
    q = np.ones(1, np.float32)
    rprop = optim.Rprop([q], lr=0.01)
    rprop.param_groups[0]["lr"] = 0.5
    rprop.step([np.ones(1, np.float32)])
    assert q[0] == 0.5 and rprop.state[q]["step_size"][0] == 0.5


def test_state_after_the_first_step_ignores_lr_edits() -> None:
    p = np.ones(1, np.float32)
    opt = optim.Rprop([p], lr=0.01)
    opt.step([np.ones(1, np.float32)])
    opt.param_groups[0]["lr"] = 0.5
    opt.step([np.ones(1, np.float32)])
    assert p[0] == np.float32(0.978)  # torch 2.13: 0.01 then 0.012, the lr edit unseen


def test_a_param_added_later_starts_from_the_options_of_its_first_step() -> None:
    p, q = np.ones(1, np.float32), np.ones(1, np.float32)
    opt = optim.Rprop([p], lr=0.01)
    opt.step([np.ones(1, np.float32)])
    opt.param_groups[0]["lr"] = 0.5
    opt.param_groups[0]["params"].append(q)
    opt.step([np.ones(1, np.float32), None])  # q skipped: still no state
    assert opt.state[q] == {}
    opt.param_groups[0]["lr"] = 0.25
    opt.step([np.ones(1, np.float32), np.ones(1, np.float32)])
    assert q[0] == 0.75 and opt.state[q]["step_size"][0] == 0.25


def test_loaded_state_is_kept_at_its_next_step() -> None:
    p = np.ones(1, np.float32)
    opt = optim.Rprop([p], lr=0.01)
    opt.step([np.ones(1, np.float32)])
    saved = opt.state_dict()
    q = np.ones(1, np.float32)
    other = optim.Rprop([q], lr=0.5)
    other.load_state_dict(saved)
    other.param_groups[0]["lr"] = 0.5
    other.step([np.ones(1, np.float32)])
    assert other.state[q]["step_size"][0] == np.float32(0.012)


def test_adagrad_state_is_created_with_the_param_as_in_torch() -> None:
    # torch fills 'sum' in the constructor: an edit of the option afterwards is not seen, and a
    # sum written before the first step is used (torch 2.13: 0.9292893).
    p = np.ones(1, np.float32)
    opt = optim.Adagrad([p], lr=0.1, initial_accumulator_value=1.0)
    opt.param_groups[0]["initial_accumulator_value"] = 5.0
    opt.step([np.ones(1, np.float32)])
    assert p[0] == pytest.approx(0.9292893409729004, rel=1e-6)
    q = np.ones(1, np.float32)
    opt = optim.Adagrad([q], lr=0.1)
    opt.state[q]["sum"] = np.full(1, 3.0)
    opt.step([np.ones(1, np.float32)])
    assert q[0] == pytest.approx(0.95, rel=1e-6)


def test_functional_calls_step_from_the_state_given_even_at_step_zero() -> None:
    p = np.ones(2, np.float32)
    sizes = np.full(2, 0.3, np.float32)
    F.rprop([p], [np.ones(2, np.float32)], [np.zeros(2, np.float32)], [sizes], [np.zeros(1)],
            step_size_min=1e-6, step_size_max=50.0, etaminus=0.5, etaplus=1.2)
    np.testing.assert_allclose(p, 0.7, rtol=1e-6)  # the given sizes, not lr=0


def _asgd(mus: list[Any], etas: list[Any], steps: list[Any], params: list[np.ndarray] | None = None) -> None:
    params = params if params is not None else [np.ones(3, np.float32)]
    F.asgd(params, [np.ones(3, np.float32)], [np.zeros(3, np.float32)], mus, etas, steps,
           lambd=1e-4, lr=0.01, t0=1e6, alpha=0.75, weight_decay=0.0)


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("which", ["mus", "etas", "steps"])
def test_functional_asgd_refuses_a_read_only_scalar_before_changing_anything(which: str) -> None:
    # Reproducer J: the step used to run, then the write-back raised ValueError.
    arrays = {"mus": np.ones(1), "etas": np.full(1, 0.01), "steps": np.zeros(1)}
    arrays[which] = _read_only(arrays[which])
    p = np.ones(3, np.float32)
    with pytest.raises(optrs.InvalidParamError, match="read-only"):
        _asgd([arrays["mus"]], [arrays["etas"]], [arrays["steps"]], [p])
    np.testing.assert_array_equal(p, 1)


@pytest.mark.parametrize("bad, error, match", [
    (1.0, optrs.InvalidParamError, "one-element array"),
    (np.ones(2), optrs.InvalidParamError, "one-element array"),
    (np.ones(1, np.int64), optrs.ParamDTypeError, "float array"),
])
def test_functional_asgd_refuses_unusable_scalar_state(bad: Any, error: type[Exception], match: str) -> None:
    p = np.ones(3, np.float32)
    with pytest.raises(error, match=match):
        _asgd([bad], [np.full(1, 0.01)], [np.zeros(1)], [p])
    np.testing.assert_array_equal(p, 1)


def test_functional_asgd_refuses_scalar_state_sharing_memory() -> None:
    shared = np.ones(1)
    with pytest.raises(optrs.InvalidParamError, match="shares memory"):
        _asgd([shared], [shared], [np.zeros(1)])
    p = np.ones(3)
    with pytest.raises(optrs.InvalidParamError, match="shares memory"):
        F.asgd([p], [np.ones(3)], [np.zeros(3)], [p[:1]], [np.full(1, 0.01)], [np.zeros(1)],
               lambd=1e-4, lr=0.01, t0=1e6, alpha=0.75, weight_decay=0.0)
    np.testing.assert_array_equal(p, 1)


def test_functional_nadam_refuses_a_read_only_mu_product_before_changing_anything() -> None:
    p, mu = np.ones(3), _read_only(np.ones(1))
    with pytest.raises(optrs.InvalidParamError, match=r"mu_products\[0\] is read-only"):
        F.nadam([p], [np.ones(3)], [np.zeros(3)], [np.zeros(3)], [mu], [np.zeros(1)], beta1=0.9, beta2=0.999,
                lr=0.1, weight_decay=0.0, momentum_decay=4e-3, eps=1e-8)
    np.testing.assert_array_equal(p, 1)


def test_functional_sgd_needs_a_list_to_store_new_momentum_buffers_in() -> None:
    p = np.ones(3)
    with pytest.raises(optrs.InvalidParamError, match="must be a list"):
        F.sgd([p], [np.ones(3)], (None,), lr=0.1, momentum=0.9)  # type: ignore[arg-type]
    np.testing.assert_array_equal(p, 1)


def test_matches_torch_for_lr_edits_before_the_first_step() -> None:
    torch = pytest.importorskip("torch", reason="compares with torch when it is installed")
    for name, first, then in [("ASGD", 0.01, 1.0), ("Rprop", 0.01, 0.5), ("Adam", 0.01, 0.1)]:
        p = np.linspace(-1, 1, 6, dtype=np.float32)
        tp = torch.tensor(p, requires_grad=True)
        ours, theirs = getattr(optim, name)([p], lr=first), getattr(torch.optim, name)([tp], lr=first)
        ours.param_groups[0]["lr"] = theirs.param_groups[0]["lr"] = then
        for _ in range(3):
            g = np.cos(p * 3).astype(np.float32)
            tp.grad = torch.tensor(g)
            ours.step([g])
            theirs.step()
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize("cls, key, value, expected, names", [
    (optim.SGD, "momentum", 0.9, 0.85999995470047, ["momentum_buffer"]),
    (optim.Adam, "amsgrad", True, 0.8733663558959961, ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
    (optim.RMSprop, "centered", True, 0.4444108307361603, ["step", "square_avg", "grad_avg"]),
    (optim.RMSprop, "momentum", 0.5, -0.0509866401553154, ["step", "square_avg", "momentum_buffer"]),
], ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_options_that_choose_the_state_may_change_before_the_first_step(
        cls: type[Any], key: str, value: Any, expected: float, names: list[str]) -> None:
    # torch creates the state at the first step, so these buffers follow the options then (torch
    # 2.13's numbers, grads 1 then -0.5, lr 0.1).
    p = np.ones(2, np.float32)
    opt = cls([p], lr=0.1)
    opt.param_groups[0][key] = value
    for g in (1.0, -0.5):
        opt.step([np.full(2, g, np.float32)])
    np.testing.assert_allclose(p, expected, rtol=1e-6)
    assert sorted(opt.state[p]) == sorted(names)


def test_options_that_choose_the_state_cannot_change_after_a_step() -> None:
    p, q = np.ones(2, np.float32), np.ones(2, np.float32)
    opt = optim.Adam([p, q], lr=0.1)
    opt.step([np.ones(2, np.float32), None])  # q has no state, but p has
    opt.param_groups[0]["amsgrad"] = True
    with pytest.raises(optrs.InvalidHyperparameterError, match="once a param of the group has taken a step"):
        opt.step([np.ones(2, np.float32), np.ones(2, np.float32)])
    np.testing.assert_array_equal(q, 1)
