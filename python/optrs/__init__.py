"""optrs: torch.optim-identical optimizers that update NumPy arrays in place, in Rust, with
torch's autograd and nn layers on top.

    import numpy as np, optrs
    w = np.zeros((784, 10), np.float32)
    opt = optrs.optim.Adam([w], lr=1e-3)
    opt.step([grad_w])   # w changes in place

    model = optrs.nn.Sequential(optrs.nn.Linear(784, 10))
    opt = optrs.optim.Adam(model.parameters())
    optrs.nn.functional.cross_entropy(model(optrs.tensor(x)), optrs.tensor(y)).backward()
    opt.step()
"""

import importlib
from types import ModuleType

from . import autograd, functional, nn, optim, utils
from ._core import __version__, get_num_threads, set_num_threads, simd_level
from .autograd import Tensor, cat, enable_grad, from_numpy, no_grad, set_grad_enabled, stack, tensor
from .checkpoint import load, save
from .errors import (
    AnomalyError,
    AutogradError,
    CheckpointError,
    GradcheckError,
    InternalError,
    InvalidHyperparameterError,
    InvalidParamError,
    OptrsError,
    ParamDTypeError,
    ScalarConversionError,
)
from .parameter import Parameter
from .random import get_rng_state, manual_seed, set_rng_state

__all__ = [
    "__version__",
    "optim",
    "functional",
    "utils",
    "autograd",
    "nn",
    "Tensor",
    "tensor",
    "from_numpy",
    "cat",
    "stack",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "manual_seed",
    "get_rng_state",
    "set_rng_state",
    "save",
    "load",
    "Parameter",
    "set_num_threads",
    "get_num_threads",
    "simd_level",
    "OptrsError",
    "InvalidParamError",
    "ParamDTypeError",
    "InvalidHyperparameterError",
    "AutogradError",
    "GradcheckError",
    "AnomalyError",
    "CheckpointError",
    "InternalError",
    "ScalarConversionError",
]


def __getattr__(name: str) -> ModuleType:
    """``optrs.logging`` (TensorBoard) and ``optrs.profiler`` load on first use, so that
    ``import optrs`` stays light and ``optrs.logging.SummaryWriter`` works without its own import."""
    if name in ("logging", "profiler"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'optrs' has no attribute {name!r}")
