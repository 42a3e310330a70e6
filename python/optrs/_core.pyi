"""Type stubs of the compiled extension (rust/py). Users go through optrs.optim / optrs.functional."""

from collections.abc import Sequence
from typing import Any, Protocol, final

import numpy as np
from numpy.typing import NDArray

__version__: str
__all__ = [
    "ADOPTEngine",
    "ASGDEngine",
    "AdadeltaEngine",
    "AdagradEngine",
    "AdamEngine",
    "AdamaxEngine",
    "LAMBEngine",
    "LionEngine",
    "NAdamEngine",
    "RAdamEngine",
    "RMSpropEngine",
    "RpropEngine",
    "SGDEngine",
    "ScheduleFreeAdamWEngine",
    "__version__",
    "axpy",
    "adafactor_step",
    "clip_grad_norm",
    "clip_grads_with_norm",
    "dot",
    "force_simd_level",
    "get_num_threads",
    "muon_step",
    "set_num_threads",
    "simd_level",
    "total_norm",
]

def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def simd_level() -> str: ...
def force_simd_level(level: str | None = None) -> None: ...

# Gradient norms (rust/py/src/utils.rs): None entries of the lists are skipped; `name` labels the
# list in errors; the results are the norm and its dtype name ("float32" or "float64").
def clip_grad_norm(
    grads: Sequence[NDArray[Any] | None],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    name: str = "grads",
) -> tuple[float, str]: ...
def clip_grads_with_norm(
    grads: Sequence[NDArray[Any] | None],
    max_norm: float,
    total_norm: float,
    norm_dtype: str = "float64",
    name: str = "grads",
) -> None: ...
def total_norm(
    tensors: Sequence[NDArray[Any] | None],
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    name: str = "tensors",
) -> tuple[float, str]: ...

# L-BFGS's vector arithmetic (rust/py/src/vector.rs) over 1-D arrays of one dtype and length.
def dot(a: NDArray[Any], b: NDArray[Any]) -> float: ...
def axpy(x: NDArray[Any], y: NDArray[Any], alpha: float) -> None: ...

# Muon (rust/py/src/optim/muon.rs): one step over every group; `groups` give the options and
# len(group["params"]) params each, the lists hold every param's array, grad (None skips it) and
# momentum buffer in group order. With every grad None it only checks the options and arrays.
def muon_step(
    groups: Sequence[dict[str, Any]],
    params: Sequence[NDArray[Any]],
    grads: Sequence[NDArray[Any] | None],
    momentum_buffers: Sequence[NDArray[Any]],
) -> None: ...

# Adafactor (rust/py/src/optim/adafactor.rs): one step over every group, as muon_step; each
# param's state list is [row_var, col_var] for two or more dims, else [variance], and its step
# counter a float64 array of one element, which the step counts up. With every grad None it only
# checks the options and arrays.
def adafactor_step(
    groups: Sequence[dict[str, Any]],
    params: Sequence[NDArray[Any]],
    grads: Sequence[NDArray[Any] | None],
    states: Sequence[Sequence[NDArray[Any]]],
    steps: Sequence[NDArray[np.float64]],
) -> None: ...

class _Engine(Protocol):
    """Holds an optimizer's params, state pointers and step counters between steps."""

    def __init__(self) -> None: ...
    @staticmethod
    def state_spec(
        group: dict[str, Any], label: str = "param group"
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]: ...
    def add_group(
        self,
        group: dict[str, Any],
        params: Sequence[NDArray[Any]],
        states: Sequence[Sequence[NDArray[Any]]],
        steps: Sequence[NDArray[np.float64]],
        prefix: str,
    ) -> None: ...
    def refresh(self, params: Sequence[NDArray[Any]]) -> None: ...
    def step(self, grads: Sequence[NDArray[Any] | None], groups: list[dict[str, Any]]) -> None: ...
    @staticmethod
    def apply(
        group: dict[str, Any],
        params: Sequence[NDArray[Any]],
        grads: Sequence[NDArray[Any] | None],
        states: Sequence[Sequence[NDArray[Any]]],
        steps: Sequence[NDArray[np.float64]],
    ) -> None: ...

# One engine per optimizer (rust/py/src/optim/), all with _Engine's methods.
@final
class SGDEngine(_Engine): ...

@final
class AdamEngine(_Engine): ...

@final
class AdagradEngine(_Engine): ...

@final
class AdadeltaEngine(_Engine): ...

@final
class RMSpropEngine(_Engine): ...

@final
class AdamaxEngine(_Engine): ...

@final
class NAdamEngine(_Engine): ...

@final
class RAdamEngine(_Engine): ...

@final
class RpropEngine(_Engine): ...

@final
class ASGDEngine(_Engine): ...

@final
class LionEngine(_Engine): ...

@final
class ADOPTEngine(_Engine): ...

@final
class LAMBEngine(_Engine): ...

@final
class ScheduleFreeAdamWEngine(_Engine):
    # Moves the params of every group not yet in the mode (train: to y, eval: to x) and sets
    # each group's train_mode.
    def set_train_mode(self, groups: list[dict[str, Any]], train: bool) -> None: ...
