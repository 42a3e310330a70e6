"""What the hooks record into. While a `Recorder` sits in the hook slot that the autograd layer
and the optimizers check (``optrs._plumbing.hooks.active``), each hooked call becomes a
`FunctionEvent` (timed on the Rust kernels' clock, ``_core.profiler_now_ns``)
whose parent is the event open on the same thread when it began.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .. import _core
from ._events import FunctionEvent

if TYPE_CHECKING:
    from ..autograd.function import Function

_now = _core.profiler_now_ns
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

class _Thread(threading.local):
    """Per thread: its kernel-record id and the events open on it, innermost last."""

    def __init__(self) -> None:
        self.tid = _core.profiler_thread_id()
        self.stack: list[FunctionEvent] = []


class Recorder:
    """Collects the events of one profiling window (every thread)."""

    def __init__(self, record_shapes: bool, profile_memory: bool, with_stack: bool) -> None:
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.start_ns = _now()
        self.done: list[FunctionEvent] = []
        self._threads = _Thread()

    def begin(self, name: str, cat: str, inputs: tuple[Any, ...] = ()) -> FunctionEvent:
        thread = self._threads
        stack = thread.stack
        event = FunctionEvent(name, cat, thread.tid, stack[-1] if stack else None)
        if self.record_shapes:
            event.input_shapes = [list(_shape(a)) for a in inputs]
        if self.with_stack:
            event.stack = _user_stack()
        stack.append(event)
        event.start_ns = _now()
        return event

    def end(self, event: FunctionEvent) -> None:
        event.end_ns = _now()
        stack = self._threads.stack
        if stack and stack[-1] is event:
            stack.pop()
        elif event in stack:  # regions closed out of order; `collect` repairs the nesting
            stack.remove(event)
        self.done.append(event)

    def forward(self, cls: type[Function], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``cls._run(args, kwargs)``, recorded as the op's forward."""
        event = self.begin(cls.__name__, "cpu_op", args)
        try:
            out = cls._run(args, kwargs)
        finally:
            self.end(event)
        if self.profile_memory:
            outputs = out if isinstance(out, tuple) else (out,)
            event.self_bytes = _new_bytes([t._data for t in outputs], _arrays(args))
        return out

    def backward(self, node: Function, grads: list[NDArray[Any] | None],
                 run: Callable[[Function, list[NDArray[Any] | None]], Any]) -> Any:
        """``run(node, grads)`` (the engine's call of ``node.backward``, anomaly checks included
        when on), recorded as the op's backward."""
        event = self.begin(node.name(), "cpu_op", tuple(grads))
        try:
            result = run(node, grads)
        finally:
            self.end(event)
        if self.profile_memory:
            returned = result if isinstance(result, tuple) else (result,)
            event.self_bytes = _new_bytes([g for g in returned if isinstance(g, np.ndarray)], _arrays(grads))
        return result



def _shape(value: Any) -> tuple[int, ...]:
    data = getattr(value, "_data", value)
    return data.shape if isinstance(data, np.ndarray) else ()


def _arrays(values: Any) -> list[NDArray[Any]]:
    found = []
    for v in values:
        data = getattr(v, "_data", v)
        if isinstance(data, np.ndarray):
            found.append(data)
    return found


def _new_bytes(outputs: list[NDArray[Any]], inputs: list[NDArray[Any]]) -> int:
    """The bytes of the arrays in ``outputs`` that are not views of ``inputs``."""
    return sum(o.nbytes for o in outputs if not any(np.may_share_memory(o, i) for i in inputs))


def _user_stack() -> list[str]:
    """The caller's Python frames outside optrs, innermost first, as "file(line): function"."""
    frames = []
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if not code.co_filename.startswith(_PACKAGE_DIR):
            frames.append(f"{code.co_filename}({frame.f_lineno}): {code.co_name}")
        frame = frame.f_back
    return frames
