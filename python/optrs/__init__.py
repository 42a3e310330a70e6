"""optrs: torch.optim-identical optimizers that update NumPy arrays in place, in Rust.

    import numpy as np, optrs
    w = np.zeros((784, 10), np.float32)
    opt = optrs.optim.Adam([w], lr=1e-3)
    opt.step([grad_w])   # w changes in place
"""

from . import functional, optim, utils
from ._core import __version__, get_num_threads, set_num_threads, simd_level
from .errors import InvalidHyperparameterError, InvalidParamError, OptrsError, ParamDTypeError
from .parameter import Parameter

__all__ = [
    "__version__",
    "optim",
    "functional",
    "utils",
    "Parameter",
    "set_num_threads",
    "get_num_threads",
    "simd_level",
    "OptrsError",
    "InvalidParamError",
    "ParamDTypeError",
    "InvalidHyperparameterError",
]
