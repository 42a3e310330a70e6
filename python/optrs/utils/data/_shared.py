"""Batches from workers to the main process through shared memory.

A worker pickles the batch with every ndarray (a Tensor's too) replaced by a reference, copies the
arrays' bytes into one POSIX shared-memory segment named after the worker and the task, and sends
the small pickle through a pipe. The main process copies the arrays out and unlinks the segment at
once. The names are known in advance, so the main process can unlink what a killed or stopped
worker left behind (``discard``): no segment outlives the loader."""

from __future__ import annotations

import importlib
import io
import pickle
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory
from typing import Any

import numpy as np

_posixshmem: Any
try:
    _posixshmem = importlib.import_module("_posixshmem")  # shm_unlink; CPython's, as shared_memory uses it
except ImportError:  # Windows: a segment is freed with its last handle, nothing to unlink
    _posixshmem = None

_ALIGN = 64


@dataclass(frozen=True)
class Packed:
    """A pickled batch: ``segment`` names the shared memory holding its arrays (None when it has
    none), ``layouts`` says where each one lies."""

    segment: str | None
    payload: bytes
    layouts: list[tuple[int, np.dtype[Any], tuple[int, ...]]]


class _ArrayPickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, arrays: list[np.ndarray[Any, Any]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.arrays = arrays
        self.seen: dict[int, int] = {}

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) is not np.ndarray or obj.dtype.hasobject:
            return None
        key = self.seen.get(id(obj))
        if key is None:
            key = self.seen[id(obj)] = len(self.arrays)
            self.arrays.append(obj)
        return key


class _ArrayUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, arrays: list[np.ndarray[Any, Any]]) -> None:
        super().__init__(file)
        self.arrays = arrays

    def persistent_load(self, pid: Any) -> np.ndarray[Any, Any]:
        return self.arrays[int(pid)]


def pack(obj: Any, segment: str) -> Packed:
    """Pickles ``obj`` with its arrays' bytes in a new segment called ``segment`` (none if ``obj``
    holds no array)."""
    arrays: list[np.ndarray[Any, Any]] = []
    buffer = io.BytesIO()
    _ArrayPickler(buffer, arrays).dump(obj)
    if not arrays:
        return Packed(None, buffer.getvalue(), [])
    layouts, offset = [], 0
    for array in arrays:
        offset = -(-offset // _ALIGN) * _ALIGN
        layouts.append((offset, array.dtype, array.shape))
        offset += array.nbytes
    shm = shared_memory.SharedMemory(name=segment, create=True, size=max(offset, 1))
    # The main process unlinks it (it registers and unregisters it with the tracker itself).
    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    try:
        for array, (start, dtype, shape) in zip(arrays, layouts):
            np.ndarray(shape, dtype, buffer=shm.buf, offset=start)[...] = array
    except BaseException:
        discard(segment)
        raise
    finally:
        shm.close()
    return Packed(segment, buffer.getvalue(), layouts)


def unpack(packed: Packed) -> Any:
    """The object ``pack`` sent, its arrays copied out of the segment, which is then unlinked."""
    arrays: list[np.ndarray[Any, Any]] = []
    if packed.segment is not None:
        shm = shared_memory.SharedMemory(name=packed.segment)
        try:
            arrays = [np.ndarray(shape, dtype, buffer=shm.buf, offset=start).copy()
                      for start, dtype, shape in packed.layouts]
        finally:
            shm.close()
            shm.unlink()
    return _ArrayUnpickler(io.BytesIO(packed.payload), arrays).load()


def discard(segment: str) -> None:
    """Unlinks ``segment`` if it exists (a batch that was made but never received)."""
    if _posixshmem is not None:
        try:
            _posixshmem.shm_unlink("/" + segment)
        except FileNotFoundError:
            pass
