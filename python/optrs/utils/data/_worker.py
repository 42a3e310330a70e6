"""What runs in a DataLoader worker process.

Each worker seeds Python's, NumPy's and optrs's generators from the loader's base seed and its
id (torch's scheme: ``seed = base_seed + worker_id``), sets ``get_worker_info()``, calls
``worker_init_fn``, then serves tasks from its index pipe until told to stop or until the main
process is gone. Results go back through shared memory (``_shared``); an exception goes back with
its traceback text. ``get_worker_info`` lives in ``_info``, which imports no multiprocessing
(``import optrs`` does not pay for it)."""

from __future__ import annotations

import os
import pickle
import random
import sys
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from ... import random as _random
from ..._core import set_num_threads
from . import _info, _shared
from ._fetch import create_fetcher

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

# How often (s) an idle worker checks that the main process is still there.
_PARENT_CHECK_INTERVAL = 2.0


class _KeyErrorMessage(str):
    """KeyError shows its message's repr; this keeps the traceback's newlines."""

    def __repr__(self) -> str:
        return str(self)


class ExceptionWrapper:
    """An exception caught in a worker, sent to the main process with its traceback text."""

    def __init__(self, exc: BaseException, where: str) -> None:
        exc_type: type[BaseException] = type(exc)
        try:
            pickle.loads(pickle.dumps(exc_type))
        except Exception:  # a class the main process cannot import
            exc_type = RuntimeError
        self.exc_type = exc_type
        self.exc_name = type(exc).__name__
        self.exc_msg = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.where = where

    def reraise(self) -> NoReturn:
        msg = f"Caught {self.exc_name} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)
        try:
            exception = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        try:
            raise exception
        finally:
            del exception  # else exception -> traceback -> this frame -> exception: a cycle holding the loader


@dataclass
class WorkerConfig:
    """What every worker gets (pickled once per worker under "spawn")."""

    dataset: Any
    iterable: bool
    auto_collation: bool
    collate_fn: Any
    drop_last: bool
    base_seed: int
    worker_init_fn: Any
    num_workers: int
    segment_prefix: str
    parent_pid: int


def segment_name(prefix: str, worker_id: int, task: int) -> str:
    return f"{prefix}_{worker_id}_{task}"


def _seed(seed: int, worker_id: int, base_seed: int) -> None:
    random.seed(seed)
    _random.manual_seed(seed)
    np.random.seed(np.random.SeedSequence([worker_id, base_seed]).generate_state(4))


def worker_loop(config: WorkerConfig, worker_id: int, index_conn: Connection, result_conn: Connection,
                done_event: Any) -> None:
    """Serves tasks ``("task", n, index)`` and ``("reset",)`` until ``None`` or the main process
    exits, or until ``done_event`` is set (the loader is shutting down: what is left is skipped).
    Replies ``("data", n, Packed)``, ``("error", n, ExceptionWrapper)``, ``("stop", n)`` (an
    iterable dataset's end) or ``("reset",)``."""
    try:
        # The parent's kernel threads do not exist in a forked child: a fresh pool of one (torch
        # likewise runs its workers on one thread).
        set_num_threads(1)
        seed = config.base_seed + worker_id
        _seed(seed, worker_id, config.base_seed)
        _info.worker_info = _info.WorkerInfo(id=worker_id, num_workers=config.num_workers, seed=seed,
                                             dataset=config.dataset)
        where = f"in DataLoader worker process {worker_id}"
        init_error: ExceptionWrapper | None = None
        fetcher = None
        try:
            if config.worker_init_fn is not None:
                config.worker_init_fn(worker_id)
            fetcher = create_fetcher(config.iterable, config.dataset, config.auto_collation, config.collate_fn,
                                     config.drop_last)
        except Exception as e:
            init_error = ExceptionWrapper(e, where)
        ended = False
        while True:
            while not index_conn.poll(_PARENT_CHECK_INTERVAL):
                if os.getppid() != config.parent_pid:
                    return
            message = index_conn.recv()
            if message is None or done_event.is_set():
                return
            if message[0] == "reset":
                fetcher = create_fetcher(config.iterable, config.dataset, config.auto_collation, config.collate_fn,
                                         config.drop_last)
                ended = False
                result_conn.send(("reset",))
                continue
            _, task, index = message
            if init_error is not None or fetcher is None:
                result_conn.send(("error", task, init_error))
                continue
            if ended:
                result_conn.send(("stop", task))
                continue
            try:
                packed = _shared.pack(fetcher.fetch(index), segment_name(config.segment_prefix, worker_id, task))
                reply: tuple[Any, ...] = ("data", task, packed)
            except StopIteration as e:
                ended = config.iterable
                reply = ("stop", task) if config.iterable else ("error", task, ExceptionWrapper(e, where))
            except Exception as e:
                reply = ("error", task, ExceptionWrapper(e, where))
            result_conn.send(reply)
    except KeyboardInterrupt:  # Ctrl-C reaches the workers too; the main process reports it
        pass
    except (BrokenPipeError, EOFError):  # the main process is gone
        pass
    finally:
        sys.stdout.flush()
