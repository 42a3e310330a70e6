"""optrs.nn.functional against the installed torch on options the layer_* reference files do not
cover: forward values and the gradients of every float input, float64 (rtol 1e-9) and float32
(rtol 2e-5), the tolerances torch's own CPU kernels meet against the reference files.

Runs only where torch is importable; tests/reference/ holds the always-on layer files."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import optrs
import optrs.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOLERANCE = {np.float64: dict(rtol=1e-9, atol=1e-12), np.float32: dict(rtol=2e-5, atol=1e-5)}


def targets(n: int, classes: int, ignore: bool = False) -> np.ndarray:
    t = np.random.default_rng(1).integers(0, classes, n).astype(np.int64)
    if ignore:
        t[::3] = -100
    return t


# (op name, float input shapes, extra non-differentiable inputs, kwargs); kwargs holding arrays go
# to torch as tensors.
CASES: list[tuple[str, list[tuple[int, ...]], list[Any], dict[str, Any]]] = [
    ("conv2d", [(2, 4, 9, 8), (6, 2, 3, 2), (6,)], [], dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)),
    ("conv2d", [(2, 3, 7, 7), (4, 3, 3, 3)], [], dict(padding="same", dilation=2)),
    ("conv2d", [(1, 2, 6, 5), (3, 2, 1, 1), (3,)], [], dict(stride=2)),
    ("conv2d", [(2, 2, 6, 6), (4, 2, 4, 4), (4,)], [], dict(padding="valid")),
    ("max_pool2d", [(2, 3, 9, 8)], [], dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("max_pool2d", [(2, 3, 9, 8)], [], dict(kernel_size=(2, 3), dilation=(2, 1))),
    ("max_pool2d", [(2, 3, 8, 8)], [], dict(kernel_size=2)),
    ("max_pool2d", [(1, 2, 7, 9)], [], dict(kernel_size=2, ceil_mode=True)),
    ("avg_pool2d", [(2, 3, 9, 8)], [],
     dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg_pool2d", [(2, 3, 9, 8)], [], dict(kernel_size=(2, 3), divisor_override=5)),
    ("linear", [(3, 4, 7), (5, 7)], [], {}),
    ("linear", [(7,), (5, 7), (5,)], [], {}),
    ("log_softmax", [(4, 5, 3)], [], dict(dim=1)),
    ("softmax", [(4, 6)], [], dict(dim=0)),
    ("nll_loss", [(6, 5)], [targets(6, 5, ignore=True)], dict(weight=np.linspace(0.5, 2, 5), reduction="mean")),
    ("nll_loss", [(6, 5)], [targets(6, 5)], dict(reduction="sum", ignore_index=2)),
    ("nll_loss", [(2, 4, 3, 3)], [targets(18, 4).reshape(2, 3, 3)], dict(reduction="none")),
    ("cross_entropy", [(6, 5)], [targets(6, 5, ignore=True)], dict(label_smoothing=0.1, weight=np.linspace(0.5, 2, 5))),
    ("cross_entropy", [(6, 5)], [targets(6, 5)], dict(label_smoothing=0.3, reduction="sum")),
    ("cross_entropy", [(2, 4, 3, 3)], [targets(18, 4).reshape(2, 3, 3)], dict(reduction="none")),
    ("mse_loss", [(4, 3), (4, 3)], [], dict(reduction="sum")),
    ("mse_loss", [(4, 3), (4, 3)], [], dict(reduction="none")),
    ("layer_norm", [(3, 4, 5), (4, 5), (4, 5)], [], dict(eps=1e-3)),
    ("relu", [(3, 4)], [], {}),
    ("sigmoid", [(3, 4)], [], {}),
    ("tanh", [(3, 4)], [], {}),
]


def call(op: str, lib: Any, floats: list[Any], extra: list[Any], kwargs: dict[str, Any]) -> Any:
    if op == "layer_norm":
        x, w, b = floats
        return lib.layer_norm(x, tuple(w.shape), w, b, **kwargs)
    if op == "nll_loss":
        (x,) = floats
        return lib.nll_loss(lib.log_softmax(x, 1), *extra, **kwargs)
    fn = getattr(lib, op) if lib is F or op not in ("sigmoid", "tanh") else getattr(torch, op)
    return fn(*floats, *extra, **kwargs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[3]}")
def test_functional_matches_torch(case: Any, dtype: Any) -> None:
    op, shapes, extra, kwargs = case
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = [optrs.Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    our_kwargs = {k: v.astype(dtype) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    their_kwargs = {k: torch.tensor(v) for k, v in our_kwargs.items() if isinstance(v, np.ndarray)}
    their_kwargs = {**kwargs, **their_kwargs}
    y = call(op, F, ours, extra, our_kwargs)
    ty = call(op, TF, theirs, [torch.tensor(e) for e in extra], their_kwargs)
    tol = TOLERANCE[dtype]
    assert y.data.dtype == dtype
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **tol, err_msg="forward")
    gy = rng.standard_normal(ty.shape).astype(dtype)
    y.backward(gy)
    ty.backward(torch.tensor(gy))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), **tol, err_msg=f"gradient of input {i}")
