"""Optimizers torch lacks: each against a direct NumPy transcription of its paper's algorithm,
a convergence test, and bit-identical results on any thread count and SIMD level and after a
state_dict round trip."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import optrs
from optrs.optim import LAMB, ScheduleFreeAdamW
from simd_levels import SIMD_LEVELS

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


def lamb_paper(params: list[np.ndarray], grads: list[np.ndarray], state: dict[str, Any], t: int,
               lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
               weight_decay: float = 0.01) -> None:
    """You et al. 2019, Algorithm 2 (LAMB) with phi the identity; the trust ratio is 1 when either
    norm is 0, as in the authors' implementation. t = 0 is the first step."""
    b1, b2 = betas
    ms = state.setdefault("m", [np.zeros_like(p) for p in params])
    vs = state.setdefault("v", [np.zeros_like(p) for p in params])
    for x, g, m, v in zip(params, grads, ms, vs):
        m[...] = b1 * m + (1 - b1) * g
        v[...] = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** (t + 1))
        v_hat = v / (1 - b2 ** (t + 1))
        u = m_hat / (np.sqrt(v_hat) + eps) + weight_decay * x
        x_norm, u_norm = np.linalg.norm(x), np.linalg.norm(u)
        x -= lr * (x_norm / u_norm if x_norm > 0 and u_norm > 0 else 1.0) * u


def schedule_free_paper(params: list[np.ndarray], grads: list[np.ndarray], state: dict[str, Any], t: int,
                        lr: float = 0.0025, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                        weight_decay: float = 0.0, warmup_steps: int = 0, r: float = 0.0,
                        weight_lr_power: float = 2.0) -> None:
    """Defazio et al. 2024, Algorithm 1 (Schedule-Free AdamW) in its x, y, z form, with the choices
    of the authors' implementation: v bias-corrected inside the root, warmup min(1, t/T), and
    averaging weights t^r * max_lr^weight_lr_power. ``params`` are y (train mode); state["x"] is
    the average, where eval() must put the params."""
    b1, b2 = betas
    xs = state.setdefault("x", [p.copy() for p in params])
    zs = state.setdefault("z", [p.copy() for p in params])
    vs = state.setdefault("v", [np.zeros_like(p) for p in params])
    lr_t = lr * min(1.0, (t + 1) / warmup_steps) if warmup_steps else lr
    state["lr_max"] = max(state.get("lr_max", -1.0), lr_t)
    weight = (t + 1) ** r * state["lr_max"] ** weight_lr_power
    state["weight_sum"] = state.get("weight_sum", 0.0) + weight
    c = weight / state["weight_sum"] if state["weight_sum"] else 0.0
    for y, g, x, z, v in zip(params, grads, xs, zs, vs):
        v[...] = b2 * v + (1 - b2) * g * g
        z -= lr_t * (g / (np.sqrt(v / (1 - b2 ** (t + 1))) + eps) + weight_decay * y)
        x[...] = (1 - c) * x + c * z
        y[...] = (1 - b1) * z + b1 * x


def training(cls: type[optrs.optim.Optimizer], params: Any, **options: Any) -> optrs.optim.Optimizer:
    """An optimizer ready to step: ScheduleFreeAdamW starts in eval mode, like its reference."""
    opt = cls(params, **options)
    if isinstance(opt, ScheduleFreeAdamW):
        opt.train()
    return opt


CASES: list[tuple[type[optrs.optim.Optimizer], Rule, dict[str, Any]]] = [
    (optrs.optim.Lion, lion_paper, {}),
    (optrs.optim.Lion, lion_paper, dict(lr=3e-3, betas=(0.5, 0.9), weight_decay=0.3)),
    (optrs.optim.ADOPT, adopt_paper, {}),
    (optrs.optim.ADOPT, adopt_paper, dict(lr=1e-2, betas=(0.5, 0.99), weight_decay=0.1)),
    (optrs.optim.ADOPT, adopt_paper, dict(lr=1e-2, weight_decay=0.1, decouple=True, clip=False)),
    (LAMB, lamb_paper, {}),
    (LAMB, lamb_paper, dict(lr=1e-2, betas=(0.5, 0.99), eps=1e-3, weight_decay=0.0)),
    (LAMB, lamb_paper, dict(lr=3e-2, weight_decay=0.3)),
    (ScheduleFreeAdamW, schedule_free_paper, {}),
    (ScheduleFreeAdamW, schedule_free_paper, dict(lr=1e-2, betas=(0.5, 0.99), weight_decay=0.1, warmup_steps=5,
                                                  r=0.5, weight_lr_power=1.0)),
    (ScheduleFreeAdamW, schedule_free_paper, dict(lr=1e-2, eps=1e-3, warmup_steps=40, weight_lr_power=0.0)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls, paper, options", CASES, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_matches_the_paper(cls: type[optrs.optim.Optimizer], paper: Rule, options: dict[str, Any],
                           dtype: type) -> None:
    rng = np.random.default_rng(3)
    shapes = [(6, 4), (9,), (50_000,)]
    ours = [rng.standard_normal(s).astype(dtype) for s in shapes]
    reference = [p.astype(np.float64) for p in ours]
    opt = training(cls, ours, **options)
    state: dict[str, Any] = {}
    for t in range(12):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        opt.step(grads)
        paper(reference, [g.astype(np.float64) for g in grads], state, t, **options)
    tolerance = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for got, want in zip(ours, reference):
        np.testing.assert_allclose(got, want, **tolerance)
    if isinstance(opt, ScheduleFreeAdamW):  # the eval point is the paper's average x
        opt.eval()
        for got, want in zip(ours, state["x"]):
            np.testing.assert_allclose(got, want, **tolerance)


def logistic_loss_and_grad(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    z = x @ w
    loss = float(np.mean(np.logaddexp(0, z) - y * z))
    return loss, x.T @ (1 / (1 + np.exp(-z)) - y) / len(y)


def evaluated(opt: optrs.optim.Optimizer) -> None:
    """Puts the params where the model is evaluated: ScheduleFreeAdamW's average x."""
    if isinstance(opt, ScheduleFreeAdamW):
        opt.eval()


@pytest.mark.parametrize("cls, options, target", [
    (optrs.optim.Lion, dict(lr=3e-3), 0.30),
    (optrs.optim.ADOPT, dict(lr=3e-2), 0.30),
    (LAMB, dict(lr=3e-2, weight_decay=0.0), 0.30),
    (ScheduleFreeAdamW, dict(lr=3e-2), 0.30),
])
def test_converges_on_logistic_regression(cls: type[optrs.optim.Optimizer], options: dict[str, Any],
                                          target: float) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 10))
    y = (x @ rng.standard_normal(10) + 0.3 * rng.standard_normal(500) > 0).astype(np.float64)
    w = np.zeros(10)
    opt = training(cls, [w], **options)
    first, _ = logistic_loss_and_grad(w, x, y)
    for _ in range(500):
        _, grad = logistic_loss_and_grad(w, x, y)
        opt.step([grad])
    evaluated(opt)
    loss, _ = logistic_loss_and_grad(w, x, y)
    assert first > 0.69 and loss < target, f"{cls.__name__}: loss {first:.3f} -> {loss:.3f}"


@pytest.mark.parametrize("cls, options, steps", [
    (optrs.optim.Lion, dict(lr=1e-3), 5000),
    (optrs.optim.ADOPT, dict(lr=3e-2), 20000),
    (LAMB, dict(lr=2e-3, weight_decay=0.0), 20000),
    (ScheduleFreeAdamW, dict(lr=1e-2), 20000),
])
def test_converges_on_rosenbrock(cls: type[optrs.optim.Optimizer], options: dict[str, Any], steps: int) -> None:
    xy = np.array([-1.5, 2.0])
    opt = training(cls, [xy], **options)
    for _ in range(steps):
        x, y = xy
        opt.step([np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])])
    evaluated(opt)
    assert np.linalg.norm(xy - 1) < 0.01, xy


# -- LAMB's trust ratio -------------------------------------------------------------------------


def test_lamb_trust_ratio_is_one_when_a_norm_is_zero() -> None:
    """A zero param (||x|| = 0) takes the plain step -lr * u; a zero direction leaves its param."""
    zero, other = np.zeros(5), np.arange(1.0, 4.0)
    g = np.array([3.0, -4.0, 0.5, 1.0, -2.0])
    LAMB([zero, other], lr=0.1, weight_decay=0.0).step([g, np.zeros(3)])
    # First step: m_hat = g, v_hat = g * g, so u = g / (|g| + eps).
    np.testing.assert_allclose(zero, -0.1 * g / (np.abs(g) + 1e-6), rtol=1e-15)
    np.testing.assert_array_equal(other, np.arange(1.0, 4.0))


def test_lamb_step_length_is_lr_times_the_param_norm() -> None:
    """Whatever the gradient's scale, each tensor moves by lr * ||x|| (the trust ratio's point)."""
    rng = np.random.default_rng(4)
    for scale in (1e-6, 1.0, 1e6):
        x = rng.standard_normal((40, 30))
        before = x.copy()
        LAMB([x], lr=0.01).step([scale * rng.standard_normal(x.shape)])
        np.testing.assert_allclose(np.linalg.norm(x - before), 0.01 * np.linalg.norm(before), rtol=1e-12)


def test_lamb_maximize_is_minimizing_the_negated_gradient() -> None:
    rng = np.random.default_rng(5)
    a = rng.standard_normal(100)
    b = a.copy()
    up, down = LAMB([a], lr=0.1, maximize=True), LAMB([b], lr=0.1)
    for _ in range(3):
        g = rng.standard_normal(100)
        up.step([g])
        down.step([-g])
    assert a.tobytes() == b.tobytes()


# -- the same bits on any thread count or SIMD level, and after a state_dict round trip ---------

BIG_CASES = [
    (LAMB, dict(lr=1e-2, weight_decay=0.1)),
    (LAMB, dict(lr=1e-2, weight_decay=0.0, maximize=True)),
    (ScheduleFreeAdamW, dict(lr=1e-2, weight_decay=0.1, warmup_steps=2)),
]


def big_run(cls: type[optrs.optim.Optimizer], options: dict[str, Any]) -> list[np.ndarray]:
    """Three steps over tensors big enough for the pool (and, for LAMB, many norm blocks), float32
    and float64 mixed, with a skipped param; the params and every state array after them."""
    rng = np.random.default_rng(6)
    shapes = [(700, 600), (5,), (300_001,), (0,), (257, 3)]
    params = [rng.standard_normal(s).astype(np.float32 if i % 2 else np.float64) for i, s in enumerate(shapes)]
    opt = training(cls, params, **options)
    for step in range(3):
        opt.step([None if (step == 1 and i == 2) else rng.standard_normal(p.shape).astype(p.dtype)
                  for i, p in enumerate(params)])
    evaluated(opt)
    return params + [np.asarray(v) for p in params for v in opt.state[p].values()]


def assert_same_bits(a: list[np.ndarray], b: list[np.ndarray], what: str) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), f"{what}: array {i}"


@pytest.mark.parametrize("cls, options", BIG_CASES, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(BIG_CASES)])
def test_thread_count_does_not_change_a_bit(cls: type[optrs.optim.Optimizer], options: dict[str, Any]) -> None:
    original = optrs.get_num_threads()
    try:
        optrs.set_num_threads(1)
        one = big_run(cls, options)
        for threads in (2, 3):
            optrs.set_num_threads(threads)
            assert_same_bits(one, big_run(cls, options), f"{threads} threads")
    finally:
        optrs.set_num_threads(original)


@pytest.mark.parametrize("cls, options", BIG_CASES, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(BIG_CASES)])
def test_simd_level_does_not_change_a_bit(cls: type[optrs.optim.Optimizer], options: dict[str, Any]) -> None:
    detected = big_run(cls, options)
    try:
        for level in SIMD_LEVELS:
            optrs._core.force_simd_level(level)
            assert_same_bits(detected, big_run(cls, options), level)
    finally:
        optrs._core.force_simd_level(None)


RESUME_CASES = [
    (LAMB, dict(lr=1e-2, weight_decay=0.1)),
    (ScheduleFreeAdamW, dict(lr=1e-2, weight_decay=0.1, warmup_steps=3, r=0.5)),
]


@pytest.mark.parametrize("cls, options", RESUME_CASES, ids=[c.__name__ for c, _ in RESUME_CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_resumes_bit_identically(cls: type[optrs.optim.Optimizer], options: dict[str, Any],
                                            dtype: Any) -> None:
    """Saved mid-run (through pickle) and loaded into a fresh optimizer with other options, the run
    goes on bit for bit; ScheduleFreeAdamW is saved in eval mode, as its authors advise, and the
    loaded optimizer carries that mode and the group's schedule."""
    rng = np.random.default_rng(8)
    shapes = [(6, 10), (40_000,), (3,)]
    initial = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(8)]
    params = [p.copy() for p in initial]
    opt = training(cls, params, **options)
    for g in grads[:4]:
        opt.step(g)
    evaluated(opt)
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    resumed_params = [p.copy() for p in params]
    resumed = cls(resumed_params, lr=5.0)
    resumed.load_state_dict(saved)
    assert resumed.param_groups[0]["lr"] == options["lr"]
    if isinstance(opt, ScheduleFreeAdamW):
        assert isinstance(resumed, ScheduleFreeAdamW)
        group = resumed.param_groups[0]
        assert group["train_mode"] is False and group["k"] == 4
        assert all(group[key] == opt.param_groups[0][key] for key in ("weight_sum", "lr_max", "scheduled_lr"))
        opt.train()
        resumed.train()
    for g in grads[4:]:
        opt.step(g)
        resumed.step(g)
    evaluated(opt)
    evaluated(resumed)
    assert_same_bits(params, resumed_params, "params")
    assert_same_bits([np.asarray(v) for p in params for v in opt.state[p].values()],
                     [np.asarray(v) for p in resumed_params for v in resumed.state[p].values()], "state")
