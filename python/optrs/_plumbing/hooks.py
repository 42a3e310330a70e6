"""The profiler's hook slot: the one global that autograd ops, backward nodes and optimizer steps
check. ``active`` is None unless a profiler is collecting (`optrs.profiler` installs its recorder
here), so with no profiler each hooked call pays one module-attribute read."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

Method = TypeVar("Method", bound=Callable[..., Any])

class Recorder(Protocol):
    """The profiler's side of the slot (``optrs.profiler._record.Recorder``)."""

    def begin(self, name: str, cat: str, inputs: tuple[Any, ...] = ()) -> Any: ...

    def end(self, event: Any) -> None: ...

    def forward(self, cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...

    def backward(self, node: Any, grads: list[Any], run: Callable[[Any, list[Any]], Any]) -> Any: ...

active: Recorder | None = None

def profiled_method(step: Method) -> Method:
    """Records an optimizer method (``step``, ``zero_grad``) as torch names it,
    ``Optimizer.step#<class>.step``, while profiling."""
    method = step.__name__

    @functools.wraps(step)
    def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        recorder = active
        if recorder is None:
            return step(self, *args, **kwargs)
        event = recorder.begin(f"Optimizer.{method}#{type(self).__name__}.{method}", "user_annotation")
        try:
            return step(self, *args, **kwargs)
        finally:
            recorder.end(event)

    return recorded  # type: ignore[return-value]
