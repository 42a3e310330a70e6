"""Anomaly detection, as torch's ``detect_anomaly``: while it is on, every op's forward outputs and
every backward's gradients are checked, and the first NaN or infinity raises ``AnomalyError``
naming the op, with the stack of the forward call that created it.

The flag is global (as torch's) and read once per op where ``Function`` runs forward and where
the engine calls backward; with the mode off nothing else happens. With it on, each recorded op
keeps its creation stack (frames without their source lines until an error formats them) in a
weak map, so the graph and its memory are as without it.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
import warnings
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .._finite import nonfinite_kind
from ..errors import AnomalyError

if TYPE_CHECKING:
    from .function import Function


class _Flag:
    enabled: bool = False
    check_nan: bool = True


_flag = _Flag()
_traces: weakref.WeakKeyDictionary[Function, traceback.StackSummary] = weakref.WeakKeyDictionary()


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()`` (or after ``set_detect_anomaly(True)``)."""
    return _flag.enabled


def is_anomaly_check_nan_enabled() -> bool:
    """True when anomaly mode also checks values for NaN and infinity (``check_nan=True``)."""
    return _flag.check_nan


class _AnomalyMode:
    """Sets the mode on ``__enter__`` and restores the previous one on ``__exit__``."""

    def __init__(self, mode: bool, check_nan: bool) -> None:
        self._mode = (bool(mode), bool(check_nan))
        self._previous = (_flag.enabled, _flag.check_nan)

    def _set(self) -> None:
        self._previous = (_flag.enabled, _flag.check_nan)
        _flag.enabled, _flag.check_nan = self._mode

    def __exit__(self, *exc_info: object) -> None:
        _flag.enabled, _flag.check_nan = self._previous


class detect_anomaly(_AnomalyMode, contextlib.ContextDecorator):  # noqa: N801 (torch's name)
    """Context manager (or decorator) that turns anomaly detection on: the first op whose forward
    output or backward gradient holds a NaN or an infinity raises ``optrs.AnomalyError`` naming the
    op and showing where it was created. With ``check_nan=False`` only the creation stacks are
    kept, and an error raised inside an op's backward gets the op's forward stack as a note.
    It slows every op (a check per output and a stack per op): use it to debug, not to train."""

    def __init__(self, check_nan: bool = True) -> None:
        super().__init__(True, check_nan)

    def __enter__(self) -> None:
        self._set()


class set_detect_anomaly(_AnomalyMode):  # noqa: N801 (torch's name)
    """Turns anomaly detection on or off now; used as a context manager, the previous mode comes
    back on exit."""

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        super().__init__(mode, check_nan)
        self._set()

    def __enter__(self) -> None:
        pass


def _format(stack: traceback.StackSummary | None) -> str:
    if stack is None:
        return ("\n\nNo forward traceback: the op was created while anomaly mode was off; run the forward pass "
                "inside optrs.autograd.detect_anomaly() too.")
    return "\n\nTraceback of the forward call that created the op (most recent call last):\n" + "".join(stack.format())


def _creation_stack() -> traceback.StackSummary:
    """The stack from the caller of ``Function.apply`` out, as ``on_forward`` sees it (frames:
    this function, ``on_forward``, ``Function._run``, ``Function.apply``, its caller)."""
    summary = traceback.StackSummary.extract(traceback.walk_stack(sys._getframe(4)), lookup_lines=False)
    summary.reverse()
    return summary


def on_forward(fn: Function, outputs: list[NDArray[Any]], recorded: bool) -> None:
    """Called by ``Function`` after each forward while the mode is on (``recorded``: the op is a
    node of the graph, so its stack is kept for its backward)."""
    stack = _creation_stack() if recorded else None
    if _flag.check_nan:
        for i, output in enumerate(outputs):
            kind = nonfinite_kind(output)
            if kind is not None:
                raise AnomalyError(f"Function '{type(fn).__name__}' returned {kind} values in its {i}th output "
                                   f"(forward pass).{_format(stack or _creation_stack())}")
    if stack is not None:
        _traces[fn] = stack


def run_backward(node: Function, grads: list[NDArray[Any] | None]) -> Any:
    """``node.backward(*grads)`` as the engine calls it while the mode is on: an error it raises
    carries the op's forward stack, and with ``check_nan`` a NaN or infinite gradient raises."""
    try:
        result = node.backward(*grads)
    except Exception as error:
        note = f"Error detected in {node.name()}.{_format(_traces.get(node))}"
        add_note = getattr(error, "add_note", None)
        if add_note is None:
            warnings.warn(note, RuntimeWarning, stacklevel=2)
        else:
            add_note(note)
        raise
    if _flag.check_nan:
        for i, grad in enumerate(result if isinstance(result, tuple) else (result,)):
            kind = None if grad is None else nonfinite_kind(np.asarray(grad))
            if kind is not None:
                raise AnomalyError(f"Function '{node.name()}' returned {kind} values in its {i}th output."
                                   f"{_format(_traces.get(node))}")
    return result


__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "is_anomaly_check_nan_enabled"]
