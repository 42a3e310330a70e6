"""Fits a small two-layer network (NumPy forward and backward) with every optrs optimizer and
prints the loss curves side by side: the main job until the CNN example lands.

    python -m optrs.examples.fit_demo [--steps 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

import optrs

Array = NDArray[np.float32]

# Each optimizer with options a practitioner would pick for this problem.
OPTIMIZERS: dict[str, tuple[type[optrs.optim.Optimizer], dict[str, Any]]] = {
    "SGD": (optrs.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    "Adagrad": (optrs.optim.Adagrad, dict(lr=0.05)),
    "Adadelta": (optrs.optim.Adadelta, dict(lr=1.0)),
    "RMSprop": (optrs.optim.RMSprop, dict(lr=3e-3)),
    "Adam": (optrs.optim.Adam, dict(lr=1e-2)),
    "AdamW": (optrs.optim.AdamW, dict(lr=1e-2, weight_decay=1e-2)),
}


def make_data(rng: np.random.Generator, n: int = 2000, features: int = 20,
              classes: int = 4) -> tuple[Array, NDArray[np.int64]]:
    """A nonlinear teacher: classes from a random two-layer network, so a linear model cannot fit it."""
    x = rng.standard_normal((n, features)).astype(np.float32)
    hidden = np.tanh(x @ rng.standard_normal((features, 16)))
    y = np.argmax(hidden @ rng.standard_normal((16, classes)), axis=1)
    return x, y


def init_params(rng: np.random.Generator, features: int, hidden: int, classes: int) -> list[Array]:
    def uniform(fan_in: int, shape: tuple[int, ...]) -> Array:
        bound = 1 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)
    return [uniform(features, (features, hidden)), uniform(features, (hidden,)),
            uniform(hidden, (hidden, classes)), uniform(hidden, (classes,))]


def loss_and_grads(params: list[Array], x: Array, y: NDArray[np.int64]) -> tuple[float, list[Array], float]:
    """Cross-entropy of softmax(relu(x W1 + b1) W2 + b2), its gradients and the accuracy."""
    w1, b1, w2, b2 = params
    pre = x @ w1 + b1
    h = np.maximum(pre, 0)
    logits = h @ w2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    n = len(y)
    loss = float(-log_probs[np.arange(n), y].mean())
    d_logits = np.exp(log_probs)
    d_logits[np.arange(n), y] -= 1
    d_logits /= n
    d_h = (d_logits @ w2.T) * (pre > 0)
    grads = [x.T @ d_h, d_h.sum(axis=0), h.T @ d_logits, d_logits.sum(axis=0)]
    accuracy = float((log_probs.argmax(axis=1) == y).mean())
    return loss, [g.astype(np.float32) for g in grads], accuracy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x, y = make_data(rng)
    start = init_params(rng, x.shape[1], 64, int(y.max()) + 1)
    print(f"optrs {optrs.__version__} ({optrs.simd_level()}, {optrs.get_num_threads()} threads): "
          f"fitting a 20-64-{int(y.max()) + 1} network on {len(y)} samples, {args.steps} full-batch steps\n")

    checkpoints = sorted({0, *range(args.steps // 6, args.steps, args.steps // 6), args.steps - 1})
    curves: dict[str, list[float]] = {}
    summary: list[str] = []
    for name, (cls, options) in OPTIMIZERS.items():
        params = [p.copy() for p in start]
        opt = cls(params, **options)
        losses = []
        began = time.perf_counter()
        for _ in range(args.steps):
            loss, grads, accuracy = loss_and_grads(params, x, y)
            opt.step(grads)  # params change in place
            losses.append(loss)
        elapsed = time.perf_counter() - began
        curves[name] = [losses[c] for c in checkpoints]
        options_text = ", ".join(f"{k}={v}" for k, v in options.items())
        summary.append(f"{name:9s} {options_text:36s} final loss {losses[-1]:.4f}  accuracy {accuracy:.3f}"
                       f"  ({elapsed * 1e3 / args.steps:.2f} ms/step incl. NumPy forward/backward)")

    print("loss by step")
    print(f"{'step':>6s} " + " ".join(f"{n:>9s}" for n in curves))
    for row, step in enumerate(checkpoints):
        print(f"{step + 1:6d} " + " ".join(f"{curves[n][row]:9.4f}" for n in curves))
    print()
    print("\n".join(summary))


if __name__ == "__main__":
    main()
