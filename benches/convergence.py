"""Steps to reach a target loss, for every optrs optimizer (and torch's, when importable).

    python benches/convergence.py [--markdown]

Two problems: the Rosenbrock function from (-1.5, 2) (target f < 1e-4) and logistic regression
on scikit-learn's breast-cancer data set (569 samples, 30 standardised features; target: within
1e-3 of the loss L-BFGS-quality optimum found by 20,000 Adam steps). Each optimizer runs with the
same learning rate in optrs and torch, so equal step counts mean identical trajectories.
ScheduleFreeAdamW's loss is taken at its eval() point (the average x, where a model trained with
it is used), with train() before each step, as a user evaluating after every step would.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np

import optrs

try:
    import torch
except ImportError:  # torch is optional: the table then has only optrs's column
    torch = None

Problem = tuple[np.ndarray, Callable[[np.ndarray], tuple[float, np.ndarray]], float]
MAX_STEPS = 20_000

# (name, options on Rosenbrock, options on logistic regression): learning rates picked per
# optimizer and problem so that most converge; the same options are given to torch.
OPTIMIZERS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("SGD", dict(lr=1e-3, momentum=0.9), dict(lr=0.1, momentum=0.9)),
    ("Adagrad", dict(lr=0.1), dict(lr=0.1)),
    ("Adadelta", dict(lr=1.0), dict(lr=1.0)),
    ("RMSprop", dict(lr=3e-4), dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2), dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2), dict(lr=1e-2)),
    ("Adamax", dict(lr=2e-2), dict(lr=2e-2)),
    ("NAdam", dict(lr=1e-2), dict(lr=1e-2)),
    ("RAdam", dict(lr=1e-2), dict(lr=1e-2)),
    ("Rprop", dict(lr=1e-3), dict(lr=1e-3)),
    ("ASGD", dict(lr=1e-3), dict(lr=0.3)),
    ("Adafactor", dict(lr=1e-2), dict(lr=0.3)),
    ("Lion", dict(lr=1e-3), dict(lr=1e-3)),
    ("ADOPT", dict(lr=3e-2), dict(lr=3e-2)),
    # The problems' optimum has no weight decay of LAMB's kind (the logistic loss has its own L2).
    ("LAMB", dict(lr=3e-3, weight_decay=0.0), dict(lr=0.1, weight_decay=0.0)),
    ("ScheduleFreeAdamW", dict(lr=0.1), dict(lr=0.1)),
]


def rosenbrock() -> Problem:
    def loss_grad(xy: np.ndarray) -> tuple[float, np.ndarray]:
        x, y = np.clip(xy, -1e6, 1e6)  # a diverging run just never reaches the target
        loss = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        return float(loss), np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
    return np.array([-1.5, 2.0]), loss_grad, 1e-4


def logistic_regression() -> Problem:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    x = np.hstack([x, np.ones((len(x), 1))])
    y = data.target.astype(np.float64)

    def loss_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        loss = float(np.mean(np.logaddexp(0, z) - y * z) + 1e-3 * w @ w / 2)
        return loss, x.T @ (1 / (1 + np.exp(-z)) - y) / len(y) + 1e-3 * w

    w = np.zeros(x.shape[1])
    best = optrs.optim.Adam([w], lr=1e-2)
    for _ in range(MAX_STEPS):
        best.step([loss_grad(w)[1]])
    return np.zeros(x.shape[1]), loss_grad, loss_grad(w)[0] + 1e-3


def steps_optrs(name: str, options: dict[str, Any], problem: Problem) -> int | None:
    start, loss_grad, target = problem
    w = start.copy()
    opt = getattr(optrs.optim, name)([w], **options)
    # Schedule-Free trains at y but is used (and its loss taken) at x, where eval() puts the params.
    schedule_free = isinstance(opt, optrs.optim.ScheduleFreeAdamW)
    for step in range(MAX_STEPS):
        if schedule_free:
            opt.eval()
        loss, grad = loss_grad(w)
        if schedule_free:
            opt.train()
            grad = loss_grad(w)[1]
        if loss < target:
            return step
        opt.step([grad])
    return None


def steps_torch(name: str, options: dict[str, Any], problem: Problem) -> int | None:
    if torch is None or not hasattr(torch.optim, name):
        return None
    start, loss_grad, target = problem
    w = torch.nn.Parameter(torch.tensor(start.copy()))
    opt = getattr(torch.optim, name)([w], **options)
    for step in range(MAX_STEPS):
        loss, grad = loss_grad(w.detach().numpy())
        if loss < target:
            return step
        w.grad = torch.tensor(grad)
        opt.step()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table for the README")
    args = parser.parse_args()
    problems = {"Rosenbrock": rosenbrock(), "logistic regression": logistic_regression()}
    shown = lambda n: "-" if n is None else f"{n:,}"  # noqa: E731
    header = ["optimizer"] + [f"{p}: {who}" for p in problems for who in ("options", "optrs", "torch")]
    rows = []
    for name, *per_problem in OPTIMIZERS:
        row = [name]
        for options, problem in zip(per_problem, problems.values()):
            row += [", ".join(f"{k}={v}" for k, v in options.items()),
                    shown(steps_optrs(name, options, problem)),
                    shown(steps_torch(name, options, problem)) if hasattr(torch, "optim") and
                    hasattr(torch.optim, name) else "n/a"]
        rows.append(row)
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + " --- |" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    note = "torch not importable: no torch columns" if torch is None else f"torch {torch.__version__}"
    print(f"\nsteps until the loss is below the target (max {MAX_STEPS:,}; '-' = not reached, "
          f"n/a = torch lacks it); {note}")


if __name__ == "__main__":
    main()
