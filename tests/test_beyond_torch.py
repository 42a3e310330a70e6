"""Optimizers torch lacks: each against a direct NumPy transcription of its paper's algorithm,
and a convergence test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import optrs

Rule = Callable[[list[np.ndarray], list[np.ndarray], dict[str, Any], int], None]


def lion_paper(params: list[np.ndarray], grads: list[np.ndarray], state: dict[str, Any], t: int,
               lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0) -> None:
    """Chen et al. 2023, Algorithm 2 (Lion with decoupled weight decay)."""
    b1, b2 = betas
    ms = state.setdefault("m", [np.zeros_like(p) for p in params])
    for p, g, m in zip(params, grads, ms):
        c = b1 * m + (1 - b1) * g
        p[...] = p - lr * (np.sign(c) + weight_decay * p)
        m[...] = b2 * m + (1 - b2) * g


def adopt_paper(params: list[np.ndarray], grads: list[np.ndarray], state: dict[str, Any], t: int,
                lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.9999), eps: float = 1e-6,
                weight_decay: float = 0.0, decouple: bool = False, clip: bool = True) -> None:
    """Taniguchi et al. 2024, Algorithm 2 (ADOPT with clipping c_t = t^(1/4)); t = 0 initialises
    v_0 = g_0^2. Weight decay as in the authors' implementation."""
    b1, b2 = betas
    ms = state.setdefault("m", [np.zeros_like(p) for p in params])
    vs = state.setdefault("v", [np.zeros_like(p) for p in params])
    for p, g, m, v in zip(params, grads, ms, vs):
        if weight_decay:
            if decouple:
                p *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p
        if t == 0:
            v[...] = g * g
            continue
        n = g / np.maximum(np.sqrt(v), eps)
        if clip:
            n = np.clip(n, -(t ** 0.25), t ** 0.25)
        m[...] = b1 * m + (1 - b1) * n
        p -= lr * m
        v[...] = b2 * v + (1 - b2) * g * g


CASES: list[tuple[type[optrs.optim.Optimizer], Rule, dict[str, Any]]] = [
    (optrs.optim.Lion, lion_paper, {}),
    (optrs.optim.Lion, lion_paper, dict(lr=3e-3, betas=(0.5, 0.9), weight_decay=0.3)),
    (optrs.optim.ADOPT, adopt_paper, {}),
    (optrs.optim.ADOPT, adopt_paper, dict(lr=1e-2, betas=(0.5, 0.99), weight_decay=0.1)),
    (optrs.optim.ADOPT, adopt_paper, dict(lr=1e-2, weight_decay=0.1, decouple=True, clip=False)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls, paper, options", CASES, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_matches_the_paper(cls: type[optrs.optim.Optimizer], paper: Rule, options: dict[str, Any],
                           dtype: type) -> None:
    rng = np.random.default_rng(3)
    shapes = [(6, 4), (9,), (50_000,)]
    ours = [rng.standard_normal(s).astype(dtype) for s in shapes]
    reference = [p.astype(np.float64) for p in ours]
    opt = cls(ours, **options)
    state: dict[str, Any] = {}
    for t in range(12):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        opt.step(grads)
        paper(reference, [g.astype(np.float64) for g in grads], state, t, **options)
    tolerance = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for got, want in zip(ours, reference):
        np.testing.assert_allclose(got, want, **tolerance)


def logistic_loss_and_grad(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    z = x @ w
    loss = float(np.mean(np.logaddexp(0, z) - y * z))
    return loss, x.T @ (1 / (1 + np.exp(-z)) - y) / len(y)


@pytest.mark.parametrize("cls, options, target", [
    (optrs.optim.Lion, dict(lr=3e-3), 0.30),
    (optrs.optim.ADOPT, dict(lr=3e-2), 0.30),
])
def test_converges_on_logistic_regression(cls: type[optrs.optim.Optimizer], options: dict[str, Any],
                                          target: float) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 10))
    y = (x @ rng.standard_normal(10) + 0.3 * rng.standard_normal(500) > 0).astype(np.float64)
    w = np.zeros(10)
    opt = cls([w], **options)
    first, _ = logistic_loss_and_grad(w, x, y)
    for _ in range(500):
        loss, grad = logistic_loss_and_grad(w, x, y)
        opt.step([grad])
    assert first > 0.69 and loss < target, f"{cls.__name__}: loss {first:.3f} -> {loss:.3f}"


@pytest.mark.parametrize("cls, lr, steps", [(optrs.optim.Lion, 1e-3, 5000), (optrs.optim.ADOPT, 3e-2, 20000)])
def test_converges_on_rosenbrock(cls: type[optrs.optim.Optimizer], lr: float, steps: int) -> None:
    xy = np.array([-1.5, 2.0])
    opt = cls([xy], lr=lr)
    for _ in range(steps):
        x, y = xy
        opt.step([np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])])
    assert np.linalg.norm(xy - 1) < 0.01, xy
