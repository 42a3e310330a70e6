"""Training-step throughput of the seed MNIST CNN (batch 64, forward + backward + Adam), optrs next
to torch on the same number of threads, with a per-kernel time breakdown of optrs's step.

    optrs bench cnn [--threads 2] [--steps 20] [--rounds 5] [--batch-size 64]

torch is optional: without it only optrs's figures print. The breakdown wraps every function of
``optrs.autograd.kernels`` (the Rust kernels, the linear layers' matmul included) and the optimizer
step with timers; "rest" is everything else in a step: the autograd graph in Python, dropout's
random masks, NumPy's elementwise ops.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import optrs
import optrs.autograd.kernels as kernels
import optrs.nn.functional as F
from optrs.examples.mnist import Net


def optrs_step_timer(batch_size: int, threads: int) -> tuple[Callable[[], None], dict[str, float]]:
    optrs.set_num_threads(threads)
    optrs.manual_seed(0)
    model = Net()
    opt = optrs.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch_size)
    spent: dict[str, float] = defaultdict(float)

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start
        return wrapper

    for name in dir(kernels):
        fn = getattr(kernels, name)
        if callable(fn) and not name.startswith("_") and getattr(fn, "__module__", "") != "typing":
            setattr(kernels, name, timed(name, fn))
    opt.step = timed("Adam step", opt.step)  # type: ignore[method-assign]

    def step() -> None:
        opt.zero_grad()
        loss = F.nll_loss(model(optrs.Tensor(x)), y)
        loss.backward()
        opt.step()
    return step, spent


def torch_step(batch_size: int, threads: int) -> Callable[[], None] | None:
    try:
        import torch
        import torch.nn as tnn
        import torch.nn.functional as TF
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)

    class TorchNet(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 32, 3, 1), tnn.Conv2d(32, 64, 3, 1)
            self.dropout1, self.dropout2 = tnn.Dropout(0.25), tnn.Dropout(0.5)
            self.fc1, self.fc2 = tnn.Linear(9216, 128), tnn.Linear(128, 10)

        def forward(self, x: Any) -> Any:
            x = TF.max_pool2d(TF.relu(self.conv2(TF.relu(self.conv1(x)))), 2)
            x = TF.relu(self.fc1(torch.flatten(self.dropout1(x), 1)))
            return TF.log_softmax(self.fc2(self.dropout2(x)), dim=1)

    model = TorchNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch_size, 1, 28, 28)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, batch_size))

    def step() -> None:
        opt.zero_grad()
        TF.nll_loss(model(x), y).backward()
        opt.step()
    return step


def time_steps(step: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="optrs bench cnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    batch = args.batch_size
    step, spent = optrs_step_timer(batch, args.threads)
    tstep = torch_step(batch, args.threads)
    for warm_up in (step, tstep) if tstep is not None else (step,):
        for _ in range(3):
            warm_up()
    # Rounds alternate optrs and torch, so that this shared machine's drifting load hits both
    # alike; the medians are reported, the ratio being the median of the rounds' ratios.
    ours_rounds, theirs_rounds = [], []
    for _ in range(args.rounds):
        ours_rounds.append(time_steps(step, args.steps))
        if tstep is not None:
            theirs_rounds.append(time_steps(tstep, args.steps))
    ours = statistics.median(ours_rounds)
    theirs = statistics.median(theirs_rounds) if theirs_rounds else None

    print(f"seed MNIST CNN, batch {batch}, forward + backward + Adam, {args.threads} threads, "
          f"optrs {optrs.__version__} ({optrs.simd_level()}); median of {args.rounds} rounds of {args.steps} steps")
    print("| | ms per step | samples/s | x torch |\n| --- | --- | --- | --- |")
    ratio = f"{statistics.median(t / o for o, t in zip(ours_rounds, theirs_rounds)):.2f}" if theirs else "-"
    print(f"| optrs | {ours * 1e3:.1f} | {batch / ours:,.0f} | {ratio} |")
    if theirs:
        import torch
        print(f"| torch {torch.__version__} | {theirs * 1e3:.1f} | {batch / theirs:,.0f} | 1.00 |")

    # The breakdown: one more timed run, its totals divided per step.
    spent.clear()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    total = (time.perf_counter() - start) / args.steps
    print(f"\noptrs per step ({total * 1e3:.1f} ms):\n| part | ms | share |\n| --- | --- | --- |")
    rows = sorted(((v / args.steps, k) for k, v in spent.items()), reverse=True)
    for seconds, name in rows:
        print(f"| {name} | {seconds * 1e3:.2f} | {seconds / total:.0%} |")
    rest = total - sum(s for s, _ in rows)
    print(f"| rest (autograd in Python, dropout, NumPy elementwise) | {rest * 1e3:.2f} | {rest / total:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
