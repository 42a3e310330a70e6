"""Speed of the NN kernels (optrs._core) on the MNIST CNN's shapes at batch 64, against torch's.

    python benches/bench_nn_kernels.py [--threads N] [--batch B] [--repeats R] [--dtype float32]

The model: conv 1->32 3x3 on 28x28, ReLU, conv 32->64 3x3 on 26x26, ReLU, max-pool 2, linear
9216->128, ReLU, linear 128->10, log_softmax + NLL. Each kernel's time is the median of R calls
after a warm-up. When `import torch` works, torch.nn.functional's (and torch.ops.aten's backward)
run on the same arrays with torch.set_num_threads(N). The last lines add up the kernels of one
forward + backward pass of the model (the linear layers as NumPy matmuls for optrs) and turn the
total into samples per second, a ceiling for a whole training step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import optrs
from optrs import _core

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def cases(batch: int, dtype: Any) -> list[tuple[str, Callable[[], Any], Callable[[], Any] | None]]:
    rng = np.random.default_rng(0)

    def randn(*shape: int) -> Any:
        return rng.standard_normal(shape).astype(dtype)

    x1, w1, b1 = randn(batch, 1, 28, 28), randn(32, 1, 3, 3), randn(32)
    x2, w2, b2 = randn(batch, 32, 26, 26), randn(64, 32, 3, 3), randn(64)
    gy1, gy2 = randn(batch, 32, 26, 26), randn(batch, 64, 24, 24)
    pool_in = randn(batch, 64, 24, 24)
    pooled, indices = _core.max_pool2d(pool_in, 2, 2, 0, 1, False)
    gp = randn(*pooled.shape)
    flat, wl1, wl2 = randn(batch, 9216), randn(128, 9216), randn(10, 128)
    gh, go = randn(batch, 128), randn(batch, 10)
    h = randn(batch, 128)
    logits = randn(batch, 10)
    target = rng.integers(0, 10, batch).astype(np.int64)
    logp = _core.log_softmax(logits)
    ones = np.ones((), dtype)
    relu_y = _core.relu(gy2)
    one, zero = (1, 1), (0, 0)

    ours: list[tuple[str, Callable[[], Any]]] = [
        ("conv1 forward", lambda: _core.conv2d(x1, w1, b1, one, zero, one, 1)),
        ("conv1 backward (w, b)", lambda: _core.conv2d_backward(x1, w1, gy1, one, zero, one, 1, False, True, True)),
        ("conv2 forward", lambda: _core.conv2d(x2, w2, b2, one, zero, one, 1)),
        ("conv2 backward (x, w, b)", lambda: _core.conv2d_backward(x2, w2, gy2, one, zero, one, 1, True, True, True)),
        ("conv2 backward x only", lambda: _core.conv2d_backward(x2, w2, gy2, one, zero, one, 1, True, False, False)),
        ("conv2 backward w only", lambda: _core.conv2d_backward(x2, w2, gy2, one, zero, one, 1, False, True, False)),
        ("relu (N,64,24,24)", lambda: _core.relu(gy2)),
        ("relu backward", lambda: _core.relu_backward(gy2, relu_y)),
        ("max_pool2d 2", lambda: _core.max_pool2d(pool_in, 2, 2, 0, 1, False)),
        ("max_pool2d backward", lambda: _core.max_pool2d_backward(gp, indices, pool_in.shape)),
        ("linear1 forward (NumPy)", lambda: flat @ wl1.T),
        ("linear1 backward (NumPy)", lambda: (gh @ wl1, gh.T @ flat)),
        ("linear2 fwd+bwd (NumPy)", lambda: (h @ wl2.T, go @ wl2, go.T @ h)),
        ("log_softmax + backward", lambda: _core.log_softmax_backward(go, _core.log_softmax(logits))),
        ("nll_loss + backward", lambda: (_core.nll_loss(logp, target, None, -100, "mean"),
                                         _core.nll_loss_backward(ones, target, None, -100, "mean", float(batch), 10))),
    ]
    theirs: dict[str, Callable[[], Any]] = {}
    if torch is not None:
        t = {k: torch.from_numpy(v) for k, v in dict(
            x1=x1, w1=w1, b1=b1, x2=x2, w2=w2, b2=b2, gy1=gy1, gy2=gy2, pool_in=pool_in, gp=gp,
            flat=flat, wl1=wl1, wl2=wl2, gh=gh, go=go, h=h, logits=logits, target=target, logp=logp,
            relu_y=relu_y).items()}
        aten = torch.ops.aten
        _, tidx = F.max_pool2d(t["pool_in"], 2, return_indices=True)
        conv_bwd = aten.convolution_backward
        theirs = {
            "conv1 forward": lambda: F.conv2d(t["x1"], t["w1"], t["b1"]),
            "conv1 backward (w, b)": lambda: conv_bwd(t["gy1"], t["x1"], t["w1"], [32], [1, 1], [0, 0], [1, 1],
                                                      False, [0, 0], 1, [False, True, True]),
            "conv2 forward": lambda: F.conv2d(t["x2"], t["w2"], t["b2"]),
            "conv2 backward (x, w, b)": lambda: conv_bwd(t["gy2"], t["x2"], t["w2"], [64], [1, 1], [0, 0], [1, 1],
                                                         False, [0, 0], 1, [True, True, True]),
            "conv2 backward x only": lambda: conv_bwd(t["gy2"], t["x2"], t["w2"], [64], [1, 1], [0, 0], [1, 1],
                                                      False, [0, 0], 1, [True, False, False]),
            "conv2 backward w only": lambda: conv_bwd(t["gy2"], t["x2"], t["w2"], [64], [1, 1], [0, 0], [1, 1],
                                                      False, [0, 0], 1, [False, True, False]),
            "relu (N,64,24,24)": lambda: torch.relu(t["gy2"]),
            "relu backward": lambda: aten.threshold_backward(t["gy2"], t["relu_y"], 0),
            "max_pool2d 2": lambda: F.max_pool2d(t["pool_in"], 2, return_indices=True),
            "max_pool2d backward": lambda: aten.max_pool2d_with_indices_backward(
                t["gp"], t["pool_in"], [2, 2], [2, 2], [0, 0], [1, 1], False, tidx),
            "linear1 forward (NumPy)": lambda: F.linear(t["flat"], t["wl1"]),
            "linear1 backward (NumPy)": lambda: (t["gh"] @ t["wl1"], t["gh"].T @ t["flat"]),
            "linear2 fwd+bwd (NumPy)": lambda: (F.linear(t["h"], t["wl2"]), t["go"] @ t["wl2"], t["go"].T @ t["h"]),
            "log_softmax + backward": lambda: aten._log_softmax_backward_data(
                t["go"], F.log_softmax(t["logits"], 1), 1, t["logits"].dtype),
            "nll_loss + backward": lambda: aten.nll_loss_backward(
                torch.ones((), dtype=t["logp"].dtype), t["logp"], t["target"], None, 1, -100,
                F.nll_loss(t["logp"], t["target"])),
        }
    return [(name, fn, theirs.get(name)) for name, fn in ours]


# The kernels of one forward + backward pass of the model (conv1 needs no input gradient).
MODEL = ["conv1 forward", "conv1 backward (w, b)", "conv2 forward", "conv2 backward (x, w, b)",
         "relu (N,64,24,24)", "relu backward", "max_pool2d 2", "max_pool2d backward",
         "linear1 forward (NumPy)", "linear1 backward (NumPy)", "linear2 fwd+bwd (NumPy)",
         "log_softmax + backward", "nll_loss + backward"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = parser.parse_args()
    optrs.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, {args.dtype}, {args.threads} threads, optrs {optrs.__version__} "
          f"({optrs.simd_level()}), torch {torch.__version__ if torch is not None else 'not found'}")
    print(f"{'kernel':28} {'optrs ms':>9} {'torch ms':>9} {'torch/optrs':>11}")
    totals = [0.0, 0.0]
    for name, ours, theirs in cases(args.batch, np.dtype(args.dtype)):
        ours_ms = median_ms(ours, args.repeats)
        theirs_ms = median_ms(theirs, args.repeats) if theirs is not None else float("nan")
        if name in MODEL:
            totals[0] += ours_ms
            totals[1] += theirs_ms
        print(f"{name:28} {ours_ms:9.3f} {theirs_ms:9.3f} {theirs_ms / ours_ms:11.2f}")
    rates = [1e3 * args.batch / total for total in totals]
    print(f"{'model fwd+bwd kernels':28} {totals[0]:9.3f} {totals[1]:9.3f} {totals[1] / totals[0]:11.2f}")
    print(f"{'  as samples/s':28} {rates[0]:9.0f} {rates[1]:9.0f}")


if __name__ == "__main__":
    main()
