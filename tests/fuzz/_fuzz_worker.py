"""A long-lived child process that runs fuzz cases, so that a crash (SIGSEGV, an abort on a failed
allocation) or a hang fails the case that caused it instead of killing pytest.

The child is started with multiprocessing's ``spawn`` (a fresh interpreter: forking a process whose
thread pool is running would leave the child a pool without threads) and serves calls of
``module:function`` names with picklable arguments. A call the child does not answer, because it
died or ran past its time limit, raises :class:`~_fuzz_arrays.Violation` naming the signal; the
next call starts a new child.
"""

from __future__ import annotations

import atexit
import faulthandler
import importlib
import multiprocessing
import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any

from _fuzz_arrays import Violation

TIMEOUT_S = 60.0


def _serve(conn: Connection) -> None:
    faulthandler.enable()  # a crash prints the Python stack of the call to the captured stderr
    while True:
        try:
            target, args = conn.recv()
        except EOFError:
            return
        module, name = target.split(":")
        try:
            result = ("ok", getattr(importlib.import_module(module), name)(*args))
        except Violation as exc:
            result = ("violation", str(exc))
        except BaseException:  # noqa: B036 - a harness error is sent back whole, with its traceback
            result = ("error", traceback.format_exc())
        conn.send(result)


class Worker:
    """The child process and the pipe to it."""

    def __init__(self) -> None:
        self._process: Any = None
        self._conn: Connection | None = None
        self.calls = 0

    def _start(self) -> Connection:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), daemon=True)
        self._process.start()
        child.close()
        self._conn = parent
        return parent

    def stop(self) -> None:
        """Ends the child (the next call starts a new one): after a case that may have corrupted
        its memory without crashing it, so that a later case is not blamed."""
        if self._process is not None and self._process.pid is not None:  # started
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None

    def call(self, target: str, *args: Any, timeout: float = TIMEOUT_S) -> Any:
        """Runs ``module:function(*args)`` in the child and returns its result; a Violation raised
        there is raised here."""
        conn = self._conn or self._start()
        self.calls += 1
        conn.send((target, args))
        if not conn.poll(timeout):
            self.stop()
            raise Violation(f"{target}{args!r:.300} did not return within {timeout:.0f} s (a hang); "
                            "the worker process was killed")
        try:
            status, value = conn.recv()
        except EOFError:
            self._process.join()
            code = self._process.exitcode
            self.stop()
            died = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
            raise Violation(f"optrs crashed the process ({died}) in {target}{args!r:.2000}") from None
        if status == "violation":
            raise Violation(value)
        if status == "error":
            raise RuntimeError(f"fuzz harness error in the worker:\n{value}")
        return value


WORKER = Worker()
atexit.register(WORKER.stop)
