"""optrs.utils.data side by side with torch.utils.data: batching, collate structure and dtypes,
sampler lengths, random_split lengths, sharded iterable datasets with workers, and the argument
checks' messages. Random orders are not compared (the generators differ)."""

from __future__ import annotations

import collections
import warnings
from typing import Any

import numpy as np
import pytest

import optrs
from optrs.autograd import Tensor
from optrs.utils import data as od

torch = pytest.importorskip("torch", reason="torch is optional; checks optrs.utils.data against torch.utils.data")
td = torch.utils.data

Pair = collections.namedtuple("Pair", ["a", "b"])


def sample(i: int) -> Any:
    return {"image": np.full((2, 3), i, dtype=np.float32), "label": i, "weight": i / 4, "flag": i % 2 == 0,
            "name": f"n{i}", "raw": b"x", "pair": Pair(np.int16(i), [i, float(i)]), "tuple": (i, "t"),
            "scalar": np.float64(i)}


class Items:
    """One class for both libraries: map-style, Sized."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return sample(i)


class OptrsItems(Items, od.Dataset[Any]):
    pass


class TorchItems(Items, td.Dataset):  # type: ignore[misc]
    pass


def shards(start: int, stop: int, info: Any) -> range:
    return range(start, stop) if info is None else range(start + info.id, stop, info.num_workers)


class OptrsShards(od.IterableDataset[int]):
    def __iter__(self) -> Any:
        return iter(shards(2, 23, od.get_worker_info()))


class TorchShards(td.IterableDataset):  # type: ignore[misc]
    def __iter__(self) -> Any:
        return iter(shards(2, 23, td.get_worker_info()))


def same(ours: Any, theirs: Any, where: str = "batch") -> None:
    """Same structure, container types, values and dtypes (Tensor for torch.Tensor)."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, Tensor), where
        assert str(theirs.dtype) == f"torch.{ours.dtype}", (where, ours.dtype, theirs.dtype)
        np.testing.assert_array_equal(ours.data, theirs.numpy(), err_msg=where)
        return
    assert type(ours) is type(theirs), (where, type(ours), type(theirs))
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs), where
        for k in theirs:
            same(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), where
        for i, (x, y) in enumerate(zip(ours, theirs)):
            same(x, y, f"{where}[{i}]")
    else:
        assert ours == theirs, where


@pytest.mark.parametrize("kwargs", [dict(batch_size=4), dict(batch_size=4, drop_last=True), dict(batch_size=None),
                                    dict(batch_size=1), dict(batch_sampler=[[3, 1], [0], [2, 4, 5]]),
                                    dict(sampler=[5, 4, 0], batch_size=2)])
def test_sequential_batches_and_collate_structure_match_torch(kwargs: dict[str, Any]) -> None:
    ours, theirs = od.DataLoader(OptrsItems(10), **kwargs), td.DataLoader(TorchItems(10), **kwargs)
    assert len(ours) == len(theirs)
    ours_batches, their_batches = list(ours), list(theirs)
    assert len(ours_batches) == len(their_batches)
    for i, (a, b) in enumerate(zip(ours_batches, their_batches)):
        same(a, b, f"batch {i}")


@pytest.mark.parametrize("batch", [[0, 1, 2], [0.5, 1.5], [True, False], [1, 2.5], [np.float32(1), np.float32(2)],
                                   [np.int8(1), np.int8(2)], ["a", "b"], [(1, 2), (3, 4)], [[1, 2], [3, 4]],
                                   [{"a": 1}, {"a": 2}], [Pair(1, 2.0), Pair(3, 4.0)], [np.zeros((2, 2), np.uint8)] * 3,
                                   [np.arange(3, dtype=np.int32)] * 2])
def test_default_collate_matches_torch(batch: list[Any]) -> None:
    same(od.default_collate(batch), td.default_collate(batch))


@pytest.mark.parametrize("batch", [[np.zeros(2), np.zeros(3)], [[1, 2], [3]], [object(), object()],
                                   [np.array(["a"]), np.array(["b"])]])
def test_default_collate_errors_match_torch(batch: list[Any]) -> None:
    with pytest.raises(Exception) as theirs:
        td.default_collate(batch)
    with pytest.raises(type(theirs.value)) as ours:
        od.default_collate(batch)
    assert str(ours.value) == str(theirs.value)


def test_default_convert_matches_torch() -> None:
    data = {"a": np.arange(3), "b": 3, "c": (np.zeros(1), "s"), "d": [np.float32(2)]}
    same(od.default_convert(data), td.default_convert(data))


@pytest.mark.parametrize(("n", "lengths"), [(10, [0.3, 0.3, 0.4]), (11, [0.5, 0.5]), (7, [0.1, 0.2, 0.7]),
                                            (101, [0.25] * 4), (5, [1.0]), (9, [2, 7]), (3, [0.9, 0.1])])
def test_random_split_lengths_match_torch(n: int, lengths: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = od.random_split(OptrsItems(n), lengths)
        theirs = td.random_split(TorchItems(n), lengths)
    assert [len(s) for s in ours] == [len(s) for s in theirs]


@pytest.mark.parametrize(("n", "batch_size", "drop_last"), [(10, 3, False), (10, 3, True), (9, 3, True), (1, 5, False)])
def test_sampler_lengths_match_torch(n: int, batch_size: int, drop_last: bool) -> None:
    ours, theirs = od.BatchSampler(range(n), batch_size, drop_last), td.BatchSampler(range(n), batch_size, drop_last)
    assert len(ours) == len(theirs) and list(ours) == list(theirs)
    assert len(od.RandomSampler(range(n), num_samples=7)) == len(td.RandomSampler(range(n), num_samples=7))
    assert list(od.SequentialSampler(range(n))) == list(td.SequentialSampler(range(n)))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_sharded_iterable_dataset_matches_torch(num_workers: int) -> None:
    ours = [b.tolist() for b in od.DataLoader(OptrsShards(), batch_size=3, num_workers=num_workers)]
    theirs = [b.tolist() for b in td.DataLoader(TorchShards(), batch_size=3, num_workers=num_workers)]
    assert ours == theirs


@pytest.mark.parametrize("kwargs", [
    dict(num_workers=-1), dict(timeout=-1), dict(prefetch_factor=2), dict(num_workers=1, prefetch_factor=-1),
    dict(persistent_workers=True), dict(shuffle=True, sampler=[0]), dict(batch_sampler=[[0]], batch_size=2),
    dict(batch_sampler=[[0]], shuffle=True), dict(batch_size=None, drop_last=True),
    dict(multiprocessing_context="fork"), dict(num_workers=1, multiprocessing_context="nope"),
    dict(batch_size=0), dict(batch_size=2, drop_last=1),
])
def test_argument_checks_match_torch(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError) as theirs:
        td.DataLoader(TorchItems(3), **kwargs)
    with pytest.raises(optrs.InvalidParamError) as ours:
        od.DataLoader(OptrsItems(3), **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_iterable_argument_checks_and_len_match_torch() -> None:
    for kwargs in [dict(shuffle=True), dict(sampler=[0]), dict(batch_sampler=[[0]])]:
        with pytest.raises(ValueError) as theirs:
            td.DataLoader(TorchShards(), **kwargs)
        with pytest.raises(optrs.InvalidParamError) as ours:
            od.DataLoader(OptrsShards(), **kwargs)
        assert str(ours.value).split(", but got")[0] == str(theirs.value).split(", but got")[0]
    with pytest.raises(ValueError) as theirs_frozen:
        td.DataLoader(TorchItems(3)).batch_size = 2
    with pytest.raises(ValueError) as ours_frozen:
        od.DataLoader(OptrsItems(3)).batch_size = 2
    assert str(ours_frozen.value) == str(theirs_frozen.value)
