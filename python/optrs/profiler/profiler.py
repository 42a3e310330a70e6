"""`profile`, `schedule` and `record_function`, with ``torch.profiler``'s contract."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterable
from enum import Enum
from types import TracebackType
from typing import Any

from .. import _core
from .._plumbing import hooks
from ..errors import InvalidHyperparameterError
from . import _record
from ._events import EventList, FunctionEvent, collect


class ProfilerActivity(Enum):
    """What a profiler records; optrs runs on the CPU only."""

    CPU = 0


def supported_activities() -> set[ProfilerActivity]:
    return {ProfilerActivity.CPU}


class ProfilerAction(Enum):
    """What the profiler does during a step, as a schedule returns it."""

    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(wait: int, warmup: int, active: int, repeat: int = 0,
             skip_first: int = 0) -> Callable[[int], ProfilerAction]:
    """torch's schedule: after ``skip_first`` steps, cycles of ``wait`` idle steps, ``warmup``
    steps recorded and discarded, and ``active`` steps recorded (the last one RECORD_AND_SAVE,
    which ends the window and calls ``on_trace_ready``); ``repeat`` cycles (0: until the end)."""
    for name, value, low in (("wait", wait, 0), ("warmup", warmup, 0), ("active", active, 1),
                             ("repeat", repeat, 0), ("skip_first", skip_first, 0)):
        if not isinstance(value, int) or value < low:
            raise InvalidHyperparameterError(f"schedule: {name} must be an int >= {low}, got {value!r}")
    cycle = wait + warmup + active

    def action(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        position = step % cycle
        if position < wait:
            return ProfilerAction.NONE
        if position < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if position < cycle - 1 else ProfilerAction.RECORD_AND_SAVE

    return action


def _always_record(_: int) -> ProfilerAction:
    return ProfilerAction.RECORD


class profile:
    """Records every autograd op's forward and backward, every Rust kernel call and every
    optimizer step while its window is open; see the package docstring.

    Without ``schedule`` it records from ``__enter__`` (or ``start()``) to ``__exit__``
    (``stop()``); with one, ``step()`` moves it along the schedule and ``on_trace_ready(prof)``
    runs at the end of each active window, when ``prof.key_averages()`` and ``prof.events()``
    hold that window's events.
    """

    def __init__(self, *, activities: Iterable[ProfilerActivity] | None = None,
                 schedule: Callable[[int], ProfilerAction] | None = None,
                 on_trace_ready: Callable[[profile], Any] | None = None, record_shapes: bool = False,
                 profile_memory: bool = False, with_stack: bool = False) -> None:
        for activity in activities if activities is not None else ():
            if activity is not ProfilerActivity.CPU:
                raise InvalidHyperparameterError(
                    f"activity {activity!r} is not supported: optrs runs on the CPU, pass "
                    "activities=[optrs.profiler.ProfilerActivity.CPU] or None")
        self.schedule = schedule if schedule is not None else _always_record
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.step_num = 0
        self.current_action = self.schedule(self.step_num)
        self._recorder: _record.Recorder | None = None
        self._events = EventList(profile_memory=profile_memory)

    def __enter__(self) -> profile:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        self._transit(ProfilerAction.NONE, self.current_action)

    def stop(self) -> None:
        self._transit(self.current_action, None)

    def step(self) -> None:
        """Marks the end of a training step: moves to the schedule's next action."""
        previous = self.current_action
        self.step_num += 1
        self.current_action = self.schedule(self.step_num)
        self._transit(previous, self.current_action)

    def events(self) -> EventList:
        """The events of the last finished window, in order of start, kernels included."""
        return self._events

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> EventList:
        """The last window's events averaged per name (see `EventList.key_averages`)."""
        return self._events.key_averages(group_by_input_shape, group_by_stack_n)

    def export_chrome_trace(self, path: str | os.PathLike[str]) -> None:
        """Writes the last window's events as Chrome trace-event JSON."""
        self._events.export_chrome_trace(path)

    # -- the schedule's transitions (torch's action map) ----------------------------------------

    def _transit(self, previous: ProfilerAction, current: ProfilerAction | None) -> None:
        none, warmup, record, save = ProfilerAction
        prepare, start, stop, ready = self._prepare_trace, self._start_trace, self._stop_trace, self._trace_ready

        def warn() -> None:
            warnings.warn(f"Incorrect schedule: {previous.name} followed by {getattr(current, 'name', None)}",
                          stacklevel=4)

        actions: dict[tuple[ProfilerAction, ProfilerAction | None], list[Callable[[], None]]] = {
            (none, warmup): [prepare], (none, record): [prepare, start], (none, save): [prepare, start],
            (warmup, none): [warn, start, stop], (warmup, record): [start], (warmup, save): [start],
            (record, none): [warn, stop], (record, warmup): [warn, stop],
            (save, none): [stop, ready], (save, warmup): [stop, ready, prepare],
            (save, record): [stop, ready, prepare, start], (save, save): [stop, ready, prepare, start],
            (warmup, None): [start, stop], (record, None): [stop, ready], (save, None): [stop, ready],
        }
        for action in actions.get((previous, current), []):
            action()

    def _install(self) -> None:
        if hooks.active is not None and hooks.active is not self._recorder:
            raise RuntimeError("another optrs profiler is already recording; profile one region at a time")
        self._recorder = _record.Recorder(self.record_shapes, self.profile_memory, self.with_stack)
        hooks.active = self._recorder
        _core.profiler_set_enabled(True)

    def _prepare_trace(self) -> None:
        self._install()

    def _start_trace(self) -> None:
        """Starts a recording window, discarding what warmup recorded."""
        self._install()
        _core.profiler_drain()

    def _stop_trace(self) -> None:
        recorder = self._recorder
        if recorder is None:
            return
        hooks.active = None
        self._recorder = None
        _core.profiler_set_enabled(False)
        self._events = collect(recorder.done, _core.profiler_drain(), recorder.start_ns, self.profile_memory)

    def _trace_ready(self) -> None:
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)


class record_function(contextlib.ContextDecorator):
    """Marks a region (``with record_function("name"):``, or ``@record_function("name")`` on a
    function) as an event of its own while a profiler records; does nothing otherwise."""

    def __init__(self, name: str, args: str | None = None) -> None:
        self.name = name
        self.args = args
        self._open: tuple[hooks.Recorder, FunctionEvent] | None = None

    def _recreate_cm(self) -> record_function:
        return record_function(self.name, self.args)  # one per call: recursion and threads nest

    def __enter__(self) -> record_function:
        recorder = hooks.active
        if recorder is not None:
            self._open = (recorder, recorder.begin(self.name, "user_annotation"))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._open is not None:
            recorder, event = self._open
            self._open = None
            recorder.end(event)
