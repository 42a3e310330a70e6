"""DataLoader throughput with a CPU-heavy per-item transform: items/s with 0 workers (the main
process reads every item) against N workers (processes handing batches back through shared
memory), epoch by epoch in alternating rounds so that drift in the machine's speed falls on both
alike. Each epoch starts its workers afresh (``persistent_workers=False``, the default), so their
start-up is in the figure.

The transform is pure NumPy on one thread (no BLAS): a 3 x 96 x 96 image blurred, gamma-corrected
and histogram-equalised, a few ms an item, the kind of augmentation a Dataset does in Python.

    .venv/bin/python benches/bench_dataloader.py --rounds 5

Not a test: nothing is asserted. Prints the load average before and after (a busy machine lowers
the workers' gain), the median items/s of each setting, and the ratio to 0 workers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np

import optrs
from optrs.utils.data import DataLoader, Dataset


class Augmented(Dataset[Any]):
    """Item i: a seeded random image through ``passes`` rounds of blur, gamma and equalisation."""

    def __init__(self, n: int, size: int = 96, passes: int = 3) -> None:
        self.n, self.size, self.passes = n, size, passes

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[np.ndarray[Any, Any], int]:
        image = np.random.default_rng(i).random((3, self.size, self.size), dtype=np.float32)
        for _ in range(self.passes):
            padded = np.pad(image, ((0, 0), (2, 2), (2, 2)), mode="reflect")
            image = sum(padded[:, dy:dy + self.size, dx:dx + self.size] for dy in range(5) for dx in range(5)) / 25
            image = np.power(image, 1.1, dtype=np.float32)
            ranks = np.argsort(np.argsort(image.reshape(3, -1), axis=1), axis=1)
            image = (ranks / ranks.shape[1]).astype(np.float32).reshape(image.shape)
        return image, i % 10


def epoch(loader: DataLoader[Any]) -> float:
    """Items per second over one pass."""
    start, items = time.perf_counter(), 0
    for images, _labels in loader:
        items += images.shape[0]
    return items / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    dataset = Augmented(args.items)
    start = time.perf_counter()
    dataset[0]
    per_item_ms = (time.perf_counter() - start) * 1e3
    print(f"optrs {optrs.__version__} ({optrs.simd_level()}), {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; one item takes {per_item_ms:.1f} ms in the main process")
    rates: dict[int, list[float]] = {w: [] for w in args.workers}
    for _ in range(args.rounds):
        for workers in args.workers:
            rates[workers].append(epoch(DataLoader(dataset, batch_size=args.batch_size, num_workers=workers)))
    base = statistics.median(rates[args.workers[0]])
    print(f"{args.items} items, batch {args.batch_size}, median of {args.rounds} epochs; "
          f"load average after: {os.getloadavg()[0]:.2f}")
    for workers, values in rates.items():
        median = statistics.median(values)
        print(f"  num_workers={workers}: {median:8.1f} items/s  (x{median / base:.2f}; "
              f"epochs {', '.join(f'{v:.0f}' for v in values)})")


if __name__ == "__main__":
    main()
