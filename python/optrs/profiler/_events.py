"""Recorded events, their averages per name (torch's ``FunctionEvent`` / ``FunctionEventAvg``),
the table and the Chrome trace. Times are in microseconds, as torch's are; memory in bytes."""

from __future__ import annotations

import json
import os
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import InvalidHyperparameterError

SORT_KEYS = ("self_cpu_time_total", "cpu_time_total", "cpu_time", "self_cpu_time", "kernel_time_total",
             "kernel_time", "count", "cpu_memory_usage", "self_cpu_memory_usage")
KERNEL_PREFIX = "_core."


class FunctionEvent:
    """One recorded call: an op's forward (``cat`` "cpu_op", the op's class name) or backward
    ("cpu_op", e.g. ``Conv2dBackward``), a Rust kernel ("kernel", ``_core.<function>``), an
    optimizer step or a ``record_function`` region ("user_annotation")."""

    __slots__ = ("id", "name", "cat", "thread", "start_ns", "end_ns", "cpu_parent", "cpu_children",
                 "input_shapes", "stack", "self_bytes", "cpu_time_total", "self_cpu_time_total",
                 "kernel_time_total", "cpu_memory_usage", "self_cpu_memory_usage")

    count = 1

    def __init__(self, name: str, cat: str, thread: int, parent: FunctionEvent | None,
                 start_ns: int = 0, end_ns: int = 0) -> None:
        self.id = 0
        self.name = name
        self.cat = cat
        self.thread = thread
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.cpu_parent = parent
        self.cpu_children: list[FunctionEvent] = []
        self.input_shapes: list[list[int]] | None = None
        self.stack: list[str] | None = None
        self.self_bytes = 0
        self.cpu_time_total = self.self_cpu_time_total = self.kernel_time_total = 0.0
        self.cpu_memory_usage = self.self_cpu_memory_usage = 0

    @property
    def key(self) -> str:
        return self.name

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total

    @property
    def self_cpu_time(self) -> float:
        return self.self_cpu_time_total

    @property
    def kernel_time(self) -> float:
        return self.kernel_time_total

    @property
    def is_kernel(self) -> bool:
        return self.cat == "kernel"

    def __repr__(self) -> str:
        return (f"<FunctionEvent id={self.id} name={self.name} cat={self.cat} thread={self.thread} "
                f"cpu_time_total={self.cpu_time_total:.3f}us self_cpu_time_total={self.self_cpu_time_total:.3f}us "
                f"kernel_time_total={self.kernel_time_total:.3f}us cpu_memory_usage={self.cpu_memory_usage}>")


class FunctionEventAvg:
    """The events of one key (name, and shapes or call site when grouped by them), summed."""

    def __init__(self, key: str, input_shapes: list[list[int]] | None, stack: list[str] | None) -> None:
        self.key = key
        self.input_shapes = input_shapes
        self.stack = stack
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = self.kernel_time_total = 0.0
        self.cpu_memory_usage = self.self_cpu_memory_usage = 0
        self.is_kernel = False

    def add(self, event: FunctionEvent | FunctionEventAvg) -> None:
        self.count += event.count
        self.cpu_time_total += event.cpu_time_total
        self.self_cpu_time_total += event.self_cpu_time_total
        self.kernel_time_total += event.kernel_time_total
        self.cpu_memory_usage += event.cpu_memory_usage
        self.self_cpu_memory_usage += event.self_cpu_memory_usage
        self.is_kernel = event.is_kernel

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / self.count if self.count else 0.0

    @property
    def self_cpu_time(self) -> float:
        return self.self_cpu_time_total / self.count if self.count else 0.0

    @property
    def kernel_time(self) -> float:
        return self.kernel_time_total / self.count if self.count else 0.0

    def __repr__(self) -> str:
        return (f"<FunctionEventAvg key={self.key} count={self.count} self_cpu_time={self.self_cpu_time:.3f}us "
                f"cpu_time={self.cpu_time:.3f}us kernel_time={self.kernel_time:.3f}us "
                f"cpu_memory_usage={self.cpu_memory_usage} input_shapes={self.input_shapes}>")


class EventList(list[Any]):
    """A list of `FunctionEvent` (``prof.events()``) or of `FunctionEventAvg`
    (``key_averages()``), with torch's ``table`` and ``key_averages``."""

    def __init__(self, events: Iterable[Any] = (), profile_memory: bool = False) -> None:
        super().__init__(events)
        self.profile_memory = profile_memory

    @property
    def self_cpu_time_total(self) -> float:
        return float(sum(e.self_cpu_time_total for e in self))

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> EventList:
        """One `FunctionEventAvg` per name (and input shapes, and the first ``group_by_stack_n``
        frames of the call site), in order of first appearance."""
        averages: dict[tuple[str, str, str], FunctionEventAvg] = {}
        for event in self:
            shapes = event.input_shapes if group_by_input_shape else None
            stack = (event.stack or [])[:group_by_stack_n] if group_by_stack_n > 0 else None
            key = (event.key, str(shapes), str(stack))
            if key not in averages:
                averages[key] = FunctionEventAvg(event.key, shapes, stack)
            averages[key].add(event)
        return EventList(averages.values(), self.profile_memory)

    def total_average(self) -> FunctionEventAvg:
        total = FunctionEventAvg("Total", None, None)
        for event in self:
            total.add(event)
        return total

    def table(self, sort_by: str | None = None, row_limit: int = 100, max_name_column_width: int = 55,
              header: str | None = None, top_level_events_only: bool = False) -> str:
        """torch's profiler table: one row per entry, sorted by ``sort_by`` (descending), at most
        ``row_limit`` rows (all for a negative limit)."""
        return _table(self, sort_by, row_limit, max_name_column_width, header, top_level_events_only,
                      self.profile_memory)

    def export_chrome_trace(self, path: str | os.PathLike[str]) -> None:
        """Writes the events as Chrome trace-event JSON (chrome://tracing, Perfetto)."""
        if any(not isinstance(e, FunctionEvent) for e in self):
            raise TypeError("export_chrome_trace needs the events themselves (prof.events()), not key_averages()")
        pid = os.getpid()
        trace = []
        for e in sorted(self, key=lambda e: (e.start_ns, -e.end_ns)):
            args: dict[str, Any] = {"External id": e.id}
            if self.profile_memory:
                args["Bytes allocated"] = e.self_bytes
            if e.input_shapes is not None:
                args["Input Dims"] = e.input_shapes
            if e.stack:
                args["Call stack"] = ";".join(e.stack)
            trace.append({"ph": "X", "cat": e.cat, "name": e.name, "pid": pid, "tid": e.thread,
                          "ts": e.start_ns / 1000, "dur": (e.end_ns - e.start_ns) / 1000, "args": args})
        with open(path, "w") as f:
            json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, f)


def collect(done: Sequence[FunctionEvent], kernels: Sequence[tuple[str, int, int, int]], since_ns: int,
            profile_memory: bool) -> EventList:
    """The finished events of a window with the kernel records placed inside the innermost event
    that contains each on its thread, and every total computed."""
    events = sorted(done, key=lambda e: (e.start_ns, -e.end_ns))
    finished = {id(e) for e in events}
    roots: dict[int, list[FunctionEvent]] = {}
    for e in events:
        parent = e.cpu_parent
        # A parent still open when the window ended, or regions closed out of order: the nearest
        # finished ancestor that contains the event adopts it.
        while parent is not None and not (id(parent) in finished and parent.start_ns <= e.start_ns
                                          and e.end_ns <= parent.end_ns):
            parent = parent.cpu_parent
        e.cpu_parent = parent
        (parent.cpu_children if parent is not None else roots.setdefault(e.thread, [])).append(e)
    placed: list[FunctionEvent] = []
    for name, start, duration, thread in kernels:
        if start < since_ns:
            continue
        kernel = FunctionEvent(KERNEL_PREFIX + name, "kernel", thread, None, start, start + duration)
        level = roots.get(thread, [])
        while level:
            i = bisect_right(level, start, key=lambda e: e.start_ns)
            if i == 0 or level[i - 1].end_ns < kernel.end_ns:
                break
            kernel.cpu_parent = level[i - 1]
            level = kernel.cpu_parent.cpu_children
        placed.append(kernel)
    for kernel in placed:
        parent = kernel.cpu_parent
        siblings = parent.cpu_children if parent is not None else roots.setdefault(kernel.thread, [])
        siblings.append(kernel)
    every = sorted(events + placed, key=lambda e: (e.start_ns, -e.end_ns, e.is_kernel))
    for number, e in enumerate(every):
        e.id = number
        e.cpu_children.sort(key=lambda c: c.start_ns)
    pre_order: list[FunctionEvent] = []
    stack = [e for level in roots.values() for e in level]
    while stack:
        e = stack.pop()
        pre_order.append(e)
        stack.extend(e.cpu_children)
    for e in reversed(pre_order):  # children before their parents
        _totals(e)
    return EventList(every, profile_memory)


def _totals(e: FunctionEvent) -> None:
    children = e.cpu_children
    total_ns = e.end_ns - e.start_ns
    e.cpu_time_total = total_ns / 1000
    e.self_cpu_time_total = (total_ns - sum(c.end_ns - c.start_ns for c in children)) / 1000
    e.kernel_time_total = e.cpu_time_total if e.is_kernel else sum(c.kernel_time_total for c in children)
    e.self_cpu_memory_usage = e.self_bytes
    e.cpu_memory_usage = e.self_bytes + sum(c.cpu_memory_usage for c in children)


def _format_time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def _format_memory(nbytes: int) -> str:
    for unit, size in (("Gb", 1 << 30), ("Mb", 1 << 20), ("Kb", 1 << 10)):
        if abs(nbytes) >= size:
            return f"{nbytes / size:.2f} {unit}"
    return f"{nbytes} b"


def _table(events: EventList, sort_by: str | None, row_limit: int, max_name_column_width: int,
           header: str | None, top_level_events_only: bool, profile_memory: bool) -> str:
    if sort_by is not None and sort_by not in SORT_KEYS:
        raise InvalidHyperparameterError(f"sort_by={sort_by!r} is not a column; use one of {', '.join(SORT_KEYS)}")
    rows = [e for e in events if not top_level_events_only or getattr(e, "cpu_parent", None) is None]
    total_self = sum(e.self_cpu_time_total for e in events)
    total_kernel = sum(e.kernel_time_total for e in events if e.is_kernel)
    if sort_by is not None:
        rows.sort(key=lambda e: getattr(e, sort_by), reverse=True)
    if row_limit >= 0:
        rows = rows[:row_limit]
    name_width = min(max([len(e.key) for e in rows] + [4]) + 4, max_name_column_width)
    columns: list[tuple[str, int]] = [("Name", name_width), ("Self CPU %", 12), ("Self CPU", 12),
                                      ("CPU total %", 12), ("CPU total", 12), ("CPU time avg", 12),
                                      ("Kernel (Rust)", 14)]
    if profile_memory:
        columns += [("CPU Mem", 12), ("Self CPU Mem", 12)]
    columns.append(("# of Calls", 12))
    shapes = any(e.input_shapes for e in rows)
    if shapes:
        columns.append(("Input Shapes", 40))
    sites = any(e.stack for e in rows)
    if sites:
        columns.append(("Source Location", 60))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:>{w}}" if i < len(columns) - (shapes + sites) else f"{c:<{w}}"
                         for i, (c, (_, w)) in enumerate(zip(cells, columns))).rstrip()

    rule = "  ".join("-" * w for _, w in columns)
    out = [header] if header else []
    out += [rule, line([name for name, _ in columns]), rule]

    def percent(us: float) -> str:
        return f"{100 * us / total_self:.2f}%" if total_self > 0 else "0.00%"

    for e in rows:
        name = e.key if len(e.key) <= name_width else e.key[:name_width - 3] + "..."
        cells = [name, percent(e.self_cpu_time_total), _format_time(e.self_cpu_time_total),
                 percent(e.cpu_time_total), _format_time(e.cpu_time_total), _format_time(e.cpu_time),
                 _format_time(e.kernel_time_total)]
        if profile_memory:
            cells += [_format_memory(e.cpu_memory_usage), _format_memory(e.self_cpu_memory_usage)]
        cells.append(str(e.count))
        if shapes:
            cells.append(str(e.input_shapes or []))
        if sites:
            cells.append((e.stack or [""])[0])
        out.append(line(cells))
    out.append(rule)
    out.append(f"Self CPU time total: {_format_time(total_self)}")
    out.append(f"Kernel (Rust) time total: {_format_time(total_kernel)}")
    return "\n".join(out) + "\n"
