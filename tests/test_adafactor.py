"""optrs.optim.Adafactor: torch 2.13's Adafactor.

Checked against a float64 NumPy transcription of torch's ``_single_tensor_adafactor`` (no torch
needed), the installed torch in float32 (when importable), on any number of threads bit for bit,
and on bad input. The reference file replays in tests/test_parity.py."""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import pytest

from optrs import InvalidHyperparameterError, InvalidParamError
from optrs.optim import Adafactor

F32 = dict(rtol=2e-5, atol=1e-6)

# 0-d and 1-d params take the unfactored path; 2-d and more the factored one, over the last two
# dims (a 3-d param is a batch of matrices).
SHAPES: dict[str, tuple[int, ...]] = {
    "0-d": (), "1-d": (11,), "tall": (23, 9), "wide": (7, 30), "3-d": (2, 5, 6), "4-d": (2, 2, 3, 4),
    "row": (1, 12), "column": (12, 1),
}

OPTIONS: list[dict[str, Any]] = [
    {},
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.05, maximize=True),
    dict(eps=(1e-4, 1e-2), d=1.5, beta2_decay=-0.5),
    dict(lr=1.0, beta2_decay=0.0, d=4.0, eps=(0.0, 0.0)),
]

# -- a float64 NumPy transcription of torch's algorithm -----------------------------------------


def lerp(start: np.ndarray, end: np.ndarray, weight: float) -> np.ndarray:
    """torch.lerp's two-sided formula, exact at both ends (weight 1, as at step 1, gives ``end``)."""
    return start + weight * (end - start) if weight < 0.5 else end - (end - start) * (1 - weight)



def adafactor_in_numpy(initial: list[np.ndarray], grads: list[list[np.ndarray | None]], lr: float = 1e-2,
                       beta2_decay: float = -0.8, eps: tuple[float | None, float] = (None, 1e-3), d: float = 1.0,
                       weight_decay: float = 0.0, maximize: bool = False) -> list[np.ndarray]:
    """torch's ``_single_tensor_adafactor`` in float64, one group; ``eps1=None`` is the machine
    epsilon of the first param with a grad in each step, as in torch."""
    params = [p.astype(np.float64) for p in initial]
    factors: list[Any] = [None] * len(params)
    steps = [0] * len(params)
    for step_grads in grads:
        eps1, eps2 = eps
        for i, grad in enumerate(step_grads):
            if grad is None:
                continue
            p, g = params[i], grad.astype(np.float64) * (-1 if maximize else 1)
            if eps1 is None:
                eps1 = float(np.finfo(initial[i].dtype).eps)
            steps[i] += 1
            t = float(steps[i])
            weight = t ** beta2_decay
            rho = min(lr, 1 / t ** 0.5)
            alpha = max(eps2, math.sqrt(float(np.sum(p * p))) / p.size ** 0.5) * rho
            p *= 1 - lr * weight_decay
            if g.ndim > 1:
                if factors[i] is None:
                    factors[i] = (np.zeros(g.shape[:-1] + (1,)), np.zeros(g.shape[:-2] + (1, g.shape[-1])))
                row_var, col_var = factors[i]
                row_var[...] = lerp(row_var, (g * g).mean(-1, keepdims=True), weight)
                col_var[...] = lerp(col_var, (g * g).mean(-2, keepdims=True), weight)
                var = row_var @ col_var / np.maximum(row_var.mean(-2, keepdims=True), eps1)
            else:
                if factors[i] is None:
                    factors[i] = np.zeros(g.shape)
                factors[i] = lerp(factors[i], g * g, weight)
                var = factors[i]
            update = g / np.sqrt(np.maximum(var, eps1 * eps1))
            denom = max(1.0, math.sqrt(float(np.sum(update * update))) / (update.size ** 0.5 * d))
            p -= alpha / denom * update
    return params


def random_run(options: dict[str, Any], dtype: Any, seed: int, steps: int = 30
               ) -> tuple[list[np.ndarray], list[list[np.ndarray | None]]]:
    rng = np.random.default_rng(seed)
    initial = [np.array(rng.standard_normal(s), dtype) for s in SHAPES.values()]
    # Grads of varying scale, some tiny (so that eps1 clamps), and a skipped param now and then.
    grads: list[list[np.ndarray | None]] = [
        [None if (t % 5 == 4 and i % 3 == 1) else
         np.array(rng.standard_normal(s) * 10.0 ** rng.integers(-9, 2, size=s), dtype)
         for i, s in enumerate(SHAPES.values())]
        for t in range(steps)
    ]
    return initial, grads


@pytest.mark.parametrize("options", OPTIONS, ids=[str(i) for i in range(len(OPTIONS))])
def test_matches_a_float64_transcription(options: dict[str, Any]) -> None:
    initial, grads = random_run(options, np.float64, seed=len(options))
    params = [p.copy() for p in initial]
    opt = Adafactor(params, **options)
    for step in grads:
        opt.step(step)
    want = adafactor_in_numpy(initial, grads, **options)
    for name, got, expected in zip(SHAPES, params, want):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("options", OPTIONS, ids=[str(i) for i in range(len(OPTIONS))])
def test_float32_follows_the_transcription(options: dict[str, Any]) -> None:
    """float32 params, each step compared with the float64 transcription run from the float32
    values (so that float32 rounding does not compound)."""
    initial, grads = random_run(options, np.float32, seed=10 + len(options), steps=1)
    params = [p.copy() for p in initial]
    Adafactor(params, **options).step(grads[0])
    want = adafactor_in_numpy(initial, grads, **options)
    for name, got, expected in zip(SHAPES, params, want):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7, err_msg=name)


def test_eps1_none_takes_the_first_param_with_a_grad_of_each_group_and_step() -> None:
    """torch resolves eps1=None once per group and step: a float64 param behind a float32 one
    gets float32's epsilon, and float64's own when the float32 param has no grad."""
    rng = np.random.default_rng(1)
    first, second = rng.standard_normal(4).astype(np.float32), rng.standard_normal((3, 4))
    grad = rng.standard_normal((3, 4)) * 1e-9  # small enough that eps1 clamps the row-factor mean

    def one_step(grads: list[np.ndarray | None], **options: Any) -> np.ndarray:
        params = [first.copy(), second.copy()] if len(grads) == 2 else [second.copy()]
        Adafactor(params, **options).step(grads)
        return params[-1]

    behind = one_step([np.ones(4, np.float32), grad])
    assert behind.tobytes() == one_step([grad], eps=(float(np.finfo(np.float32).eps), 1e-3)).tobytes()
    assert not np.array_equal(behind, one_step([grad]))
    assert one_step([None, grad]).tobytes() == one_step([grad]).tobytes()


# -- the installed torch ------------------------------------------------------------------------


LIVE: list[dict[str, Any]] = [
    {},
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.05, maximize=True, d=2.0),
    dict(eps=(1e-4, 1e-2), beta2_decay=-0.5),
    dict(lr=0.3, eps=(1e-6, 1e-3), weight_decay=0.01, maximize=True),
]


@pytest.mark.parametrize("options", LIVE, ids=[str(i) for i in range(len(LIVE))])
def test_matches_installed_torch_in_float32(options: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    shapes = list(SHAPES.values())
    initial = [np.array(rng.standard_normal(s), np.float32) for s in shapes]
    ours = [p.copy() for p in initial]
    theirs = [torch.nn.Parameter(torch.tensor(p.copy())) for p in initial]
    # Two groups, the second with options of its own.
    opt = Adafactor([{"params": ours[:5]}, {"params": ours[5:], "lr": 0.02}], **options)
    ref = torch.optim.Adafactor([{"params": theirs[:5]}, {"params": theirs[5:], "lr": 0.02}], **options)
    for step in range(25):
        grads = [None if (step % 4 == 3 and i == 2) else
                 np.array(rng.standard_normal(s) * (0.1 + step % 3), np.float32) for i, s in enumerate(shapes)]
        for p, g in zip(theirs, grads):
            p.grad = None if g is None else torch.tensor(g)
        ref.step()
        opt.step(grads)
    for name, ours_p, theirs_p in zip(SHAPES, ours, theirs):
        np.testing.assert_allclose(ours_p, theirs_p.detach().numpy(), **F32, err_msg=name)
        state, want = opt.state[ours_p], ref.state[theirs_p]
        assert list(state) == list(want)
        for key in want:
            np.testing.assert_allclose(state[key], want[key].numpy(), **F32, err_msg=f"{name} {key}")


def test_matches_installed_torch_with_mixed_dtypes_in_a_group() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    initial = [rng.standard_normal(5).astype(np.float32), rng.standard_normal((4, 3))]
    ours = [p.copy() for p in initial]
    theirs = [torch.nn.Parameter(torch.tensor(p.copy())) for p in initial]
    opt, ref = Adafactor(ours), torch.optim.Adafactor(theirs)
    for step in range(10):
        grads = [None if step % 3 == 2 else rng.standard_normal(5).astype(np.float32),
                 rng.standard_normal((4, 3)) * 1e-8]
        for p, g in zip(theirs, grads):
            p.grad = None if g is None else torch.tensor(g)
        ref.step()
        opt.step(grads)
    np.testing.assert_allclose(ours[0], theirs[0].detach().numpy(), **F32)
    np.testing.assert_allclose(ours[1], theirs[1].detach().numpy(), rtol=1e-9, atol=1e-12)


def test_signature_and_defaults_are_torchs() -> None:
    ours = inspect.signature(Adafactor).parameters
    assert list(ours) == ["params", "lr", "beta2_decay", "eps", "d", "weight_decay", "foreach", "maximize"]
    assert {k: p.default for k, p in ours.items() if k != "params"} == dict(
        lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, foreach=None, maximize=False)
    assert ours["foreach"].kind == ours["maximize"].kind == inspect.Parameter.KEYWORD_ONLY
    try:
        import torch
    except ImportError:
        return
    theirs = inspect.signature(torch.optim.Adafactor).parameters
    assert list(theirs) == list(ours)
    assert all(theirs[k].default == ours[k].default and theirs[k].kind == ours[k].kind for k in ours)


# -- the optimizer contract ---------------------------------------------------------------------


def test_state_is_torchs_layout() -> None:
    rng = np.random.default_rng(6)
    params = [rng.standard_normal(s) for s in [(4, 6), (2, 3, 5), (7,), (), (5, 3)]]
    opt = Adafactor(params)
    grads = [rng.standard_normal(p.shape) for p in params]
    opt.step(grads[:4] + [None])
    assert [p.shape for p in opt.state] == [(4, 6), (2, 3, 5), (7,), ()]  # no grad: no state, as in torch
    assert opt.state[params[4]] == {}
    assert {k: v.shape for k, v in opt.state[params[0]].items()} == {"step": (), "row_var": (4, 1),
                                                                      "col_var": (1, 6)}
    assert {k: v.shape for k, v in opt.state[params[1]].items()} == {"step": (), "row_var": (2, 3, 1),
                                                                      "col_var": (2, 1, 5)}
    assert {k: v.shape for k, v in opt.state[params[2]].items()} == {"step": (), "variance": (7,)}
    assert {k: v.shape for k, v in opt.state[params[3]].items()} == {"step": (), "variance": ()}
    # Step 1: beta2_t = 0, so the factors are the means of the squared grads.
    np.testing.assert_allclose(opt.state[params[0]]["row_var"], (grads[0] ** 2).mean(-1, keepdims=True))
    np.testing.assert_allclose(opt.state[params[1]]["col_var"], (grads[1] ** 2).mean(-2, keepdims=True))
    np.testing.assert_array_equal(opt.state[params[2]]["variance"], grads[2] ** 2)
    saved = opt.state_dict()
    assert list(saved["state"]) == [0, 1, 2, 3]
    assert float(saved["state"][0]["step"]) == 1.0
    assert saved["param_groups"][0]["eps"] == (None, 1e-3)


def test_state_dict_with_a_wrongly_shaped_factor_is_rejected() -> None:
    w = np.ones((3, 4))
    opt = Adafactor([w])
    opt.step([np.ones((3, 4))])
    saved = opt.state_dict()
    saved["state"][0]["row_var"] = np.zeros((3, 4))
    fresh = Adafactor([w.copy()])
    with pytest.raises(InvalidParamError, match=r"'row_var'\] has shape \(3, 4\), but this optimizer's has "
                                                r"shape \(3, 1\)"):
        fresh.load_state_dict(saved)
    assert fresh.state_dict()["state"] == {}


def test_read_only_grads_and_one_grad_for_two_params_are_fine() -> None:
    rng = np.random.default_rng(9)
    params = [rng.standard_normal((3, 4)) for _ in range(2)]
    twins = [p.copy() for p in params]
    g = rng.standard_normal((3, 4))
    g.setflags(write=False)
    Adafactor(params).step([g, g])
    Adafactor(twins).step([g.copy(), g.copy()])
    for a, b in zip(params, twins):
        assert a.tobytes() == b.tobytes()


# -- bad input ----------------------------------------------------------------------------------


def snapshot(opt: Adafactor, arrays: list[np.ndarray]) -> list[bytes]:
    return [a.tobytes() for a in arrays] + [v.tobytes() for p in arrays for v in opt.state[p].values()]


@pytest.mark.parametrize("shapes, dtype, state", [
    ([(4, 3), (4, 1)], np.float32, "row_var"),
    ([(4, 3), (1, 3)], np.float32, "col_var"),
    ([(5,), (5,)], np.float64, "variance"),
    ([(), ()], np.float64, "step"),
], ids=["row_var", "col_var", "variance", "step"])
def test_grad_sharing_a_state_array_is_rejected(shapes: list[tuple[int, ...]], dtype: Any, state: str) -> None:
    params = [np.ones(s, dtype) for s in shapes]
    opt = Adafactor(params)
    opt.step([np.ones(s, dtype) for s in shapes])
    before = snapshot(opt, params)
    with pytest.raises(InvalidParamError) as info:
        opt.step([np.ones(shapes[0], dtype), opt.state[params[0]][state]])
    held = "step counter" if state == "step" else f"state '{state}'"
    assert f"grad of param_groups[0]['params'][1] shares memory with param_groups[0]['params'][0]'s {held}" \
        in str(info.value)
    assert snapshot(opt, params) == before


def test_torchs_boundary_values_are_accepted() -> None:
    w = np.ones(3)
    Adafactor([w], lr=0.0, beta2_decay=0.0, eps=(0.0, 0.0), d=1.0, weight_decay=0.0).step([np.ones(3)])
    np.testing.assert_array_equal(w, np.ones(3))  # lr 0: rho 0, no step


def test_a_param_without_elements_is_rejected_when_it_gets_a_grad() -> None:
    """torch divides by the param's size and fails with ZeroDivisionError; optrs says why,
    before it changes anything."""
    params = [np.ones((2, 3)), np.ones((0, 3))]
    opt = Adafactor(params)
    opt.step([np.ones((2, 3)), None])
    before = snapshot(opt, params)
    with pytest.raises(InvalidParamError,
                       match="param_groups\\[0\\]\\['params'\\]\\[1\\] has shape \\(0, 3\\): it has no elements"):
        opt.step([np.ones((2, 3)), np.ones((0, 3))])
    assert snapshot(opt, params) == before


def test_a_corrupted_step_count_is_rejected() -> None:
    params = [np.ones((2, 3)), np.ones(4)]
    opt = Adafactor(params)
    opt.step([np.ones((2, 3)), np.ones(4)])
    opt.state[params[-1]]["step"][...] = 1.5
    before = snapshot(opt, params)
    with pytest.raises(InvalidHyperparameterError,
                       match="param_groups\\[0\\]\\['params'\\]\\[1\\]'s state 'step' is 1.5"):
        opt.step([np.ones((2, 3)), np.ones(4)])
    assert snapshot(opt, params) == before
