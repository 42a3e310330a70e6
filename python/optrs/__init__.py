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

torch's tensor surface is here under torch's names, so a CPU torch script runs with
``import optrs as torch``: dtypes (``optrs.float32``, NumPy dtypes; ``set_default_dtype``),
``optrs.device("cpu")``, the factories (``zeros``, ``randn``, ``arange``, ...), the module-level
functions (``flatten``, ``max``, ``where``, ``topk``, ...), ``save``/``load``, and ``cuda`` /
``backends`` / ``accelerator`` that answer "no GPU here".
"""

import importlib
from types import ModuleType
from typing import Any

from . import accelerator, autograd, backends, cuda, functional, nn, optim, utils
from ._core import __version__, get_num_threads, set_num_threads, simd_level
from .autograd import (
    Tensor,
    UnsupportedDType,
    abs,
    absolute,
    add,
    allclose,
    arange,
    argmax,
    argmin,
    argsort,
    as_tensor,
    bmm,
    bool,
    cat,
    cdouble,
    cfloat,
    chalf,
    chunk,
    clamp,
    clip,
    complex,
    complex32,
    complex64,
    complex128,
    concat,
    concatenate,
    device,
    div,
    divide,
    dot,
    double,
    dtype,
    empty,
    empty_like,
    enable_grad,
    equal,
    exp,
    eye,
    finfo,
    flatten,
    float,
    float8_e4m3fn,
    float8_e5m2,
    float16,
    float32,
    float64,
    from_numpy,
    full,
    full_like,
    get_default_dtype,
    half,
    iinfo,
    inference_mode,
    int,
    int8,
    int16,
    int32,
    int64,
    is_complex,
    is_floating_point,
    is_grad_enabled,
    is_inference_mode_enabled,
    is_tensor,
    linspace,
    log,
    log_softmax,
    long,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    mul,
    multiply,
    neg,
    negative,
    no_grad,
    normal,
    numel,
    ones,
    ones_like,
    permute,
    polar,
    pow,
    qint8,
    qint32,
    quint8,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    relu,
    reshape,
    set_default_dtype,
    set_grad_enabled,
    short,
    sigmoid,
    softmax,
    sort,
    sparse_coo_tensor,
    sparse_csr_tensor,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    strided,
    sub,
    subtract,
    sum,
    swapaxes,
    swapdims,
    t,
    tanh,
    tensor,
    topk,
    transpose,
    true_divide,
    uint8,
    unsqueeze,
    view_as_complex,
    view_as_real,
    where,
    zeros,
    zeros_like,
)
from .checkpoint import load, save
from .errors import (
    AnomalyError,
    AutogradError,
    CheckpointError,
    DeviceError,
    GradcheckError,
    InternalError,
    InvalidHyperparameterError,
    InvalidParamError,
    NotSupportedError,
    OptrsError,
    ParamDTypeError,
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
    "DeviceError",
    "NotSupportedError",
    "cuda",
    "backends",
    "accelerator",
    # torch's tensor surface (optrs.autograd's dtypes, devices, factories and functions)
    "is_grad_enabled", "dtype", "float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64",
    "long", "int32", "int", "int16", "short", "int8", "uint8", "bool", "complex32", "complex64", "complex128",
    "chalf", "cfloat", "cdouble", "qint8", "quint8", "qint32", "float8_e4m3fn", "float8_e5m2", "UnsupportedDType",
    "get_default_dtype", "set_default_dtype", "finfo", "iinfo", "device", "strided", "as_tensor", "zeros", "ones",
    "empty", "full", "arange", "linspace", "eye", "rand", "randn", "randint", "randperm", "normal", "zeros_like",
    "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "randint_like", "is_tensor",
    "is_floating_point", "is_complex", "numel", "inference_mode", "is_inference_mode_enabled", "flatten", "reshape",
    "squeeze", "unsqueeze", "transpose", "swapaxes", "swapdims", "permute", "t", "concat", "concatenate", "split",
    "chunk", "exp", "log", "sqrt", "abs", "absolute", "neg", "negative", "square", "relu", "sigmoid", "tanh",
    "softmax", "log_softmax", "clamp", "clip", "add", "sub", "subtract", "mul", "multiply", "div", "divide",
    "true_divide", "pow", "maximum", "minimum", "where", "matmul", "mm", "bmm", "dot", "sum", "mean", "max", "min",
    "argmax", "argmin", "sort", "argsort", "topk", "allclose", "equal", "sparse_coo_tensor", "sparse_csr_tensor",
    "complex", "view_as_complex", "view_as_real", "polar",
]


def __getattr__(name: str) -> ModuleType | Any:
    """``optrs.logging`` (TensorBoard), ``optrs.profiler`` and ``optrs.bfloat16`` (ml_dtypes) load
    on first use, so that ``import optrs`` stays light and ``optrs.logging.SummaryWriter`` works
    without its own import."""
    if name in ("logging", "profiler"):
        return importlib.import_module(f".{name}", __name__)
    if name == "bfloat16":
        return autograd.bfloat16
    raise AttributeError(f"module 'optrs' has no attribute {name!r}")
