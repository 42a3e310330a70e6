"""torch's ``DataLoader``: batches of a dataset, read in the main process (``num_workers=0``) or
in worker processes that hand batches back through shared memory (``_multiprocess``). The
arguments, defaults, checks and messages are torch 2.13's."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import numpy as np

from ...errors import InvalidParamError, ParamDTypeError
from ._fetch import create_fetcher
from .collate import default_collate, default_convert
from .dataset import Dataset, IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, draw_seed

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    from ._multiprocess import MultiProcessIter

T_co = TypeVar("T_co", covariant=True)

# Set once at construction, as torch's (changing them would desynchronise sampler and batches).
_FROZEN_ATTRS = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")


class _InfiniteConstantSampler(Sampler[None]):
    """An IterableDataset's sampler: ``None`` forever (the dataset decides when to stop)."""

    def __iter__(self) -> Iterator[None]:
        while True:
            yield None


class _SingleProcessIter:
    """Iterates a ``DataLoader`` with ``num_workers=0``."""

    def __init__(self, loader: DataLoader[Any]) -> None:
        if loader.timeout != 0:
            raise InvalidParamError(f"timeout={loader.timeout} bounds the wait for a worker's batch: "
                                    "it needs num_workers > 0 (pass timeout=0)")
        self._index_sampler = loader._index_sampler
        self._sampler_iter = iter(self._index_sampler)
        draw_seed(loader.generator)  # the workers' base seed in torch: drawn here too, so orders match
        self._fetcher = create_fetcher(loader._is_iterable, loader.dataset, loader._auto_collation, loader.collate_fn,
                                       loader.drop_last)

    def __iter__(self) -> _SingleProcessIter:
        return self

    def __len__(self) -> int:
        return len(self._index_sampler)

    def __next__(self) -> Any:
        return self._fetcher.fetch(next(self._sampler_iter))


class DataLoader(Generic[T_co]):
    """Iterates over ``dataset`` in batches: ``batch_size`` samples per batch (``None``: no
    batching), drawn in order, shuffled each epoch (``shuffle=True``), or as a ``sampler`` or
    ``batch_sampler`` says, and put together by ``collate_fn`` (``default_collate``).

    ``num_workers > 0`` reads batches in that many processes ("fork" by default where the
    platform has it; ``multiprocessing_context="spawn"`` is accepted), ``prefetch_factor`` batches
    ahead per worker, delivered in order; ``persistent_workers`` keeps them between epochs. Each
    worker seeds ``random``, NumPy and optrs from a base seed drawn from ``generator`` (else from
    ``optrs.manual_seed``'s generator) plus its id. An ``IterableDataset`` is copied into each
    worker: shard it with ``get_worker_info()``, or each worker yields every item. An exception in
    a worker is raised here with the worker's traceback; a worker that dies raises RuntimeError.
    ``pin_memory`` has no effect (no accelerator), as torch on a CPU-only machine."""

    def __init__(self, dataset: Dataset[T_co] | Any, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler[Any] | Iterable[Any] | None = None,
                 batch_sampler: Sampler[list[Any]] | Iterable[list[Any]] | None = None, num_workers: int = 0,
                 collate_fn: Callable[[Any], Any] | None = None, pin_memory: bool = False, drop_last: bool = False,
                 timeout: float = 0, worker_init_fn: Callable[[int], None] | None = None,
                 multiprocessing_context: str | BaseContext | None = None,
                 generator: np.random.Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "", in_order: bool = True) -> None:
        if num_workers < 0:
            raise InvalidParamError("num_workers option should be non-negative; "
                                    "use num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise InvalidParamError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise InvalidParamError("prefetch_factor option could only be specified in multiprocessing."
                                    "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to "
                                    "None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise InvalidParamError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise InvalidParamError("persistent_workers option needs num_workers > 0")
        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order
        self._is_iterable = isinstance(dataset, IterableDataset)
        if self._is_iterable:
            if shuffle not in {False, None}:
                raise InvalidParamError("DataLoader with IterableDataset: expected unspecified shuffle option, "
                                        f"but got shuffle={shuffle}")
            if sampler is not None:
                raise InvalidParamError("DataLoader with IterableDataset: expected unspecified sampler option, "
                                        f"but got sampler={sampler}")
            if batch_sampler is not None:
                raise InvalidParamError("DataLoader with IterableDataset: expected unspecified batch_sampler "
                                        f"option, but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise InvalidParamError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise InvalidParamError("batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                        "sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise InvalidParamError("batch_size=None option disables auto-batching and is mutually exclusive "
                                    "with drop_last")
        if sampler is None:
            if self._is_iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(cast(Sized, dataset), generator=generator)
            else:
                sampler = SequentialSampler(cast(Sized, dataset))
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers
        self._iterator: MultiProcessIter | None = None
        self._initialized = True
        self.check_worker_number_rationality()

    @property
    def multiprocessing_context(self) -> BaseContext | None:
        return self._multiprocessing_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, context: str | BaseContext | None) -> None:
        if context is not None:
            import multiprocessing  # here: only worker processes need it (see __iter__)
            from multiprocessing.context import BaseContext

            if self.num_workers == 0:
                raise InvalidParamError("multiprocessing_context can only be used with multi-process loading "
                                        f"(num_workers > 0), but got num_workers={self.num_workers}")
            if isinstance(context, str):
                valid_start_methods = multiprocessing.get_all_start_methods()
                if context not in valid_start_methods:
                    raise InvalidParamError(f"multiprocessing_context option should specify a valid start method in "
                                            f"{valid_start_methods!r}, but got multiprocessing_context={context!r}")
                context = multiprocessing.get_context(context)
            if not isinstance(context, BaseContext):
                raise ParamDTypeError("multiprocessing_context option should be a valid context object or a string "
                                      f"specifying the start method, but got multiprocessing_context={context}")
        self._multiprocessing_context = context

    def __setattr__(self, attr: str, val: Any) -> None:
        if getattr(self, "_initialized", False) and attr in _FROZEN_ATTRS:
            raise InvalidParamError(f"{attr} attribute should not be set after {self.__class__.__name__} is "
                                    "initialized")
        super().__setattr__(attr, val)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self) -> Any:
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self) -> Iterator[Any]:
        if self.pin_memory:
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then device pinned "
                          "memory won't be used.", stacklevel=2)
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        # Imported here: multiprocessing costs ~20 ms at import, and only workers need it.
        from ._multiprocess import MultiProcessIter

        if not self.persistent_workers:
            return MultiProcessIter(self)
        if self._iterator is None or self._iterator._pool.is_shut:
            self._iterator = MultiProcessIter(self)
        else:
            self._iterator._reset(self)
        return self._iterator

    def __len__(self) -> int:
        """The number of batches: the sampler's; for an IterableDataset, ``len(dataset)`` over
        ``batch_size`` (rounded as ``drop_last`` says), an estimate as in torch."""
        if not self._is_iterable:
            return len(self._index_sampler)
        length = len(cast(Sized, self.dataset))
        if self.batch_size is not None:
            length = length // self.batch_size if self.drop_last else math.ceil(length / self.batch_size)
        return length

    def check_worker_number_rationality(self) -> None:
        """Warns, as torch, when there are more workers than CPUs this process may use."""
        if self.num_workers == 0:
            return
        affinity = getattr(os, "sched_getaffinity", None)
        cpus = len(affinity(0)) if affinity is not None else os.cpu_count()
        if cpus is None or self.num_workers > cpus:
            suggestion = ("DataLoader is not able to compute a suggested max number of worker in current system."
                          if cpus is None else
                          f"Our suggested max number of worker in current system is {cpus}"
                          f"{'' if affinity is not None else ' (`cpuset` is not taken into account)'}, which is "
                          "smaller than what this DataLoader is going to create.")
            warnings.warn(f"This DataLoader will create {self.num_workers} worker processes in total. {suggestion} "
                          "Please be aware that excessive worker creation might get DataLoader running slow or even "
                          "freeze, lower the worker number to avoid potential slowness/freeze if necessary.",
                          stacklevel=2)


__all__ = ["DataLoader"]
