"""pytest-benchmark timings of optrs Adam on the three cases of optrs.benchmarks.adam (optrs bench), and of its
NumPy Adam on case (b).

Skipped by default (pyproject's addopts has --benchmark-skip); run them with
    pytest tests/test_bench_adam.py --benchmark-only
They assert nothing about time: optrs.benchmarks.adam (optrs bench) compares with the C yardsticks and judges
the targets. The one plain test checks that the NumPy baseline computes Adam at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import optrs
from optrs.benchmarks import adam as bench_adam

WARMUP_STEPS = 5  # page faults and thread-pool start-up belong to no step


def run(benchmark: BenchmarkFixture, case: str, make: Callable[[Sequence[int]], Callable[[], Any]]) -> None:
    step = make(bench_adam.CASES[case])
    for _ in range(WARMUP_STEPS):
        step()
    benchmark.group = bench_adam.CASE_LABELS[case]
    benchmark.extra_info["elements"] = sum(bench_adam.CASES[case])
    benchmark(step)


@pytest.mark.bench
@pytest.mark.parametrize("case", ["a", "b", "c"])
def test_optrs_adam(benchmark: BenchmarkFixture, case: str) -> None:
    run(benchmark, case, bench_adam.optrs_adam)


@pytest.mark.bench
def test_numpy_adam_b(benchmark: BenchmarkFixture) -> None:
    run(benchmark, "b", bench_adam.numpy_adam)


def test_numpy_baseline_matches_optrs() -> None:
    params, grads = bench_adam.make_arrays([7, 300])
    ours = [p.copy() for p in params]
    reference = optrs.optim.Adam(ours, lr=bench_adam.LR)
    baseline = bench_adam.NumpyAdam(params)
    for _ in range(5):
        reference.step(grads)
        baseline.step(grads)
    for got, want in zip(params, ours):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
