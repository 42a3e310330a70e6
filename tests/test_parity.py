"""optrs replays torch 2.13's trajectories (tests/reference/) within torch's own tolerances."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import optrs
from reference import TOLERANCE, Trajectory, load_trajectory, optimizer_files

# Every file whose optimizer optrs has; files of optimizers still to come are picked up as they land.
CASES = [load_trajectory(p) for p in optimizer_files()]
IMPLEMENTED = [t for t in CASES if hasattr(optrs.optim, t.optimizer) and t.grads]  # LBFGS: test_lbfgs.py
REQUIRED = {"SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW"}


def test_every_required_optimizer_has_reference_files() -> None:
    assert REQUIRED <= {t.optimizer for t in IMPLEMENTED}


def make(trajectory: Trajectory) -> tuple[optrs.optim.Optimizer, list[np.ndarray]]:
    params = [p.copy() for p in trajectory.initial]
    cls = getattr(optrs.optim, trajectory.optimizer)
    return cls(params, **trajectory.replay_kwargs()), params


def assert_matches(trajectory: Trajectory, params: list[np.ndarray], t: int) -> None:
    for i, (got, want) in enumerate(zip(params, trajectory.params[t])):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, **TOLERANCE[trajectory.dtype],
                                   err_msg=f"{trajectory.name}: param {i} after step {t + 1}")


@pytest.mark.parametrize("trajectory", IMPLEMENTED, ids=lambda t: t.name)
def test_replays_torch(trajectory: Trajectory) -> None:
    opt, params = make(trajectory)
    for t in range(trajectory.steps):
        opt.step(trajectory.grads[t])
        assert_matches(trajectory, params, t)


@pytest.mark.parametrize("trajectory", IMPLEMENTED, ids=lambda t: t.name)
def test_replays_through_parameter_grads(trajectory: Trajectory) -> None:
    """The same trajectory with optrs.Parameter objects and .grad instead of explicit grads."""
    params = [optrs.Parameter(p.copy()) for p in trajectory.initial]
    opt = getattr(optrs.optim, trajectory.optimizer)(params, **trajectory.replay_kwargs())
    for t in range(trajectory.steps):
        for p, g in zip(params, trajectory.grads[t]):
            p.grad = g
        opt.step()
        opt.zero_grad()
    assert_matches(trajectory, [p.data for p in params], trajectory.steps - 1)


@pytest.mark.parametrize("trajectory", IMPLEMENTED, ids=lambda t: t.name)
@pytest.mark.parametrize("via", ["dict", "pickle", "savez"])
def test_state_dict_resumes_identically(trajectory: Trajectory, via: str, tmp_path) -> None:
    """Save mid-trajectory, load into a fresh optimizer over copies of the params, continue: the
    rest of the trajectory is bit-identical to the uninterrupted run."""
    half = trajectory.steps // 2
    opt, params = make(trajectory)
    for t in range(half):
        opt.step(trajectory.grads[t])
    saved = opt.state_dict()
    if via == "pickle":
        saved = pickle.loads(pickle.dumps(saved))
    elif via == "savez":
        np.savez(tmp_path / "opt.npz", state=np.array(saved, dtype=object))
        saved = np.load(tmp_path / "opt.npz", allow_pickle=True)["state"].item()
    resumed_params = [p.copy() for p in params]
    cls = getattr(optrs.optim, trajectory.optimizer)
    resumed = cls(resumed_params, lr=123.0)  # options come from the state_dict
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for t in range(half, trajectory.steps):
        opt.step(trajectory.grads[t])
        resumed.step(trajectory.grads[t])
    for a, b in zip(params, resumed_params):
        np.testing.assert_array_equal(a, b)
    assert_matches(trajectory, resumed_params, trajectory.steps - 1)


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_count_does_not_change_results(threads: int) -> None:
    """Big enough to take the chunked multi-threaded path; compared bit for bit with 1 thread."""
    rng = np.random.default_rng(0)
    shapes = [(300_000,), (70_001,), (3, 5), (40_000,)]
    initial = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]

    def run(n: int) -> list[np.ndarray]:
        before = optrs.get_num_threads()
        optrs.set_num_threads(n)
        try:
            params = [p.copy() for p in initial]
            opt = optrs.optim.Adam(params, lr=0.01, amsgrad=True, weight_decay=0.1)
            for g in grads:
                opt.step(g)
            return params
        finally:
            optrs.set_num_threads(before)

    for a, b in zip(run(1), run(threads)):
        np.testing.assert_array_equal(a, b)
