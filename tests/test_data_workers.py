"""optrs.utils.data.DataLoader with worker processes: the same batches as num_workers=0, in order
whichever worker finishes first; per-worker seeds; persistent workers; sharded iterable
datasets; an exception in a worker raised with its traceback; a killed worker raising instead of
hanging; no shared-memory segment left in /dev/shm afterwards."""

from __future__ import annotations

import collections
import gc
import os
import random
import signal
import sys
import time
from typing import Any

import numpy as np
import pytest

import optrs
from optrs.autograd import Tensor
from optrs.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset, get_worker_info

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the workers' tests read /dev/shm and send signals")

Sample = collections.namedtuple("Sample", ["image", "label"])
SHM = "/dev/shm"


class Records(Dataset[Any]):
    """Items of every kind default_collate handles; item 0 sleeps so that worker 0 finishes last."""

    def __init__(self, n: int = 23, delay: float = 0.0) -> None:
        self.n, self.delay = n, delay

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        if i == 0:
            time.sleep(self.delay)
        image = np.full((3, 4), i, dtype=np.float32)
        return {"sample": Sample(image, i), "name": f"item{i}", "weight": i / 2, "tensor": optrs.autograd.tensor([i])}


class Failing(Dataset[Any]):
    def __init__(self, bad: int, error: type[Exception] = ValueError) -> None:
        self.bad, self.error = bad, error

    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> Any:
        if i == self.bad:
            raise self.error(f"item {i} is corrupt")
        return np.full(2, i)


class Slow(Dataset[Any]):
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> Any:
        time.sleep(self.delay)
        return np.zeros(256)


class Draws(Dataset[Any]):
    """What each worker's generators give, and its WorkerInfo."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> Any:
        info = get_worker_info()
        assert info is not None and info.dataset is self  # this process's copy
        return (info.id, info.seed, np.random.randint(1 << 30), random.randrange(1 << 30),
                int(optrs.random.get_generator().integers(1 << 30)), os.getpid())


class Shards(IterableDataset[int]):
    """range(start, stop), each worker reading every num_workers-th item (torch's documented way)."""

    def __init__(self, start: int, stop: int, shard: bool = True) -> None:
        self.start, self.stop, self.shard = start, stop, shard

    def __iter__(self) -> Any:
        info = get_worker_info()
        if info is None or not self.shard:
            return iter(range(self.start, self.stop))
        return iter(range(self.start + info.id, self.stop, info.num_workers))


def leftover_segments(prefix: str) -> list[str]:
    return [name for name in os.listdir(SHM) if name.startswith(prefix)]


def same(a: Any, b: Any) -> None:
    assert type(a) is type(b), (a, b)
    if isinstance(a, Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.data, b.data)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    else:
        assert a == b


@pytest.mark.filterwarnings("ignore:This DataLoader will create 3 worker processes")
@pytest.mark.parametrize("num_workers", [1, 2, 3])
def test_workers_give_the_batches_of_num_workers_0_in_order(num_workers: int) -> None:
    def epoch(workers: int) -> list[Any]:
        return list(DataLoader(Records(delay=0.3), batch_size=4, shuffle=True, num_workers=workers,
                               generator=optrs.random.Generator().manual_seed(0)))

    expected, got = epoch(0), epoch(num_workers)
    assert len(got) == 6
    same(got, expected)
    assert isinstance(got[0]["sample"], Sample) and got[0]["sample"].image.shape == (4, 3, 4)


def test_manual_seed_fixes_the_shuffled_order_with_workers() -> None:
    loader = DataLoader(Records(), batch_size=5, shuffle=True, num_workers=2)
    optrs.manual_seed(4)
    first = [b["sample"].label.tolist() for b in loader]
    optrs.manual_seed(4)
    assert [b["sample"].label.tolist() for b in loader] == first


def test_out_of_order_delivery_when_asked() -> None:
    loader = DataLoader(Records(n=16, delay=1.0), batch_size=2, num_workers=2, in_order=False)
    labels = [b["sample"].label.tolist() for b in loader]
    assert sorted(sum(labels, [])) == list(range(16))
    assert labels[0] != [0, 1]  # worker 0's slow first batch came later


def test_prefetch_factor_and_batch_size_none() -> None:
    loader = DataLoader(TensorDataset(np.arange(9)), batch_size=None, num_workers=2, prefetch_factor=1)
    assert [int(t[0].item()) for t in loader] == list(range(9))


def test_each_worker_is_seeded_differently_and_reproducibly() -> None:
    def draws() -> list[tuple[int, ...]]:
        return [tuple(b) for b in DataLoader(Draws(), batch_size=None, num_workers=2)]  # default_convert: ints

    optrs.manual_seed(0)
    first = draws()
    optrs.manual_seed(0)
    second = draws()
    assert [d[:5] for d in first] == [d[:5] for d in second]  # all but the pid
    by_worker = {d[0]: d for d in first}
    assert set(by_worker) == {0, 1} and by_worker[1][1] == by_worker[0][1] + 1  # seed = base_seed + id
    assert by_worker[0][2:5] != by_worker[1][2:5] and by_worker[0][5] != os.getpid()


def test_worker_init_fn_runs_in_each_worker() -> None:
    loader = DataLoader(Draws(), batch_size=None, num_workers=2, worker_init_fn=np.random.seed)
    first = [b[2] for b in loader]
    assert first == [b[2] for b in loader]  # np.random.seed(worker_id): same draws every epoch


def test_an_exception_in_a_worker_is_raised_with_its_traceback() -> None:
    loader = DataLoader(Failing(bad=5), batch_size=2, num_workers=2)
    with pytest.raises(ValueError) as caught:
        list(loader)
    message = str(caught.value)
    assert message.startswith("Caught ValueError in DataLoader worker process 0.\nOriginal Traceback")
    assert "item 5 is corrupt" in message and "in __getitem__" in message and "raise self.error" in message
    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process"):
        list(DataLoader(Failing(bad=0, error=KeyError), num_workers=1))


def test_the_loader_goes_on_after_a_worker_exception() -> None:
    it = iter(DataLoader(Failing(bad=1), batch_size=1, num_workers=2))
    assert next(it).tolist() == [[0, 0]]
    with pytest.raises(ValueError, match="item 1 is corrupt"):
        next(it)
    assert next(it).tolist() == [[2, 2]]  # torch skips the failed batch too


def test_a_failing_worker_init_fn_is_reported() -> None:
    loader = DataLoader(Draws(), num_workers=1, worker_init_fn=_fail_init)
    with pytest.raises(RuntimeError, match="(?s)Caught RuntimeError in DataLoader worker process 0.*init failed"):
        list(loader)


def _fail_init(worker_id: int) -> None:
    raise RuntimeError("init failed")


def test_a_killed_worker_raises_instead_of_hanging() -> None:
    it = iter(DataLoader(Slow(0.02), batch_size=2, num_workers=2))
    next(it)
    victim = it._pool.processes[1]  # type: ignore[attr-defined]
    os.kill(victim.pid, signal.SIGKILL)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=rf"DataLoader worker 1 \(pid {victim.pid}\) is killed by signal: .*SIGKILL"):
        for _ in it:
            pass
    assert time.monotonic() - start < 30  # a hang guard: it raises as soon as the worker is gone
    assert not leftover_segments(it._pool.segment_prefix)  # type: ignore[attr-defined]
    assert not any(p.is_alive() for p in it._pool.processes)  # type: ignore[attr-defined]


def test_timeout_raises() -> None:
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.2 seconds"):
        list(DataLoader(Slow(2.0), num_workers=1, timeout=0.2))


def test_no_segment_is_left_in_dev_shm() -> None:
    # Read to the end.
    it = iter(DataLoader(Records(), batch_size=4, num_workers=2))
    prefix = it._pool.segment_prefix  # type: ignore[attr-defined]
    list(it)
    assert not leftover_segments(prefix)
    # Left after one batch, with batches made and waiting: unlinked when the iterator is collected.
    it = iter(DataLoader(Records(n=64), batch_size=2, num_workers=2, prefetch_factor=4))
    prefix, processes = it._pool.segment_prefix, it._pool.processes  # type: ignore[attr-defined]
    next(it)
    time.sleep(0.3)
    del it
    gc.collect()
    assert not leftover_segments(prefix) and not any(p.is_alive() for p in processes)
    # After a worker's exception.
    it = iter(DataLoader(Failing(bad=3), batch_size=1, num_workers=2, prefetch_factor=4))
    prefix = it._pool.segment_prefix  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        list(it)
    del it
    gc.collect()
    assert not leftover_segments(prefix)


def test_persistent_workers_serve_every_epoch() -> None:
    loader = DataLoader(Draws(), batch_size=None, num_workers=2, persistent_workers=True)
    pids = [{b[5] for b in loader} for _ in range(3)]
    assert pids[0] == pids[1] == pids[2] and len(pids[0]) == 2
    loader = DataLoader(TensorDataset(np.arange(20)), batch_size=3, num_workers=2, persistent_workers=True)
    it = iter(loader)
    next(it)  # left early, batches in flight
    assert [b[0].tolist() for b in loader] == [list(range(i, min(i + 3, 20))) for i in range(0, 20, 3)]
    prefix = it._pool.segment_prefix  # type: ignore[attr-defined]
    del it, loader
    gc.collect()
    assert not leftover_segments(prefix)


def test_iterable_datasets_are_sharded_by_worker_info() -> None:
    loader = DataLoader(Shards(3, 20), batch_size=4, num_workers=2)
    batches = [b.tolist() for b in loader]
    assert sorted(sum(batches, [])) == list(range(3, 20))
    assert batches[0] == [3, 5, 7, 9] and batches[1] == [4, 6, 8, 10]  # worker 0, worker 1, in turn
    unsharded = [b.tolist() for b in DataLoader(Shards(0, 4, shard=False), batch_size=2, num_workers=2)]
    assert sorted(sum(unsharded, [])) == [0, 0, 1, 1, 2, 2, 3, 3]  # each worker yields it all, as in torch
    persistent = DataLoader(Shards(0, 10), batch_size=3, num_workers=2, persistent_workers=True)
    epochs = [sorted(sum((b.tolist() for b in persistent), [])) for _ in range(2)]
    assert epochs == [list(range(10))] * 2


def test_spawn_context() -> None:
    loader = DataLoader(TensorDataset(np.arange(10)), batch_size=4, num_workers=2, multiprocessing_context="spawn")
    assert [b[0].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


class Kernels(Dataset[Any]):
    """Runs a Rust kernel (Adam's step) in the worker."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> Any:
        params = [np.ones(50_000, np.float32) for _ in range(4)]
        optrs.optim.Adam(params, lr=0.1).step([np.ones_like(p) for p in params])
        return params[0][:2].copy(), optrs.get_num_threads()


def test_workers_run_kernels_after_the_parent_started_its_thread_pool() -> None:
    # A forked child has none of the parent's kernel threads: each worker starts its own pool of
    # one (as torch's workers run on one thread) instead of waiting forever on the parent's.
    params = [np.ones(50_000, np.float32) for _ in range(4)]
    optrs.optim.Adam(params, lr=0.1).step([np.ones_like(p) for p in params])
    batches = list(DataLoader(Kernels(), batch_size=2, num_workers=2, timeout=60))
    assert [b[1].tolist() for b in batches] == [[1, 1], [1, 1]]
    np.testing.assert_allclose(batches[0][0].data, 0.9)
