"""torch's older profiler, ``torch.autograd.profiler.profile``: the same recorder as
`optrs.profiler.profile`, with the legacy constructor (``enabled`` first, ``use_cuda``,
``use_device``, ...). Reached as ``optrs.autograd.profiler``, torch's path."""

from __future__ import annotations

import warnings
from typing import Any

from ..errors import InvalidHyperparameterError
from .profiler import profile as _profile
from .profiler import record_function

__all__ = ["profile", "record_function"]


class profile(_profile):
    """``torch.autograd.profiler.profile(enabled=True, *, use_cuda=False, use_device=None,
    record_shapes=False, with_flops=False, profile_memory=False, with_stack=False, ...)``.

    optrs runs on the CPU: ``use_cuda=True`` or a ``use_device`` other than "cpu" warns and profiles
    the CPU, as torch does on a machine without CUDA. ``enabled=False`` records nothing."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False, use_device: str | None = None,
                 record_shapes: bool = False, with_flops: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_modules: bool = False, use_kineto: bool = False,
                 use_cpu: bool = True, **unsupported: Any) -> None:
        if unsupported:
            raise InvalidHyperparameterError(
                f"profile() got arguments optrs does not support: {', '.join(sorted(unsupported))}")
        if use_cuda or use_device not in (None, "cpu"):
            warnings.warn("CUDA is not available, disabling CUDA profiling (optrs runs on the CPU)",
                          UserWarning, stacklevel=2)
        if not use_cpu:
            raise InvalidHyperparameterError("use_cpu=False leaves nothing to profile: optrs runs on the CPU")
        self.enabled = bool(enabled)
        super().__init__(record_shapes=record_shapes, profile_memory=profile_memory, with_stack=with_stack)

    def start(self) -> None:
        if self.enabled:
            super().start()

    def stop(self) -> None:
        if self.enabled:
            super().stop()
