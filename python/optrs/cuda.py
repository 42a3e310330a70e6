"""torch.cuda's questions, answered for optrs, which computes on the CPU: ``is_available()`` is
False and ``device_count()`` 0, so device-selection code (``"cuda" if optrs.cuda.is_available()
else "cpu"``) picks the CPU. Seeding is a no-op, as torch's is without CUDA; anything that needs a
GPU raises ``optrs.DeviceError``."""

from __future__ import annotations

from typing import Any

from .errors import DeviceError


def _no_gpu(what: str) -> DeviceError:
    return DeviceError(f"optrs.cuda.{what}: optrs computes on the CPU only and has no CUDA device "
                       "(optrs.cuda.is_available() is False); use device='cpu'")


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def is_initialized() -> bool:
    return False


def manual_seed(seed: int) -> None:
    """Nothing to seed (torch ignores it too without CUDA); ``optrs.manual_seed`` seeds optrs."""


def manual_seed_all(seed: int) -> None:
    """As ``manual_seed``."""


def empty_cache() -> None:
    """Nothing is cached on a GPU."""


def is_bf16_supported(including_emulation: bool = True) -> bool:
    return False


def current_device() -> int:
    raise _no_gpu("current_device()")


def synchronize(device: Any = None) -> None:
    raise _no_gpu("synchronize()")


def get_device_name(device: Any = None) -> str:
    raise _no_gpu("get_device_name()")


def set_device(device: Any) -> None:
    raise _no_gpu("set_device()")


__all__ = ["is_available", "device_count", "is_initialized", "manual_seed", "manual_seed_all", "empty_cache",
           "is_bf16_supported", "current_device", "synchronize", "get_device_name", "set_device"]
