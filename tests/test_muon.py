"""optrs.optim.Muon: torch 2.13's Muon with its Newton-Schulz in float32.

Checked against the reference files, a float64 NumPy transcription of torch's algorithm, the
installed torch (when importable, its Newton-Schulz patched to float32 as the reference files
were made), on any number of threads bit for bit, and on bad input."""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from optrs import InvalidParamError
from optrs.optim import Muon
from reference import REFERENCE_DIR, TOLERANCE, load_trajectory

F32 = TOLERANCE["float32"]

# -- the reference files ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["optim_muon", "optim_muon_match_rms"])
def test_replays_the_reference_files(name: str) -> None:
    trajectory = load_trajectory(REFERENCE_DIR / f"{name}.npz")
    params = [p.copy() for p in trajectory.initial]
    opt = Muon(params, **trajectory.replay_kwargs())
    worst = 0.0
    for t in range(trajectory.steps):
        opt.step(trajectory.grads[t])
        for i, (got, want) in enumerate(zip(params, trajectory.params[t])):
            np.testing.assert_allclose(got, want, **F32, err_msg=f"param {i} after step {t + 1}")
            worst = max(worst, float(np.abs(got.astype(np.float64) - want).max()))
    # Measured: 3.6e-7 and 2.4e-7 (float32 rounding of params of size ~1-3).
    assert worst < 1e-6


# -- a float64 NumPy transcription of torch's algorithm -----------------------------------------


def newton_schulz(g: np.ndarray, coefficients: tuple[float, float, float], steps: int, eps: float) -> np.ndarray:
    """torch's ``_zeropower_via_newtonschulz`` in float64."""
    a, b, c = coefficients
    x = g.T if g.shape[0] > g.shape[1] else g
    x = x / max(float(np.linalg.norm(x)), eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if g.shape[0] > g.shape[1] else x


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: tuple[int, ...]) -> float:
    rows, cols = shape
    if adjust_lr_fn in (None, "original"):
        return lr * math.sqrt(max(1, rows / cols))
    return lr * 0.2 * math.sqrt(max(rows, cols))


def muon_in_float64(initial: list[np.ndarray], grads: list[list[np.ndarray | None]],
                    lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95, nesterov: bool = True,
                    ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315), eps: float = 1e-7,
                    ns_steps: int = 5, adjust_lr_fn: str | None = None) -> list[np.ndarray]:
    params = [p.astype(np.float64) for p in initial]
    buffers = [np.zeros_like(p) for p in params]
    for step in grads:
        for i, g in enumerate(step):
            if g is None:
                continue
            g = g.astype(np.float64)
            buffers[i] += (g - buffers[i]) * (1 - momentum)
            update = g + (buffers[i] - g) * momentum if nesterov else buffers[i]
            update = newton_schulz(update, ns_coefficients, ns_steps, eps)
            params[i] = params[i] * (1 - lr * weight_decay) - adjusted_lr(lr, adjust_lr_fn, g.shape) * update
    return params


SHAPES = {"tall": (23, 9), "wide": (7, 30), "square": (16, 16), "row": (1, 12), "column": (12, 1)}
OPTIONS: list[dict[str, Any]] = [
    {},
    dict(lr=0.02, weight_decay=0.0, nesterov=False),
    dict(lr=0.01, momentum=0.9, adjust_lr_fn="match_rms_adamw", weight_decay=0.05),
    dict(lr=0.05, adjust_lr_fn="original", ns_steps=2, ns_coefficients=(2.0, -1.5, 0.5)),
    dict(lr=0.01, ns_steps=0, eps=1e-3),
    dict(lr=0.01, momentum=0.0, ns_steps=7),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("options", OPTIONS, ids=[str(i) for i in range(len(OPTIONS))])
def test_matches_a_float64_transcription(options: dict[str, Any], dtype: Any) -> None:
    rng = np.random.default_rng(len(options))
    shapes = list(SHAPES.values())
    initial = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads: list[list[np.ndarray | None]] = [
        [None if (t == 2 and i == 1) else rng.standard_normal(s).astype(dtype) for i, s in enumerate(shapes)]
        for t in range(6)
    ]
    params = [p.copy() for p in initial]
    opt = Muon(params, **options)
    for step in grads:
        opt.step(step)
    want = muon_in_float64(initial, grads, **options)
    lr = options.get("lr", 1e-3)
    for name, got, expected in zip(SHAPES, params, want):
        assert got.dtype == dtype
        # Newton-Schulz runs in float32 whatever the param's dtype: its rounding, amplified on
        # small singular values, is measured at up to 3e-6 of lr (float64 params); float32 params
        # add their own rounding.
        if dtype == np.float32:
            np.testing.assert_allclose(got, expected, rtol=2e-5, atol=lr * 1e-4, err_msg=name)
        else:
            np.testing.assert_allclose(got, expected, rtol=0, atol=lr * 2e-5, err_msg=name)


# -- the installed torch ------------------------------------------------------------------------


@contextmanager
def float32_newton_schulz(torch: Any) -> Iterator[None]:
    """torch's Muon with its Newton-Schulz in float32 (a copy, as its bfloat16 one is)."""
    import torch.optim._muon as muon_module

    source = inspect.getsource(muon_module._zeropower_via_newtonschulz)
    patched: dict[str, Any] = {}
    exec(source.replace("grad.bfloat16()", "grad.float().clone()"), muon_module.__dict__, patched)
    original = muon_module._zeropower_via_newtonschulz
    muon_module._zeropower_via_newtonschulz = patched["_zeropower_via_newtonschulz"]
    try:
        yield
    finally:
        muon_module._zeropower_via_newtonschulz = original


LIVE: list[dict[str, Any]] = [
    {},
    dict(lr=0.02, nesterov=False, weight_decay=0.01),
    dict(lr=0.01, momentum=0.5, adjust_lr_fn="match_rms_adamw"),
    dict(lr=0.03, adjust_lr_fn="original", ns_steps=3, ns_coefficients=(3.0, -3.2, 1.2), eps=1e-5),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("options", LIVE, ids=[str(i) for i in range(len(LIVE))])
def test_matches_installed_torch(options: dict[str, Any], dtype: Any) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    shapes = [(12, 5), (6, 20), (9, 9)]
    initial = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = [p.copy() for p in initial]
    theirs = [torch.nn.Parameter(torch.tensor(p.copy())) for p in initial]
    # Two groups, the second with options of its own.
    opt = Muon([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.07}], **options)
    ref = torch.optim.Muon([{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.07}], **options)
    with float32_newton_schulz(torch):
        for step in range(20):
            grads = [None if (step % 4 == 3 and i == 0) else rng.standard_normal(s).astype(dtype)
                     for i, s in enumerate(shapes)]
            for p, g in zip(theirs, grads):
                p.grad = None if g is None else torch.tensor(g)
            ref.step()
            opt.step(grads)
    for ours_p, theirs_p in zip(ours, theirs):
        np.testing.assert_allclose(ours_p, theirs_p.detach().numpy(), **F32)
    for i, p in enumerate(ours):
        np.testing.assert_allclose(opt.state[p]["momentum_buffer"],
                                   ref.state[theirs[i]]["momentum_buffer"].numpy(), **F32)


def test_stock_torch_agrees_to_bfloat16_precision() -> None:
    """torch itself runs Newton-Schulz in bfloat16: one step agrees to bfloat16's rounding."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    initial = rng.standard_normal((16, 24)).astype(np.float32)
    grad = rng.standard_normal((16, 24)).astype(np.float32)
    ours = initial.copy()
    theirs = torch.nn.Parameter(torch.tensor(initial.copy()))
    theirs.grad = torch.tensor(grad)
    torch.optim.Muon([theirs], lr=0.02).step()
    Muon([ours], lr=0.02).step([grad])
    np.testing.assert_allclose(ours - initial, theirs.detach().numpy() - initial, rtol=0, atol=0.02 * 0.02)


def test_signature_and_defaults_are_torchs() -> None:
    ours = inspect.signature(Muon).parameters
    assert list(ours) == ["params", "lr", "weight_decay", "momentum", "nesterov", "ns_coefficients", "eps",
                          "ns_steps", "adjust_lr_fn"]
    assert {k: p.default for k, p in ours.items() if k != "params"} == dict(
        lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True, ns_coefficients=(3.4445, -4.7750, 2.0315),
        eps=1e-7, ns_steps=5, adjust_lr_fn=None)
    try:
        import torch
    except ImportError:
        return
    theirs = inspect.signature(torch.optim.Muon).parameters
    assert list(theirs) == list(ours)
    assert all(theirs[k].default == ours[k].default for k in ours if k != "params")


# -- the optimizer contract ---------------------------------------------------------------------


def test_state_is_torchs_momentum_buffer_only() -> None:
    rng = np.random.default_rng(6)
    w, v = rng.standard_normal((4, 6)), rng.standard_normal((5, 3))
    opt = Muon([w, v], lr=0.1, momentum=0.9)
    g = rng.standard_normal((4, 6))
    opt.step([g, None])
    assert list(opt.state) == [w]  # v had no grad: no state, as in torch
    assert list(opt.state[w]) == ["momentum_buffer"]
    np.testing.assert_array_equal(opt.state[w]["momentum_buffer"], (1 - 0.9) * g)
    assert opt.state[v] == {}
    saved = opt.state_dict()
    assert list(saved["state"]) == [0] and list(saved["state"][0]) == ["momentum_buffer"]
    assert saved["param_groups"][0]["ns_coefficients"] == (3.4445, -4.7750, 2.0315)


# -- bad input ----------------------------------------------------------------------------------


def snapshot(opt: Muon, arrays: list[np.ndarray]) -> list[bytes]:
    return [a.tobytes() for a in arrays] + [v.tobytes() for p in arrays for v in opt.state[p].values()]


@pytest.fixture
def stepped() -> tuple[Muon, list[np.ndarray]]:
    """An optimizer with state: two groups, the bad entry always last."""
    rng = np.random.default_rng(9)
    params = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (5, 2), (4, 4)]]
    opt = Muon([{"params": params[:2]}, {"params": params[2:]}], lr=0.1)
    opt.step([rng.standard_normal(p.shape).astype(np.float32) for p in params])
    return opt, params


def test_grad_sharing_a_momentum_buffer_is_rejected(stepped: tuple[Muon, list[np.ndarray]]) -> None:
    opt, params = stepped
    grads = [np.ones(p.shape, np.float32) for p in params[:-1]] + [opt.state[params[0]]["momentum_buffer"][:2, :2]]
    before = snapshot(opt, params)
    with pytest.raises(InvalidParamError):
        opt.step(grads)
    assert snapshot(opt, params) == before
    buffer = opt.state[params[-1]]["momentum_buffer"]
    grads[-1] = buffer
    with pytest.raises(InvalidParamError, match="shares memory with param_groups\\[1\\]\\['params'\\]\\[0\\]'s state"):
        opt.step(grads)
    assert snapshot(opt, params) == before


@pytest.mark.parametrize("shape", [(6,), (2, 3, 4), ()], ids=["1-D", "3-D", "0-D"])
def test_params_that_are_not_matrices_are_rejected(shape: tuple[int, ...]) -> None:
    good = np.zeros((2, 3))
    with pytest.raises(InvalidParamError) as info:
        Muon([good, np.zeros(shape)])
    assert f"param_groups[0]['params'][1] has shape {shape}" in str(info.value)
    assert "Muon only supports 2D parameters" in str(info.value)
    opt = Muon([good])
    with pytest.raises(ValueError, match="param_groups\\[1\\]\\['params'\\]\\[0\\]"):
        opt.add_param_group({"params": [np.zeros(shape)]})
    assert len(opt.param_groups) == 1
    opt.step([np.ones((2, 3))])
