"""The SIMD levels this CPU can run (``optrs._core.force_simd_level`` accepts them), for tests that
compare every instruction-set path bit for bit."""

from __future__ import annotations

import optrs


def available_simd_levels() -> list[str]:
    levels = []
    try:
        for level in ("baseline", "avx2", "avx512"):
            try:
                optrs._core.force_simd_level(level)
            except ValueError:  # this CPU lacks it
                continue
            levels.append(level)
    finally:
        optrs._core.force_simd_level(None)
    return levels


SIMD_LEVELS = available_simd_levels()
