"""cuDNN's flags, kept so that scripts may set them (``cudnn.deterministic = True``,
``cudnn.benchmark = True``): optrs has no cuDNN, is deterministic anyway, and reads none of them."""

from __future__ import annotations

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version() -> int | None:
    return None


__all__ = ["enabled", "benchmark", "deterministic", "allow_tf32", "is_available", "version"]
