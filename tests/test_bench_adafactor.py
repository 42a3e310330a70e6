"""pytest-benchmark timings of one Adafactor step on a 4096 x 4096 float32 matrix: optrs against
a NumPy implementation of torch's algorithm (float32, in place, torch's order of operations).

Skipped by default (pyproject's addopts has --benchmark-skip); run them with
    pytest tests/test_bench_adafactor.py --benchmark-only
They assert nothing about time. The one plain test checks that the NumPy implementation computes
Adafactor at all.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from pytest_benchmark.fixture import BenchmarkFixture

from optrs.optim import Adafactor

SHAPE = (4096, 4096)
WARMUP_STEPS = 3  # page faults and thread-pool start-up belong to no step


class NumpyAdafactor:
    """torch's ``_single_tensor_adafactor`` for one matrix with default options, in NumPy."""

    def __init__(self, param: NDArray[np.float32], lr: float = 1e-2) -> None:
        self.param, self.lr, self.step_count = param, lr, 0
        self.row_var = np.zeros(param.shape[:-1] + (1,), param.dtype)
        self.col_var = np.zeros(param.shape[:-2] + (1, param.shape[-1]), param.dtype)
        self.eps1 = float(np.finfo(param.dtype).eps)

    def step(self, grad: NDArray[np.float32]) -> None:
        p, dtype = self.param, self.param.dtype
        self.step_count += 1
        t = float(self.step_count)
        weight = dtype.type(t ** -0.8)
        rho = min(self.lr, 1 / t ** 0.5)
        alpha = max(1e-3, float(np.linalg.norm(p)) / p.size ** 0.5) * rho
        for var, axis in ((self.row_var, -1), (self.col_var, -2)):
            mean = np.square(np.linalg.norm(grad, axis=axis, keepdims=True)) / dtype.type(grad.shape[axis])
            var += weight * (mean - var)
        estimate = self.row_var @ self.col_var
        estimate /= np.maximum(self.row_var.mean(-2, keepdims=True), dtype.type(self.eps1))
        np.maximum(estimate, dtype.type(self.eps1 * self.eps1), out=estimate)
        update = np.reciprocal(np.sqrt(estimate, out=estimate), out=estimate)
        update *= grad
        denom = max(1.0, float(np.linalg.norm(update)) / update.size ** 0.5)
        update *= dtype.type(-alpha / denom)
        p += update


def arrays() -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    rng = np.random.default_rng(0)
    return rng.standard_normal(SHAPE, np.float32), rng.standard_normal(SHAPE, np.float32)


def run(benchmark: BenchmarkFixture, step: object) -> None:
    assert callable(step)
    for _ in range(WARMUP_STEPS):
        step()
    benchmark.group = "Adafactor 4096x4096 float32"
    benchmark.extra_info["elements"] = SHAPE[0] * SHAPE[1]
    benchmark(step)


@pytest.mark.bench
def test_optrs_adafactor(benchmark: BenchmarkFixture) -> None:
    param, grad = arrays()
    opt = Adafactor([param])
    run(benchmark, lambda: opt.step([grad]))


@pytest.mark.bench
def test_numpy_adafactor(benchmark: BenchmarkFixture) -> None:
    param, grad = arrays()
    opt = NumpyAdafactor(param)
    run(benchmark, lambda: opt.step(grad))


def test_numpy_implementation_matches_optrs() -> None:
    rng = np.random.default_rng(1)
    initial = rng.standard_normal((37, 53), np.float32)
    params = [initial.copy(), initial.copy()]
    ours, baseline = Adafactor([params[0]]), NumpyAdafactor(params[1])
    for _ in range(5):
        grad = rng.standard_normal((37, 53), np.float32)
        ours.step([grad])
        baseline.step(grad)
    np.testing.assert_allclose(params[0], params[1], rtol=1e-5, atol=1e-6)
