"""The DataLoader iterator with worker processes (torch's ``_MultiProcessingDataLoaderIter``).

Tasks are numbered; task ``n``'s indices go to the next active worker in turn, at most
``prefetch_factor`` per worker in flight, and batches come back in task order whichever worker
finishes first (unless ``in_order=False``). The main process waits on every worker's result pipe
and process sentinel together, so a worker that dies raises at once instead of hanging."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import secrets
import signal
import time
import weakref
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from . import _shared
from ._worker import ExceptionWrapper, WorkerConfig, segment_name, worker_loop
from .sampler import draw_seed

# How long (s) shutdown waits for a worker to finish its task before terminating it (torch's 5 s).
_JOIN_TIMEOUT = 5.0
# How often (s) the main process wakes up while waiting with no timeout.
_WAIT_INTERVAL = 5.0

_SIGNAL_HINTS = {
    signal.SIGKILL: " The out-of-memory killer sends SIGKILL: the workers may need less memory.",
    signal.SIGBUS: " A bus error in a worker usually means the shared memory (/dev/shm) is too small for a batch.",
}


def default_context() -> BaseContext:
    """"fork" where the platform has it (as torch on Linux), else the platform's default."""
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)


class _WorkerPool:
    """The processes, pipes and not-yet-received segments: what shutdown needs (no reference to
    the iterator, so that a finalizer can own it)."""

    def __init__(self, segment_prefix: str, done_event: Any) -> None:
        self.segment_prefix = segment_prefix
        self.done_event = done_event
        self.processes: list[BaseProcess] = []
        self.index_conns: list[Connection] = []
        self.result_conns: list[Connection] = []
        self.unreceived: dict[int, int] = {}  # task -> worker, for the segments it may have made
        self.is_shut = False
        self.owner_pid = os.getpid()

    def shutdown(self) -> None:
        # A forked child (another loader's worker) holds a copy of this pool: not its to shut.
        if self.is_shut or os.getpid() != self.owner_pid:
            return
        self.is_shut = True
        self.done_event.set()
        for conn in self.index_conns:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        for process in self.processes:
            process.join(_JOIN_TIMEOUT)
            if process.is_alive():
                process.terminate()
                process.join()
        # Every worker has exited: no segment can appear any more.
        for task, worker_id in self.unreceived.items():
            _shared.discard(segment_name(self.segment_prefix, worker_id, task))
        self.unreceived.clear()
        for conn in self.index_conns + self.result_conns:
            conn.close()


class MultiProcessIter:
    """Iterates a ``DataLoader`` with ``num_workers > 0``; see the module docstring."""

    def __init__(self, loader: Any) -> None:
        self._index_sampler = loader._index_sampler
        self._sampler_iter = iter(self._index_sampler)
        base_seed = draw_seed(loader.generator)
        self._num_workers: int = loader.num_workers
        self._prefetch_factor: int = loader.prefetch_factor
        self._timeout: float = loader.timeout
        self._persistent: bool = loader.persistent_workers
        self._in_order: bool = loader.in_order
        context: Any = loader.multiprocessing_context or default_context()
        self._pool = _WorkerPool(f"optrs_{secrets.token_hex(4)}", context.Event())
        self._shutdown = weakref.finalize(self, self._pool.shutdown)
        config = WorkerConfig(dataset=loader.dataset, iterable=loader._is_iterable,
                              auto_collation=loader._auto_collation, collate_fn=loader.collate_fn,
                              drop_last=loader.drop_last, base_seed=base_seed, worker_init_fn=loader.worker_init_fn,
                              num_workers=self._num_workers, segment_prefix=self._pool.segment_prefix,
                              parent_pid=os.getpid())
        if hasattr(resource_tracker, "ensure_running"):
            resource_tracker.ensure_running()  # one tracker, shared by the workers, not one each
        try:
            for worker_id in range(self._num_workers):
                index_read, index_write = context.Pipe(duplex=False)
                result_read, result_write = context.Pipe(duplex=False)
                self._pool.index_conns.append(index_write)
                self._pool.result_conns.append(result_read)
                process = context.Process(target=worker_loop, daemon=True,
                                          args=(config, worker_id, index_read, result_write, self._pool.done_event))
                try:
                    process.start()
                finally:
                    index_read.close()  # the worker's ends: closed here, so that its death reads as EOF
                    result_write.close()
                self._pool.processes.append(process)
        except BaseException:
            self._shutdown()
            raise
        self._send_idx = 0
        self._start_epoch()

    def _start_epoch(self) -> None:
        self._rcvd_idx = self._send_idx
        self._task_worker: dict[int, int] = {}
        self._reorder: dict[int, tuple[str, Any]] = {}
        self._active = [True] * self._num_workers
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    def _reset(self, loader: Any) -> None:
        """A new epoch on the same (persistent) workers: drains what the last one left in flight
        and restarts the workers' iterable datasets."""
        self._sampler_iter = iter(loader._index_sampler)
        for conn in self._pool.index_conns:
            conn.send(("reset",))
        acks = 0
        while acks < self._num_workers:
            acks += self._receive()[1] == "reset"
        self._start_epoch()

    def __iter__(self) -> MultiProcessIter:
        return self

    def __len__(self) -> int:
        return len(self._index_sampler)

    def _try_put_index(self) -> None:
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):
            worker_id = next(self._worker_cycle)
            if self._active[worker_id]:
                break
        else:
            return
        task = self._send_idx
        try:
            self._pool.index_conns[worker_id].send(("task", task, index))
        except OSError:  # its end is closed: the worker is gone
            raise self._worker_died(worker_id) from None
        self._task_worker[task] = self._pool.unreceived[task] = worker_id
        self._send_idx += 1

    def __next__(self) -> Any:
        if self._pool.is_shut:
            raise StopIteration
        while True:
            while self._rcvd_idx < self._send_idx:
                if self._rcvd_idx in self._reorder:
                    break
                worker_id = self._task_worker.get(self._rcvd_idx)
                if worker_id is not None and self._active[worker_id]:
                    break
                self._task_worker.pop(self._rcvd_idx, None)  # consumed, or its worker's dataset ended
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self._shutdown()
                raise StopIteration
            if self._rcvd_idx in self._reorder:
                self._task_worker.pop(self._rcvd_idx)
                kind, data = self._reorder.pop(self._rcvd_idx)
                self._rcvd_idx += 1
                return self._deliver(kind, data)
            task, kind, data = self._receive()
            if task not in self._task_worker:
                continue  # a task of an ended worker, or of an epoch that was left
            if kind == "stop":
                self._active[self._task_worker.pop(task)] = False
            elif task == self._rcvd_idx or not self._in_order:
                self._task_worker.pop(task)
                return self._deliver(kind, data)
            else:
                self._reorder[task] = (kind, data)

    def _deliver(self, kind: str, data: Any) -> Any:
        self._try_put_index()
        if kind == "error":
            data.reraise()
        return data

    def _receive(self) -> tuple[int, str, Any]:
        """The next message of any worker, as (task, kind, data), data copied out of its segment;
        ``(-1, "reset", None)`` for a reset's acknowledgement."""
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        conns = {conn: w for w, conn in enumerate(self._pool.result_conns)}
        sentinels = {p.sentinel: w for w, p in enumerate(self._pool.processes)}
        while True:
            remaining = _WAIT_INTERVAL if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait([*conns, *sentinels], timeout=remaining)
            for conn in ready:
                if conn in conns:
                    try:
                        message = conn.recv()
                    except EOFError:
                        raise self._worker_died(conns[conn]) from None
                    return self._unpack(conns[conn], message)
            for sentinel in ready:
                if sentinel in sentinels and not self._pool.result_conns[sentinels[sentinel]].poll():
                    raise self._worker_died(sentinels[sentinel])
            if not ready and deadline is not None and time.monotonic() >= deadline:
                self._shutdown()
                raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")

    def _unpack(self, worker_id: int, message: tuple[Any, ...]) -> tuple[int, str, Any]:
        if message[0] == "reset":
            return -1, "reset", None
        kind, task = message[0], message[1]
        self._pool.unreceived.pop(task, None)
        if kind == "data":
            return task, kind, _shared.unpack(message[2])
        if kind == "error":
            _shared.discard(segment_name(self._pool.segment_prefix, worker_id, task))
            wrapper: ExceptionWrapper = message[2]
            return task, kind, wrapper
        return task, kind, None

    def _worker_died(self, worker_id: int) -> RuntimeError:
        process = self._pool.processes[worker_id]
        process.join(1.0)
        code = process.exitcode
        self._shutdown()
        if code is not None and code < 0:
            sig = signal.Signals(-code)
            how = f"is killed by signal: {signal.strsignal(sig)} ({sig.name}).{_SIGNAL_HINTS.get(sig, '')}"
        else:
            how = f"exited unexpectedly with exit code {code}."
        return RuntimeError(f"DataLoader worker {worker_id} (pid {process.pid}) {how}")
