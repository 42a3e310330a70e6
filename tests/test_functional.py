"""optrs.functional computes what the optimizer classes compute (and so what torch computes)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import optrs
from optrs import functional as F
from reference import TOLERANCE, Trajectory, load_trajectory, optimizer_files

Stepper = Callable[[list[np.ndarray], list[np.ndarray]], None]


def sgd(kw: dict[str, Any], params: list[np.ndarray]) -> Stepper:
    buffers: list[np.ndarray | None] = [None] * len(params)
    options = dict(lr=0.001, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False) | kw
    return lambda p, g: F.sgd(p, g, buffers, **options)


def adam(kw: dict[str, Any], params: list[np.ndarray], decoupled: bool = False) -> Stepper:
    m, v, vmax = ([np.zeros_like(p) for p in params] for _ in range(3))
    steps = [np.zeros(1) for _ in params]
    beta1, beta2 = kw.pop("betas", (0.9, 0.999))
    options = dict(lr=1e-3, eps=1e-8, weight_decay=1e-2 if decoupled else 0.0, amsgrad=False, maximize=False) | kw
    fn = F.adamw if decoupled else F.adam
    return lambda p, g: fn(p, g, m, v, vmax, steps, beta1=beta1, beta2=beta2, **options)


def adagrad(kw: dict[str, Any], params: list[np.ndarray]) -> Stepper:
    initial = kw.pop("initial_accumulator_value", 0.0)
    sums = [np.full_like(p, initial) for p in params]
    steps = [np.zeros(1) for _ in params]
    options = dict(lr=0.01, lr_decay=0.0, weight_decay=0.0, eps=1e-10) | kw
    return lambda p, g: F.adagrad(p, g, sums, steps, **options)


def adadelta(kw: dict[str, Any], params: list[np.ndarray]) -> Stepper:
    square, acc = ([np.zeros_like(p) for p in params] for _ in range(2))
    steps = [np.zeros(1) for _ in params]
    options = dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0) | kw
    return lambda p, g: F.adadelta(p, g, square, acc, steps, **options)


def rmsprop(kw: dict[str, Any], params: list[np.ndarray]) -> Stepper:
    square, grad_avg, buffers = ([np.zeros_like(p) for p in params] for _ in range(3))
    steps = [np.zeros(1) for _ in params]
    options = dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False) | kw
    return lambda p, g: F.rmsprop(p, g, square, grad_avg, buffers, steps, **options)


def adamax(kw: dict[str, Any], params: list[np.ndarray]) -> Stepper:
    m, u = ([np.zeros_like(p) for p in params] for _ in range(2))
    steps = [np.zeros(1) for _ in params]
    beta1, beta2 = kw.pop("betas", (0.9, 0.999))
    options = dict(lr=2e-3, eps=1e-8, weight_decay=0.0) | kw
    return lambda p, g: F.adamax(p, g, m, u, steps, beta1=beta1, beta2=beta2, **options)


def radam(kw: dict[str, Any], params: list[np.ndarray]) -> Stepper:
    m, v = ([np.zeros_like(p) for p in params] for _ in range(2))
    steps = [np.zeros(1) for _ in params]
    beta1, beta2 = kw.pop("betas", (0.9, 0.999))
    options = dict(lr=1e-3, eps=1e-8, weight_decay=0.0) | kw
    return lambda p, g: F.radam(p, g, m, v, steps, beta1=beta1, beta2=beta2, **options)


def nadam(kw: dict[str, Any], params: list[np.ndarray]) -> Stepper:
    m, v = ([np.zeros_like(p) for p in params] for _ in range(2))
    mu_products = [np.ones(1) for _ in params]
    steps = [np.zeros(1) for _ in params]
    beta1, beta2 = kw.pop("betas", (0.9, 0.999))
    options = dict(lr=2e-3, eps=1e-8, weight_decay=0.0, momentum_decay=4e-3) | kw
    return lambda p, g: F.nadam(p, g, m, v, mu_products, steps, beta1=beta1, beta2=beta2, **options)


def rprop(kw: dict[str, Any], params: list[np.ndarray]) -> Stepper:
    lr = kw.pop("lr", 1e-2)
    etaminus, etaplus = kw.pop("etas", (0.5, 1.2))
    step_size_min, step_size_max = kw.pop("step_sizes", (1e-6, 50))
    prevs, sizes = [np.zeros_like(p) for p in params], [np.full_like(p, lr) for p in params]
    steps = [np.zeros(1) for _ in params]
    return lambda p, g: F.rprop(p, g, prevs, sizes, steps, step_size_min=step_size_min,
                                step_size_max=step_size_max, etaminus=etaminus, etaplus=etaplus, **kw)


def asgd(kw: dict[str, Any], params: list[np.ndarray]) -> Stepper:
    options = dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0) | kw
    axs = [np.zeros_like(p) for p in params]
    # torch keeps eta at float32 precision, from the start.
    mus, etas = [np.ones(1) for _ in params], [np.full(1, np.float32(options["lr"])) for _ in params]
    steps = [np.zeros(1) for _ in params]
    return lambda p, g: F.asgd(p, g, axs, mus, etas, steps, **options)


FUNCTIONS: dict[str, Callable[..., Stepper]] = {
    "SGD": sgd, "Adam": adam, "AdamW": lambda kw, p: adam(kw, p, decoupled=True),
    "Adagrad": adagrad, "Adadelta": adadelta, "RMSprop": rmsprop,
    "Adamax": adamax, "RAdam": radam, "NAdam": nadam, "Rprop": rprop, "ASGD": asgd,
}
CASES = [t for t in map(load_trajectory, optimizer_files()) if t.optimizer in FUNCTIONS]


@pytest.mark.parametrize("trajectory", CASES, ids=lambda t: t.name)
def test_functional_replays_torch(trajectory: Trajectory) -> None:
    params = [p.copy() for p in trajectory.initial]
    step = FUNCTIONS[trajectory.optimizer](trajectory.replay_kwargs(), params)
    for grads in trajectory.grads:
        step(params, grads)
    for got, want in zip(params, trajectory.params[-1]):
        np.testing.assert_allclose(got, want, **TOLERANCE[trajectory.dtype])


def test_sgd_fills_missing_momentum_buffers_like_torch() -> None:
    p, g = np.ones(3), np.full(3, 0.5)
    buffers: list[np.ndarray | None] = [None]
    F.sgd([p], [g], buffers, lr=0.1, momentum=0.9)
    assert buffers[0] is not None
    np.testing.assert_array_equal(buffers[0], g)


def test_thread_count_comes_from_the_environment() -> None:
    env = dict(os.environ, OPTRS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", "import optrs; print(optrs.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_set_num_threads_rejects_zero() -> None:
    with pytest.raises(ValueError, match="between 1 and"):
        optrs.set_num_threads(0)


def test_scalar_state_is_written_back_and_checked() -> None:
    p, g = np.ones(3), np.full(3, 0.5)
    mu, step = np.ones(1), np.zeros(1)
    F.nadam([p], [g], [np.zeros(3)], [np.zeros(3)], [mu], [step], beta1=0.9, beta2=0.999, lr=0.1,
            weight_decay=0.0, momentum_decay=4e-3, eps=1e-8)
    assert step[0] == 1 and 0 < mu[0] < 1
    with pytest.raises(optrs.InvalidParamError, match="one-element"):
        F.asgd([p], [g], [np.zeros(3)], [np.ones(2)], [np.ones(1)], [np.zeros(1)], lambd=1e-4, lr=0.1, t0=1e6,
               alpha=0.75, weight_decay=0.0)
