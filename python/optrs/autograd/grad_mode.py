"""Grad mode: whether tensor ops record the graph, as torch's ``no_grad`` / ``enable_grad`` /
``set_grad_enabled``. The flag is per thread; each context manager also works as a decorator."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

_F = TypeVar("_F", bound=Callable[..., Any])


class _Flag(threading.local):
    enabled: bool = True


_flag = _Flag()


def is_grad_enabled() -> bool:
    """True when ops on tensors that require grad record the graph (the default)."""
    return _flag.enabled


class _GradMode:
    """Sets the flag on ``__enter__`` and restores the previous value on ``__exit__``."""

    _mode: bool

    def __init__(self) -> None:
        self._previous = True

    def __enter__(self) -> None:
        self._previous = _flag.enabled
        _flag.enabled = self._mode

    def __exit__(self, *exc_info: object) -> None:
        _flag.enabled = self._previous

    def _fresh(self) -> _GradMode:
        return type(self)()

    def __call__(self, func: _F) -> _F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return func(*args, **kwargs)

        return cast(_F, wrapper)


class _NoArgGradMode(_GradMode):
    """A mode that takes no argument, so it may decorate bare (``@no_grad``) as in torch 2."""

    def __new__(cls, func: Callable[..., Any] | None = None) -> Any:
        if func is not None:
            return cls()(func)
        return super().__new__(cls)


class no_grad(_NoArgGradMode):
    """Ops inside record no graph: their results do not require grad and keep no buffers for
    backward. Use it for evaluation and for updating weights by hand."""

    _mode = False


class enable_grad(_NoArgGradMode):
    """Turns recording back on inside a ``no_grad`` block."""

    _mode = True


class set_grad_enabled(_GradMode):
    """``set_grad_enabled(False)`` switches recording off at once (as a plain call) or for a
    ``with`` block, after which the previous mode comes back."""

    def __init__(self, mode: bool) -> None:
        self._mode = bool(mode)
        self._previous = _flag.enabled
        _flag.enabled = self._mode

    def __enter__(self) -> None:
        pass

    def _fresh(self) -> _GradMode:
        return set_grad_enabled(self._mode)

    def __call__(self, func: _F) -> _F:
        # As a decorator, the call that made this object must not change the mode (torch's rule).
        _flag.enabled = self._previous
        return super().__call__(func)


__all__ = ["is_grad_enabled", "no_grad", "enable_grad", "set_grad_enabled"]
