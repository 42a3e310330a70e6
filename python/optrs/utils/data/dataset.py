"""torch.utils.data's datasets: the map-style ``Dataset`` (``__getitem__`` and ``__len__``), the
``IterableDataset`` (``__iter__``), and the wrappers ``TensorDataset``, ``StackDataset``,
``ConcatDataset``, ``ChainDataset``, ``Subset`` and ``random_split``. Where torch asserts on bad
input, optrs raises ``InvalidParamError`` (a ValueError) with torch's message."""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from ... import random as _random
from ...autograd import Tensor
from ...errors import InvalidParamError

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class Dataset(Generic[T_co]):
    """A map-style dataset: subclasses define ``__getitem__`` (and ``__len__`` for the default
    samplers). ``a + b`` is ``ConcatDataset([a, b])``."""

    def __getitem__(self, index: Any) -> T_co:
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other: Dataset[T_co]) -> ConcatDataset[T_co]:
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co], Iterable[T_co]):
    """A dataset that is a stream: subclasses define ``__iter__``. With workers, each worker
    iterates its own copy; shard with ``get_worker_info()`` (see ``DataLoader``). ``a + b`` is
    ``ChainDataset([a, b])``."""

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other: Dataset[T_co]) -> ChainDataset:  # type: ignore[override]
        return ChainDataset([self, other])


def _first_dim(data: Tensor | np.ndarray[Any, Any]) -> int:
    shape = data.shape
    if not shape:
        raise InvalidParamError("TensorDataset takes tensors with a first dimension, got a 0-d one")
    return int(shape[0])


class TensorDataset(Dataset[tuple[Any, ...]]):
    """Item ``i`` is ``tuple(t[i] for t in tensors)``; tensors (or ndarrays) share their first
    dimension."""

    def __init__(self, *tensors: Tensor | np.ndarray[Any, Any]) -> None:
        if not tensors:
            raise InvalidParamError("TensorDataset needs at least one tensor")
        if any(_first_dim(tensors[0]) != _first_dim(t) for t in tensors):
            raise InvalidParamError("Size mismatch between tensors")
        self.tensors = tensors

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        return tuple(tensor[index] for tensor in self.tensors)

    def __len__(self) -> int:
        return _first_dim(self.tensors[0])


class StackDataset(Dataset[Any]):
    """Item ``i`` is ``tuple(d[i] for d in args)`` or ``{k: d[i] for k, d in kwargs.items()}``."""

    def __init__(self, *args: Dataset[Any], **kwargs: Dataset[Any]) -> None:
        if args and kwargs:
            raise InvalidParamError("Supported either ``tuple``- (via ``args``) or"
                                    "``dict``- (via ``kwargs``) like input/output, but both types are given.")
        datasets: list[Any] = list(args or kwargs.values())
        if not datasets:
            raise InvalidParamError("At least one dataset should be passed")
        self._length = len(datasets[0])
        if any(self._length != len(d) for d in datasets):
            raise InvalidParamError("Size mismatch between datasets")
        self.datasets: tuple[Dataset[Any], ...] | dict[str, Dataset[Any]] = args or kwargs

    def __getitem__(self, index: Any) -> Any:
        if isinstance(self.datasets, dict):
            return {k: dataset[index] for k, dataset in self.datasets.items()}
        return tuple(dataset[index] for dataset in self.datasets)

    def __len__(self) -> int:
        return self._length


class ConcatDataset(Dataset[T_co]):
    """The datasets one after another (map-style only)."""

    @staticmethod
    def cumsum(sequence: Iterable[Any]) -> list[int]:
        return list(itertools.accumulate(len(e) for e in sequence))

    def __init__(self, datasets: Iterable[Dataset[Any]]) -> None:
        self.datasets: list[Dataset[Any]] = list(datasets)
        if not self.datasets:
            raise InvalidParamError("datasets should not be an empty iterable")
        if any(isinstance(d, IterableDataset) for d in self.datasets):
            raise InvalidParamError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> T_co:
        if idx < 0:
            if -idx > len(self):
                raise InvalidParamError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        dataset_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        sample_idx = idx - (self.cumulative_sizes[dataset_idx - 1] if dataset_idx else 0)
        item: T_co = self.datasets[dataset_idx][sample_idx]
        return item


class ChainDataset(IterableDataset[Any]):
    """Iterable datasets chained, read lazily."""

    def __init__(self, datasets: Iterable[Dataset[Any]]) -> None:
        self.datasets = datasets

    def _iterables(self) -> Iterator[IterableDataset[Any]]:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise InvalidParamError("ChainDataset only supports IterableDataset")
            yield d

    def __iter__(self) -> Iterator[Any]:
        for d in self._iterables():
            yield from d

    def __len__(self) -> int:
        total = 0
        for d in self._iterables():
            total += len(d)  # type: ignore[arg-type]
        return total


class Subset(Dataset[T_co]):
    """The items of ``dataset`` at ``indices``."""

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Dataset[T], lengths: Sequence[int | float],
                 generator: np.random.Generator | None = _random.default_generator) -> list[Subset[T]]:
    """Splits ``dataset`` into non-overlapping random subsets of the given lengths, or of the
    given fractions (summing to 1): each gets ``floor(len * frac)`` items and the remainder goes
    one by one to the first splits, as in torch. The permutation comes from ``generator``."""
    total = len(dataset)  # type: ignore[arg-type]
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        subset_lengths: list[int] = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise InvalidParamError(f"Fraction at index {i} is not between 0 and 1")
            subset_lengths.append(math.floor(total * frac))
        for i in range(total - sum(subset_lengths)):
            subset_lengths[i % len(subset_lengths)] += 1
        for i, length in enumerate(subset_lengths):
            if length == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.",
                              stacklevel=2)
        lengths = subset_lengths
    if sum(lengths) != total:
        raise InvalidParamError("Sum of input lengths does not equal the length of the input dataset!")
    rng = _random.default_generator if generator is None else generator
    indices = rng.permutation(total).tolist()
    offsets = itertools.accumulate(int(n) for n in lengths)
    return [Subset(dataset, indices[offset - int(n):offset]) for offset, n in zip(offsets, lengths)]


__all__ = ["Dataset", "IterableDataset", "TensorDataset", "StackDataset", "ConcatDataset", "ChainDataset", "Subset",
           "random_split"]
