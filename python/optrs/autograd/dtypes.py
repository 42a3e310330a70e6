"""torch's dtypes, which here ARE NumPy dtypes (``optrs.float32 == np.dtype(np.float32)``), so
``t.dtype == optrs.float32`` holds for ``Tensor.dtype`` (an ``np.dtype``) and every NumPy
function takes them. ``bfloat16`` is ml_dtypes' (NumPy has none), imported on first use:
``optrs.bfloat16`` is a lazy attribute, as importing ml_dtypes takes about a second. torch's
aliases (``float``,
``double``, ``half``, ``long``, ``int``, ``short``) are exported by the package, not defined here,
where they would hide the builtins.

The default dtype (``get_default_dtype``/``set_default_dtype``, float32 as in torch) is what Python
floats become in ``optrs.tensor`` and the factories, and what ``nn`` layers create parameters in.
Complex and quantized dtypes are torch concepts optrs lacks: they exist as `UnsupportedDType`
placeholders, so naming one is no AttributeError and using one raises an error that says so.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParamError, ParamDTypeError

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
int16 = np.dtype(np.int16)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)



def bfloat16() -> np.dtype[Any]:
    """ml_dtypes' bfloat16 dtype (``optrs.bfloat16``), imported on first use."""
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16)


class UnsupportedDType:
    """A torch dtype optrs has no tensors of (complex, quantized, float8): naming it works, using
    it as a dtype raises ``ParamDTypeError`` saying so."""

    __slots__ = ("name", "why")

    def __init__(self, name: str, why: str) -> None:
        self.name, self.why = name, why

    def __repr__(self) -> str:
        return f"optrs.{self.name}"

    @property
    def is_complex(self) -> builtins.bool:
        return self.name.startswith(("complex", "c"))

    @property
    def is_floating_point(self) -> builtins.bool:
        return self.name.startswith("float8")

    def error(self) -> ParamDTypeError:
        return ParamDTypeError(f"optrs has no {self.name} tensors: {self.why}")


_COMPLEX = ("complex dtypes are not supported: optrs computes in real numbers only (float16/bfloat16/float32/"
            "float64, integers, bool)")
_QUANTIZED = "optrs has no quantized tensors; use float32 (or torch.ao.quantization in torch)"
UNSUPPORTED: dict[str, UnsupportedDType] = {
    **{name: UnsupportedDType(name, _COMPLEX)
       for name in ("complex32", "complex64", "complex128", "chalf", "cfloat", "cdouble")},
    **{name: UnsupportedDType(name, _QUANTIZED) for name in ("qint8", "quint8", "qint32", "quint4x2")},
    **{name: UnsupportedDType(name, "NumPy has no float8 arithmetic; use float16, bfloat16 or float32")
       for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")},
}


_default = float32  # one for the process, as torch's


def get_default_dtype() -> np.dtype[Any]:
    """The dtype Python floats become in new tensors and ``nn`` parameters (float32 unless set)."""
    return _default


def set_default_dtype(d: Any) -> None:
    """Sets the default floating-point dtype: float32, float64, float16 or bfloat16, as torch 2.13
    allows (optimizers step float32 and float64 only). Anything else raises ``TypeError``."""
    global _default
    # Python's float is refused, as torch refuses it; NumPy's scalar types are dtypes here.
    is_dtype = isinstance(d, np.dtype) or (isinstance(d, type) and issubclass(d, np.generic))
    if not is_dtype or not is_floating(np.dtype(d)):
        raise ParamDTypeError(f"only floating-point types are supported as the default type, got {d!r}; use "
                              "optrs.float32 or optrs.float64")
    _default = np.dtype(d)


def resolve(dtype: Any) -> np.dtype[Any]:
    """``dtype`` as an ``np.dtype`` for a new tensor: torch's and NumPy's dtype objects, the
    Python types ``float`` (float64), ``int`` (int64) and ``bool``. Complex and other unsupported
    dtypes raise ``ParamDTypeError``."""
    if isinstance(dtype, UnsupportedDType):
        raise dtype.error()
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        raise ParamDTypeError(f"{dtype!r} is not a dtype; use one of optrs.float32, optrs.float64, optrs.int64, "
                              "optrs.bool, ...") from None
    if resolved.kind == "c":
        raise UNSUPPORTED["complex64"].error()
    if resolved.kind not in "biuf" and not is_floating(resolved):
        raise ParamDTypeError(f"optrs tensors cannot hold dtype {resolved}; use a number or bool dtype")
    return resolved


def resolve_or_default(dtype: Any) -> np.dtype[Any]:
    return get_default_dtype() if dtype is None else resolve(dtype)


def is_floating(dtype: np.dtype[Any]) -> builtins.bool:
    """True for float16/32/64 and bfloat16 (whose NumPy kind is 'V'; known by name, so that
    ml_dtypes need not be imported)."""
    return dtype.kind == "f" or (dtype.kind == "V" and dtype.name == "bfloat16")


class finfo:
    """Machine limits of a floating dtype, the default dtype's without an argument, as torch's:
    Python numbers ``bits``, ``eps``, ``max``, ``min``, ``tiny`` (= ``smallest_normal``) and
    ``resolution``, read from NumPy's ``finfo`` (ml_dtypes' for bfloat16)."""

    def __init__(self, type: Any = None) -> None:
        resolved = resolve_or_default(type)
        if not is_floating(resolved):
            raise ParamDTypeError(f"finfo takes a floating-point dtype, got {resolved}; use iinfo for integers")
        info: Any
        if resolved.kind == "f":
            info = np.finfo(resolved)
        else:
            import ml_dtypes

            info = ml_dtypes.finfo(resolved)  # type: ignore[no-untyped-call]
        self.dtype = resolved
        self.bits: builtins.int = builtins.int(info.bits)
        self.eps, self.max, self.min = builtins.float(info.eps), builtins.float(info.max), builtins.float(info.min)
        self.tiny = self.smallest_normal = builtins.float(info.smallest_normal)
        self.resolution = builtins.float(info.resolution)

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, eps={self.eps}, "
                f"smallest_normal={self.tiny}, tiny={self.tiny}, dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype, as torch's: Python ints ``bits``, ``min`` and ``max``."""

    def __init__(self, type: Any) -> None:
        resolved = resolve(type)
        if resolved.kind not in "iu":
            raise ParamDTypeError(f"iinfo takes an integer dtype, got {resolved}; use finfo for floating-point "
                                  "types")
        info = np.iinfo(resolved)
        self.dtype = resolved
        self.bits, self.min, self.max = builtins.int(info.bits), builtins.int(info.min), builtins.int(info.max)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


def _from_python(data: Any) -> builtins.bool:
    """True when ``data``'s first leaf is a Python number (or it holds none: ``[]``), so its
    floats take the default dtype, as torch's; NumPy scalars and arrays and Tensors keep theirs.
    (NumPy's float64 scalar is a Python float too: its type is checked exactly.)"""
    while isinstance(data, (list, tuple)) and len(data) > 0:
        data = data[0]
    return isinstance(data, (list, tuple)) or type(data) in (builtins.float, builtins.int, builtins.bool)


def new_array(data: Any, dtype: Any = None) -> NDArray[Any]:
    """A fresh array of ``data`` with torch.tensor's dtype rules: ``dtype`` if given; else Python
    floats in the default dtype, ints in int64, bools as bool, and arrays (NumPy's, Tensors')
    in their own dtype."""
    if dtype is not None:
        return np.array(data, dtype=resolve(dtype), copy=True)
    array = np.array(data, copy=True)
    if array.dtype.kind not in "biuf" and not is_floating(array.dtype):
        resolve(array.dtype)  # raises, naming what is wrong
    if _from_python(data):
        if array.dtype.kind == "f":
            return array.astype(get_default_dtype())
        if array.dtype.kind == "u" and array.dtype.itemsize == 8:
            raise InvalidParamError(f"an int in {type(data).__name__} data does not fit in int64 (Overflow when "
                                  "unpacking long long); pass smaller ints or dtype=optrs.float64")
    return array


# torch's tensor type names, for ``Tensor.type()``: scripts compare them with these strings.
_TYPE_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "float16": "HalfTensor",
               "bfloat16": "BFloat16Tensor", "int64": "LongTensor", "int32": "IntTensor", "int16": "ShortTensor",
               "int8": "CharTensor", "uint8": "ByteTensor", "bool": "BoolTensor"}
_BY_TYPE_NAME = {f"torch.{name}": dtype for dtype, name in _TYPE_NAMES.items()}


def type_name(dtype: np.dtype[Any]) -> str:
    """torch's name of a CPU tensor of ``dtype``: ``"torch.FloatTensor"``."""
    return f"torch.{_TYPE_NAMES.get(dtype.name, dtype.name)}"


def from_type_name(name: str) -> np.dtype[Any]:
    """The dtype of a torch tensor type name (``"torch.DoubleTensor"``); CUDA ones raise."""
    if name.startswith("torch.cuda."):
        from .devices import not_available

        raise not_available("cuda", f"type({name!r})")
    if name not in _BY_TYPE_NAME:
        raise ParamDTypeError(f"invalid type: {name!r}; use a dtype (optrs.float64) or one of "
                              f"{sorted(_BY_TYPE_NAME)}")
    return bfloat16() if _BY_TYPE_NAME[name] == "bfloat16" else np.dtype(_BY_TYPE_NAME[name])


__all__ = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool_",
           "UNSUPPORTED", "UnsupportedDType", "get_default_dtype", "set_default_dtype", "resolve",
           "resolve_or_default", "is_floating", "new_array", "finfo", "iinfo", "type_name", "from_type_name"]
