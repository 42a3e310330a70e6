"""``get_worker_info``: set in each worker process by ``_worker.worker_loop``, None elsewhere."""

from __future__ import annotations

from typing import Any


class WorkerInfo:
    """``get_worker_info()`` in a worker: ``id``, ``num_workers``, ``seed`` and ``dataset`` (this
    process's copy). Read-only, as torch's."""

    id: int
    num_workers: int
    seed: int
    dataset: Any

    def __init__(self, **kwargs: Any) -> None:
        for k, v in kwargs.items():
            object.__setattr__(self, k, v)
        object.__setattr__(self, "_keys", tuple(kwargs))

    def __setattr__(self, key: str, val: Any) -> None:
        raise RuntimeError(f"Cannot assign attributes to {self.__class__.__name__} objects")

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._keys)  # type: ignore[attr-defined]
        return f"{self.__class__.__name__}({items})"


worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """This worker's ``WorkerInfo``, or None in the main process. An ``IterableDataset`` shards
    itself with it: worker ``info.id`` of ``info.num_workers`` reads its own share."""
    return worker_info
