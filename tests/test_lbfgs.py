"""LBFGS: replay of torch 2.13's Rosenbrock trajectories, live comparisons with torch (when it is
importable) on random quadratics, state_dict round trips and bad input."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import optrs
from optrs.optim import LBFGS
from optrs.optim import lbfgs as lbfgs_module
from reference import REFERENCE_DIR, TOLERANCE, load_trajectory

# -- problems -----------------------------------------------------------------------------------


def rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    """(1 - x0)^2 + 100 (x1 - x0^2)^2 and its gradient, rounded as torch's autograd rounds them
    (forward ``a * a + 100 * (c * c)``; backward through pow, mul, sub and rsub), so a replay
    sees torch's bits."""
    a = 1 - x[0]
    c = x[1] - x[0] * x[0]
    f = a * a + 100 * (c * c)
    dc = 100 * (2.0 * c)
    return float(f), np.array([-(2.0 * a) + (-dc) * (2.0 * x[0]), dc], dtype=x.dtype)


class Quadratic:
    """0.5 x^T A x - b^T x over the flat concatenation of params of the given shapes, A symmetric
    positive definite; computed in NumPy in the params' dtype, for optrs and torch alike."""

    def __init__(self, shapes: list[tuple[int, ...]], dtype: Any, seed: int, cond: float = 30.0) -> None:
        rng = np.random.default_rng(seed)
        self.shapes = shapes
        self.dtype = np.dtype(dtype)
        n = sum(math.prod(s) for s in shapes)
        q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        eig = np.geomspace(1.0, cond, n)
        self.A = ((q * eig) @ q.T).astype(dtype)
        self.A = (self.A + self.A.T) / 2
        self.b = rng.standard_normal(n).astype(dtype)
        self.x0 = [rng.standard_normal(s).astype(dtype) for s in shapes]

    def __call__(self, parts: list[np.ndarray]) -> tuple[Any, list[np.ndarray]]:
        x = np.concatenate([p.reshape(-1) for p in parts])
        ax = self.A @ x
        loss = x @ ax * self.dtype.type(0.5) - self.b @ x
        g = ax - self.b
        grads, offset = [], 0
        for s in self.shapes:
            size = math.prod(s)
            grads.append(g[offset:offset + size].reshape(s).copy())
            offset += size
        return loss, grads

    def optimum(self) -> np.ndarray:
        return np.linalg.solve(self.A.astype(np.float64), self.b.astype(np.float64))


def optrs_closure(params: list[optrs.Parameter], fn: Callable[[list[np.ndarray]], tuple[Any, list[np.ndarray]]]
                  ) -> Callable[[], Any]:
    def closure() -> Any:
        loss, grads = fn([p.data for p in params])
        for p, g in zip(params, grads):
            p.grad = g
        return loss
    return closure


def rosenbrock_opt(kwargs: dict[str, Any], x0: np.ndarray) -> tuple[LBFGS, optrs.Parameter, Callable[[], Any]]:
    p = optrs.Parameter(x0.copy())
    opt = LBFGS([p], **kwargs)

    def closure() -> float:
        loss, p.grad = rosenbrock(p.data)
        return loss
    return opt, p, closure


# -- replay of the reference files --------------------------------------------------------------

@pytest.mark.parametrize("name", ["optim_lbfgs", "optim_lbfgs_wolfe"])
def test_replays_torch_reference(name: str) -> None:
    traj = load_trajectory(REFERENCE_DIR / f"{name}.npz")
    assert traj.optimizer == "LBFGS" and traj.dtype == "float64" and not traj.grads
    opt, p, closure = rosenbrock_opt(traj.replay_kwargs(), traj.initial[0])
    for t in range(traj.steps):
        expected_loss = closure()  # the loss at the step's starting point, which step returns
        assert opt.step(closure) == expected_loss
        np.testing.assert_allclose(p.data, traj.params[t][0], **TOLERANCE["float64"],
                                   err_msg=f"{name}: step {t + 1}")
    assert abs(p.data - 1).max() < 1e-4  # Rosenbrock's minimum, (1, 1)


def test_reference_is_replayed_bit_for_bit() -> None:
    """On two elements the dot products are MKL's order and every add_ an exact FMA, so the
    Rosenbrock runs (chaotic without a line search) come out identical, not merely close."""
    for name in ("optim_lbfgs", "optim_lbfgs_wolfe"):
        traj = load_trajectory(REFERENCE_DIR / f"{name}.npz")
        opt, p, closure = rosenbrock_opt(traj.replay_kwargs(), traj.initial[0])
        for t in range(traj.steps):
            opt.step(closure)
            assert np.array_equal(p.data, traj.params[t][0]), (name, t)


# -- without torch: behaviour -------------------------------------------------------------------

@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_converges_on_a_quadratic(line_search_fn: str | None, dtype: Any) -> None:
    problem = Quadratic([(4, 3), (8,)], dtype, seed=0)
    params = [optrs.Parameter(x.copy()) for x in problem.x0]
    opt = LBFGS(params, line_search_fn=line_search_fn, history_size=10)
    closure = optrs_closure(params, problem)
    for _ in range(5):
        opt.step(closure)
    x = np.concatenate([p.data.reshape(-1) for p in params])
    assert all(p.data.dtype == dtype for p in params)
    np.testing.assert_allclose(x, problem.optimum(), rtol=0, atol=1e-4 if dtype == np.float64 else 5e-3)


def test_defaults_and_state_layout() -> None:
    p = optrs.Parameter(np.array([-1.5, 2.0]))
    opt = LBFGS([p])
    group = opt.param_groups[0]
    assert {k: v for k, v in group.items() if k != "params"} == dict(
        lr=1, max_iter=20, max_eval=25, tolerance_grad=1e-7, tolerance_change=1e-9, history_size=100,
        line_search_fn=None)
    assert LBFGS([optrs.Parameter(np.zeros(2))], max_iter=7).param_groups[0]["max_eval"] == 7 * 5 // 4
    assert LBFGS([optrs.Parameter(np.zeros(2))], max_iter=7, max_eval=3).param_groups[0]["max_eval"] == 3
    assert p not in opt.state and opt.state_dict()["state"] == {}

    def closure() -> float:
        loss, p.grad = rosenbrock(p.data)
        return loss
    opt.step(closure)
    state = opt.state[p]
    assert set(state) == {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                          "prev_flat_grad", "prev_loss", "al"}
    assert state["func_evals"] == 20 and state["n_iter"] == 20  # max_iter iterations, one evaluation each
    assert state["d"].shape == (2,) and state["prev_flat_grad"].shape == (2,)
    assert len(state["old_dirs"]) == len(state["old_stps"]) == len(state["ro"]) <= 100
    assert len(state["al"]) == 100
    assert isinstance(state["prev_loss"], float)
    assert list(opt.state) == [p] and len(opt.state) == 1
    assert "LBFGS (" in repr(opt) and "history_size: 100" in repr(opt)


def test_optimal_start_returns_after_one_evaluation() -> None:
    p = optrs.Parameter(np.array([1.0, 1.0]))
    opt = LBFGS([p])
    calls = []

    def closure() -> float:
        calls.append(1)
        loss, p.grad = rosenbrock(p.data)
        return loss
    assert opt.step(closure) == 0.0
    assert len(calls) == 1 and opt.state[p] == {"func_evals": 1, "n_iter": 0}
    np.testing.assert_array_equal(p.data, [1.0, 1.0])


def test_none_grad_counts_as_zero_and_grads_are_read_after_each_closure() -> None:
    problem = Quadratic([(5,), (3, 2)], np.float64, seed=1)
    a, b = (optrs.Parameter(x.copy()) for x in problem.x0)
    frozen = optrs.Parameter(np.arange(4.0))
    opt = LBFGS([a, frozen, b], line_search_fn="strong_wolfe")

    def closure() -> Any:
        loss, (ga, gb) = problem([a.data, b.data])
        a.grad, b.grad, frozen.grad = ga, gb, None
        return loss
    opt.step(closure)
    np.testing.assert_array_equal(frozen.data, np.arange(4.0))
    assert opt.state[a]["d"].shape == (5 + 4 + 6,)
    np.testing.assert_array_equal(opt.state[a]["d"][5:9], 0.0)


def test_non_contiguous_params_match_contiguous_ones() -> None:
    problem = Quadratic([(4, 3), (8,)], np.float64, seed=2)
    base = np.zeros((4, 6))
    base[:, ::2] = problem.x0[0]
    strided = [optrs.Parameter(base[:, ::2]), optrs.Parameter(problem.x0[1].copy())]
    plain = [optrs.Parameter(x.copy()) for x in problem.x0]
    for params in (strided, plain):
        opt = LBFGS(params, max_iter=6, line_search_fn="strong_wolfe")
        for _ in range(2):
            opt.step(optrs_closure(params, problem))
    assert strided[0].data.base is base
    np.testing.assert_array_equal(base[:, ::2], plain[0].data)
    np.testing.assert_array_equal(strided[1].data, plain[1].data)


def test_float32_params_stay_float32() -> None:
    problem = Quadratic([(4, 3), (8,)], np.float32, seed=3)
    params = [optrs.Parameter(x.copy()) for x in problem.x0]
    opt = LBFGS(params, line_search_fn="strong_wolfe", max_iter=5)
    opt.step(optrs_closure(params, problem))
    state = opt.state[params[0]]
    assert all(p.data.dtype == np.float32 for p in params)
    assert state["d"].dtype == np.float32 and state["prev_flat_grad"].dtype == np.float32
    assert all(np.asarray(r).dtype == np.float32 for r in state["ro"])
    assert all(v.dtype == np.float32 for v in state["old_dirs"] + state["old_stps"])


def test_zero_grad_and_replaced_data() -> None:
    p = optrs.Parameter(np.array([-1.5, 2.0]))
    opt = LBFGS([p], max_iter=3)

    def closure() -> float:
        loss, p.grad = rosenbrock(p.data)
        return loss
    opt.step(closure)
    opt.zero_grad()
    assert p.grad is None
    p.data = np.array([0.5, 0.5])  # as in torch, the next step works on the new array
    opt.step(closure)
    assert not np.array_equal(p.data, [0.5, 0.5])


# -- state_dict ---------------------------------------------------------------------------------

@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_state_dict_round_trip(line_search_fn: str | None, dtype: Any) -> None:
    problem = Quadratic([(4, 3), (8,)], dtype, seed=4, cond=1e3)
    kwargs: dict[str, Any] = dict(line_search_fn=line_search_fn, max_iter=3, history_size=4)
    params = [optrs.Parameter(x.copy()) for x in problem.x0]
    opt = LBFGS(params, **kwargs)
    closure = optrs_closure(params, problem)
    for _ in range(2):
        opt.step(closure)
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    snapshot = copy.deepcopy(saved)
    assert list(saved["state"]) == [0] and saved["param_groups"][0]["params"] == [0, 1]

    # a second optimizer over copies, with other options: load_state_dict brings state and options
    twins = [optrs.Parameter(p.data.copy()) for p in params]
    twin = LBFGS(twins, lr=0.3, max_iter=9, history_size=2)
    twin.load_state_dict(saved)
    assert twin.param_groups[0]["history_size"] == 4 and twin.param_groups[0]["line_search_fn"] == line_search_fn
    twin_closure = optrs_closure(twins, problem)
    for _ in range(3):
        assert opt.step(closure) == twin.step(twin_closure)
        for p, q in zip(params, twins):
            np.testing.assert_array_equal(p.data, q.data)
    assert opt.state[params[0]]["n_iter"] == twin.state[twins[0]]["n_iter"] > 6

    # the state_dict was a snapshot: later steps did not change it
    for key, value in snapshot["state"][0].items():
        if isinstance(value, list):
            assert len(value) == len(saved["state"][0][key])
            for v, w in zip(value, saved["state"][0][key]):
                assert (v is None and w is None) or np.array_equal(v, w)
        else:
            assert np.array_equal(value, saved["state"][0][key]), key


def test_load_state_dict_casts_and_checks() -> None:
    p = optrs.Parameter(np.array([-1.5, 2.0], dtype=np.float32))
    opt = LBFGS([p], max_iter=4)

    def closure() -> float:
        loss, p.grad = rosenbrock(p.data)
        return loss
    opt.step(closure)
    sd = opt.state_dict()
    wide = copy.deepcopy(sd)
    for key in ("d", "prev_flat_grad"):
        wide["state"][0][key] = wide["state"][0][key].astype(np.float64)
    wide["state"][0]["old_dirs"] = [v.astype(np.float64) for v in wide["state"][0]["old_dirs"]]
    wide["state"][0]["ro"] = [np.array(r, dtype=np.float64) for r in wide["state"][0]["ro"]]
    opt.load_state_dict(wide)
    state = opt.state[p]
    assert state["d"].dtype == np.float32 and state["old_dirs"][0].dtype == np.float32
    assert all(type(r) is np.float32 for r in state["ro"])

    before = copy.deepcopy(opt.state_dict())
    bad_cases: list[tuple[Any, str]] = []
    for mutate, words in [
        (lambda s: s["state"][0].__setitem__("d", np.zeros(3)), "'d'"),
        (lambda s: s["state"][0]["old_dirs"].append(np.zeros(2)), "lengths"),
        (lambda s: s["state"][0].__setitem__("n_iter", -1), "n_iter"),
        (lambda s: s["state"][0].__setitem__("bogus", 1), "bogus"),
        (lambda s: s["param_groups"].append(dict(s["param_groups"][0])), "param groups"),
        (lambda s: s["param_groups"][0].__setitem__("params", [0, 1]), "params"),
        (lambda s: s["param_groups"][0].__setitem__("history_size", 0), "history_size"),
    ]:
        broken = copy.deepcopy(sd)
        mutate(broken)
        bad_cases.append((broken, words))
    for broken, words in bad_cases:
        with pytest.raises(ValueError, match=words):
            opt.load_state_dict(broken)
    after = opt.state_dict()  # nothing changed by the failed loads
    assert after["param_groups"] == before["param_groups"]
    assert np.array_equal(after["state"][0]["d"], before["state"][0]["d"])
    assert len(after["state"][0]["old_dirs"]) == len(before["state"][0]["old_dirs"])
    with pytest.raises(ValueError, match="state_dict"):
        opt.load_state_dict({"state": {}})


# -- bad input ----------------------------------------------------------------------------------

def _param() -> optrs.Parameter:
    return optrs.Parameter(np.zeros(3))


@pytest.mark.parametrize("kwargs, words", [
    (dict(lr=0.0), "learning rate"),
    (dict(lr=-1.0), "learning rate"),
    (dict(lr=math.nan), "learning rate"),
    (dict(lr=math.inf), "learning rate"),
    (dict(lr="1"), "'lr' must be a number"),
    (dict(max_iter=0), "'max_iter' must be >= 1"),
    (dict(max_iter=-3), "'max_iter' must be >= 1"),
    (dict(max_iter=2.5), "'max_iter' must be an int"),
    (dict(max_eval=0), "'max_eval' must be >= 1"),
    (dict(history_size=0), "'history_size' must be >= 1"),
    (dict(history_size=True), "'history_size' must be an int"),
    (dict(tolerance_grad=math.nan), "'tolerance_grad' must not be NaN"),
    (dict(tolerance_change=math.nan), "'tolerance_change' must not be NaN"),
    (dict(tolerance_change="small"), "'tolerance_change' must be a number"),
    (dict(line_search_fn="armijo"), "line_search_fn must be None or 'strong_wolfe'"),
    (dict(line_search_fn="Strong_Wolfe"), "line_search_fn must be None or 'strong_wolfe'"),
])
def test_bad_options(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(optrs.InvalidHyperparameterError, match=words):
        LBFGS([_param()], **kwargs)
    # the same checks apply to a group's own options and to edits before a step
    with pytest.raises(ValueError, match=words):
        LBFGS([{"params": [_param()], **kwargs}])
    p = _param()
    opt = LBFGS([p])
    opt.param_groups[0].update(kwargs)
    with pytest.raises(ValueError, match=words):
        opt.step(lambda: 0.0)


def test_one_param_group_only() -> None:
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        LBFGS([{"params": [_param()]}, {"params": [_param()], "lr": 0.5}])
    opt = LBFGS([_param()])
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        opt.add_param_group({"params": [_param()]})
    assert len(opt.param_groups) == 1


def test_bad_params() -> None:
    with pytest.raises(ValueError, match=r"plain ndarray.*optrs\.Parameter"):
        LBFGS([np.zeros(3)])
    with pytest.raises(ValueError, match="empty parameter list"):
        LBFGS([])
    with pytest.raises(TypeError, match="float32 and float64"):
        LBFGS([optrs.Parameter(np.zeros(3, dtype=np.int64))])
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        LBFGS([optrs.Parameter(frozen)])
    p = _param()
    with pytest.raises(ValueError, match="shares memory"):
        LBFGS([p, p])
    base = np.zeros((2, 4))
    with pytest.raises(ValueError, match="shares memory"):
        LBFGS([optrs.Parameter(base[0]), optrs.Parameter(base[:, 1])])
    LBFGS([optrs.Parameter(base[:, ::2]), optrs.Parameter(base[:, 1::2])])  # interleaved, disjoint


def test_bad_step_calls() -> None:
    p = _param()
    opt = LBFGS([p])
    with pytest.raises(TypeError, match="needs a closure"):
        opt.step()
    with pytest.raises(TypeError, match="takes a closure, not gradients"):
        opt.step([np.ones(3)])
    with pytest.raises(TypeError, match="must return the loss"):
        opt.step(lambda: None)

    def wrong_shape() -> float:
        p.grad = np.ones(4)
        return 1.0
    with pytest.raises(ValueError, match=r"\.grad has shape \(4,\)"):
        opt.step(wrong_shape)

    def wrong_dtype() -> float:
        p.grad = np.ones(3, dtype=np.float32)
        return 1.0
    with pytest.raises(TypeError, match=r"\.grad has dtype float32"):
        opt.step(wrong_dtype)

    def not_an_array() -> float:
        p.grad = [1.0, 1.0, 1.0]  # type: ignore[assignment]
        return 1.0
    with pytest.raises(TypeError, match="numpy.ndarray or None"):
        opt.step(not_an_array)
    np.testing.assert_array_equal(p.data, 0.0)
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(opt)


# -- live comparisons with torch ----------------------------------------------------------------

LIVE_CONFIGS: list[dict[str, Any]] = [
    dict(),
    dict(line_search_fn="strong_wolfe"),
    dict(lr=0.5, max_iter=5, history_size=3),
    dict(lr=0.8, max_iter=7, history_size=2, line_search_fn="strong_wolfe"),
    dict(max_iter=4, max_eval=6, history_size=4, line_search_fn="strong_wolfe"),
    dict(max_iter=10, tolerance_grad=1e-3, tolerance_change=1e-4),
    dict(tolerance_grad=1e-3, tolerance_change=1e-4, line_search_fn="strong_wolfe"),
    dict(max_iter=1, lr=0.1),
    dict(max_iter=3, history_size=1, line_search_fn="strong_wolfe"),
    dict(lr=2.0, max_iter=6, max_eval=4, history_size=5),
]


def _to_numpy(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numpy().copy()
    if isinstance(value, list):
        return [_to_numpy(v) for v in value]
    return value


def _torch_closure(problem: Quadratic, tparams: list[Any]) -> Callable[[], Any]:
    import torch

    def closure() -> Any:
        loss, grads = problem([p.detach().numpy() for p in tparams])
        for p, g in zip(tparams, grads):
            p.grad = torch.from_numpy(g)
        return torch.tensor(loss)
    return closure


def _assert_same_state(state: dict[str, Any], tstate: dict[str, Any]) -> None:
    assert set(state) == set(tstate)
    for key, tvalue in tstate.items():
        value, tvalue = state[key], _to_numpy(tvalue)
        values, tvalues = (value, tvalue) if isinstance(value, list) else ([value], [tvalue])
        assert len(values) == len(tvalues), key
        for v, w in zip(values, tvalues):
            assert (v is None) == (w is None), key
            if v is not None:
                assert type(v) is type(w) if not isinstance(w, np.ndarray) else np.ndim(v) == w.ndim, key
                np.testing.assert_array_equal(v, w, err_msg=key)


def _live_run(problem: Quadratic, kwargs: dict[str, Any], steps: int, exact: bool) -> None:
    import torch

    tol = TOLERANCE[problem.dtype.name]
    params = [optrs.Parameter(x.copy()) for x in problem.x0]
    tparams = [torch.tensor(x.copy()) for x in problem.x0]
    opt = LBFGS(params, **kwargs)
    topt = torch.optim.LBFGS(tparams, **kwargs)
    closure, tclosure = optrs_closure(params, problem), _torch_closure(problem, tparams)
    for t in range(steps):
        loss = opt.step(closure)
        tloss = topt.step(tclosure)
        assert type(loss) is problem.dtype.type  # the closure's own return value
        state, tstate = opt.state[params[0]], topt.state[tparams[0]]
        if exact:
            assert loss == tloss.item(), f"loss at step {t}"
            for i, (p, tp) in enumerate(zip(params, tparams)):
                np.testing.assert_array_equal(p.data, tp.numpy(), err_msg=f"param {i} after step {t + 1}")
            _assert_same_state(state, tstate)
            continue
        np.testing.assert_allclose(float(loss), tloss.item(), **tol, err_msg=f"loss at step {t}")
        for i, (p, tp) in enumerate(zip(params, tparams)):
            assert p.data.dtype == problem.dtype
            np.testing.assert_allclose(p.data, tp.numpy(), **tol, err_msg=f"param {i} after step {t + 1}")
        assert set(state) == set(tstate)
        assert state["func_evals"] == tstate["func_evals"] and state["n_iter"] == tstate["n_iter"]
        assert len(state["old_dirs"]) == len(tstate["old_dirs"])


def _ids(kwargs: dict[str, Any]) -> str:
    return ",".join(f"{a}={b}" for a, b in kwargs.items()) or "defaults"


@pytest.mark.parametrize("kwargs", LIVE_CONFIGS, ids=_ids)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_torch_bit_for_bit_with_torch_reductions(kwargs: dict[str, Any], dtype: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """With torch's own dot product, sum and sqrt swapped in (MKL's summation order and vector
    math, which NumPy does not share), every step is torch's to the bit, float32 included: params, returned
    losses and the whole state (func_evals, n_iter, d, t, histories, ro, al, H_diag, ...)."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(lbfgs_module, "_dot", lambda a, b: a.dtype.type(
        torch.dot(torch.from_numpy(a), torch.from_numpy(b)).item()))
    monkeypatch.setattr(lbfgs_module, "_abs_sum", lambda a: a.dtype.type(torch.from_numpy(a).abs().sum().item()))
    monkeypatch.setattr(lbfgs_module, "_sqrt", lambda x: x.dtype.type(torch.tensor(x).sqrt().item()))
    for seed, cond in enumerate([10.0, 100.0, 1e3]):
        _live_run(Quadratic([(4, 3), (8,)], dtype, seed=10 + seed, cond=cond), kwargs, steps=4, exact=True)


@pytest.mark.parametrize("kwargs", LIVE_CONFIGS, ids=_ids)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_torch_on_quadratics(kwargs: dict[str, Any], dtype: Any) -> None:
    """As shipped (NumPy's BLAS dot): float64 within rtol 1e-9 over 4 steps of up to 20
    iterations, condition numbers up to 1e3. A float32 run that has converged goes on moving at
    float32 noise level, where different summation orders give different noise, so float32 is
    compared (rtol 2e-5) over its first 8 iterations on a well-conditioned problem."""
    pytest.importorskip("torch")
    if dtype == np.float64:
        for seed, cond in enumerate([10.0, 100.0, 1e3]):
            _live_run(Quadratic([(4, 3), (8,)], dtype, seed=10 + seed, cond=cond), kwargs, steps=4, exact=False)
    else:
        kwargs = {**kwargs, "max_iter": min(kwargs.get("max_iter", 20), 4)}
        for seed in range(3):
            _live_run(Quadratic([(4, 3), (8,)], dtype, seed=10 + seed, cond=10.0), kwargs, steps=2, exact=False)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_matches_torch_state_and_loads_its_state_dict(line_search_fn: str | None) -> None:
    """optrs's state_dict has torch's layout and values, and torch's state_dict (tensors turned
    into arrays) loads into optrs and continues as torch does."""
    torch = pytest.importorskip("torch")
    problem = Quadratic([(4, 3), (8,)], np.float64, seed=21, cond=1e3)
    kwargs: dict[str, Any] = dict(max_iter=4, history_size=3, line_search_fn=line_search_fn)
    params = [optrs.Parameter(x.copy()) for x in problem.x0]
    tparams = [torch.tensor(x.copy()) for x in problem.x0]
    opt, topt = LBFGS(params, **kwargs), torch.optim.LBFGS(tparams, **kwargs)
    tclosure = _torch_closure(problem, tparams)
    for _ in range(2):
        opt.step(optrs_closure(params, problem))
        topt.step(tclosure)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sd["param_groups"] == tsd["param_groups"]
    assert list(sd["state"]) == list(tsd["state"]) == [0]
    state, tstate = sd["state"][0], tsd["state"][0]
    assert set(state) == set(tstate)
    for key, tvalue in tstate.items():
        value, tvalue = state[key], _to_numpy(tvalue)
        if key == "al":
            assert [v is None for v in value] == [v is None for v in tvalue]
            value, tvalue = [v for v in value if v is not None], [v for v in tvalue if v is not None]
        np.testing.assert_allclose(np.asarray(value, dtype=float), np.asarray(tvalue, dtype=float),
                                   rtol=1e-9, atol=1e-12, err_msg=key)

    converted = {"state": {k: {n: _to_numpy(v) for n, v in s.items()} for k, s in tsd["state"].items()},
                 "param_groups": tsd["param_groups"]}
    others = [optrs.Parameter(p.detach().numpy().copy()) for p in tparams]
    other = LBFGS(others)
    other.load_state_dict(converted)
    assert other.param_groups[0]["history_size"] == 3
    for _ in range(2):
        other.step(optrs_closure(others, problem))
        topt.step(tclosure)
    for p, tp in zip(others, tparams):
        np.testing.assert_allclose(p.data, tp.numpy(), **TOLERANCE["float64"])


def test_matches_torch_autograd_on_rosenbrock_variants() -> None:
    """A 2-d Rosenbrock from other starting points, with torch's autograd as the torch closure:
    with exact FMAs and MKL's small-dot order, optrs follows torch to the bit."""
    torch = pytest.importorskip("torch")
    for x0, kwargs in [((-1.2, 1.0), dict(history_size=5)), ((0.3, -0.7), dict(line_search_fn="strong_wolfe")),
                       ((2.0, 2.0), dict(lr=0.5, max_iter=8, history_size=3)),
                       ((-0.5, 1.5), dict(max_iter=6, history_size=2, line_search_fn="strong_wolfe"))]:
        opt, p, closure = rosenbrock_opt(kwargs, np.array(x0))
        tp = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        topt = torch.optim.LBFGS([tp], **kwargs)

        def tclosure(tp: Any = tp, topt: Any = topt) -> Any:
            topt.zero_grad()
            loss = (1 - tp[0]) ** 2 + 100 * (tp[1] - tp[0] ** 2) ** 2
            loss.backward()
            return loss
        for t in range(6):
            assert opt.step(closure) == topt.step(tclosure).item()
            np.testing.assert_array_equal(p.data, tp.detach().numpy(), err_msg=f"{x0} {kwargs} step {t + 1}")


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_matches_torch_on_a_big_problem(line_search_fn: str | None) -> None:
    """20,000 elements: the dot products sum in optrs's order, not MKL's (beyond a few bits, the
    same numbers)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    shapes = [(100, 150), (5000,)]
    n = 20_000
    diag, b = rng.uniform(1.0, 50.0, n), rng.standard_normal(n)

    def fn(parts: list[np.ndarray]) -> tuple[Any, list[np.ndarray]]:
        x = np.concatenate([p.reshape(-1) for p in parts])
        g = diag * x - b
        return 0.5 * (x @ (diag * x)) - b @ x, [g[:15000].reshape(100, 150), g[15000:]]

    params = [optrs.Parameter(rng.standard_normal(s)) for s in shapes]
    tparams = [torch.tensor(p.data.copy()) for p in params]
    kwargs: dict[str, Any] = dict(history_size=5, max_iter=8, line_search_fn=line_search_fn)
    opt, topt = LBFGS(params, **kwargs), torch.optim.LBFGS(tparams, **kwargs)

    def tclosure() -> Any:
        loss, grads = fn([p.numpy() for p in tparams])
        for p, g in zip(tparams, grads):
            p.grad = torch.from_numpy(g)
        return torch.tensor(loss)
    for t in range(3):
        assert opt.step(optrs_closure(params, fn)) == pytest.approx(topt.step(tclosure).item(), rel=1e-12)
        for p, tp in zip(params, tparams):
            np.testing.assert_allclose(p.data, tp.numpy(), **TOLERANCE["float64"], err_msg=f"step {t + 1}")
    assert opt.state[params[0]]["n_iter"] == topt.state[tparams[0]]["n_iter"]


def test_closure_runs_under_the_callers_numpy_error_settings() -> None:
    p = optrs.Parameter(np.array([-1.5, 2.0]))
    opt = LBFGS([p], max_iter=2)

    def closure() -> float:
        np.divide(np.ones(1), np.zeros(1))  # warns, or raises under errstate(divide="raise")
        loss, p.grad = rosenbrock(p.data)
        return loss
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        opt.step(closure)
    with np.errstate(divide="ignore"):
        opt.step(closure)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_axpy_rounds_once(dtype: Any) -> None:
    """_core.axpy(c, a, alpha) makes c = a * alpha + c rounded once (torch's add_ with alpha is an
    FMA), checked against exact rational arithmetic, near-cancellations included."""
    from fractions import Fraction

    rng = np.random.default_rng(11)
    finfo = np.finfo(dtype)

    def round_exact(value: Fraction) -> Any:
        x = dtype(float(value))  # within one ulp; pick the nearest neighbour, ties to even
        candidates = [np.nextafter(x, dtype(-np.inf)), x, np.nextafter(x, dtype(np.inf))]
        return min(candidates, key=lambda v: (abs(Fraction(float(v)) - value),
                                              int(np.array(v).view(np.int64 if dtype == np.float64 else np.int32)) & 1))
    mismatches = 0
    for _ in range(150):
        scale = 10.0 ** rng.integers(-6, 7, size=3)
        a = (rng.standard_normal(16) * scale[0]).astype(dtype)
        c = (rng.standard_normal(16) * scale[2]).astype(dtype)
        alpha = dtype(rng.standard_normal() * scale[1])
        c[:6] = -(a[:6] * alpha) * (1 + rng.standard_normal(6) * 4 * float(finfo.eps))
        c[6] = 0.0
        got = c.copy()
        optrs._core.axpy(got, a, float(alpha))
        want = [round_exact(Fraction(float(x)) * Fraction(float(alpha)) + Fraction(float(z))) for x, z in zip(a, c)]
        mismatches += int(np.sum(got != np.array(want, dtype=dtype)))
        assert got.dtype == dtype
    assert mismatches == 0
    special = np.array([1.0, 1e308, 0.0, -2.0])
    optrs._core.axpy(special, np.array([np.inf, 1e308, np.nan, 1.0]), 2.0)
    np.testing.assert_array_equal(special, [np.inf, np.inf, np.nan, 0.0])


# -- the Rust vector kernels L-BFGS runs on -----------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dot_and_axpy_do_not_depend_on_the_thread_count(dtype: Any) -> None:
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(1_000_003).astype(dtype), rng.standard_normal(1_000_003).astype(dtype)
    results = []
    try:
        for threads in (1, 2, 3):
            optrs.set_num_threads(threads)
            x = a.copy()
            optrs._core.axpy(x, b, 0.37)
            results.append((optrs._core.dot(a, b), x))
    finally:
        optrs.set_num_threads(2)
    for dot, x in results[1:]:
        assert dot == results[0][0]
        np.testing.assert_array_equal(x, results[0][1])
    assert results[0][0] == pytest.approx(float(np.dot(a.astype(np.float64), b.astype(np.float64))), rel=1e-7)


def test_dot_and_axpy_refuse_bad_vectors() -> None:
    a = np.ones(4)
    with pytest.raises(optrs.ParamDTypeError, match="dtype"):
        optrs._core.dot(a, np.ones(4, dtype=np.float32))
    with pytest.raises(optrs.InvalidParamError, match="length"):
        optrs._core.dot(a, np.ones(5))
    with pytest.raises(optrs.InvalidParamError, match="C-contiguous"):
        optrs._core.dot(np.ones(8)[::2], a)
    read_only = np.ones(4)
    read_only.flags.writeable = False
    with pytest.raises(optrs.InvalidParamError, match="read-only"):
        optrs._core.axpy(read_only, a, 1.0)
    x = np.arange(8.0)
    with pytest.raises(optrs.InvalidParamError, match="shares memory"):
        optrs._core.axpy(x[:4], x[2:6], 1.0)
    np.testing.assert_array_equal(x, np.arange(8.0))  # refused before anything was written


def test_strong_wolfe_with_a_nan_loss_does_not_index_past_its_bracket() -> None:
    """Found by the fuzz suite: a NaN loss with a finite gradient satisfies the Wolfe curvature test
    at once, leaving a one-element bracket that torch 2.13 indexes past (IndexError)."""
    param = optrs.Parameter(np.ones(3, np.float32))

    def closure() -> float:
        param.grad = 2 * param.data  # the gradient of sum(x**2), whose minimum the first step hits
        return math.nan

    opt = LBFGS([param], lr=1.0, line_search_fn="strong_wolfe")
    loss = opt.step(closure)
    assert math.isnan(loss)
