"""Type stubs of the compiled extension (rust/py). Users go through optrs.optim / optrs.functional."""

from collections.abc import Sequence
from typing import Any, Protocol, final

import numpy as np
from numpy.typing import NDArray

__version__: str
__all__ = [
    "ScheduleFreeAdamWEngine",
    "__version__",
    "avg_pool2d",
    "avg_pool2d_backward",
    "axpy",
    "build_info",
    "clip_grad_norm",
    "clip_grads_with_norm",
    "conv2d",
    "conv2d_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "dot",
    "force_simd_level",
    "freed_memory_policy",
    "get_num_threads",
    "log_softmax",
    "log_softmax_backward",
    "matmul",
    "max_pool2d",
    "max_pool2d_backward",
    "nll_loss",
    "nll_loss_backward",
    "profiler_drain",
    "profiler_now_ns",
    "profiler_set_enabled",
    "profiler_thread_id",
    "relu",
    "relu_backward",
    "set_num_threads",
    "simd_level",
    "softmax",
    "softmax_backward",
    "total_norm",
]

def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def simd_level() -> str: ...
def force_simd_level(level: str | None = None) -> None: ...

# How the extension was built (`optrs info`): (field, value) pairs for version, git_revision,
# rustc, profile, target, target_features, rustflags and simd_dispatch.
def build_info() -> list[tuple[str, str]]: ...

# Whether freed memory is kept for reuse (glibc malloc thresholds set at import, so a training
# step's arrays reuse pages instead of faulting new ones; OPTRS_KEEP_FREED_MEMORY=0 turns it off),
# in words (rust/py/src/memory.rs).
def freed_memory_policy() -> str: ...

# Kernel timings for optrs.profiler (rust/py/src/profiling.rs): while enabled, every kernel call
# is recorded as (name, start ns, duration ns, thread id), on the clock of profiler_now_ns and
# with the thread ids of profiler_thread_id.
def profiler_set_enabled(enabled: bool) -> None: ...
def profiler_drain() -> list[tuple[str, int, int, int]]: ...
def profiler_now_ns() -> int: ...
def profiler_thread_id() -> int: ...

# NN kernels (rust/py/src/nn/, the contract of optrs.nn._kernels): float32 or float64 arrays of one
# dtype per call, C-contiguous; class indices and pooling indices int64; pairs are (h, w) or one
# int for both. Every function returns new arrays.
_Pair = int | tuple[int, int]

def conv2d(
    x: NDArray[Any],
    weight: NDArray[Any],
    bias: NDArray[Any] | None,
    stride: _Pair,
    padding: _Pair,
    dilation: _Pair,
    groups: int,
) -> NDArray[Any]: ...
def conv2d_backward(
    x: NDArray[Any],
    weight: NDArray[Any],
    grad_y: NDArray[Any],
    stride: _Pair,
    padding: _Pair,
    dilation: _Pair,
    groups: int,
    need_input: bool,
    need_weight: bool,
    need_bias: bool,
) -> tuple[NDArray[Any] | None, NDArray[Any] | None, NDArray[Any] | None]: ...
def max_pool2d(
    x: NDArray[Any],
    kernel_size: _Pair,
    stride: _Pair,
    padding: _Pair,
    dilation: _Pair,
    ceil_mode: bool,
) -> tuple[NDArray[Any], NDArray[np.int64]]: ...
def max_pool2d_backward(
    grad_y: NDArray[Any], indices: NDArray[np.int64], input_shape: Sequence[int]
) -> NDArray[Any]: ...
def avg_pool2d(
    x: NDArray[Any],
    kernel_size: _Pair,
    stride: _Pair,
    padding: _Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> NDArray[Any]: ...
def avg_pool2d_backward(
    grad_y: NDArray[Any],
    input_shape: Sequence[int],
    kernel_size: _Pair,
    stride: _Pair,
    padding: _Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> NDArray[Any]: ...
def log_softmax(x: NDArray[Any]) -> NDArray[Any]: ...
def log_softmax_backward(grad_y: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]: ...
def softmax(x: NDArray[Any]) -> NDArray[Any]: ...
def softmax_backward(grad_y: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]: ...
def nll_loss(
    logp: NDArray[Any],
    target: NDArray[np.int64],
    weight: NDArray[Any] | None,
    ignore_index: int,
    reduction: str,
) -> tuple[NDArray[Any], float]: ...
def nll_loss_backward(
    grad_loss: NDArray[Any],
    target: NDArray[np.int64],
    weight: NDArray[Any] | None,
    ignore_index: int,
    reduction: str,
    total_weight: float,
    num_classes: int,
) -> NDArray[Any]: ...
def cross_entropy(
    x: NDArray[Any],
    target: NDArray[np.int64],
    weight: NDArray[Any] | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> tuple[NDArray[Any], NDArray[Any]]: ...
def cross_entropy_backward(
    grad_loss: NDArray[Any],
    softmax: NDArray[Any],
    target: NDArray[np.int64],
    weight: NDArray[Any] | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> NDArray[Any]: ...
def relu(x: NDArray[Any]) -> NDArray[Any]: ...
# op(a) @ op(b) for 2-D arrays of one dtype (the linear layers' products), on optrs's pool.
def matmul(a: NDArray[Any], b: NDArray[Any], transpose_a: bool = False, transpose_b: bool = False) -> NDArray[Any]: ...
def relu_backward(grad_y: NDArray[Any], y: NDArray[Any]) -> NDArray[Any]: ...

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

class _Engine(Protocol):
    """Holds an optimizer's params, state arrays and step counters between steps, and re-checks
    them (and that each group's 'params' still lists them) before each step."""

    def __init__(self) -> None: ...
    @staticmethod
    def state_spec(
        group: dict[str, Any], label: str = "param group"
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]: ...
    # Per param of each shape, the shape of each state buffer (None: such a param keeps none).
    @staticmethod
    def state_shapes(
        group: dict[str, Any], shapes: Sequence[Sequence[int]], label: str = "param group"
    ) -> list[list[list[int] | None]]: ...
    def add_group(
        self,
        group: dict[str, Any],
        params: Sequence[NDArray[Any]],
        states: Sequence[Sequence[NDArray[Any]]],
        steps: Sequence[NDArray[np.float64]],
        prefix: str,
    ) -> None: ...
    def refresh(self, params: Sequence[NDArray[Any]]) -> None: ...
    # One step; False, having done nothing, when a group's 'params' list was edited.
    def step(self, grads: Sequence[NDArray[Any] | None], groups: list[dict[str, Any]]) -> bool: ...
    @staticmethod
    def apply(
        group: dict[str, Any],
        params: Sequence[NDArray[Any]],
        grads: Sequence[NDArray[Any] | None],
        states: Sequence[Sequence[NDArray[Any]]],
        steps: Sequence[NDArray[np.float64]],
    ) -> None: ...

# One engine per optimizer, each defined by its file in rust/py/src/optim/ (`SGDEngine`,
# `AdamEngine`, ...: the optimizer's class name and "Engine"), all with _Engine's methods; the
# build script registers every file's engine, so the stub names only those with methods of their
# own.
def __getattr__(name: str) -> type[_Engine]: ...

@final
class ScheduleFreeAdamWEngine(_Engine):
    # Moves the params of every group not yet in the mode (train: to y, eval: to x) and sets
    # each group's train_mode.
    def set_train_mode(self, groups: list[dict[str, Any]], train: bool) -> None: ...
