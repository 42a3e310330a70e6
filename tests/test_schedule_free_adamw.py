"""ScheduleFreeAdamW's modes and schedule: train() and eval() are the reference's lerps, a step in
eval mode is refused, the schedule is per group and travels in the param groups, and (where torch
and the authors' `schedulefree` package are importable) the whole run matches
`schedulefree.AdamWScheduleFree`. Its update rule is checked against the paper in
test_beyond_torch.py and its bad input in test_bad_input.py."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest

import optrs
from optrs import InvalidParamError
from optrs.optim import ScheduleFreeAdamW

SHAPES = [(4, 5), (7,), (2, 3)]


def make(dtype: Any = np.float64, **options: Any) -> tuple[ScheduleFreeAdamW, list[np.ndarray], np.random.Generator]:
    """An optimizer in train mode after three steps, and its params."""
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    opt = ScheduleFreeAdamW(params, **{"lr": 0.1, **options})
    opt.train()
    for _ in range(3):
        opt.step([rng.standard_normal(s).astype(dtype) for s in SHAPES])
    return opt, params, rng


def snapshot(opt: ScheduleFreeAdamW, params: list[np.ndarray]) -> list[bytes]:
    return ([p.tobytes() for p in params] + [v.tobytes() for p in params for v in opt.state[p].values()]
            + [repr(sorted((k, v) for k, v in g.items() if k != "params")).encode() for g in opt.param_groups])


def lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """torch.lerp with a scalar weight, in the arrays' dtype (its two-sided formula)."""
    w = start.dtype.type(weight)
    return start + w * (end - start) if abs(w) < 0.5 else end - (end - start) * (1 - w)


# -- modes --------------------------------------------------------------------------------------


def test_it_starts_in_eval_mode_and_refuses_to_step_there() -> None:
    """As the reference: train() comes before the first step; a step in eval mode raises, saying
    what to do, before it calls the closure or changes anything."""
    w = np.ones(3)
    opt = ScheduleFreeAdamW([w])
    assert opt.param_groups[0]["train_mode"] is False

    def closure() -> float:
        raise AssertionError("the closure must not run in eval mode")

    for call in (lambda: opt.step([np.ones(3)]), lambda: opt.step(closure)):
        with pytest.raises(RuntimeError, match=r"eval mode.*optimizer\.train\(\)"):
            call()
    assert w.tolist() == [1.0, 1.0, 1.0] and opt.state_dict()["state"] == {}
    assert opt.param_groups[0]["k"] == 0

    opt, params, rng = make()
    opt.eval()
    before = snapshot(opt, params)
    with pytest.raises(RuntimeError, match="train()"):
        opt.step([rng.standard_normal(s) for s in SHAPES])
    assert snapshot(opt, params) == before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eval_and_train_are_the_references_lerps(dtype: Any) -> None:
    opt, params, _ = make(dtype, betas=(0.8, 0.99))
    y = [p.copy() for p in params]
    zs = [opt.state[p]["z"].copy() for p in params]
    opt.eval()
    x = [lerp(p, z, 1 - 1 / 0.8) for p, z in zip(y, zs)]
    for got, want in zip(params, x):
        assert got.tobytes() == want.tobytes()
    opt.eval()  # already there: nothing moves
    for got, want in zip(params, x):
        assert got.tobytes() == want.tobytes()
    opt.train()
    for got, want, z in zip(params, x, zs):
        assert got.tobytes() == lerp(want, z, 1 - 0.8).tobytes()
    for got, want in zip(params, y):
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-6)
    assert all(g["train_mode"] for g in opt.param_groups)


def test_params_without_state_do_not_move() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(4), rng.standard_normal(3)
    opt = ScheduleFreeAdamW([a, b], lr=0.1)
    opt.train()
    opt.step([rng.standard_normal(4), None])
    before = b.copy()
    opt.eval()
    assert b.tobytes() == before.tobytes() and b not in opt.state
    opt.train()
    assert b.tobytes() == before.tobytes()


def test_a_read_only_param_fails_the_switch_and_moves_none() -> None:
    opt, params, _ = make()
    params[-1].setflags(write=False)
    before = snapshot(opt, params)
    with pytest.raises(InvalidParamError, match=r"param_groups\[0\]\['params'\]\[2\].*read-only"):
        opt.eval()
    assert snapshot(opt, params) == before and opt.param_groups[0]["train_mode"] is True
    params[-1].setflags(write=True)
    opt.eval()
    assert opt.param_groups[0]["train_mode"] is False


def test_a_bad_option_fails_the_switch_and_moves_none() -> None:
    opt, params, _ = make()
    opt.param_groups[0]["betas"] = (0.0, 0.999)
    before = snapshot(opt, params)
    with pytest.raises(optrs.InvalidHyperparameterError, match=r"param_groups\[0\].*betas\[0\]"):
        opt.eval()
    assert snapshot(opt, params) == before


def test_replaced_parameter_data_is_what_moves() -> None:
    rng = np.random.default_rng(2)
    w = optrs.Parameter(rng.standard_normal(5))
    opt = ScheduleFreeAdamW([w], lr=0.1)
    opt.train()
    for _ in range(3):
        w.grad = rng.standard_normal(5)
        opt.step()
    old = w.data
    y = old.copy()
    w.data = old.copy()
    opt.eval()
    assert old.tobytes() == y.tobytes()
    assert w.data.tobytes() == lerp(y, opt.state[w]["z"], 1 - 1 / 0.9).tobytes() != y.tobytes()


def test_an_added_group_joins_the_current_mode() -> None:
    """The reference adds a group in eval mode whatever the optimizer's mode, so its params would
    stay at y on the next eval(); here the group joins the optimizer's mode."""
    opt, params, rng = make()
    extra = rng.standard_normal(6)
    opt.add_param_group({"params": [extra], "train_mode": False})
    assert opt.param_groups[1]["train_mode"] is True
    opt.step([rng.standard_normal(p.shape) for p in [*params, extra]])
    y, z = extra.copy(), opt.state[extra]["z"].copy()
    opt.eval()
    assert extra.tobytes() == lerp(y, z, 1 - 1 / 0.9).tobytes()
    opt.add_param_group({"params": [rng.standard_normal(2)]})
    assert opt.param_groups[2]["train_mode"] is False


# -- the schedule -------------------------------------------------------------------------------


def test_the_schedule_is_per_group_and_advances_without_grads() -> None:
    """As the reference: each group counts steps (k) and sums its averaging weights, also in steps
    where none of its params has a grad; the entries live in the group (and so in state_dict)."""
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(3), rng.standard_normal(2)
    opt = ScheduleFreeAdamW([{"params": [a]}, {"params": [b], "lr": 0.5, "warmup_steps": 4}], lr=0.1)
    opt.train()
    opt.step([rng.standard_normal(3), None])
    opt.step([rng.standard_normal(3), rng.standard_normal(2)])
    first, second = opt.state_dict()["param_groups"]
    assert (first["k"], first["lr_max"], first["scheduled_lr"], first["weight_sum"]) == (2, 0.1, 0.1, 2 * 0.1 ** 2)
    assert (second["k"], second["lr_max"], second["scheduled_lr"]) == (2, 0.25, 0.25)
    assert second["weight_sum"] == 0.125 ** 2 + 0.25 ** 2
    assert second["train_mode"] is True
    assert list(opt.state[b]) == ["z", "exp_avg_sq"]


def test_zero_learning_rate_leaves_the_params_where_they_are() -> None:
    """lr = 0 makes every averaging weight 0; the reference catches 0 / 0 as c = 0."""
    w = np.array([1.0, -2.0])
    opt = ScheduleFreeAdamW([w], lr=0.0)
    opt.train()
    for _ in range(3):
        opt.step([np.array([0.3, 0.4])])
    opt.eval()
    assert w.tolist() == [1.0, -2.0]
    assert opt.param_groups[0]["weight_sum"] == 0.0


def test_maximize_is_minimizing_the_negated_gradient() -> None:
    rng = np.random.default_rng(4)
    a = rng.standard_normal(50)
    b = a.copy()
    up, down = ScheduleFreeAdamW([a], maximize=True), ScheduleFreeAdamW([b])
    up.train()
    down.train()
    for _ in range(3):
        g = rng.standard_normal(50)
        up.step([g])
        down.step([-g])
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("key, value, fragment", [
    ("k", -1, "'k' must be a whole number >= 0"),
    ("k", 1.5, "'k' must be a whole number >= 0"),
    ("weight_sum", float("nan"), "invalid weight_sum"),
    ("lr_max", float("inf"), "invalid lr_max"),
    ("train_mode", None, "eval mode"),
])
def test_a_bad_schedule_entry_is_rejected_at_step(key: str, value: Any, fragment: str) -> None:
    opt, params, rng = make()
    opt.param_groups[0][key] = value
    before = snapshot(opt, params)
    with pytest.raises((optrs.InvalidHyperparameterError, RuntimeError), match=fragment):
        opt.step([rng.standard_normal(s) for s in SHAPES])
    assert snapshot(opt, params) == before


# -- the authors' implementation ----------------------------------------------------------------

CASES: list[dict[str, Any]] = [
    {},
    dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1, warmup_steps=5, r=0.5, weight_lr_power=1.0),
    dict(lr=3e-2, eps=1e-4, warmup_steps=50, weight_lr_power=0.0),
]


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("options", CASES, ids=[str(i) for i in range(len(CASES))])
def test_matches_the_authors_implementation(options: dict[str, Any], dtype: Any, foreach: bool) -> None:
    """30 steps with a param skipped now and then and an eval()/train() round trip every 10, against
    `schedulefree.AdamWScheduleFree` (which uses fused multiply-adds in places, hence not bits)."""
    torch = pytest.importorskip("torch")
    schedulefree = pytest.importorskip("schedulefree")
    rng = np.random.default_rng(9)
    shapes = [(7, 5), (11,), (3000,)]
    ours = [rng.standard_normal(s).astype(dtype) for s in shapes]
    theirs = [torch.nn.Parameter(torch.tensor(p.copy())) for p in ours]
    opt = ScheduleFreeAdamW(ours, **options)
    ref = schedulefree.AdamWScheduleFree(theirs, foreach=foreach, **options)
    tolerance = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)

    def assert_close() -> None:
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b.detach().numpy(), **tolerance)
            for name, value in ref.state[b].items():
                np.testing.assert_allclose(opt.state[a][name], value.numpy(), **tolerance)
        for mine, their in zip(opt.param_groups, ref.param_groups):
            for key in ("k", "train_mode", "weight_sum", "lr_max", "scheduled_lr"):
                assert mine[key] == their[key], key

    opt.train()
    ref.train()
    for step in range(30):
        grads = [None if (step % 4 == 3 and i == 1) else rng.standard_normal(s).astype(dtype)
                 for i, s in enumerate(shapes)]
        for p, g in zip(theirs, grads):
            p.grad = None if g is None else torch.tensor(g)
        ref.step()
        opt.step(grads)
        if step % 10 == 9:
            opt.eval()
            ref.eval()
            assert_close()
            opt.train()
            ref.train()
    assert_close()


def test_signature_and_defaults_are_the_authors() -> None:
    schedulefree = pytest.importorskip("schedulefree")
    theirs = inspect.signature(schedulefree.AdamWScheduleFree).parameters
    ours = inspect.signature(ScheduleFreeAdamW).parameters
    assert list(theirs) == [k for k in ours if k != "maximize"]
    assert all(theirs[k].default == ours[k].default for k in ours if k not in ("params", "maximize", "foreach"))
    torch = pytest.importorskip("torch")
    ref = schedulefree.AdamWScheduleFree([torch.nn.Parameter(torch.zeros(2))])
    mine = ScheduleFreeAdamW([np.zeros(2)])
    assert {k for k in ref.param_groups[0] if k != "foreach"} == set(mine.param_groups[0]) - {"maximize"}
