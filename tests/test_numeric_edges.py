"""Numerics at the edges, decided by torch 2.13's behaviour (issue 10, defects 10-12).

- Fused multiply-adds: torch's CPU kernels on FMA hardware (its AVX2 and AVX-512 builds) round
  ``add(x, alpha=a)``, ``addcmul`` and ``lerp`` once; optrs does the same with an exactly rounded
  ``mul_add`` on every SIMD level, so the levels still agree bit for bit.
- Hyperparameters beyond float32's range (which torch refuses at the step for float32 params) and
  ASGD options whose eta overflows (torch's OverflowError) are refused when set.
- NaN in a gradient: Lion's sign keeps it (torch's ``sign(nan)`` is 0, which froze the element);
  Rprop keeps torch's own behaviour (it skips the element, as torch does).

The torch values below were measured with torch 2.13.0 (CPU capability AVX512, ``foreach=False``)
and are hard-coded, so these tests need no torch; ``test_matches_installed_torch_bit_for_bit``
compares live where torch is importable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import optrs
from optrs import InvalidHyperparameterError
from simd_levels import SIMD_LEVELS

F32_MAX = float(np.finfo(np.float32).max)


@contextmanager
def running_with(level: str, threads: int) -> Iterator[None]:
    before = optrs.get_num_threads()
    optrs._core.force_simd_level(level)
    optrs.set_num_threads(threads)
    try:
        yield
    finally:
        optrs._core.force_simd_level(None)
        optrs.set_num_threads(before)


def on_every_path(run: Callable[[], list[np.ndarray]]) -> list[np.ndarray]:
    """Runs ``run`` on every SIMD level with 1 and 2 threads; asserts that all give the same bits
    and returns that result."""
    results = {}
    for level in SIMD_LEVELS:
        for threads in (1, 2):
            with running_with(level, threads), np.errstate(all="ignore"):
                results[(level, threads)] = run()
    first_key, first = next(iter(results.items()))
    for key, arrays in results.items():
        for a, b in zip(first, arrays):
            assert a.tobytes() == b.tobytes(), f"{key} differs from {first_key}"
    return first


def big(values: list[float], dtype: Any = np.float32, n: int = 300_001) -> np.ndarray:
    """``values`` repeated over ``n`` elements: big enough for the threaded, chunked path and for
    every vector width's main loop and tail."""
    return np.resize(np.asarray(values, dtype), n)


def stepped(cls: type, options: dict[str, Any], params: list[np.ndarray],
            grads: list[list[np.ndarray]]) -> Callable[[], list[np.ndarray]]:
    def run() -> list[np.ndarray]:
        ours = [p.copy() for p in params]
        opt = cls(ours, **options)
        for g in grads:
            opt.step([x.copy() for x in g])
        state = [np.asarray(v) for s in opt.state_dict()["state"].values() for _, v in sorted(s.items())]
        return ours + state
    return run


# -- defect 10: fused multiply-adds ---------------------------------------------------------------


def test_centered_rmsprop_keeps_params_under_a_float32_max_grad() -> None:
    """torch: square_avg becomes inf, addcmul(grad_avg, grad_avg, value=-1) keeps it inf in one
    rounding, so avg is inf and the params do not move (two roundings gave inf - inf = NaN)."""
    params = [big([1.0, -2.0, 3.0])]
    grads = [[big([F32_MAX])], [big([0.5, -0.25, 1.0])]]
    p, *_ = on_every_path(stepped(optrs.optim.RMSprop, dict(centered=True), params, grads))
    # torch 2.13: [1.0, -2.0, 3.0] after both steps, square_avg inf, grad_avg 3.368795097350472e+36.
    np.testing.assert_array_equal(p[:3], np.float32([1.0, -2.0, 3.0]))
    np.testing.assert_array_equal(p, params[0])


def test_centered_rmsprop_state_under_a_float32_max_grad() -> None:
    params = [np.float32([1.0, -2.0, 3.0])]
    opt = optrs.optim.RMSprop(params, centered=True)
    opt.step([np.full(3, F32_MAX, np.float32)])
    state = opt.state[params[0]]
    assert np.isinf(state["square_avg"]).all()
    np.testing.assert_array_equal(state["grad_avg"], np.float32(3.4028232762376986e+36))  # torch 2.13


def test_sgd_subtracts_an_exactly_rounded_step() -> None:
    """torch's param.add_(grad, alpha=-lr) is one fused multiply-add: p - lr * g rounded once. With
    p = RN(lr * f32max) two roundings give exactly 0, one gives the product's rounding error."""
    lr = 1e-3
    p0 = float(np.float32(np.float32(lr) * np.float32(F32_MAX)))
    params = [big([p0, 1.0])]
    p, *_ = on_every_path(stepped(optrs.optim.SGD, dict(lr=lr), params, [[big([F32_MAX])]]))
    # torch 2.13: [-1.9331670690117736e+28, -3.4028234346940236e+35].
    np.testing.assert_array_equal(p[:2], np.float32([-1.9331670690117736e+28, -3.4028234346940236e+35]))


# Rules without a square root: torch's CPU sqrt (MKL's vector math) is not correctly rounded (1
# ulp off for 0.7% of float32 and 1% of float64 inputs, measured), so the rules that take one
# (Adam, Adagrad, RMSprop, ...) match torch to a few ulps only; their edges are checked below.
EXACT_CASES: list[tuple[str, dict[str, Any]]] = [
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1, maximize=True)),
    ("Adamax", dict(lr=0.01, weight_decay=0.1)),
    ("Rprop", dict(lr=0.01)),
    ("ASGD", dict(lr=0.01, t0=2, weight_decay=0.1)),
]
SQRT_CASES: list[tuple[str, dict[str, Any]]] = [
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1)),
    ("Adadelta", dict(lr=1.0, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.1)),
]
CASES = [(n, o, True) for n, o in EXACT_CASES] + [(n, o, False) for n, o in SQRT_CASES]

EDGE_GRADS = [float("nan"), float("inf"), -float("inf"), F32_MAX, -F32_MAX]


def assert_same(ours: np.ndarray, theirs: np.ndarray, exact: bool, what: str) -> None:
    if exact:
        np.testing.assert_array_equal(ours, theirs, err_msg=what)
        return
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=f"{what}: NaN positions")
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs), err_msg=f"{what}: inf positions")
    finite = np.isfinite(theirs)
    rtol = 1e-5 if ours.dtype == np.float32 else 1e-13
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=rtol, atol=0, err_msg=what)


@pytest.mark.parametrize("name, options, exact", CASES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_matches_installed_torch(name: str, options: dict[str, Any], exact: bool, dtype: Any) -> None:
    """Random values (vector body and tail of torch's kernels) plus NaN, infinities and
    float32-max grads: every param and state bit equals torch's (rules with a square root: the
    same NaN and inf positions, the rest to a few ulps). Needs torch built for a CPU with FMA
    (its AVX2/AVX-512 kernels), since torch's own results differ without it."""
    torch = pytest.importorskip("torch", reason="live comparison with torch 2.13")
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("torch's kernels fuse only on FMA hardware; this torch runs its unfused ones")
    rng = np.random.default_rng(0)
    n = 4096 + 13
    initial = rng.standard_normal(n).astype(dtype)
    initial[:5] = [1.0, -2.0, 3.0, F32_MAX * 1e-3, 0.5]
    grads = []
    for step in range(4):
        g = (rng.standard_normal(n) * np.exp(rng.uniform(-3, 3, n))).astype(dtype)
        if step == 1:
            g[: len(EDGE_GRADS)] = EDGE_GRADS
        grads.append(g)
    theirs = torch.nn.Parameter(torch.tensor(initial.copy()))
    ref = getattr(torch.optim, name)([theirs], foreach=False, **options)
    ours = initial.copy()
    opt = getattr(optrs.optim, name)([ours], **options)
    with np.errstate(all="ignore"):
        for g in grads:
            theirs.grad = torch.tensor(g.copy())
            ref.step()
            opt.step([g.copy()])
            assert_same(ours, theirs.detach().numpy(), exact, "param")
    for key, value in ref.state[theirs].items():
        if key != "step":
            assert_same(np.asarray(opt.state[ours][key]), value.numpy(), exact, key)


# -- defect 12: NaN in a gradient -----------------------------------------------------------------


def test_lion_lets_a_nan_gradient_reach_the_param() -> None:
    params = [big([1.0, -2.0, 3.0, 0.5])]
    grads = [[big([0.5, -0.25, 1.0, 0.125])], [big([0.5, float("nan"), 1.0, 0.125])], [big([0.5, -0.25, 1.0, 0.125])]]
    p, exp_avg = on_every_path(stepped(optrs.optim.Lion, dict(lr=0.1), params, grads))
    nan = np.isnan(p)
    np.testing.assert_array_equal(nan, np.resize([False, True, False, False], p.size))
    np.testing.assert_array_equal(np.isnan(exp_avg), nan)
    # The other elements moved by lr per step (sign of a positive / negative momentum).
    np.testing.assert_allclose(p[[0, 2, 3]], np.float32([0.7, 2.7, 0.2]), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_lion_nan_in_every_lane(dtype: Any) -> None:
    """A NaN at every position of a vector register and of the scalar tail."""
    for where in range(67):
        p = np.ones(67, dtype)
        g = np.ones(67, dtype)
        g[where] = np.nan
        optrs.optim.Lion([p], lr=0.1).step([g])
        assert np.flatnonzero(np.isnan(p)).tolist() == [where]


def test_rprop_skips_a_nan_gradient_as_torch_does() -> None:
    """torch 2.13's Rprop: sign(grad * prev) of NaN is 0, so the step size stays, grad.sign() is 0 so
    the param stays, and prev becomes NaN, which next step again counts as a 0 sign."""
    params = [big([1.0, -2.0, 3.0])]
    grads = [[big([0.5, -0.25, 1.0]) * s] for s in (1, 2, 3)]
    grads[1][0][1::3] = np.nan
    p, prev, _, step_size = on_every_path(stepped(optrs.optim.Rprop, {}, params, grads))
    # torch 2.13 after 3 steps: params, prev, step_size.
    np.testing.assert_array_equal(p[:3], np.float32([0.9635999798774719, -1.9800000190734863, 2.963599920272827]))
    np.testing.assert_array_equal(prev[:3], np.float32([1.5, -0.75, 3.0]))
    np.testing.assert_array_equal(step_size[:3], np.float32([0.014400000683963299, 0.009999999776482582,
                                                               0.014400000683963299]))


NAN_PROPAGATES = [
    ("Adamax", dict(lr=0.01)),  # torch.maximum(exp_inf * beta2, |g| + eps) keeps NaN
    ("Adam", dict(lr=0.01, amsgrad=True)),  # torch.maximum(max_exp_avg_sq, exp_avg_sq) keeps NaN
    ("ADOPT", dict(lr=0.01)),  # the authors' clamp of sqrt(v) at eps and of the normed grad keep NaN
    ("Lion", dict(lr=0.01)),
    ("LAMB", dict(lr=0.01)),
    ("ScheduleFreeAdamW", dict(lr=0.01)),
]


@pytest.mark.parametrize("name, options", NAN_PROPAGATES, ids=[n for n, _ in NAN_PROPAGATES])
def test_a_nan_gradient_reaches_the_param(name: str, options: dict[str, Any]) -> None:
    def run() -> list[np.ndarray]:
        p = big([1.0, -2.0, 3.0])
        opt = getattr(optrs.optim, name)([p], **options)
        if hasattr(opt, "train"):
            opt.train()
        for s in range(3):
            g = big([0.5, -0.25, 1.0]) * (s + 1)
            if s == 1:
                g[1::3] = np.nan
            opt.step([g])
        return [p]

    (p,) = on_every_path(run)
    if name == "LAMB":  # one NaN makes the tensor's norm, hence its trust ratio, NaN
        assert np.isnan(p).all()
    else:
        np.testing.assert_array_equal(np.isnan(p), np.resize([False, True, False], p.size))


# -- defect 11: hyperparameters that overflow -----------------------------------------------------

# Every hyperparameter that is rounded to the params' dtype in the step, per optimizer. torch 2.13
# raises "value cannot be converted to type float without overflow" at the step for float32 params
# for a value beyond float32's range (measured for every one below); optrs refuses it when set.
FLOAT32_BOUNDED: list[tuple[str, dict[str, Any], str, Callable[[float], dict[str, Any]]]] = [
    (name, base, label, make)
    for name, base, entries in [
        ("SGD", dict(momentum=0.5), [("lr", None), ("momentum", None), ("dampening", None), ("weight_decay", None)]),
        ("Adam", {}, [("lr", None), ("eps", None), ("weight_decay", None)]),
        ("AdamW", {}, [("lr", None), ("eps", None), ("weight_decay", None)]),
        ("Adamax", {}, [("lr", None), ("eps", None), ("weight_decay", None)]),
        ("NAdam", {}, [("lr", None), ("eps", None), ("weight_decay", None)]),
        ("RAdam", {}, [("lr", None), ("eps", None), ("weight_decay", None)]),
        ("Adagrad", {}, [("lr", None), ("eps", None), ("weight_decay", None), ("initial_accumulator_value", None)]),
        ("Adadelta", {}, [("lr", None), ("eps", None), ("weight_decay", None)]),
        ("RMSprop", {}, [("lr", None), ("eps", None), ("weight_decay", None), ("momentum", None), ("alpha", None)]),
        ("Rprop", {}, [("lr", None), ("etas[1]", lambda v: dict(etas=(0.5, v))),
                       ("step_sizes[1]", lambda v: dict(step_sizes=(1e-6, v)))]),
        ("ASGD", {}, [("lr", None), ("weight_decay", None), ("lambd", None)]),
        ("Adafactor", {}, [("lr", None), ("weight_decay", None), ("eps[0]", lambda v: dict(eps=(v, 1e-3))),
                           ("eps[1]", lambda v: dict(eps=(None, v)))]),
        ("Muon", {}, [("lr", None), ("weight_decay", None), ("momentum", None), ("eps", None)]),
        ("Lion", {}, [("lr", None), ("weight_decay", None)]),
        ("ADOPT", {}, [("lr", None), ("eps", None), ("weight_decay", None)]),
        ("LAMB", {}, [("lr", None), ("eps", None), ("weight_decay", None)]),
        ("ScheduleFreeAdamW", {}, [("lr", None), ("eps", None), ("weight_decay", None)]),
    ]
    for label, make in [(lbl, mk if mk is not None else (lambda v, lbl=lbl: {lbl: v})) for lbl, mk in entries]
]


@pytest.mark.parametrize("name, base, label, make", FLOAT32_BOUNDED,
                         ids=[f"{n}-{lbl}" for n, _, lbl, _ in FLOAT32_BOUNDED])
@pytest.mark.parametrize("value", [1e39, 1e308])
def test_a_hyperparameter_beyond_float32_is_refused(name: str, base: dict[str, Any], label: str,
                                                     make: Callable[[float], dict[str, Any]], value: float) -> None:
    param = np.ones((3, 2), np.float64)
    with pytest.raises(InvalidHyperparameterError, match=re.escape(f"invalid {label}=") + ".*float32"):
        getattr(optrs.optim, name)([param], **(base | make(value)))


@pytest.mark.parametrize("name, base, label, make", [c for c in FLOAT32_BOUNDED if c[0] in ("SGD", "Adam")],
                         ids=[f"{c[0]}-{c[2]}" for c in FLOAT32_BOUNDED if c[0] in ("SGD", "Adam")])
def test_float32_max_itself_is_accepted(name: str, base: dict[str, Any], label: str,
                                        make: Callable[[float], dict[str, Any]]) -> None:
    getattr(optrs.optim, name)([np.ones(3)], **(base | make(F32_MAX)))


def test_a_group_edited_beyond_float32_is_refused_at_the_step_and_changes_nothing() -> None:
    p = np.ones(5, np.float32)
    opt = optrs.optim.Adam([p], lr=0.1)
    opt.step([np.ones(5, np.float32)])
    before = p.copy(), opt.state_dict()
    opt.param_groups[0]["lr"] = 1e39
    with pytest.raises(InvalidHyperparameterError, match="lr"):
        opt.step([np.ones(5, np.float32)])
    np.testing.assert_array_equal(p, before[0])
    assert opt.state[p]["step"] == before[1]["state"][0]["step"]


@pytest.mark.parametrize("alpha", [1e308, 3.5e38, 1e200, -1e308])
def test_asgd_refuses_an_alpha_whose_eta_overflows(alpha: float) -> None:
    """torch 2.13 raises OverflowError (ZeroDivisionError for -1e308) at the first step, computing
    lr / (1 + lambd * lr * step) ** alpha in Python floats; optrs computed eta as 0 (or NaN)."""
    with pytest.raises(InvalidHyperparameterError, match="alpha"):
        optrs.optim.ASGD([np.ones(3)], alpha=alpha)


def test_asgd_refuses_a_lambd_that_makes_etas_base_negative() -> None:
    """(1 + lambd * lr) ** alpha of a negative base: torch's Python float power is complex."""
    with pytest.raises(InvalidHyperparameterError, match="lambd"):
        optrs.optim.ASGD([np.ones(3)], lr=0.01, lambd=-1e3)


def test_asgd_keeps_valid_extremes() -> None:
    optrs.optim.ASGD([np.ones(3)], alpha=700.0, lambd=1.0, lr=1.0).step([np.ones(3)])
    optrs.optim.ASGD([np.ones(3)], alpha=0.0)


def test_muon_refuses_an_eps_beyond_float32() -> None:
    """torch 2.13 raises at the step ("value cannot be converted to type c10::BFloat16 without
    overflow"); optrs's Newton-Schulz runs in float32, whose range is the bound."""
    with pytest.raises(InvalidHyperparameterError, match="eps"):
        optrs.optim.Muon([np.ones((3, 2))], eps=1e308)


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", dict(lr=1e39)), ("Adam", dict(weight_decay=1e39)), ("RMSprop", dict(alpha=1e39)),
    ("Adagrad", dict(initial_accumulator_value=1e39)), ("Rprop", dict(etas=(0.5, 1e39))),
    ("ASGD", dict(alpha=1e308)), ("Muon", dict(eps=1e308)),
])
def test_torch_refuses_the_same_values(name: str, kwargs: dict[str, Any]) -> None:
    """The live counterpart of the hard-coded behaviour above (float32 params)."""
    torch = pytest.importorskip("torch", reason="live comparison with torch 2.13")
    p = torch.nn.Parameter(torch.ones(3, 2))
    with pytest.raises((RuntimeError, OverflowError, ZeroDivisionError)):
        opt = getattr(torch.optim, name)([p], **kwargs)
        p.grad = torch.ones(3, 2)
        opt.step()
