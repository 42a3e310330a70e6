"""Every optimizer that ``optrs.optim`` exports, found rather than listed (so a new one is covered
without being named here), gives the same bits on any thread count and SIMD level, with its
default options, on float32 and float64 params big enough for the pool and the prefetching blocks.
LBFGS, which has no Rust rule, is left out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import optrs
from simd_levels import SIMD_LEVELS

CLASSES = [getattr(optrs.optim, name) for name in optrs.optim.__all__ if name not in ("Optimizer", "LBFGS")]
# Matrices, which every optimizer takes (Muon takes nothing else).
SHAPES = [(300, 400), (257, 3), (2, 150_001)]


def run(cls: type[optrs.optim.Optimizer]) -> list[np.ndarray]:
    """Two steps, the second skipping a param; the params and every state array after them."""
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(s).astype(np.float32 if i % 2 else np.float64) for i, s in enumerate(SHAPES)]
    opt: Any = cls(params)
    if hasattr(opt, "train"):  # ScheduleFreeAdamW starts in eval mode
        opt.train()
    for step in range(2):
        opt.step([None if (step == 1 and i == 0) else rng.standard_normal(p.shape).astype(p.dtype)
                  for i, p in enumerate(params)])
    return params + [np.asarray(v) for p in params for v in opt.state[p].values()]


def same_bits(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
                                    for x, y in zip(a, b))


def test_every_optimizer_is_found() -> None:
    assert len(CLASSES) >= 17 and {"Adam", "Muon", "Adafactor"} <= {c.__name__ for c in CLASSES}


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_thread_count_and_simd_level_do_not_change_a_bit(cls: type[optrs.optim.Optimizer]) -> None:
    threads = optrs.get_num_threads()
    try:
        optrs.set_num_threads(1)
        one = run(cls)
        for count in (2, 3):
            optrs.set_num_threads(count)
            assert same_bits(one, run(cls)), f"{count} threads"
        for level in SIMD_LEVELS:
            optrs._core.force_simd_level(level)
            assert same_bits(one, run(cls)), level
    finally:
        optrs.set_num_threads(threads)
        optrs._core.force_simd_level(None)
