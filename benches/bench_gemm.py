"""GFLOP/s of optrs's matrix product (`optrs._core.matmul`, the `gemm` crate on optrs's pool) next to
NumPy's BLAS, on the seed CNN's per-sample convolution products, its linear layers and a square
product; best of `--repeats` calls each.

    python benches/bench_gemm.py [--threads 1] [--repeats 30]

NumPy's BLAS gets the same thread count (through threadpoolctl when it is installed, else the
OPENBLAS_NUM_THREADS the caller set).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

import optrs
from optrs import _core

SHAPES = [  # (m, k, n): what they are
    ((64, 288, 576), "conv2 forward, per sample"),
    ((288, 64, 576), "conv2 input gradient, per sample"),
    ((64, 576, 288), "conv2 weight gradient, per sample"),
    ((64, 9216, 128), "fc1 forward, batch 64"),
    ((64, 128, 9216), "fc1 input gradient"),
    ((512, 512, 512), "square"),
]


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args()
    optrs.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    except ImportError:
        pass
    rng = np.random.default_rng(0)
    print(f"{args.dtype}, {args.threads} thread(s), optrs {optrs.__version__} ({optrs.simd_level()})")
    print("| m x k x n | what | optrs GFLOP/s | NumPy GFLOP/s | optrs / NumPy |\n| --- | --- | --- | --- | --- |")
    for (m, k, n), what in SHAPES:
        a = rng.standard_normal((m, k)).astype(args.dtype)
        b = rng.standard_normal((k, n)).astype(args.dtype)
        flops = 2 * m * k * n
        ours = best_seconds(lambda a=a, b=b: _core.matmul(a, b, False, False), args.repeats)
        theirs = best_seconds(lambda a=a, b=b: a @ b, args.repeats)
        print(f"| {m} x {k} x {n} | {what} | {flops / ours / 1e9:.0f} | {flops / theirs / 1e9:.0f} | "
              f"{theirs / ours:.2f} |")


if __name__ == "__main__":
    main()
