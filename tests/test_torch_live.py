"""Parity with the installed torch on option combinations the reference files do not cover.

Runs only where torch is importable (CI's required path has no torch); the reference files in
tests/reference/ are the always-on check."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import optrs

torch = pytest.importorskip("torch")

CASES: list[tuple[str, dict[str, Any]]] = [
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.9), amsgrad=True, maximize=True, weight_decay=0.05)),
    ("AdamW", dict(lr=0.01, betas=(0.6, 0.95), amsgrad=False, weight_decay=0.2)),
    ("Adam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.1, weight_decay=0.1, maximize=True, eps=1e-6)),
    ("Adadelta", dict(lr=0.5, rho=0.5, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.5, centered=True, momentum=0.9, maximize=True)),
    ("RMSprop", dict(lr=0.01, centered=True, weight_decay=0.1)),
    ("Adamax", dict(lr=0.05, betas=(0.5, 0.9), weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=0.05, betas=(0.8, 0.9), momentum_decay=0.01, weight_decay=0.1)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.05, betas=(0.5, 0.6), weight_decay=0.1)),
    ("RAdam", dict(lr=0.05, betas=(0.9, 0.9), weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2), maximize=True)),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=3, weight_decay=0.1, maximize=True)),
    ("ASGD", dict(lr=0.05, t0=0)),
    ("Adafactor", dict(lr=0.05, weight_decay=0.1, maximize=True)),
    ("Adafactor", dict(eps=(1e-4, 1e-2), d=2.0, beta2_decay=-0.5)),
]
TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-12), np.float32: dict(rtol=2e-5, atol=1e-6)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name, options", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_installed_torch(name: str, options: dict[str, Any], dtype: type) -> None:
    rng = np.random.default_rng(len(name))
    shapes = [(7, 5), (11,), (2, 3, 4)]
    initial = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = [p.copy() for p in initial]
    theirs = [torch.nn.Parameter(torch.tensor(p.copy())) for p in initial]
    opt = getattr(optrs.optim, name)(ours, **options)
    ref = getattr(torch.optim, name)(theirs, foreach=False, **options)
    for step in range(30):
        # Every third step one param gets no grad: it must keep its own step count.
        grads = [None if (step % 3 == 2 and i == 1) else rng.standard_normal(s).astype(dtype) * (0.1 + step % 4)
                 for i, s in enumerate(shapes)]
        for p, g in zip(theirs, grads):
            p.grad = None if g is None else torch.tensor(g)
        ref.step()
        opt.step(grads)
    for ours_p, theirs_p in zip(ours, theirs):
        np.testing.assert_allclose(ours_p, theirs_p.detach().numpy(), **TOLERANCE[dtype])
