"""Checkpoints: ``optrs.save`` / ``optrs.load`` round trips, exact resumption of training, atomic
writes under SIGKILL, and clear errors for corrupt or mismatched files."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

import optrs
import optrs.nn as nn
import optrs.nn.functional as F
from optrs.checkpoint import FORMAT, FORMAT_VERSION
from optrs.optim.lr_scheduler import StepLR


def _assert_same(a: Any, b: Any, where: str = "obj") -> None:
    """Equal trees, with arrays equal bit for bit (dtype and shape included) and NaN equal to NaN."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b), where
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert np.float64(a).tobytes() == np.float64(b).tobytes(), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, where


def test_round_trip_of_dtypes_and_python_values(tmp_path: Path) -> None:
    obj = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "f64": np.array([-0.0, 1e-310, np.nan, np.inf, -np.inf]),
        "i64": np.array([-(2**63), 2**63 - 1], np.int64),
        "bool": np.array([[True, False]]),
        "zero_d": np.array(3.5, np.float32),
        "zero_d_bool": np.array(False),
        "empty": np.zeros((0, 4), np.int32),
        "small": [np.array([1, 2], np.uint8), np.array([0.5], np.float16), np.array([1 + 2j], np.complex64)],
        "strided": np.arange(12.0).reshape(3, 4)[:, ::2],
        "big_endian": np.array([1.5, 2.5], dtype=">f8"),
        "scalars": (np.float32(1.25), np.int64(7), np.bool_(True), np.float64(np.nan)),
        "nested": [1, [2, (3, None, "x")], (), [], {}, ("é ∑ 😀", -5, 2**100, -(2**64), 0.1)],
        "floats": [float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 5e-324, 2.0**53 + 2],
        "none": None,
        "flags": [True, False],
        "int_keys": {0: {"step": np.array(3.0)}, 1: "b", -2: None, 2**70: "huge"},
        "mixed_keys": {(1, "a"): 1, None: 2, 1.5: 3, True: 4, "s": 5},
    }
    path = tmp_path / "values.optrs"
    optrs.save(obj, path)
    loaded = optrs.load(path)
    expected = dict(obj)
    expected["strided"] = np.ascontiguousarray(obj["strided"])
    expected["big_endian"] = obj["big_endian"].astype("<f8")
    _assert_same(expected, loaded)
    assert all(a.flags.writeable for a in (loaded["f32"], loaded["zero_d"]))
    assert loaded["zero_d"].shape == () and isinstance(loaded["scalars"][0], np.float32)
    assert os.listdir(tmp_path) == ["values.optrs"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_any_root_value_and_ordered_dict(tmp_path: Path) -> None:
    for value in (None, 3, "text", [1.5], np.arange(3), OrderedDict([("b", 1), ("a", np.ones(2))])):
        optrs.save(value, str(tmp_path / "root.optrs"))
        expected = dict(value) if isinstance(value, OrderedDict) else value
        _assert_same(expected, optrs.load(str(tmp_path / "root.optrs")))


def test_arrays_named_by_their_path(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    model = nn.Linear(3, 2)
    opt = optrs.optim.Adam(model.parameters())
    model(optrs.tensor(np.ones((2, 3), np.float32))).sum().backward()
    opt.step()
    path = tmp_path / "named.optrs"
    optrs.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    names = set(load_file(path))
    assert {"model/weight", "model/bias", "optimizer/state/0/exp_avg", "optimizer/state/1/step"} <= names


def test_unsupported_values_are_refused_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "bad.optrs"
    cases = [
        ({"a": {"b": np.array(["text"])}}, r"obj\[a\]\[b\].*dtype <U4"),
        ({"c": np.array([1j])}, "complex128"),
        ({"o": np.array([None], dtype=object)}, "dtype object"),
        ({"s": {1, 2}}, "a set"),
        ({"f": [len]}, r"obj\[f\]\[0\], a builtin_function_or_method"),
        ({np.int64(1): 2}, "holds a NumPy value"),
    ]
    for obj, message in cases:
        with pytest.raises(optrs.CheckpointError, match=message):
            optrs.save(obj, path)
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        optrs.save({}, tmp_path / "missing_dir" / "x.optrs")


def _build() -> tuple[nn.Module, optrs.optim.Adam, StepLR]:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.3),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 5), nn.ReLU(), nn.Dropout(0.2), nn.Linear(5, 3))
    opt = optrs.optim.Adam(model.parameters(), lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-3)
    return model, opt, StepLR(opt, step_size=3, gamma=0.5)


def _train(model: nn.Module, opt: optrs.optim.Adam, scheduler: StepLR, steps: int) -> None:
    for _ in range(steps):
        images = np.random.rand(6, 1, 8, 8).astype(np.float32)  # NumPy's global generator
        labels = np.random.randint(0, 3, size=6)
        opt.zero_grad()
        F.cross_entropy(model(optrs.tensor(images)), labels).backward()  # dropout: optrs's generator
        opt.step()
        scheduler.step()


def test_resumed_training_equals_uninterrupted_bit_for_bit(tmp_path: Path) -> None:
    steps = 4
    optrs.manual_seed(0)
    np.random.seed(0)
    model, opt, scheduler = _build()
    _train(model, opt, scheduler, 2 * steps)
    uninterrupted = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": scheduler.state_dict()}

    optrs.manual_seed(0)
    np.random.seed(0)
    model, opt, scheduler = _build()
    _train(model, opt, scheduler, steps)
    path = tmp_path / "run.optrs"
    optrs.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": optrs.get_rng_state(), "step": steps}, path)
    del model, opt, scheduler

    optrs.manual_seed(123)  # a fresh process would start from other generator states
    np.random.seed(123)
    model, opt, scheduler = _build()
    checkpoint = optrs.load(path)
    model.load_state_dict(checkpoint["model"])
    opt.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    optrs.set_rng_state(checkpoint["rng"])
    assert checkpoint["step"] == steps
    _train(model, opt, scheduler, steps)
    resumed = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": scheduler.state_dict()}
    _assert_same(dict(uninterrupted["model"]), dict(resumed["model"]))
    _assert_same(uninterrupted["optimizer"], resumed["optimizer"])
    _assert_same(uninterrupted["scheduler"], resumed["scheduler"])
    assert scheduler.get_last_lr() == [1e-2 * 0.5 ** (2 * steps // 3)]


_WRITER = """
import sys
import numpy as np
import optrs
path, version = sys.argv[1], int(sys.argv[2])
while True:
    optrs.save({"version": version, "weights": np.full(3_000_000, version, np.float64),
                "optimizer": {"state": {0: {"exp_avg": np.full(1_000_000, -version, np.float32)}}}}, path)
    print(version, flush=True)
    version += 1
"""


def _temporary_files(directory: Path) -> list[Path]:
    """Hidden files: save's temporary ``.NAME.PID.HEX.tmp``."""
    return [p for p in directory.iterdir() if p.name.startswith(".")]


def test_sigkill_mid_save_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.optrs"
    version = 0
    killed_saves = 0
    for delay in (0.0, 0.002, 0.005, 0.02):
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(version)], stdout=subprocess.PIPE,
                                  text=True)
        assert writer.stdout is not None
        try:
            completed = int(writer.stdout.readline())  # at least one whole save in this round
            before = set(_temporary_files(tmp_path))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not set(_temporary_files(tmp_path)) - before:
                pass  # kill once the next save has created its temporary file (and a little later)
            time.sleep(delay)
        finally:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait()
        completed = max([completed, *map(int, writer.stdout.read().split())])
        writer.stdout.close()

        checkpoint = optrs.load(path)
        assert checkpoint["version"] in (completed, completed + 1)  # killed after the rename, before the print
        assert (checkpoint["weights"] == checkpoint["version"]).all()
        assert (checkpoint["optimizer"]["state"][0]["exp_avg"] == -checkpoint["version"]).all()
        assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["ckpt.optrs"]
        leftovers = set(_temporary_files(tmp_path)) - before
        killed_saves += bool(leftovers)
        for leftover in leftovers:  # empty, half written or whole: never taken for the checkpoint
            with contextlib.suppress(optrs.CheckpointError):
                optrs.load(leftover)
        version = checkpoint["version"] + 1
    assert killed_saves > 0, "no save was killed between creating its temporary file and renaming it"


def _valid_file(tmp_path: Path) -> Path:
    path = tmp_path / "valid.optrs"
    optrs.save({"w": np.arange(100.0), "meta": {"epoch": 3}}, path)
    return path


def _raw(tmp_path: Path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None) -> Path:
    path = tmp_path / "raw.optrs"
    save_file(arrays, str(path), metadata=metadata)
    return path


def test_corrupt_files_raise_checkpoint_error_naming_the_path(tmp_path: Path) -> None:
    data = _valid_file(tmp_path).read_bytes()
    corrupt = tmp_path / "corrupt.optrs"
    cases = [
        (data[: len(data) // 2], "truncated"),
        (data[:-1], "corrupt or truncated"),
        (data[:5], "only 5 bytes long"),
        (b"", "only 0 bytes long"),
        (b"garbage! not a checkpoint at all" * 10, "does not start as a safetensors file"),
        (b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", "safetensors"),
        (data[:8] + b"{" + bytes(len(data) - 9), "corrupt"),
        (data + b"extra", "corrupt"),
    ]
    for content, message in cases:
        corrupt.write_bytes(content)
        with pytest.raises(optrs.CheckpointError, match=message) as caught:
            optrs.load(corrupt)
        assert str(corrupt) in str(caught.value)
        assert isinstance(caught.value, ValueError)
    with pytest.raises(FileNotFoundError):
        optrs.load(tmp_path / "nothing.optrs")


def test_mismatched_files_raise_checkpoint_error(tmp_path: Path) -> None:
    tree = json.dumps({"dict": [["w", {"array": "w"}]]})
    good = {"format": FORMAT, "format_version": "1", "tree": tree}  # version 1: no checksums to compute
    w = {"w": np.ones(3)}
    assert optrs.load(_raw(tmp_path, w, good))["w"].tolist() == [1.0, 1.0, 1.0]
    cases = [
        (w, None, "not an optrs checkpoint"),
        (w, {"format": "other"}, "not an optrs checkpoint"),
        (w, {**good, "format_version": str(FORMAT_VERSION + 1)}, "newer than this optrs reads"),
        (w, {**good, "format_version": "one"}, "unknown checkpoint format version"),
        (w, {k: v for k, v in good.items() if k != "format_version"}, "unknown checkpoint format version"),
        (w, {k: v for k, v in good.items() if k != "tree"}, "no 'tree'"),
        ({"v": np.ones(3)}, good, "refers to an array 'w' that the file does not hold"),
        ({**w, "x": np.ones(1)}, good, r"arrays its metadata does not describe: \['x'\]"),
        (w, {**good, "tree": "{not json"}, "not valid JSON"),
        (w, {**good, "tree": json.dumps({"set": [1]})}, "no saved value"),
        (w, {**good, "tree": json.dumps({"float": "1.5"})}, "no saved value"),
        (w, {**good, "tree": json.dumps({"int": "12x"})}, "no saved value"),
        (w, {**good, "tree": json.dumps({"dict": [[1]]})}, "no saved value"),
    ]
    for arrays, metadata, message in cases:
        path = _raw(tmp_path, arrays, metadata)
        with pytest.raises(optrs.CheckpointError, match=message) as caught:
            optrs.load(path)
        assert str(path) in str(caught.value)


def test_rng_state_round_trip_and_errors(tmp_path: Path) -> None:
    optrs.manual_seed(5)
    np.random.seed(5)
    path = tmp_path / "rng.optrs"
    optrs.save({"rng": optrs.get_rng_state()}, path)
    first = optrs.random.get_generator().random(4), np.random.rand(4), np.random.normal(size=3)
    optrs.manual_seed(9)
    generator = optrs.random.get_generator()
    optrs.set_rng_state(optrs.load(path)["rng"])
    assert optrs.random.get_generator() is generator  # restored in place
    second = generator.random(4), np.random.rand(4), np.random.normal(size=3)
    _assert_same(first, second)
    with pytest.raises(optrs.InvalidParamError, match="get_rng_state"):
        optrs.set_rng_state({"optrs": {}})
    with pytest.raises(optrs.InvalidParamError, match="bit generator 'Nope'"):
        optrs.set_rng_state({"optrs": {"bit_generator": "Nope"}, "numpy": {}})
