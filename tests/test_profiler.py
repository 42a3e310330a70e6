"""optrs.profiler: what it records (ops forward and backward, Rust kernels, optimizer steps,
record_function regions), the schedule's windows, the table, the Chrome trace, and that nothing
is recorded while no profiler runs. No assertion here is about how long anything takes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import optrs
import optrs.nn as nn
import optrs.nn.functional as F
from optrs import _core
from optrs._plumbing import hooks
from optrs.profiler import (
    EventList,
    FunctionEvent,
    ProfilerAction,
    ProfilerActivity,
    _record,
    profile,
    record_function,
    schedule,
)

FORWARD = ["Conv2d", "ReLU", "MaxPool2d", "Reshape", "Linear", "LogSoftmax", "NLLLoss"]
BACKWARD = [f"{name}Backward" for name in FORWARD]
# Per training step: the Rust kernels and how often each runs (the linear layer's product
# forward, then its input and weight gradients).
KERNELS = {"conv2d": 1, "conv2d_backward": 1, "relu": 1, "relu_backward": 1, "max_pool2d": 1,
           "max_pool2d_backward": 1, "matmul": 3, "log_softmax": 1, "log_softmax_backward": 1,
           "nll_loss": 1, "nll_loss_backward": 1, "AdamEngine.step": 1}
STEP = "Optimizer.step#Adam.step"
ZERO_GRAD = "Optimizer.zero_grad#Adam.zero_grad"


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 5 * 5, 10)

    def forward(self, x: optrs.Tensor) -> optrs.Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return F.log_softmax(self.fc(x.flatten(1)), dim=1)


@pytest.fixture
def train_step() -> Callable[[], None]:
    optrs.manual_seed(0)
    model = Net()
    opt = optrs.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 10, 8)

    def step() -> None:
        opt.zero_grad()
        F.nll_loss(model(optrs.Tensor(x)), y).backward()
        opt.step()

    step()  # first step outside any profile: lazy state and imports
    return step


def by_key(averages: EventList) -> dict[str, Any]:
    return {a.key: a for a in averages}


def test_cnn_step_records_ops_kernels_and_optimizer_steps(train_step: Callable[[], None]) -> None:
    steps = 3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            train_step()
    averages = by_key(prof.key_averages())
    for name in FORWARD + BACKWARD + [STEP, ZERO_GRAD]:
        assert averages[name].count == steps, name
    for name, per_step in KERNELS.items():
        kernel = averages[f"_core.{name}"]
        assert kernel.count == steps * per_step, name
        assert kernel.kernel_time_total > 0
        assert kernel.kernel_time_total == kernel.cpu_time_total == kernel.self_cpu_time_total
    assert set(averages) == set(FORWARD + BACKWARD + [STEP, ZERO_GRAD]) | {f"_core.{k}" for k in KERNELS}
    # Each kernel runs inside its op (or the optimizer step), within the op's time.
    parents = {"_core.conv2d": "Conv2d", "_core.conv2d_backward": "Conv2dBackward",
               "_core.relu": "ReLU", "_core.AdamEngine.step": STEP}
    for event in prof.events():
        if event.is_kernel:
            assert event.cpu_parent is not None and event.cpu_parent.cat != "kernel"
            assert 0 < event.kernel_time_total <= event.cpu_parent.cpu_time_total
            if event.name in parents:
                assert event.cpu_parent.name == parents[event.name]
        else:
            assert event.kernel_time_total == sum(c.kernel_time_total for c in event.cpu_children)
            assert event.self_cpu_time_total == pytest.approx(
                event.cpu_time_total - sum(c.cpu_time_total for c in event.cpu_children), abs=1e-6)
    conv = averages["Conv2d"]
    assert 0 < averages["_core.conv2d"].kernel_time_total == conv.kernel_time_total <= conv.cpu_time_total
    assert averages[STEP].kernel_time_total == averages["_core.AdamEngine.step"].cpu_time_total


def test_table_columns_rows_and_sorting(train_step: Callable[[], None]) -> None:
    with profile() as prof:
        train_step()
    averages = prof.key_averages()
    table = averages.table(sort_by="self_cpu_time_total", row_limit=100)
    header = table.splitlines()[1]
    for column in ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg", "Kernel (Rust)",
                   "# of Calls"]:
        assert column in header
    for name in FORWARD + BACKWARD + [STEP, "_core.conv2d", "_core.matmul", "_core.AdamEngine.step"]:
        assert f" {name} " in table
    assert "Self CPU time total:" in table and "Kernel (Rust) time total:" in table
    rows = table.splitlines()[3:-3]
    assert len(rows) == len(averages)
    assert len(averages.table(row_limit=5).splitlines()) == 3 + 5 + 3
    for key in ["self_cpu_time_total", "cpu_time_total", "cpu_time", "count", "kernel_time_total"]:
        ordered = [a.key for a in sorted(averages, key=lambda a: getattr(a, key), reverse=True)][:4]
        top = [line.split()[0] for line in averages.table(sort_by=key, row_limit=4).splitlines()[3:7]]
        assert top == ordered, key
    assert "CPU Mem" not in header
    with pytest.raises(optrs.InvalidHyperparameterError, match="sort_by"):
        averages.table(sort_by="cuda_time_total")


def test_key_average_attributes(train_step: Callable[[], None]) -> None:
    with profile() as prof:
        train_step()
        train_step()
    conv = by_key(prof.key_averages())["Conv2d"]
    events = [e for e in prof.events() if e.name == "Conv2d"]
    assert conv.count == 2
    assert conv.cpu_time_total == pytest.approx(sum(e.cpu_time_total for e in events))
    assert conv.self_cpu_time_total == pytest.approx(sum(e.self_cpu_time_total for e in events))
    assert conv.cpu_time == pytest.approx(conv.cpu_time_total / 2)
    assert "Conv2d" in repr(conv)
    assert prof.events().self_cpu_time_total == pytest.approx(prof.key_averages().self_cpu_time_total)


def test_profile_memory_counts_new_arrays_only(train_step: Callable[[], None]) -> None:
    with profile(profile_memory=True) as prof:
        train_step()
    averages = by_key(prof.key_averages())
    assert averages["Conv2d"].self_cpu_memory_usage == 8 * 4 * 10 * 10 * 4  # (N, C, H, W) float32 output
    assert averages["Reshape"].self_cpu_memory_usage == 0  # a view of its input
    assert averages["Conv2dBackward"].self_cpu_memory_usage == (4 * 9 + 4) * 4  # weight and bias grads
    assert averages[STEP].self_cpu_memory_usage == 0
    assert "CPU Mem" in prof.key_averages().table()


def test_record_shapes_groups_by_input_shape(train_step: Callable[[], None]) -> None:
    with profile(record_shapes=True) as prof:
        train_step()
    (conv,) = [e for e in prof.events() if e.name == "Conv2d"]
    assert conv.input_shapes[:3] == [[8, 1, 12, 12], [4, 1, 3, 3], [4]]
    grouped = prof.key_averages(group_by_input_shape=True)
    assert "Input Shapes" in grouped.table()
    assert any(a.key == "Linear" and a.input_shapes[0] == [8, 100] for a in grouped)


def test_with_stack_names_the_caller(train_step: Callable[[], None]) -> None:
    with profile(with_stack=True) as prof:
        train_step()
    (conv,) = [e for e in prof.events() if e.name == "Conv2d"]
    assert conv.stack and "test_profiler.py" in conv.stack[0]


def test_record_function_nests_as_context_manager_and_decorator() -> None:
    x = optrs.Tensor(np.ones(3), requires_grad=True)

    @record_function("decorated")
    def twice(depth: int) -> optrs.Tensor:
        return (x * 2).sum() if depth == 0 else twice(depth - 1)

    with profile() as prof:
        with record_function("outer"):
            with record_function("inner") as inner:
                y = x + 1
            twice(1)
        y.sum().backward()
    assert inner.name == "inner"
    events = {e.name: e for e in prof.events() if e.name in ("outer", "inner", "Add", "Mul")}
    assert events["inner"].cpu_parent is events["outer"]
    assert events["Add"].cpu_parent is events["inner"]
    decorated = [e for e in prof.events() if e.name == "decorated"]
    assert len(decorated) == 2
    assert decorated[0].cpu_parent is events["outer"] and decorated[1].cpu_parent is decorated[0]
    assert events["Mul"].cpu_parent is decorated[1]
    assert all(e.cat == "user_annotation" for e in decorated)
    backward = [e for e in prof.events() if e.name == "SumBackward"]
    assert backward and all(e.cpu_parent is None for e in backward)
    with record_function("unprofiled"):  # a no-op without a profiler
        pass


def _recorded_steps(prof: profile) -> list[str]:
    return [e.name for e in prof.events() if e.name.startswith("step ")]


def test_schedule_windows_call_on_trace_ready_with_active_steps_only(train_step: Callable[[], None]) -> None:
    windows: list[list[str]] = []
    counts: list[int] = []

    def ready(prof: profile) -> None:
        windows.append(_recorded_steps(prof))
        counts.append(by_key(prof.key_averages())["Conv2d"].count)

    with profile(schedule=schedule(wait=1, warmup=1, active=2, repeat=2), on_trace_ready=ready) as prof:
        for i in range(10):
            with record_function(f"step {i}"):
                train_step()
            prof.step()
    assert windows == [["step 2", "step 3"], ["step 6", "step 7"]]
    assert counts == [2, 2]
    assert _recorded_steps(prof) == ["step 6", "step 7"]
    assert hooks.active is None


def test_schedule_skip_first_and_repeat_forever(train_step: Callable[[], None]) -> None:
    windows: list[list[str]] = []
    with profile(schedule=schedule(wait=0, warmup=0, active=1, skip_first=2),
                 on_trace_ready=lambda p: windows.append(_recorded_steps(p))) as prof:
        for i in range(5):
            with record_function(f"step {i}"):
                train_step()
            prof.step()
    # As in torch, the last step() opened step 5's window, which the exit closes (empty).
    assert windows == [["step 2"], ["step 3"], ["step 4"], []]


def test_schedule_actions_match_torch() -> None:
    fn = schedule(wait=1, warmup=1, active=2, repeat=1, skip_first=1)
    N, W, R, S = ProfilerAction.NONE, ProfilerAction.WARMUP, ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE
    assert [fn(i) for i in range(8)] == [N, N, W, R, S, N, N, N]
    fn = schedule(wait=0, warmup=2, active=1)
    assert [fn(i) for i in range(6)] == [W, W, S, W, W, S]
    with pytest.raises(optrs.InvalidHyperparameterError, match="active"):
        schedule(wait=0, warmup=0, active=0)


def test_without_schedule_on_trace_ready_runs_once_at_exit(train_step: Callable[[], None]) -> None:
    calls: list[int] = []
    with profile(on_trace_ready=lambda p: calls.append(len(p.events()))) as prof:
        train_step()
        prof.step()
        train_step()
    assert len(calls) == 1 and calls[0] == len(prof.events()) > 0
    assert by_key(prof.key_averages())[STEP].count == 2


def _check_trace(path: Path) -> list[dict[str, Any]]:
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    assert isinstance(events, list) and events
    for e in events:
        assert {"ph", "cat", "name", "pid", "tid", "ts", "dur", "args"} <= set(e)
        assert e["ph"] == "X"
        assert isinstance(e["name"], str) and isinstance(e["cat"], str) and isinstance(e["args"], dict)
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        assert isinstance(e["ts"], (int, float)) and isinstance(e["dur"], (int, float)) and e["dur"] >= 0
    # Per thread, any two events are nested or disjoint (in whole nanoseconds, as viewers read them).
    for tid in {e["tid"] for e in events}:
        spans = sorted(((round(e["ts"] * 1000), round((e["ts"] + e["dur"]) * 1000)) for e in events
                        if e["tid"] == tid), key=lambda s: (s[0], -s[1]))
        open_spans: list[tuple[int, int]] = []
        for start, end in spans:
            while open_spans and open_spans[-1][1] <= start:
                open_spans.pop()
            if open_spans:
                assert end <= open_spans[-1][1], "an event overlaps its parent's end"
            open_spans.append((start, end))
    return events


def test_export_chrome_trace_schema_and_nesting(train_step: Callable[[], None], tmp_path: Path) -> None:
    with profile(profile_memory=True, record_shapes=True) as prof:
        with record_function("train"):
            train_step()
            train_step()
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(str(path))
    events = _check_trace(path)
    assert len(events) == len(prof.events())
    by_id = {e["args"]["External id"]: e for e in events}
    for event in prof.events():  # every event lies within its parent, on its parent's thread
        parent = event.cpu_parent
        if parent is not None:
            child, outer = by_id[event.id], by_id[parent.id]
            assert child["tid"] == outer["tid"]
            assert outer["ts"] * 1000 <= child["ts"] * 1000 + 1e-3
            assert (child["ts"] + child["dur"]) * 1000 <= (outer["ts"] + outer["dur"]) * 1000 + 1e-3
    cats = {e["cat"] for e in events}
    assert cats == {"cpu_op", "kernel", "user_annotation"}
    conv = next(e for e in events if e["name"] == "Conv2d")
    assert conv["args"]["Input Dims"][0] == [8, 1, 12, 12] and conv["args"]["Bytes allocated"] > 0
    with pytest.raises(TypeError, match="events"):
        prof.key_averages().export_chrome_trace(str(path))


def test_threads_get_their_own_tids(train_step: Callable[[], None], tmp_path: Path) -> None:
    def work() -> None:
        with record_function("worker"):
            (optrs.Tensor(np.ones(4)) * 3).sum()

    with profile() as prof:
        worker = threading.Thread(target=work)
        worker.start()
        train_step()
        worker.join()
    tids = {e.name: e.thread for e in prof.events()}
    assert tids["worker"] == tids["Mul"] != tids["Conv2d"]
    prof.export_chrome_trace(tmp_path / "t.json")
    _check_trace(tmp_path / "t.json")


def test_other_optimizers_and_utilities_are_recorded() -> None:
    w = optrs.Parameter(np.ones((4, 4), np.float32))
    v = optrs.Parameter(np.ones(4, np.float32))
    muon = optrs.optim.Muon([w], lr=1e-2)
    adafactor = optrs.optim.Adafactor([v])
    lbfgs = optrs.optim.LBFGS([v], max_iter=3)

    def closure() -> float:
        lbfgs.zero_grad()
        loss = ((v - 2) ** 2).sum()
        loss.backward()
        return float(loss.item())

    with profile() as prof:
        w.grad = np.ones((4, 4), np.float32)
        v.grad = np.ones(4, np.float32)
        muon.step()
        adafactor.step()
        optrs.utils.clip_grad_norm_([v], 1.0)
        lbfgs.step(closure)
    averages = by_key(prof.key_averages())
    for name in ["Optimizer.step#Muon.step", "_core.MuonEngine.step", "Optimizer.step#Adafactor.step",
                 "_core.AdafactorEngine.step", "_core.clip_grad_norm", "Optimizer.step#LBFGS.step", "_core.dot",
                 "_core.axpy", "SubBackward"]:
        assert name in averages, name
    lbfgs_event = next(e for e in prof.events() if e.name == "Optimizer.step#LBFGS.step")
    inside = set()
    stack = list(lbfgs_event.cpu_children)
    while stack:
        e = stack.pop()
        inside.add(e.name)
        stack.extend(e.cpu_children)
    assert {"Sub", "SubBackward", "_core.dot"} <= inside  # the closure's ops nest in the step


def test_nothing_is_recorded_without_a_profiler(train_step: Callable[[], None], monkeypatch: Any) -> None:
    assert hooks.active is None
    _core.profiler_drain()

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a hook recorded while no profiler was active")

    for method in ["begin", "end", "forward", "backward"]:
        monkeypatch.setattr(_record.Recorder, method, fail)
    train_step()
    with record_function("idle"):
        train_step()
    assert _core.profiler_drain() == []


def test_profile_stops_recording_at_exit(train_step: Callable[[], None]) -> None:
    with profile() as prof:
        train_step()
    recorded = len(prof.events())
    train_step()
    assert hooks.active is None and _core.profiler_drain() == [] and len(prof.events()) == recorded
    with profile():
        with pytest.raises(RuntimeError, match="already recording"):
            with profile():
                pass
    assert hooks.active is None


def test_bad_activity_is_refused() -> None:
    with pytest.raises(optrs.InvalidHyperparameterError, match="CPU"):
        profile(activities=["cuda"])  # type: ignore[list-item]


def test_kernel_records_share_the_python_clock() -> None:
    a = np.ones((64, 64), np.float32)
    _core.profiler_set_enabled(True)
    try:
        before = _core.profiler_now_ns()
        _core.matmul(a, a)
        after = _core.profiler_now_ns()
    finally:
        _core.profiler_set_enabled(False)
    ((name, start, duration, tid),) = _core.profiler_drain()
    assert name == "matmul" and before <= start and start + duration <= after
    assert tid == _core.profiler_thread_id()
    assert isinstance(FunctionEvent("x", "kernel", tid, None), FunctionEvent)
