"""Apple's Metal backend: optrs has none."""

from __future__ import annotations


def is_available() -> bool:
    return False


def is_built() -> bool:
    return False


__all__ = ["is_available", "is_built"]
