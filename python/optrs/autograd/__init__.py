"""Reverse-mode automatic differentiation on NumPy arrays, with torch's API.

``Tensor`` (and ``optrs.Parameter``, its trainable subclass) records the ops applied to it;
``loss.backward()`` fills ``.grad`` of the leaves. ``Function`` defines new ops, ``grad`` computes
gradients without touching ``.grad``, ``gradcheck`` checks an op's backward against finite
differences, ``no_grad`` turns recording off, and ``detect_anomaly`` finds the op that made a
NaN or an infinity.

torch's tensor surface lives here too, and the package exports it: dtypes and the default dtype
(`dtypes`), ``device`` (`device`), the factories (`factories`: ``zeros``, ``randn``, ...) and the
module-level functions (`functions`: ``flatten``, ``max``, ``where``, ``topk``, ...).
"""

from typing import Any as _Any

import numpy as _np

from .tensor import RemovableHandle, Tensor, ValuesIndices, from_numpy, tensor  # isort: skip (defines Tensor first)
from .anomaly_mode import detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled, set_detect_anomaly
from .devices import device, strided
from .dtypes import UNSUPPORTED as _UNSUPPORTED
from .dtypes import (
    UnsupportedDType,
    finfo,
    float16,
    float32,
    float64,
    get_default_dtype,
    iinfo,
    int8,
    int16,
    int32,
    int64,
    set_default_dtype,
    uint8,
)
from .dtypes import bfloat16 as _bfloat16
from .dtypes import bool_ as bool  # torch's names
from .dtypes import float16 as half
from .dtypes import float32 as float
from .dtypes import float64 as double
from .dtypes import int16 as short
from .dtypes import int32 as int
from .dtypes import int64 as long
from .engine import backward, grad
from .factories import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    linspace,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    zeros,
    zeros_like,
)
from .function import Function
from .functions import (
    abs,
    absolute,
    add,
    allclose,
    argmax,
    argmin,
    argsort,
    bmm,
    cat,
    chunk,
    clamp,
    clip,
    complex,
    concat,
    concatenate,
    div,
    divide,
    dot,
    equal,
    exp,
    flatten,
    inference_mode,
    is_complex,
    is_floating_point,
    is_inference_mode_enabled,
    is_tensor,
    log,
    log_softmax,
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
    numel,
    permute,
    polar,
    pow,
    relu,
    reshape,
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
    sub,
    subtract,
    sum,
    swapaxes,
    swapdims,
    t,
    tanh,
    topk,
    transpose,
    true_divide,
    unsqueeze,
    view_as_complex,
    view_as_real,
    where,
)
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import gradcheck

# torch's complex, quantized and float8 dtypes: placeholders that raise when used (see dtypes).
complex32, complex64, complex128 = _UNSUPPORTED["complex32"], _UNSUPPORTED["complex64"], _UNSUPPORTED["complex128"]
chalf, cfloat, cdouble = _UNSUPPORTED["chalf"], _UNSUPPORTED["cfloat"], _UNSUPPORTED["cdouble"]
qint8, quint8, qint32 = _UNSUPPORTED["qint8"], _UNSUPPORTED["quint8"], _UNSUPPORTED["qint32"]
float8_e4m3fn, float8_e5m2 = _UNSUPPORTED["float8_e4m3fn"], _UNSUPPORTED["float8_e5m2"]
dtype = _np.dtype  # isinstance(x, optrs.dtype), as torch.dtype


def __getattr__(name: str) -> _np.dtype[_Any]:
    """``bfloat16``, loaded on first use (see dtypes)."""
    if name == "bfloat16":
        return _bfloat16()
    raise AttributeError(f"module 'optrs.autograd' has no attribute {name!r}")

__all__ = [
    "Tensor",
    "tensor",
    "from_numpy",
    "Function",
    "ValuesIndices",
    "RemovableHandle",
    "backward",
    "grad",
    "gradcheck",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "cat",
    "stack",
    "detect_anomaly",
    "set_detect_anomaly",
    "is_anomaly_enabled",
    "is_anomaly_check_nan_enabled",
    # dtypes and devices
    "dtype", "float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32", "int",
    "int16", "short", "int8", "uint8", "bool", "complex32", "complex64", "complex128", "chalf", "cfloat", "cdouble",
    "qint8", "quint8", "qint32", "float8_e4m3fn", "float8_e5m2", "UnsupportedDType", "get_default_dtype",
    "set_default_dtype", "finfo", "iinfo", "device", "strided",
    # factories
    "as_tensor", "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "rand", "randn", "randint",
    "randperm", "normal", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
    "randint_like",
    # module-level functions
    "is_tensor", "is_floating_point", "is_complex", "numel", "inference_mode", "is_inference_mode_enabled",
    "flatten", "reshape", "squeeze", "unsqueeze", "transpose", "swapaxes", "swapdims", "permute", "t", "concat",
    "concatenate", "split", "chunk", "exp", "log", "sqrt", "abs", "absolute", "neg", "negative", "square", "relu",
    "sigmoid", "tanh", "softmax", "log_softmax", "clamp", "clip", "add", "sub", "subtract", "mul", "multiply",
    "div", "divide", "true_divide", "pow", "maximum", "minimum", "where", "matmul", "mm", "bmm", "dot", "sum",
    "mean", "max", "min", "argmax", "argmin", "sort", "argsort", "topk", "allclose", "equal",
    "sparse_coo_tensor", "sparse_csr_tensor", "complex", "view_as_complex", "view_as_real", "polar",
]
