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
    "LionEngine",
    "NAdamEngine",
    "RAdamEngine",
    "RMSpropEngine",
    "RpropEngine",
    "SGDEngine",
    "__version__",
    "force_simd_level",
    "get_num_threads",
    "set_num_threads",
    "simd_level",
]

def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def simd_level() -> str: ...
def force_simd_level(level: str | None = None) -> None: ...

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
