"""optrs.optim.lr_scheduler and swa_utils.SWALR give torch 2.13's learning rates and momentums.

Replays tests/reference/torch-2.13/sched_*.npz; where torch is importable, also runs every class
under many argument combinations in torch and in optrs side by side. Plus state_dict round trips
and argument checks, which need no torch.
"""

from __future__ import annotations

import json
import math
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import optrs
from optrs.optim import lr_scheduler, swa_utils

REFERENCE_DIR = Path(__file__).parent / "reference" / "torch-2.13"
SCHED_FILES = sorted(REFERENCE_DIR.glob("sched_*.npz"))
RTOL = 1e-12


def test_exported() -> None:
    assert optrs.optim.lr_scheduler is lr_scheduler
    assert optrs.optim.swa_utils is swa_utils
    for name in lr_scheduler.__all__:
        assert issubclass(getattr(lr_scheduler, name), lr_scheduler.LRScheduler)
    assert issubclass(swa_utils.SWALR, lr_scheduler.LRScheduler)


# -- the reference files -----------------------------------------------------------------------


def test_reference_files_exist() -> None:
    assert len(SCHED_FILES) >= 10


@pytest.mark.parametrize("path", SCHED_FILES, ids=lambda p: p.stem)
def test_replays_reference(path: Path) -> None:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        want_lrs, want_momentum = data["lrs"], data["momentum"]
        metrics = data["metrics"] if "metrics" in data else None
    assert meta["optimizer"] == "SGD(lr=base_lr, momentum=0.9)"
    opt = optrs.optim.SGD([np.zeros(1)], lr=meta["base_lr"], momentum=0.9)
    sched = getattr(lr_scheduler, meta["scheduler"])(opt, **meta["kwargs"])
    lrs, momentum = [opt.param_groups[0]["lr"]], [opt.param_groups[0]["momentum"]]
    for epoch in range(meta["epochs"]):
        opt.step([np.zeros(1)])
        if metrics is not None:
            sched.step(float(metrics[epoch]))
        else:
            sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        momentum.append(opt.param_groups[0]["momentum"])
        assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]
    np.testing.assert_allclose(lrs, want_lrs, rtol=RTOL, atol=0, err_msg=f"{path.stem}: lr")
    np.testing.assert_allclose(momentum, want_momentum, rtol=RTOL, atol=0, err_msg=f"{path.stem}: momentum")


# -- side by side with torch -------------------------------------------------------------------


def _metric(t: int) -> float:
    """A noisy, mostly decreasing loss for ReduceLROnPlateau."""
    return 1.0 / (1.0 + 0.1 * t) + 0.05 * math.sin(1.7 * t)


class Decay:
    """A callable object (not a function): LambdaLR's state_dict saves its __dict__."""

    def __init__(self, gamma: float) -> None:
        self.gamma = gamma

    def __call__(self, epoch: int) -> float:
        return float(self.gamma**epoch)


@dataclass
class Case:
    name: str
    make: Callable[[Any, Any], Any]  # (scheduler namespace, optimizer) -> scheduler
    optimizer: str = "SGD"
    groups: list[dict[str, Any]] = field(default_factory=lambda: [{"lr": 0.1, "momentum": 0.9}])
    steps: int = 40
    # What step() is called with at step t: None (plain step()), or a function of t giving the
    # metric (ReduceLROnPlateau) or the epoch (step(epoch)).
    arg: Callable[[int], float] | None = None


ADAM = [{"lr": 1e-3, "betas": (0.9, 0.999)}]
TWO_SGD = [{"lr": 0.1, "momentum": 0.9}, {"lr": 0.03, "momentum": 0.5}]
TWO_ADAM = [{"lr": 1e-3, "betas": (0.9, 0.999)}, {"lr": 5e-3, "betas": (0.8, 0.99)}]

CASES = [
    Case("LambdaLR", lambda S, o: S.LambdaLR(o, lambda e: 0.95**e)),
    Case("LambdaLR-two-groups", lambda S, o: S.LambdaLR(o, [lambda e: 1 / (e + 1), Decay(0.9)]), groups=TWO_SGD),
    Case("LambdaLR-adam", lambda S, o: S.LambdaLR(o, lambda e: e // 5 + 0.5), "Adam", ADAM),
    Case("MultiplicativeLR", lambda S, o: S.MultiplicativeLR(o, lambda e: 0.95)),
    Case("MultiplicativeLR-two-groups", lambda S, o: S.MultiplicativeLR(o, [lambda e: 0.9, lambda e: 1 - 0.01 * e]),
         groups=TWO_SGD),
    Case("StepLR", lambda S, o: S.StepLR(o, step_size=3, gamma=0.5)),
    Case("StepLR-default-gamma-two-groups", lambda S, o: S.StepLR(o, 7), groups=TWO_SGD),
    Case("StepLR-epoch", lambda S, o: S.StepLR(o, step_size=4, gamma=0.7), arg=lambda t: (7 * t) % 23),
    Case("MultiStepLR", lambda S, o: S.MultiStepLR(o, milestones=[3, 8, 8, 15], gamma=0.5)),
    Case("MultiStepLR-epoch", lambda S, o: S.MultiStepLR(o, milestones=[3, 8, 8, 15]), arg=lambda t: (5 * t) % 19),
    Case("ConstantLR", lambda S, o: S.ConstantLR(o)),
    Case("ConstantLR-factor", lambda S, o: S.ConstantLR(o, factor=0.5, total_iters=10), groups=TWO_SGD),
    Case("ConstantLR-epoch", lambda S, o: S.ConstantLR(o, factor=0.25, total_iters=6), arg=lambda t: (3 * t) % 11),
    Case("LinearLR", lambda S, o: S.LinearLR(o)),
    Case("LinearLR-range", lambda S, o: S.LinearLR(o, start_factor=0.25, end_factor=0.75, total_iters=12)),
    Case("LinearLR-decay-adam", lambda S, o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=30),
         "Adam", TWO_ADAM),
    Case("LinearLR-epoch", lambda S, o: S.LinearLR(o, total_iters=9), arg=lambda t: (4 * t) % 13),
    Case("ExponentialLR", lambda S, o: S.ExponentialLR(o, gamma=0.93), groups=TWO_SGD),
    Case("ExponentialLR-epoch", lambda S, o: S.ExponentialLR(o, gamma=0.93), arg=lambda t: (3 * t) % 17),
    Case("PolynomialLR", lambda S, o: S.PolynomialLR(o)),
    Case("PolynomialLR-sqrt", lambda S, o: S.PolynomialLR(o, total_iters=30, power=0.5), groups=TWO_SGD),
    Case("PolynomialLR-cube", lambda S, o: S.PolynomialLR(o, total_iters=25, power=3.0), "Adam", ADAM),
    Case("PolynomialLR-epoch", lambda S, o: S.PolynomialLR(o, total_iters=20, power=2.0), arg=lambda t: (3 * t) % 29),
    Case("CosineAnnealingLR", lambda S, o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001)),
    Case("CosineAnnealingLR-two-groups", lambda S, o: S.CosineAnnealingLR(o, T_max=7), groups=TWO_SGD),
    Case("CosineAnnealingLR-resumed",
         lambda S, o: (S.ExponentialLR(o, 0.9), S.CosineAnnealingLR(o, T_max=10, last_epoch=4))[1]),
    Case("CosineAnnealingLR-epoch", lambda S, o: S.CosineAnnealingLR(o, T_max=9, eta_min=0.01),
         arg=lambda t: (5 * t) % 31),
    Case("CosineAnnealingWarmRestarts", lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=5)),
    Case("CosineAnnealingWarmRestarts-T_mult", lambda S, o: S.CosineAnnealingWarmRestarts(o, 3, T_mult=2, eta_min=0.01),
         groups=TWO_SGD),
    Case("CosineAnnealingWarmRestarts-fractional",
         lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001), arg=lambda t: t * 0.37),
    Case("CosineAnnealingWarmRestarts-fractional-T_mult-1",
         lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=4), arg=lambda t: t / 3),
    Case("CosineAnnealingWarmRestarts-fractional-T_mult-3",
         lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=3), arg=lambda t: (t * 1.3) % 29, groups=TWO_SGD),
    Case("CyclicLR-triangular", lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4)),
    Case("CyclicLR-triangular2", lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3, step_size_down=5,
                                                         mode="triangular2")),
    Case("CyclicLR-exp_range", lambda S, o: S.CyclicLR(o, [0.01, 0.001], [0.1, 0.05], step_size_up=5,
                                                       mode="exp_range", gamma=0.97,
                                                       base_momentum=[0.8, 0.7], max_momentum=[0.9, 0.95]),
         groups=TWO_SGD),
    Case("CyclicLR-scale_fn-cycle", lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3,
                                                            scale_fn=lambda x: 1 / (1.0 + x))),
    Case("CyclicLR-scale_fn-iterations", lambda S, o: S.CyclicLR(o, 0.01, 0.1, step_size_up=3, step_size_down=2,
                                                                 scale_fn=lambda x: 0.99**x, scale_mode="iterations")),
    Case("CyclicLR-adam-beta1", lambda S, o: S.CyclicLR(o, 1e-4, 1e-2, step_size_up=6, mode="exp_range", gamma=0.99,
                                                        base_momentum=0.85, max_momentum=0.95), "Adam", TWO_ADAM),
    Case("CyclicLR-adam-no-momentum", lambda S, o: S.CyclicLR(o, 1e-4, 1e-2, step_size_up=6, cycle_momentum=False),
         "Adam", ADAM),
    Case("CyclicLR-rmsprop", lambda S, o: S.CyclicLR(o, 1e-4, 1e-2, step_size_up=2, mode="triangular2"),
         "RMSprop", [{"lr": 1e-2, "momentum": 0.5}]),
    Case("OneCycleLR", lambda S, o: S.OneCycleLR(o, max_lr=1.0, total_steps=40)),
    Case("OneCycleLR-epochs", lambda S, o: S.OneCycleLR(o, max_lr=[0.5, 0.2], epochs=5, steps_per_epoch=9,
                                                        pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
         groups=TWO_SGD),
    Case("OneCycleLR-three-phase-linear-adam",
         lambda S, o: S.OneCycleLR(o, max_lr=0.01, total_steps=40, anneal_strategy="linear", three_phase=True,
                                   base_momentum=[0.8, 0.75], max_momentum=0.9), "Adam", TWO_ADAM),
    Case("OneCycleLR-three-phase-cos-adam", lambda S, o: S.OneCycleLR(o, 0.01, total_steps=45, three_phase=True),
         "Adam", ADAM),
    Case("OneCycleLR-no-momentum", lambda S, o: S.OneCycleLR(o, 0.1, total_steps=41, pct_start=0.5,
                                                             cycle_momentum=False, anneal_strategy="linear")),
    Case("SequentialLR", lambda S, o: S.SequentialLR(o, [S.ConstantLR(o, factor=0.5, total_iters=3),
                                                         S.ExponentialLR(o, gamma=0.9)], milestones=[5])),
    Case("SequentialLR-three", lambda S, o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=5),
                                                               S.CosineAnnealingLR(o, T_max=20, eta_min=0.001),
                                                               S.StepLR(o, step_size=3, gamma=0.5)],
                                                           milestones=[5, 25]), groups=TWO_SGD),
    Case("SequentialLR-warmup-poly-adam", lambda S, o: S.SequentialLR(o, [S.LinearLR(o, 0.01, total_iters=4),
                                                                          S.PolynomialLR(o, 30, 2.0)], [4]),
         "Adam", ADAM),
    Case("ChainedScheduler", lambda S, o: S.ChainedScheduler([S.ConstantLR(o, factor=0.1, total_iters=2),
                                                              S.ExponentialLR(o, gamma=0.9)])),
    Case("ChainedScheduler-optimizer", lambda S, o: S.ChainedScheduler([S.LinearLR(o, 0.5, total_iters=6),
                                                                        S.StepLR(o, 4, 0.7),
                                                                        S.MultiplicativeLR(o, lambda e: 0.99)],
                                                                       optimizer=o), groups=TWO_SGD),
    Case("ReduceLROnPlateau", lambda S, o: S.ReduceLROnPlateau(o, factor=0.5, patience=2), arg=_metric),
    Case("ReduceLROnPlateau-max-abs-cooldown-min_lr",
         lambda S, o: S.ReduceLROnPlateau(o, mode="max", factor=0.3, patience=1, threshold=0.05, threshold_mode="abs",
                                          cooldown=2, min_lr=[0.01, 0.001]),
         groups=TWO_SGD, arg=lambda t: -_metric(t)),
    Case("ReduceLROnPlateau-max-rel", lambda S, o: S.ReduceLROnPlateau(o, "max", patience=0, threshold=0.01,
                                                                       min_lr=0.0005), arg=lambda t: 2 - _metric(t)),
    Case("ReduceLROnPlateau-min-abs-eps", lambda S, o: S.ReduceLROnPlateau(o, factor=0.9, patience=0,
                                                                           threshold_mode="abs", eps=0.02),
         "Adam", [{"lr": 0.5, "betas": (0.9, 0.999)}], arg=_metric),
    Case("SWALR", lambda S, o: S.SWALR(o, swa_lr=0.05, anneal_epochs=5)),
    Case("SWALR-linear-two-groups", lambda S, o: S.SWALR(o, swa_lr=[0.05, 0.2], anneal_epochs=8,
                                                         anneal_strategy="linear"), groups=TWO_SGD),
    Case("SWALR-no-anneal", lambda S, o: S.SWALR(o, swa_lr=0.01, anneal_epochs=0), "Adam", ADAM),
    Case("SWALR-after-cosine", lambda S, o: S.SequentialLR(o, [S.CosineAnnealingLR(o, T_max=15),
                                                               S.SWALR(o, swa_lr=0.02, anneal_epochs=3)], [15])),
]
CASE_IDS = [c.name for c in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS)


def _namespace(lib: Any) -> SimpleNamespace:
    if lib == "optrs":
        return SimpleNamespace(**vars(lr_scheduler), SWALR=swa_utils.SWALR)
    return SimpleNamespace(**vars(lib.optim.lr_scheduler), SWALR=lib.optim.swa_utils.SWALR)


class Run:
    """An optimizer over one 1-element param per group, its scheduler, and what they record."""

    def __init__(self, case: Case, lib: Any = "optrs") -> None:
        self.case, self.lib = case, lib
        if lib == "optrs":
            self.params: list[Any] = [np.zeros(1) for _ in case.groups]
            self.opt = getattr(optrs.optim, case.optimizer)(
                [{"params": [p], **g} for p, g in zip(self.params, case.groups)])
        else:
            self.params = [lib.zeros(1, dtype=lib.float64, requires_grad=True) for _ in case.groups]
            self.opt = getattr(lib.optim, case.optimizer)(
                [{"params": [p], **g} for p, g in zip(self.params, case.groups)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.sched = case.make(_namespace(lib), self.opt)
        self.t = 0
        self.record: list[list[tuple[float, float]]] = [self.snapshot()]

    def snapshot(self) -> list[tuple[float, float]]:
        out = []
        for g in self.opt.param_groups:
            momentum = g["momentum"] if "momentum" in g else g["betas"][0] if "betas" in g else math.nan
            out.append((float(g["lr"]), float(momentum)))
        return out

    def step(self) -> None:
        if self.lib == "optrs":
            self.opt.step([np.zeros(1) for _ in self.params])
        else:
            for p in self.params:
                p.grad = self.lib.zeros_like(p)
            self.opt.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # step(epoch) is deprecated in torch and here
            if self.case.arg is None:
                self.sched.step()
            else:
                self.sched.step(self.case.arg(self.t))
        self.t += 1
        self.record.append(self.snapshot())
        assert [float(x) for x in self.sched.get_last_lr()] == [lr for lr, _ in self.record[-1]]

    def run(self, steps: int) -> Run:
        for _ in range(steps):
            self.step()
        return self

    def trajectory(self) -> np.ndarray:
        return np.array(self.record)


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_matches_torch(case: Case, torch: Any) -> None:
    want = Run(case, torch).run(case.steps).trajectory()
    got = Run(case).run(case.steps).trajectory()
    assert got.shape == want.shape
    np.testing.assert_allclose(got[..., 0], want[..., 0], rtol=RTOL, atol=0, err_msg=f"{case.name}: lr")
    np.testing.assert_allclose(got[..., 1], want[..., 1], rtol=RTOL, atol=0, err_msg=f"{case.name}: momentum")


def _assert_same_state(got: Any, want: Any, where: str) -> None:
    if isinstance(want, dict):
        assert isinstance(got, dict), where
        assert set(got) == set(want), f"{where}: keys {sorted(set(got) ^ set(want))} differ"
        for key in want:
            _assert_same_state(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            _assert_same_state(a, b, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, err_msg=where)
    else:
        assert got == want, where


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_state_dict_matches_torch(case: Case, torch: Any) -> None:
    """Mid-schedule, the state dicts have torch's keys and values (so one can be read as the other)."""
    want = Run(case, torch).run(case.steps // 2).sched.state_dict()
    got = Run(case).run(case.steps // 2).sched.state_dict()
    _assert_same_state(got, want, "state_dict")


# -- state_dict round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("via", ["dict", "pickle"])
def test_state_dict_resumes_identically(case: Case, via: str) -> None:
    """Save scheduler and optimizer mid-schedule, load both into fresh ones (scheduler made first, as
    torch advises), continue: the same lrs and momentums as the uninterrupted run, bit for bit."""
    whole = Run(case).run(case.steps)
    first = Run(case).run(case.steps // 2)
    sched_state, opt_state = first.sched.state_dict(), first.opt.state_dict()
    if via == "pickle":
        sched_state, opt_state = pickle.loads(pickle.dumps((sched_state, opt_state)))
    first.run(3)  # the saved state is a snapshot: later steps do not change it
    resumed = Run(case)
    resumed.opt.load_state_dict(opt_state)
    resumed.sched.load_state_dict(sched_state)
    resumed.t = case.steps // 2
    resumed.record = [resumed.snapshot()]
    resumed.run(case.steps - case.steps // 2)
    np.testing.assert_array_equal(resumed.trajectory(), whole.trajectory()[case.steps // 2:])


def test_lambda_state_dict_keeps_callable_objects_state() -> None:
    opt = optrs.optim.SGD([np.zeros(1)], lr=1.0)
    sched = lr_scheduler.LambdaLR(opt, Decay(0.5))
    state = sched.state_dict()
    assert state["lr_lambdas"] == [{"gamma": 0.5}]
    opt2 = optrs.optim.SGD([np.zeros(1)], lr=1.0)
    sched2 = lr_scheduler.LambdaLR(opt2, Decay(0.9))
    sched2.load_state_dict(state)
    assert sched2.lr_lambdas[0].gamma == 0.5  # type: ignore[attr-defined]
    assert lr_scheduler.LambdaLR(opt, lambda e: 1.0).state_dict()["lr_lambdas"] == [None]


def test_cyclic_state_dict_pickles_and_keeps_scale_fn() -> None:
    opt = optrs.optim.SGD([np.zeros(1)], lr=0.1, momentum=0.9)
    sched = lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=3, mode="exp_range", gamma=0.9)
    for _ in range(4):
        sched.step()
    state = pickle.loads(pickle.dumps(sched.state_dict()))
    assert "_scale_fn_ref" not in state and state["_scale_fn_custom"] is None
    opt2 = optrs.optim.SGD([np.zeros(1)], lr=0.1, momentum=0.9)
    sched2 = lr_scheduler.CyclicLR(opt2, 0.01, 0.1)
    sched2.load_state_dict(state)
    assert sched2.scale_fn(2) == 0.9**2 and sched2.scale_mode == "iterations"


# -- behaviour ---------------------------------------------------------------------------------


def test_scheduled_lr_drives_the_optimizer() -> None:
    """optrs optimizers read the group's lr at every step: plain SGD with unit grads moves each
    param by minus the sum of the lrs it stepped with."""
    w, v = np.zeros(3), np.zeros(2)
    opt = optrs.optim.SGD([{"params": [w]}, {"params": [v], "lr": 0.5}], lr=0.1)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    used: list[list[float]] = []
    for _ in range(5):
        used.append([g["lr"] for g in opt.param_groups])
        opt.step([np.ones(3), np.ones(2)])
        sched.step()
    np.testing.assert_allclose(w, -sum(lr[0] for lr in used))
    np.testing.assert_allclose(v, -sum(lr[1] for lr in used))
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert sched.base_lrs == [0.1, 0.5] and sched.last_epoch == 5


def test_one_cycle_cycles_adam_beta1_and_the_optimizer_accepts_it() -> None:
    w = np.zeros(4)
    opt = optrs.optim.Adam([w], lr=1e-3, betas=(0.9, 0.99))
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=10)
    beta1 = [opt.param_groups[0]["betas"][0]]
    for _ in range(9):  # total_steps - 1 steps reach the end of the cycle
        opt.step([np.ones(4)])
        sched.step()
        beta1.append(opt.param_groups[0]["betas"][0])
    assert beta1[0] == 0.95 and min(beta1) == pytest.approx(0.85) and beta1[-1] == pytest.approx(0.95)
    assert opt.param_groups[0]["betas"][1] == 0.99
    assert np.all(w < 0)


def test_get_lr_outside_step_warns() -> None:
    sched = lr_scheduler.ExponentialLR(optrs.optim.SGD([np.zeros(1)], lr=0.1), gamma=0.5)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    with pytest.warns(UserWarning, match="epoch parameter"):
        sched.step(3)
    assert sched.get_last_lr() == [pytest.approx(0.1 * 0.5**3)]


def test_reduce_on_plateau_takes_numpy_metrics() -> None:
    opt = optrs.optim.SGD([np.zeros(1)], lr=1.0)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    for m in [np.float32(1.0), np.array(2.0), 3]:
        sched.step(m)
    assert opt.param_groups[0]["lr"] == 0.25 and sched.get_last_lr() == [0.25]


# -- bad arguments -----------------------------------------------------------------------------


def _sgd() -> optrs.optim.SGD:
    return optrs.optim.SGD([np.zeros(1)], lr=0.1, momentum=0.9)


def _adagrad() -> optrs.optim.Adagrad:
    return optrs.optim.Adagrad([np.zeros(1)], lr=0.1)


S = SimpleNamespace(**vars(lr_scheduler), SWALR=swa_utils.SWALR)

# (id, make(S, SGD factory, Adagrad factory), exception, message, whether torch raises at construction too)
BAD = [
    ("not-an-optimizer", lambda S, o, a: S.StepLR(object(), 3), TypeError, "not an Optimizer", True),
    ("resume-without-initial_lr", lambda S, o, a: S.StepLR(o(), 3, last_epoch=5), KeyError, "initial_lr", True),
    ("StepLR-step_size-0", lambda S, o, a: S.StepLR(o(), step_size=0), ValueError, "step_size", False),
    ("CosineAnnealingLR-T_max-0", lambda S, o, a: S.CosineAnnealingLR(o(), T_max=0), ValueError, "T_max", False),
    ("LambdaLR-count", lambda S, o, a: S.LambdaLR(o(), [lambda e: 1.0] * 2), ValueError, "lr_lambdas", True),
    ("LambdaLR-not-callable", lambda S, o, a: S.LambdaLR(o(), 0.5), TypeError, "lr_lambda", True),
    ("MultiplicativeLR-not-callable", lambda S, o, a: S.MultiplicativeLR(o(), 0.5), TypeError, "lr_lambda", True),
    ("ConstantLR-factor", lambda S, o, a: S.ConstantLR(o(), factor=1.5), ValueError, "factor", True),
    ("LinearLR-start_factor", lambda S, o, a: S.LinearLR(o(), start_factor=0), ValueError, "start", True),
    ("LinearLR-end_factor", lambda S, o, a: S.LinearLR(o(), end_factor=2.0), ValueError, "Ending", True),
    ("OneCycleLR-no-length", lambda S, o, a: S.OneCycleLR(o(), max_lr=1.0), ValueError, "total_steps", True),
    ("OneCycleLR-total_steps-0", lambda S, o, a: S.OneCycleLR(o(), 1.0, total_steps=0), ValueError, "total_steps",
     True),
    ("OneCycleLR-total_steps-float", lambda S, o, a: S.OneCycleLR(o(), 1.0, total_steps=2.5), ValueError, "total_steps",
     True),
    ("OneCycleLR-steps_per_epoch", lambda S, o, a: S.OneCycleLR(o(), 1.0, epochs=3, steps_per_epoch=0), ValueError,
     "steps_per_epoch", True),
    ("OneCycleLR-epochs", lambda S, o, a: S.OneCycleLR(o(), 1.0, epochs=-1, steps_per_epoch=3), ValueError, "epochs",
     True),
    ("OneCycleLR-pct_start", lambda S, o, a: S.OneCycleLR(o(), 1.0, 10, pct_start=1.5), ValueError, "pct_start", True),
    ("OneCycleLR-pct_start-int", lambda S, o, a: S.OneCycleLR(o(), 1.0, 10, pct_start=1), ValueError, "pct_start",
     True),
    ("OneCycleLR-anneal", lambda S, o, a: S.OneCycleLR(o(), 1.0, 10, anneal_strategy="exp"), ValueError,
     "anneal_strategy", True),
    ("OneCycleLR-max_lr-count", lambda S, o, a: S.OneCycleLR(o(), [1.0, 2.0], 10), ValueError, "max_lr", True),
    ("OneCycleLR-no-momentum", lambda S, o, a: S.OneCycleLR(a(), 1.0, 10), ValueError, "momentum or beta1", True),
    ("CyclicLR-mode", lambda S, o, a: S.CyclicLR(o(), 0.01, 0.1, mode="sine"), ValueError, "mode", True),
    ("CyclicLR-step_size_up-0", lambda S, o, a: S.CyclicLR(o(), 0.01, 0.1, step_size_up=0), ValueError, "step_size_up",
     True),
    ("CyclicLR-base_lr-count", lambda S, o, a: S.CyclicLR(o(), [0.01, 0.02], 0.1), ValueError, "base_lr", True),
    ("CyclicLR-no-momentum", lambda S, o, a: S.CyclicLR(a(), 0.01, 0.1), ValueError, "momentum or beta1", True),
    ("CosineAnnealingWarmRestarts-T_0", lambda S, o, a: S.CosineAnnealingWarmRestarts(o(), T_0=0), ValueError, "T_0",
     True),
    ("CosineAnnealingWarmRestarts-T_0-float", lambda S, o, a: S.CosineAnnealingWarmRestarts(o(), T_0=2.5), ValueError,
     "T_0", True),
    ("CosineAnnealingWarmRestarts-T_mult", lambda S, o, a: S.CosineAnnealingWarmRestarts(o(), 3, T_mult=0), ValueError,
     "T_mult", True),
    ("CosineAnnealingWarmRestarts-eta_min", lambda S, o, a: S.CosineAnnealingWarmRestarts(o(), 3, eta_min="0"),
     ValueError, "eta_min", True),
    ("ReduceLROnPlateau-mode", lambda S, o, a: S.ReduceLROnPlateau(o(), mode="avg"), ValueError, "mode", True),
    ("ReduceLROnPlateau-threshold_mode", lambda S, o, a: S.ReduceLROnPlateau(o(), threshold_mode="pct"), ValueError,
     "threshold mode", True),
    ("ReduceLROnPlateau-factor", lambda S, o, a: S.ReduceLROnPlateau(o(), factor=1.0), ValueError, "Factor", True),
    ("ReduceLROnPlateau-min_lr-count", lambda S, o, a: S.ReduceLROnPlateau(o(), min_lr=[0.1, 0.2]), ValueError,
     "min_lr", True),
    ("SequentialLR-empty", lambda S, o, a: S.SequentialLR(o(), [], []), ValueError, "at least one", True),
    ("SequentialLR-milestones", lambda S, o, a: (lambda opt: S.SequentialLR(opt, [S.StepLR(opt, 2)], [3]))(o()),
     ValueError, "milestone", True),
    ("SequentialLR-plateau", lambda S, o, a: (lambda opt: S.SequentialLR(opt, [S.ReduceLROnPlateau(opt)], []))(o()),
     ValueError, "ReduceLROnPlateau", True),
    ("SequentialLR-other-optimizer", lambda S, o, a: S.SequentialLR(o(), [S.StepLR(o(), 2)], []), ValueError,
     "same optimizer", True),
    ("ChainedScheduler-empty", lambda S, o, a: S.ChainedScheduler([]), ValueError, "at least one", True),
    ("ChainedScheduler-other-optimizer", lambda S, o, a: S.ChainedScheduler([S.StepLR(o(), 2), S.StepLR(o(), 2)]),
     ValueError, "same optimizer", True),
    ("SWALR-anneal_strategy", lambda S, o, a: S.SWALR(o(), 0.05, anneal_strategy="exp"), ValueError, "anneal_strategy",
     True),
    ("SWALR-anneal_epochs", lambda S, o, a: S.SWALR(o(), 0.05, anneal_epochs=-1), ValueError, "anneal_epochs", True),
    ("SWALR-anneal_epochs-float", lambda S, o, a: S.SWALR(o(), 0.05, anneal_epochs=2.5), ValueError, "anneal_epochs",
     True),
    ("SWALR-swa_lr-count", lambda S, o, a: S.SWALR(o(), [0.1, 0.2]), ValueError, "swa_lr", True),
]


@pytest.mark.parametrize(("make", "error", "match"), [b[1:4] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_arguments_raise(make: Callable[..., Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make(S, _sgd, _adagrad)


@pytest.mark.parametrize("make", [b[1] for b in BAD if b[4]], ids=[b[0] for b in BAD if b[4]])
def test_torch_raises_too(make: Callable[..., Any], torch: Any) -> None:
    """Where torch also rejects the arguments at construction (the others it rejects at a step)."""
    def sgd() -> Any:
        return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)

    def adagrad() -> Any:
        return torch.optim.Adagrad([torch.zeros(1, requires_grad=True)], lr=0.1)

    with pytest.raises((ValueError, TypeError, KeyError, ZeroDivisionError)):
        make(_namespace(torch), sgd, adagrad)


def test_one_cycle_raises_past_total_steps() -> None:
    opt = _sgd()
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=5)
    for _ in range(5):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 6 times. The specified number of total steps is 5"):
        sched.step()


def test_warm_restarts_rejects_negative_epoch() -> None:
    sched = lr_scheduler.CosineAnnealingWarmRestarts(_sgd(), T_0=3)
    with pytest.raises(ValueError, match="non-negative epoch"):
        sched.step(-1)


def test_plateau_min_lr_list_and_new_group() -> None:
    """torch's rule: a new param group is fine with a scalar min_lr, an error with a list."""
    opt = optrs.optim.SGD([np.zeros(1)], lr=1.0)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=0, min_lr=[0.1])
    opt.add_param_group({"params": [np.zeros(1)]})
    sched.step(1.0)
    with pytest.raises(RuntimeError, match="min_lrs"):
        sched.step(2.0)
