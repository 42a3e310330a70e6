"""optrs.utils.data in the main process: datasets, samplers, default_collate, DataLoader's
arguments, batching and ordering, seeding, and torch's error messages. (Workers:
test_data_workers.py; side by side with torch: test_data_torch_live.py.)"""

from __future__ import annotations

import collections
import warnings
from typing import Any

import numpy as np
import pytest

import optrs
from optrs.autograd import Tensor
from optrs.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    StackDataset,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    default_convert,
    get_worker_info,
    random_split,
)

Point = collections.namedtuple("Point", ["x", "y"])


class Squares(Dataset[int]):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i * i


class Count(IterableDataset[int]):
    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Any:
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


def as_lists(batches: Any) -> list[Any]:
    return [b.tolist() if isinstance(b, Tensor) else [t.tolist() for t in b] for b in batches]


# -- datasets --------------------------------------------------------------------------------------

def test_tensor_dataset_indexes_every_tensor_and_checks_sizes() -> None:
    x, y = optrs.autograd.tensor(np.arange(12.0).reshape(6, 2)), np.arange(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    item = ds[4]
    assert item[0].tolist() == [8.0, 9.0] and item[1] == 4
    with pytest.raises(optrs.InvalidParamError, match="Size mismatch between tensors"):
        TensorDataset(x, np.arange(5))


def test_concat_subset_stack_and_chain() -> None:
    a, b = Squares(3), Squares(2)
    cat = a + b
    assert isinstance(cat, ConcatDataset) and len(cat) == 5
    assert [cat[i] for i in range(5)] == [0, 1, 4, 0, 1] and cat[-1] == 1 and cat.cumulative_sizes == [3, 5]
    with pytest.raises(optrs.InvalidParamError, match="absolute value of index should not exceed dataset length"):
        cat[-6]
    with pytest.raises(optrs.InvalidParamError, match="ConcatDataset does not support IterableDataset"):
        ConcatDataset([a, Count(2)])
    with pytest.raises(optrs.InvalidParamError, match="datasets should not be an empty iterable"):
        ConcatDataset([])
    sub = Subset(Squares(10), [9, 2])
    assert len(sub) == 2 and sub[0] == 81 and sub[1] == 4
    stacked = StackDataset(Squares(3), Squares(3))
    assert stacked[2] == (4, 4)
    assert StackDataset(a=Squares(2), b=Squares(2))[1] == {"a": 1, "b": 1}
    with pytest.raises(optrs.InvalidParamError, match="Size mismatch between datasets"):
        StackDataset(Squares(2), Squares(3))
    chain = Count(2) + Count(3)
    assert isinstance(chain, ChainDataset) and list(chain) == [0, 1, 0, 1, 2] and len(chain) == 5


def test_random_split_lengths_fractions_and_remainder() -> None:
    # torch's rule: floor(n * frac) each, the remainder one by one from the first split.
    parts = random_split(Squares(10), [0.3, 0.3, 0.4], generator=optrs.random.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [3, 3, 4]
    parts = random_split(Squares(11), [0.5, 0.5])
    assert [len(p) for p in parts] == [6, 5]
    parts = random_split(Squares(7), [2, 5], generator=optrs.random.Generator().manual_seed(1))
    assert sorted(p for part in parts for p in part.indices) == list(range(7))
    again = random_split(Squares(7), [2, 5], generator=optrs.random.Generator().manual_seed(1))
    assert [p.indices for p in parts] == [p.indices for p in again]
    with pytest.raises(optrs.InvalidParamError, match="Sum of input lengths does not equal the length"):
        random_split(Squares(7), [2, 4])
    with pytest.raises(optrs.InvalidParamError, match="Fraction at index 0 is not between 0 and 1"):
        random_split(Squares(7), [1.5, -0.5])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(Squares(2), [0.9, 0.1])


def test_random_split_draws_from_the_package_generator_by_default() -> None:
    optrs.manual_seed(3)
    first = [p.indices for p in random_split(Squares(20), [10, 10])]
    optrs.manual_seed(3)
    assert [p.indices for p in random_split(Squares(20), [10, 10])] == first


# -- samplers --------------------------------------------------------------------------------------

def test_sequential_and_batch_samplers() -> None:
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    batches = BatchSampler(SequentialSampler(range(10)), 3, drop_last=False)
    assert list(batches) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]] and len(batches) == 4
    batches = BatchSampler(SequentialSampler(range(10)), 3, drop_last=True)
    assert list(batches) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]] and len(batches) == 3
    with pytest.raises(optrs.InvalidParamError, match="batch_size should be a positive integer value, but got "
                                                      "batch_size=0"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(optrs.InvalidParamError, match="drop_last should be a boolean value, but got drop_last=1"):
        BatchSampler(range(3), 2, 1)  # type: ignore[arg-type]


def test_random_sampler_permutes_repeats_and_replaces() -> None:
    g = optrs.random.Generator().manual_seed(0)
    order = list(RandomSampler(range(10), generator=g))
    assert sorted(order) == list(range(10)) and order != list(range(10))
    longer = list(RandomSampler(range(4), num_samples=10, generator=g))
    assert len(longer) == 10 and sorted(longer[:8]) == [0, 0, 1, 1, 2, 2, 3, 3]
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=100, generator=g))
    assert len(drawn) == 100 and set(drawn) == {0, 1, 2}
    with pytest.raises(optrs.InvalidParamError, match="num_samples should be a positive integer value, but got "
                                                      "num_samples=0"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(optrs.InvalidParamError, match="replacement should be a boolean value, but got "
                                                      "replacement=1"):
        RandomSampler(range(3), replacement=1)  # type: ignore[arg-type]


def test_random_sampler_without_generator_follows_manual_seed() -> None:
    sampler = RandomSampler(range(50))
    optrs.manual_seed(7)
    first, second = list(sampler), list(sampler)
    assert first != second  # a new order each epoch
    optrs.manual_seed(7)
    assert [list(sampler), list(sampler)] == [first, second]


def test_subset_random_and_weighted_samplers() -> None:
    g = optrs.random.Generator().manual_seed(0)
    assert sorted(SubsetRandomSampler([5, 7, 9], generator=g)) == [5, 7, 9]
    draws = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 400, generator=g))
    assert set(draws) == {1, 3} and 0.65 < draws.count(3) / 400 < 0.85
    unique = list(WeightedRandomSampler([1.0, 1.0, 1.0], 3, replacement=False, generator=g))
    assert sorted(unique) == [0, 1, 2]
    with pytest.raises(RuntimeError, match="cannot sample n_sample > prob_dist.size"):
        list(WeightedRandomSampler([1.0, 0.0], 2, replacement=False))
    with pytest.raises(RuntimeError, match="invalid multinomial distribution"):
        list(WeightedRandomSampler([1.0, -1.0], 2))
    with pytest.raises(optrs.InvalidParamError, match=r"weights should be a 1d sequence but given weights have "
                                                      r"shape \(1, 2\)"):
        WeightedRandomSampler([[1.0, 2.0]], 2)
    with pytest.raises(optrs.InvalidParamError, match="num_samples should be a positive integer value"):
        WeightedRandomSampler([1.0], True)  # type: ignore[arg-type]


# -- collate ---------------------------------------------------------------------------------------

def test_default_collate_numbers_follow_torch_dtypes() -> None:
    ints, floats, bools = default_collate([0, 1, 2]), default_collate([0.5, 1.5]), default_collate([True, False])
    assert ints.dtype == np.int64 and ints.tolist() == [0, 1, 2]
    assert floats.dtype == np.float64  # torch.tensor(floats, dtype=float64) in torch's collate
    assert bools.dtype == np.bool_
    assert default_collate([np.float32(1), np.float32(2)]).dtype == np.float32
    assert default_collate(["a", "b"]) == ["a", "b"] and default_collate([b"a", b"b"]) == [b"a", b"b"]


def test_default_collate_stacks_tensors_and_arrays() -> None:
    batch = default_collate([np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)])
    assert isinstance(batch, Tensor) and batch.shape == (2, 2, 3) and batch.dtype == np.float32
    tensors = default_collate([optrs.autograd.tensor([1.0, 2.0]), optrs.autograd.tensor([3.0, 4.0])])
    assert isinstance(tensors, Tensor) and tensors.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(RuntimeError, match=r"stack expects each tensor to be equal size, but got \[2\] at entry 0 "
                                           r"and \[3\] at entry 1"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors, numpy arrays, numbers, dicts "
                                        "or lists; found <U1"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(TypeError, match="found <class 'object'>"):
        default_collate([object(), object()])


def test_default_collate_containers() -> None:
    pairs = default_collate([(np.zeros(2), 0), (np.ones(2), 1)])
    assert isinstance(pairs, list) and pairs[0].shape == (2, 2) and pairs[1].tolist() == [0, 1]
    lists = default_collate([[0, 1], [2, 3]])
    assert [t.tolist() for t in lists] == [[0, 2], [1, 3]]
    dicts = default_collate([{"a": 0, "b": 1.0}, {"a": 100, "b": 2.0}])
    assert dicts["a"].tolist() == [0, 100] and dicts["b"].dtype == np.float64
    points = default_collate([Point(0, 0), Point(1, 1)])
    assert isinstance(points, Point) and points.x.tolist() == [0, 1]
    nested = default_collate([{"x": (1, "a")}, {"x": (2, "b")}])
    assert nested["x"][0].tolist() == [1, 2] and nested["x"][1] == ("a", "b")  # the zip tuple, as torch returns it
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal size"):
        default_collate([[0, 1], [2]])


def test_default_convert_only_converts_arrays() -> None:
    converted = default_convert({"a": np.arange(3), "b": 3, "c": (np.zeros(1), "s")})
    assert isinstance(converted["a"], Tensor) and converted["b"] == 3
    assert isinstance(converted["c"], list) and isinstance(converted["c"][0], Tensor) and converted["c"][1] == "s"


# -- DataLoader ------------------------------------------------------------------------------------

def test_loader_batches_in_order_with_the_last_batch_short_or_dropped() -> None:
    ds = TensorDataset(np.arange(10.0).reshape(10, 1), np.arange(10))
    loader = DataLoader(ds, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert batches[0][0].shape == (4, 1) and batches[0][0].dtype == np.float64
    loader = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(loader) == 2 and [b[1].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_loader_without_batching_and_with_samplers() -> None:
    assert list(DataLoader(Squares(4), batch_size=None)) == [0, 1, 4, 9]
    arrays = list(DataLoader(TensorDataset(np.arange(3)), batch_size=None))
    assert isinstance(arrays[0][0], Tensor)  # default_convert made the items tensors
    loader = DataLoader(Squares(6), sampler=[5, 0, 3], batch_size=2)
    assert as_lists(loader) == [[25, 0], [9]]
    loader = DataLoader(Squares(6), batch_sampler=[[1, 2], [5]])
    assert as_lists(loader) == [[1, 4], [25]] and len(loader) == 2
    loader = DataLoader(Squares(4), collate_fn=lambda batch: sum(batch), batch_size=2)
    assert list(loader) == [1, 13]


def test_shuffle_is_deterministic_under_manual_seed_and_the_generator() -> None:
    loader = DataLoader(Squares(30), batch_size=7, shuffle=True)
    optrs.manual_seed(11)
    epoch1, epoch2 = as_lists(loader), as_lists(loader)
    assert epoch1 != epoch2 and sorted(sum(epoch1, [])) == [i * i for i in range(30)]
    optrs.manual_seed(11)
    assert [as_lists(loader), as_lists(loader)] == [epoch1, epoch2]
    seeded = [as_lists(DataLoader(Squares(30), batch_size=7, shuffle=True,
                                  generator=optrs.random.Generator().manual_seed(5))) for _ in range(2)]
    assert seeded[0] == seeded[1]


def test_iterable_dataset_batches_until_it_ends() -> None:
    assert as_lists(DataLoader(Count(7), batch_size=3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert as_lists(DataLoader(Count(7), batch_size=3, drop_last=True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(DataLoader(Count(7), batch_size=3)) == 3 and len(DataLoader(Count(7), batch_size=3, drop_last=True)) == 2
    assert list(DataLoader(Count(3), batch_size=None)) == [0, 1, 2]
    assert get_worker_info() is None


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(num_workers=-1), "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing."),
    (dict(timeout=-1), "timeout option should be non-negative"),
    (dict(prefetch_factor=2), "prefetch_factor option could only be specified in multiprocessing."),
    (dict(num_workers=1, prefetch_factor=-1), "prefetch_factor option should be non-negative"),
    (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
    (dict(shuffle=True, sampler=[0]), "sampler option is mutually exclusive with shuffle"),
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                              "sampler, and drop_last"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_size=None, drop_last=True), "batch_size=None option disables auto-batching and is mutually exclusive "
                                            "with drop_last"),
    (dict(multiprocessing_context="fork"), "multiprocessing_context can only be used with multi-process loading "
                                           r"\(num_workers > 0\), but got num_workers=0"),
    (dict(num_workers=1, multiprocessing_context="nope"), "multiprocessing_context option should specify a valid "
                                                          "start method in"),
])
def test_loader_argument_checks_use_torchs_messages(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(optrs.InvalidParamError, match=message):
        DataLoader(Squares(3), **kwargs)


def test_loader_argument_checks_for_iterable_datasets() -> None:
    for kwargs, name in [(dict(shuffle=True), "shuffle"), (dict(sampler=[0]), "sampler"),
                         (dict(batch_sampler=[[0]]), "batch_sampler")]:
        with pytest.raises(optrs.InvalidParamError, match=f"DataLoader with IterableDataset: expected unspecified "
                                                          f"{name} option"):
            DataLoader(Count(3), **kwargs)
    with pytest.raises(optrs.ParamDTypeError, match="multiprocessing_context option should be a valid context"):
        DataLoader(Squares(3), num_workers=1, multiprocessing_context=3)  # type: ignore[arg-type]


def test_loader_attributes_are_frozen_and_pin_memory_warns() -> None:
    loader = DataLoader(Squares(3), batch_size=2)
    with pytest.raises(optrs.InvalidParamError, match="batch_size attribute should not be set after DataLoader is "
                                                      "initialized"):
        loader.batch_size = 3
    loader.num_workers = 0  # not one of torch's frozen attributes
    with pytest.warns(UserWarning, match="'pin_memory' argument is set as true but no accelerator is found"):
        list(DataLoader(Squares(3), pin_memory=True))
    with pytest.raises(optrs.InvalidParamError, match="timeout=1 bounds the wait for a worker's batch"):
        iter(DataLoader(Squares(3), timeout=1))


def test_worker_count_above_the_cpus_warns() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        DataLoader(Squares(3), num_workers=10_000)
    assert any("This DataLoader will create 10000 worker processes in total" in str(w.message) for w in caught)


# -- optrs.random.Generator ------------------------------------------------------------------------

def test_generator_api() -> None:
    g = optrs.random.Generator()
    assert g.initial_seed() == 67280421310721 and g.device == "cpu"  # torch's default seed
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    state = g.get_state()
    first = g.integers(1000, size=5)
    g.set_state(state)
    assert (g.integers(1000, size=5) == first).all()
    assert (optrs.random.Generator().manual_seed(5).integers(1000, size=5) == first).all()
    seed = g.seed()
    assert g.initial_seed() == seed
    assert optrs.random.Generator().manual_seed(-1).initial_seed() == 2**64 - 1
    with pytest.raises(optrs.InvalidParamError, match="seed"):
        g.manual_seed(2**64)
    with pytest.raises(optrs.InvalidParamError, match="get_state"):
        g.set_state({"bit_generator": "MT19937"})
    with pytest.raises(optrs.InvalidParamError, match="CPU only"):
        optrs.random.Generator("cuda")
    assert optrs.manual_seed(1) is optrs.random.get_generator() is optrs.random.default_generator
    assert optrs.random.initial_seed() == 1


def test_generator_pickles_with_its_state() -> None:
    import pickle

    g = optrs.random.Generator().manual_seed(9)
    g.random(3)
    copy = pickle.loads(pickle.dumps(g))
    assert isinstance(copy, optrs.random.Generator) and copy.initial_seed() == 9
    assert (copy.random(4) == g.random(4)).all()
