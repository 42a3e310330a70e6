"""Arrays under test, each placed inside a larger buffer whose other bytes are a canary, and the
checks the fuzz suite makes after every call.

- **Writes outside the arrays**: every array the fuzz suite hands to optrs lives in a buffer of its
  own with guard bytes before and after it (and, for strided views, between its elements). The
  guard bytes are recorded when the array is made and compared after every call.
- **Reads outside the arrays**: each case runs in two worlds whose guard bytes differ (one holds
  1e30, the other NaN, for float arrays), with identical inputs. Whatever optrs computes must be
  bit-identical in both; a result that depends on the world read the guard bytes.
- **Exceptions**: only optrs's classes and the builtins the bindings document come out; pyo3's
  ``PanicException`` (a ``BaseException``) and anything else is a violation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import optrs

GUARD_BYTES = 64

# What a bad input may raise: optrs's classes, and the builtins the bindings raise for arguments
# pyo3 cannot convert (TypeError, OverflowError), allocations that fail (MemoryError) and the
# documented RuntimeErrors (concurrent steps, Schedule-Free's eval mode). RecursionError and
# NotImplementedError are RuntimeErrors too, but never a documented answer to bad input.
ALLOWED = (optrs.OptrsError, TypeError, ValueError, MemoryError, OverflowError, KeyError, RuntimeError)
NEVER = (RecursionError, NotImplementedError)


def budget(share: float) -> int:
    """A test's ``max_examples``: its share of the loaded profile's (tests/fuzz/conftest.py), so
    that one profile scales the whole suite."""
    from hypothesis import settings

    return max(1, round(settings.default.max_examples * share))


class Violation(AssertionError):
    """An invariant of the fuzz suite does not hold."""


def check_exception(exc: BaseException, what: str) -> None:
    """Raises Violation unless ``exc`` is an exception optrs may raise for bad input."""
    if isinstance(exc, ALLOWED) and not isinstance(exc, NEVER):
        return
    raise Violation(f"{what} raised {type(exc).__module__}.{type(exc).__qualname__}: {exc}") from exc


def poison_value(dtype: np.dtype[Any], world: int) -> Any:
    """The guard value of ``world`` for arrays of ``dtype``: far apart, so a read of it shows."""
    if dtype.kind in "fc":
        return dtype.type(1e30 if dtype.itemsize > 2 else 6e4) if world == 0 else dtype.type(math.nan)
    if dtype.kind in "iu":
        return np.iinfo(dtype).max if world == 0 else np.iinfo(dtype).min + (dtype.kind == "u")
    if dtype.kind == "b":
        return world == 0
    raise ValueError(dtype)


@dataclass
class _Guarded:
    buffer: np.ndarray[Any, np.dtype[np.uint8]]
    guard: np.ndarray[Any, np.dtype[np.bool_]]  # True where the bytes are not the array's
    expected: np.ndarray[Any, np.dtype[np.uint8]]
    what: str


def _element_bytes(view: np.ndarray[Any, Any], buffer: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Byte offsets, within ``buffer``, of every byte of every element of ``view``."""
    start = view.__array_interface__["data"][0] - buffer.__array_interface__["data"][0]
    if view.ndim == 0:
        offsets = np.array([start])
    else:
        grid = np.indices(view.shape).reshape(view.ndim, -1)
        offsets = start + (np.array(view.strides)[:, None] * grid).sum(axis=0)
    return (offsets[:, None] + np.arange(view.itemsize)[None, :]).ravel()


@dataclass
class Arena:
    """Makes the guarded arrays of one world and checks their guards."""

    world: int
    guarded: list[_Guarded] = field(default_factory=list)

    def place(self, values: np.ndarray[Any, Any], layout: str = "C", what: str = "array",
              broadcast_to: tuple[int, ...] | None = None) -> np.ndarray[Any, Any]:
        """A view with ``values``' dtype, shape and elements, laid out as ``layout`` (``C``,
        ``F``, ``neg``, ``strided``, ``unaligned``, ``readonly``) inside a guarded buffer;
        with ``broadcast_to``, a read-only broadcast of it to that (possibly huge) shape."""
        dtype = values.dtype
        if dtype.hasobject:
            return np.array(values, dtype=dtype)  # object pointers cannot live in a byte buffer
        item = dtype.itemsize
        count = max(values.size, 1)
        span = count * item * (2 if layout == "strided" else 1)
        skew = 1 if layout == "unaligned" and item > 1 else 0
        buffer = np.empty(GUARD_BYTES + span + GUARD_BYTES + 8, np.uint8)
        fill_bytes = (GUARD_BYTES + span + GUARD_BYTES + 8) // item * item
        buffer[:fill_bytes].view(dtype)[...] = poison_value(dtype, self.world)
        start = GUARD_BYTES + skew
        region = buffer[start:start + span].view(dtype)
        shape = values.shape
        if layout == "F" and values.ndim >= 2:
            view = region[:values.size].reshape(shape[::-1]).T
        elif layout == "neg" and values.ndim >= 1:
            view = region[:values.size].reshape(shape)[::-1]
        elif layout == "strided" and values.ndim >= 1:
            view = region[:2 * values.size].reshape(shape[:-1] + (2 * shape[-1],))[..., ::2]
        else:
            view = region[:values.size].reshape(shape)
        view[...] = values
        guard = np.ones(buffer.size, bool)
        guard[_element_bytes(view, buffer)] = False
        self.guarded.append(_Guarded(buffer, guard, buffer.copy(), what))
        if broadcast_to is not None:
            return np.broadcast_to(view, broadcast_to)
        if layout == "readonly":
            view.flags.writeable = False
        return view

    def check(self, after: str) -> None:
        """Raises Violation if any guard byte changed."""
        for g in self.guarded:
            changed = np.flatnonzero(g.guard & (g.buffer != g.expected))
            if changed.size:
                raise Violation(f"{after} wrote {changed.size} byte(s) outside {g.what} (buffer offsets "
                                f"{changed[:8].tolist()}, the array starts at {GUARD_BYTES})")

    def forget(self) -> None:
        self.guarded.clear()


def snapshot(array: Any) -> tuple[Any, ...]:
    """Everything about an array that a failed call must leave as it was."""
    if not isinstance(array, np.ndarray):
        return ("object", id(array))
    if array.size > 1 << 22:  # a broadcast view of a few elements: its base is guarded
        raw: Any = ("huge", array.shape)
    elif array.dtype.hasobject:
        raw = repr(array.tolist())
    else:
        raw = np.ascontiguousarray(array).view(np.uint8).tobytes()
    return (array.dtype.str, array.shape, array.strides, array.__array_interface__["data"][0],
            array.flags.writeable, raw)


def same_bits(a: Any, b: Any) -> bool:
    """Whether two results are bit-identical (arrays: dtype, shape and bytes; NaN payloads count)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.hasobject:
            return bool(a.tolist() == b.tolist())
        return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(same_bits(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    if isinstance(a, np.generic) and isinstance(b, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    return bool(a == b) and type(a) is type(b)


def describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"ndarray{value.shape}:{value.dtype}"
    return repr(value)[:80]


def iter_arrays(value: Any) -> Iterator[np.ndarray[Any, Any]]:
    """The ndarrays in a (nested) result."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from iter_arrays(v)
