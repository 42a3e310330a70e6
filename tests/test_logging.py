"""optrs.logging: the event files SummaryWriter writes, read back with TensorBoard's own reader
(EventAccumulator) and served by the real `tensorboard` server."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import optrs
import optrs.nn as nn
import optrs.nn.functional as F
from optrs.logging import SummaryWriter, log_model_stats

pytest.importorskip("tensorboardX")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def load(run_dir: Path | str) -> Any:
    """Every event of the run in ``run_dir`` (its own files, not its sub-runs')."""
    accumulator = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={kind: 0 for kind in ("scalars", "histograms", "images", "tensors")})
    accumulator.Reload()
    return accumulator


def scalars(run_dir: Path | str, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in load(run_dir).Scalars(tag)]


def f32(x: float) -> float:
    """What an event file holds for ``x``: scalars are stored as float32."""
    return float(np.float32(x))


# -- scalars ------------------------------------------------------------------------------------


def test_add_scalar_values_steps_and_wall_times(tmp_path: Path) -> None:
    before = time.time()
    with SummaryWriter(tmp_path) as writer:
        for step in range(5):
            writer.add_scalar("loss/train", 1.0 / (step + 1), step)
        writer.add_scalar("lr", 0.125, 10, walltime=1_700_000_000.5)
    after = time.time()
    events = load(tmp_path).Scalars("loss/train")
    assert [(e.step, e.value) for e in events] == [(s, f32(1.0 / (s + 1))) for s in range(5)]
    assert all(before <= e.wall_time <= after for e in events)
    assert [e.wall_time for e in events] == sorted(e.wall_time for e in events)
    (lr,) = load(tmp_path).Scalars("lr")
    assert (lr.step, lr.value, lr.wall_time) == (10, 0.125, 1_700_000_000.5)


def test_add_scalar_takes_numbers_arrays_and_tensors(tmp_path: Path) -> None:
    param = optrs.Parameter(np.array([2.5], np.float32))
    values: list[Any] = [1, 1.5, np.float32(2.0), np.float64(3.25), np.array(4.0), np.array([[5.5]]),
                         optrs.tensor(6.0), param, optrs.tensor([7.0], requires_grad=True) * 2, True]
    with SummaryWriter(tmp_path) as writer:
        for step, value in enumerate(values):
            writer.add_scalar("v", value, step)
    assert scalars(tmp_path, "v") == list(enumerate([1.0, 1.5, 2.0, 3.25, 4.0, 5.5, 6.0, 2.5, 14.0, 1.0]))


def test_add_scalar_non_finite_is_logged_as_torch_does(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        writer.add_scalar("x", float("nan"), 0)
        writer.add_scalar("x", np.inf, 1)
        writer.add_scalar("x", -np.inf, 2)
    values = [v for _, v in scalars(tmp_path, "x")]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize("value", [np.zeros(3), np.ones((2, 2)), np.zeros(0), optrs.tensor([1.0, 2.0])])
def test_add_scalar_rejects_non_scalars_naming_the_argument(tmp_path: Path, value: Any) -> None:
    with SummaryWriter(tmp_path) as writer, pytest.raises(ValueError, match=r"scalar_value must be a single number"):
        writer.add_scalar("x", value, 0)
    with SummaryWriter(tmp_path) as writer, pytest.raises(optrs.InvalidParamError, match="shape"):
        writer.add_scalar("x", value, 0)


@pytest.mark.parametrize("value", ["1.0", None, {"a": 1}, np.array(["a"])])
def test_add_scalar_rejects_non_numbers_naming_the_argument(tmp_path: Path, value: Any) -> None:
    with SummaryWriter(tmp_path) as writer, pytest.raises(TypeError, match="scalar_value must be numeric"):
        writer.add_scalar("x", value, 0)


def test_add_scalars_writes_torchs_sub_runs(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        for step in range(3):
            writer.add_scalars("loss/epoch", {"train": 1.0 + step, "test": optrs.tensor(2.0 * step)}, step,
                               walltime=100.0 + step)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["loss_epoch_test", "loss_epoch_train"]
    train = load(tmp_path / "loss_epoch_train").Scalars("loss/epoch")
    test = load(tmp_path / "loss_epoch_test").Scalars("loss/epoch")
    assert [(e.step, e.value, e.wall_time) for e in train] == [(s, 1.0 + s, 100.0 + s) for s in range(3)]
    assert [(e.step, e.value, e.wall_time) for e in test] == [(s, 2.0 * s, 100.0 + s) for s in range(3)]
    assert load(tmp_path).Tags()["scalars"] == []


def test_add_scalars_checks_every_value_before_writing(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer, pytest.raises(ValueError, match=r"tag_scalar_dict\['b'\]"):
        writer.add_scalars("m", {"a": 1.0, "b": np.zeros(2)}, 0)
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == []


# -- histograms, text, figures ------------------------------------------------------------------


@pytest.mark.parametrize("bins", ["tensorflow", "auto", 7, [-20.0, -1.0, 0.0, 1.0, 20.0]])
def test_add_histogram_counts_min_max_and_sums(tmp_path: Path, bins: Any) -> None:
    values = np.random.default_rng(0).standard_normal((40, 25)).astype(np.float32)
    with SummaryWriter(tmp_path) as writer:
        writer.add_histogram("w", values, 3, bins=bins)
        writer.add_histogram("w", optrs.tensor(values * 2), 4, bins=bins)
    events = load(tmp_path).Histograms("w")
    assert [e.step for e in events] == [3, 4]
    for event, expected in zip(events, (values, values * 2)):
        histogram = event.histogram_value
        assert histogram.num == expected.size == sum(histogram.bucket)
        assert (histogram.min, histogram.max) == (float(expected.min()), float(expected.max()))
        assert histogram.sum == pytest.approx(float(expected.sum(dtype=np.float64)), rel=1e-9, abs=1e-9)
        assert histogram.sum_squares == pytest.approx(float((expected.astype(np.float64) ** 2).sum()), rel=1e-9)
        assert list(histogram.bucket_limit) == sorted(histogram.bucket_limit)


def test_add_histogram_max_bins_and_integer_values(tmp_path: Path) -> None:
    values = np.arange(1000)
    with SummaryWriter(tmp_path) as writer:
        writer.add_histogram("ints", values, 0, bins=100, max_bins=10)
    (event,) = load(tmp_path).Histograms("ints")
    assert sum(event.histogram_value.bucket) == 1000 and len(event.histogram_value.bucket) <= 11
    assert (event.histogram_value.min, event.histogram_value.max) == (0.0, 999.0)


def test_add_histogram_rejects_empty_and_non_numeric(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match="values is empty"):
            writer.add_histogram("h", np.zeros((0, 3)), 0)
        with pytest.raises(TypeError, match="values must be numeric"):
            writer.add_histogram("h", ["a", "b"], 0)


def test_add_text(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        writer.add_text("notes", "**lr** = 1e-3, *Adam*", 2)
        with pytest.raises(TypeError, match="text_string must be a str"):
            writer.add_text("notes", 3, 0)  # type: ignore[arg-type]
    accumulator = load(tmp_path)
    assert "notes/text_summary" in accumulator.PluginTagToContent("text")
    (event,) = accumulator.Tensors("notes/text_summary")
    assert event.step == 2
    assert event.tensor_proto.string_val == [b"**lr** = 1e-3, *Adam*"]


def test_add_figure_writes_a_png_and_closes_the_figure(tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(4, 3), dpi=50)
    plt.plot([0, 1, 2], [2, 0, 1])
    kept = plt.figure(figsize=(2, 2), dpi=50)
    with SummaryWriter(tmp_path) as writer:
        writer.add_figure("curve", figure, 7)
        writer.add_figure("kept", kept, 8, close=False)
    accumulator = load(tmp_path)
    (image,) = accumulator.Images("curve")
    assert (image.step, image.width, image.height) == (7, 200, 150)
    assert image.encoded_image_string.startswith(b"\x89PNG\r\n\x1a\n")
    assert not plt.fignum_exists(figure.number)
    assert plt.fignum_exists(kept.number)
    plt.close(kept)


# -- hparams ------------------------------------------------------------------------------------


def test_add_hparams_writes_the_plugin_data_and_metrics(tmp_path: Path) -> None:
    plugin_data_pb2 = pytest.importorskip("tensorboard.plugins.hparams.plugin_data_pb2")
    with SummaryWriter(tmp_path) as writer:
        writer.add_hparams({"lr": np.float64(1e-3), "optimizer": "Adam", "amsgrad": False, "batch": 64},
                           {"hparam/accuracy": optrs.tensor(0.968), "hparam/loss": 0.1},
                           hparam_domain_discrete={"optimizer": ["Adam", "SGD"], "batch": [32, 64]},
                           run_name="trial-1")
    accumulator = load(tmp_path / "trial-1")
    content = accumulator.PluginTagToContent("hparams")
    assert set(content) == {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"}
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    infos = {info.name: info for info in experiment.hparam_infos}
    assert sorted(infos) == ["amsgrad", "batch", "lr", "optimizer"]
    assert [v.string_value for v in infos["optimizer"].domain_discrete.values] == ["Adam", "SGD"]
    assert [v.number_value for v in infos["batch"].domain_discrete.values] == [32.0, 64.0]
    assert {m.name.tag for m in experiment.metric_infos} == {"hparam/accuracy", "hparam/loss"}
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == 1e-3
    assert start.hparams["optimizer"].string_value == "Adam"
    assert start.hparams["amsgrad"].bool_value is False and start.hparams["amsgrad"].HasField("bool_value")
    assert accumulator.Scalars("hparam/accuracy")[0].value == f32(0.968)


def test_add_hparams_default_run_name_and_bad_input(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        writer.add_hparams({"lr": 0.1}, {"m": 1.0})
        with pytest.raises(TypeError, match="should be dictionaries"):
            writer.add_hparams([("lr", 0.1)], {"m": 1.0})  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"hparam_dict\['bad'\]"):
            writer.add_hparams({"bad": [1, 2]}, {"m": 1.0})
        with pytest.raises(ValueError, match=r"metric_dict\['m'\]"):
            writer.add_hparams({"lr": 0.1}, {"m": np.zeros(3)})
        with pytest.raises(TypeError, match=r"hparam_domain_discrete\['lr'\]"):
            writer.add_hparams({"lr": 0.1}, {"m": 1.0}, hparam_domain_discrete={"lr": ["a"]})
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert float(run.name) == pytest.approx(time.time(), abs=60)


# -- the writer itself --------------------------------------------------------------------------


def test_default_log_dir_is_torchs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = datetime.now().replace(microsecond=0)
    writer = SummaryWriter(comment="_lr0.1")
    writer.close()
    log_dir = writer.get_logdir()
    match = re.fullmatch(r"runs/([A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2})_(.*)", log_dir)
    assert match is not None, log_dir
    assert match.group(2) == socket.gethostname() + "_lr0.1"
    stamp = datetime.strptime(match.group(1), "%b%d_%H-%M-%S").replace(year=before.year)
    assert abs((stamp - before).total_seconds()) < 5
    assert any(name.startswith("events.out.tfevents.") for name in os.listdir(tmp_path / log_dir))
    assert SummaryWriter(tmp_path / "given", comment="ignored").get_logdir() == str(tmp_path / "given")


def test_flush_makes_events_visible_before_close(tmp_path: Path) -> None:
    writer = SummaryWriter(tmp_path, flush_secs=3600, filename_suffix=".optrs")
    writer.add_scalar("x", 1.0, 0)
    writer.add_scalars("m", {"a": 2.0}, 0)
    writer.flush()
    assert scalars(tmp_path, "x") == [(0, 1.0)]
    assert scalars(tmp_path / "m_a", "m") == [(0, 2.0)]
    assert all(name.endswith(".optrs") for name in os.listdir(tmp_path) if name.startswith("events"))
    writer.close()


def test_flush_waits_for_every_queued_event(tmp_path: Path) -> None:
    # tensorboardX's own flush leaves events in its queue; the writer thread is busy with 300 here.
    writer = SummaryWriter(tmp_path, flush_secs=3600)
    for step in range(300):
        writer.add_scalar("x", float(step), step)
    writer.flush()
    assert len(scalars(tmp_path, "x")) == 300
    writer.add_scalar("x", 300.0, 300)  # and the writer keeps working after
    writer.close()
    assert len(scalars(tmp_path, "x")) == 301


def test_purge_step_hides_the_crashed_runs_later_steps(tmp_path: Path) -> None:
    with SummaryWriter(tmp_path) as writer:
        for step in range(10):
            writer.add_scalar("loss", float(step), step)
    time.sleep(1.1)  # event file names carry the second they were made: the resumed run's sorts after
    with SummaryWriter(tmp_path, purge_step=5) as writer:
        for step in range(5, 8):
            writer.add_scalar("loss", 100.0 + step, step)
    assert scalars(tmp_path, "loss") == [(s, float(s)) for s in range(5)] + [(s, 100.0 + s) for s in range(5, 8)]


def test_event_files_are_named_as_torchs_and_never_truncate_each_other(tmp_path: Path) -> None:
    first, second = SummaryWriter(tmp_path), SummaryWriter(tmp_path, filename_suffix=".b")
    first.add_scalar("x", 1.0, 0)
    second.add_scalar("x", 2.0, 1)
    first.close()
    first.add_scalar("x", 3.0, 2)  # reopens: a new file, in the same second as the first one
    first.close()
    second.close()
    names = sorted(os.listdir(tmp_path))
    pattern = rf"events\.out\.tfevents\.\d{{10}}\.{re.escape(socket.gethostname())}\.{os.getpid()}\.\d+(\.b)?"
    assert len(names) == 3 and all(re.fullmatch(pattern, name) for name in names), names
    assert sorted(scalars(tmp_path, "x")) == [(0, 1.0), (1, 2.0), (2, 3.0)]


def test_purge_step_applies_to_the_first_file_only(tmp_path: Path) -> None:
    writer = SummaryWriter(tmp_path, purge_step=0)
    writer.add_scalar("x", 1.0, 5)
    writer.close()
    time.sleep(1.1)
    writer.add_scalar("x", 2.0, 6)
    writer.close()
    assert scalars(tmp_path, "x") == [(5, 1.0), (6, 2.0)]


def test_missing_tensorboardx_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'optrs-numpy[tensorboard]'")):
        SummaryWriter(tmp_path)


# -- log_model_stats ----------------------------------------------------------------------------


def trained_step_model() -> tuple[nn.Module, optrs.Tensor]:
    optrs.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = optrs.tensor(np.random.default_rng(1).standard_normal((8, 4)).astype(np.float32))
    loss = F.cross_entropy(model(x), optrs.tensor(np.array([0, 1] * 4)))
    loss.backward()
    return model, loss


def test_log_model_stats_logs_weights_grads_and_norms(tmp_path: Path) -> None:
    model, _ = trained_step_model()
    model[2].bias.grad = None  # a param without a grad gets no grad entries
    with SummaryWriter(tmp_path) as writer:
        total = log_model_stats(writer, model, step=3)
    accumulator = load(tmp_path)
    names = [name for name, _ in model.named_parameters()]
    with_grad = [name for name, p in model.named_parameters() if p.grad is not None]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"] and with_grad == names[:3]
    assert sorted(accumulator.Tags()["scalars"]) == sorted(
        [f"weight_norm/{n}" for n in names] + [f"grad_norm/{n}" for n in with_grad] + ["total_grad_norm"])
    assert sorted(accumulator.Tags()["histograms"]) == sorted(
        [f"weights/{n}" for n in names] + [f"grads/{n}" for n in with_grad])
    for name, param in model.named_parameters():
        (norm,) = accumulator.Scalars(f"weight_norm/{name}")
        assert norm.step == 3 and norm.value == pytest.approx(np.linalg.norm(param.data.astype(np.float64)), rel=1e-6)
        (histogram,) = accumulator.Histograms(f"weights/{name}")
        assert sum(histogram.histogram_value.bucket) == param.data.size
        if param.grad is not None:
            (grad_norm,) = accumulator.Scalars(f"grad_norm/{name}")
            assert grad_norm.value == pytest.approx(np.linalg.norm(param.grad.astype(np.float64)), rel=1e-6)
            assert accumulator.Histograms(f"grads/{name}")[0].histogram_value.max == float(param.grad.max())
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert total == pytest.approx(np.linalg.norm(np.concatenate([g.astype(np.float64).ravel() for g in grads])),
                                  rel=1e-6)
    assert total == float(optrs.utils.get_total_norm(grads))
    assert accumulator.Scalars("total_grad_norm")[0].value == f32(total)


def test_log_model_stats_without_histograms_or_grads(tmp_path: Path) -> None:
    model, _ = trained_step_model()
    model.zero_grad()
    with SummaryWriter(tmp_path) as writer:
        assert log_model_stats(writer, model, 0, histograms=False) == 0.0
    tags = load(tmp_path).Tags()
    assert tags["histograms"] == []
    assert sorted(tags["scalars"]) == sorted([f"weight_norm/{n}" for n, _ in model.named_parameters()]
                                             + ["total_grad_norm"])


# -- the tensorboard server ---------------------------------------------------------------------


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_tensorboard_server_serves_the_logged_scalars(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    logdir = tmp_path / "logs"
    with SummaryWriter(logdir / "adam") as writer:
        for step in range(6):
            writer.add_scalar("loss/train", 2.0 ** -step, step, walltime=1000.0 + step)
        writer.add_scalars("acc", {"test": 0.9}, 5, walltime=2000.0)
    tensorboard = Path(sys.executable).with_name("tensorboard")
    port = free_loopback_port()
    output = tmp_path / "tensorboard.log"
    base = f"http://127.0.0.1:{port}"
    with open(output, "w") as log:
        server = subprocess.Popen([str(tensorboard), "--logdir", str(logdir), "--host", "127.0.0.1",
                                   "--port", str(port), "--load_fast", "false", "--reload_interval", "1"],
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        served: list[list[float]] = []
        while not served:
            assert server.poll() is None, f"tensorboard exited with {server.returncode}:\n{output.read_text()}"
            assert time.monotonic() < deadline, f"tensorboard served nothing in 60 s:\n{output.read_text()}"
            try:
                with urllib.request.urlopen(f"{base}/data/plugin/scalars/scalars?run=adam&tag=loss/train",
                                            timeout=5) as response:
                    served = json.load(response)
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                time.sleep(0.25)
        assert served == [[1000.0 + s, s, 2.0 ** -s] for s in range(6)]
        with urllib.request.urlopen(f"{base}/data/runs", timeout=5) as response:
            assert sorted(json.load(response)) == ["adam", "adam/acc_test"]
        with urllib.request.urlopen(f"{base}/data/plugin/scalars/scalars?run=adam/acc_test&tag=acc",
                                    timeout=5) as response:
            assert json.load(response) == [[2000.0, 5, f32(0.9)]]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.parametrize("step", ["x", 1.5, True])
def test_a_bad_global_step_is_named(tmp_path: Path, step: object) -> None:
    with SummaryWriter(str(tmp_path)) as writer, pytest.raises(optrs.ParamDTypeError, match="global_step"):
        writer.add_scalar("a", 1.0, step)  # type: ignore[arg-type]
