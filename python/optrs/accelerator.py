"""torch.accelerator's questions, answered for optrs: there is no accelerator, so
``current_accelerator()`` is None and scripts that ask fall back to the CPU."""

from __future__ import annotations

from typing import Any


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def current_accelerator(check_available: bool = False) -> Any:
    """None: optrs computes on the CPU (torch's answer on a machine without one)."""
    return None


__all__ = ["is_available", "device_count", "current_accelerator"]
