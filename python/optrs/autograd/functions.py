"""torch's module-level tensor functions (``torch.flatten``, ``torch.max``, ``torch.where``, ...),
with its names, arguments and results, over the Tensor's ops: differentiable where torch's are.
Several shadow builtins here (``sum``, ``max``, ``min``, ``abs``, ``pow``), as in torch; this
module uses ``builtins.`` for Python's own. Tensor inputs may also be ndarrays.
"""

from __future__ import annotations

import builtins
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from ..errors import InvalidHyperparameterError, InvalidParamError, NotSupportedError, ParamDTypeError
from . import dtypes, grad_mode
from . import ops as _ops
from . import select_ops as _select
from .tensor import Dims, Tensor, ValuesIndices, normalize_dim

_F = TypeVar("_F", bound=Callable[..., Any])


def _t(value: Any, what: str, name: str = "input") -> Tensor:
    """``value`` as a Tensor: a Tensor itself, an ndarray wrapped; anything else is a TypeError."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor(value)
    raise ParamDTypeError(f"{what}(): argument '{name}' must be Tensor, not {type(value).__name__}")


def _no_out(what: str, out: Any) -> None:
    if out is not None:
        raise NotSupportedError(f"{what}(out=...) is not supported by optrs; assign the result instead")


# -- predicates and sizes -----------------------------------------------------------------------

def is_tensor(obj: Any) -> bool:
    """True for optrs Tensors (Parameters included)."""
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> bool:
    return dtypes.is_floating(_t(input, "is_floating_point").dtype)


def is_complex(input: Tensor) -> bool:
    return _t(input, "is_complex").dtype.kind == "c"


def numel(input: Tensor) -> int:
    return _t(input, "numel").numel()


# -- grad mode ----------------------------------------------------------------------------------

class _Inference(threading.local):
    depth: int = 0


_inference = _Inference()


def is_inference_mode_enabled() -> bool:
    return _inference.depth > 0


class inference_mode(grad_mode._GradMode):
    """torch's ``inference_mode``: here the same as ``no_grad`` (ops record no graph), as a
    context manager or decorator (``@inference_mode()`` and bare ``@inference_mode``).
    ``inference_mode(False)`` changes nothing."""

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode) and not isinstance(mode, bool):
            return cls(True)(mode)  # used bare: @inference_mode
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        super().__init__()
        self._inference = bool(mode)

    def __enter__(self) -> None:
        self._previous = grad_mode._flag.enabled
        if self._inference:
            grad_mode._flag.enabled = False
            _inference.depth += 1

    def __exit__(self, *exc_info: object) -> None:
        grad_mode._flag.enabled = self._previous
        if self._inference:
            _inference.depth -= 1

    def _fresh(self) -> grad_mode._GradMode:
        return inference_mode(self._inference)


# -- shape --------------------------------------------------------------------------------------

def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return _t(input, "flatten").flatten(start_dim, end_dim)


def reshape(input: Tensor, shape: Sequence[int]) -> Tensor:
    return _t(input, "reshape").reshape(tuple(shape))


def squeeze(input: Tensor, dim: Dims = None) -> Tensor:
    return _t(input, "squeeze").squeeze(dim)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    return _t(input, "unsqueeze").unsqueeze(dim)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    return _t(input, "transpose").transpose(dim0, dim1)


swapaxes = swapdims = transpose


def permute(input: Tensor, dims: Sequence[int]) -> Tensor:
    return _t(input, "permute").permute(tuple(dims))


def t(input: Tensor) -> Tensor:
    return _t(input, "t").t()


def cat(tensors: Sequence[Tensor], dim: int = 0, *, out: Any = None) -> Tensor:
    """Joins tensors along an existing dimension (also ``concat`` and ``concatenate``)."""
    _no_out("cat", out)
    return _ops.cat([_t(x, "cat", "tensors") for x in tensors], dim)


concat = concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0, *, out: Any = None) -> Tensor:
    """Joins tensors of one shape along a new dimension."""
    _no_out("stack", out)
    return _ops.stack([_t(x, "stack", "tensors") for x in tensors], dim)


def _cuts(size: int, sizes: Sequence[int]) -> list[slice]:
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _pieces(x: Tensor, sizes: Sequence[int], dim: int) -> tuple[Tensor, ...]:
    d = normalize_dim(dim, x.ndim)
    lead = (slice(None),) * d
    return tuple(x[lead + (cut,)] for cut in _cuts(x.shape[d], sizes))


def split(tensor: Tensor, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of ``split_size_or_sections`` elements along ``dim`` (the last may be shorter), or
    of the listed sizes, which must add up to the dimension; views, differentiable."""
    x = _t(tensor, "split", "tensor")
    if x.ndim == 0:
        raise InvalidParamError("split: a 0-d tensor has no dimension to split")
    size = x.shape[normalize_dim(dim, x.ndim)]
    if isinstance(split_size_or_sections, bool):
        raise ParamDTypeError("split: split_size_or_sections must be an int or a list of ints, not a bool")
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step < 0 or (step == 0 and size > 0):
            raise InvalidHyperparameterError(f"split: split_size must be positive, got {step}")
        sizes = [builtins.min(step, size - start) for start in range(0, size, builtins.max(step, 1))] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != size or builtins.any(s < 0 for s in sizes):
            raise InvalidParamError(f"split: split_with_sizes expects split_sizes to sum exactly to {size} (input "
                                    f"tensor's size at dimension {dim}), but got split_sizes={sizes}")
    return _pieces(x, sizes, dim)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most ``chunks`` pieces of ``ceil(size / chunks)`` elements along ``dim``."""
    x = _t(input, "chunk")
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise InvalidHyperparameterError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    if x.ndim == 0:
        raise InvalidParamError("chunk: a 0-d tensor has no dimension to split")
    size = x.shape[normalize_dim(dim, x.ndim)]
    return split(x, builtins.max(math.ceil(size / int(chunks)), 1), dim)


# -- elementwise ----------------------------------------------------------------------------------

def exp(input: Tensor) -> Tensor:
    return _t(input, "exp").exp()


def log(input: Tensor) -> Tensor:
    return _t(input, "log").log()


def sqrt(input: Tensor) -> Tensor:
    return _t(input, "sqrt").sqrt()


def abs(input: Tensor) -> Tensor:
    return _t(input, "abs").abs()


absolute = abs


def neg(input: Tensor) -> Tensor:
    return -_t(input, "neg")


negative = neg


def square(input: Tensor) -> Tensor:
    x = _t(input, "square")
    return x * x


def relu(input: Tensor) -> Tensor:
    return _t(input, "relu").relu()


def sigmoid(input: Tensor) -> Tensor:
    return _t(input, "sigmoid").sigmoid()


def tanh(input: Tensor) -> Tensor:
    return _t(input, "tanh").tanh()


def softmax(input: Tensor, dim: int, dtype: Any = None) -> Tensor:
    """``softmax`` along ``dim`` (required), computed in ``dtype`` if given."""
    x = _t(input, "softmax")
    return (x if dtype is None else x.to(dtype)).softmax(dim)


def log_softmax(input: Tensor, dim: int, dtype: Any = None) -> Tensor:
    x = _t(input, "log_softmax")
    return (x if dtype is None else x.to(dtype)).log_softmax(dim)


def clamp(input: Tensor, min: Any = None, max: Any = None, *, out: Any = None) -> Tensor:
    """Limits values to ``[min, max]`` (numbers or tensors, either may be None); also ``clip``."""
    _no_out("clamp", out)
    x = _t(input, "clamp")
    if min is None and max is None:
        raise InvalidHyperparameterError("clamp: at least one of 'min' or 'max' must not be None")
    if isinstance(min, (Tensor, np.ndarray)) or isinstance(max, (Tensor, np.ndarray)):
        return _select.ClampTensor.apply(x, min, max)
    return x.clamp(min, max)


clip = clamp


def _binary_operand(value: Any, what: str) -> Any:
    return value if isinstance(value, (Tensor, np.ndarray, int, float, np.generic)) else _t(value, what, "other")


def add(input: Any, other: Any, *, alpha: Any = 1, out: Any = None) -> Tensor:
    """``input + alpha * other``."""
    _no_out("add", out)
    scaled = other if alpha == 1 else _binary_operand(other, "add") * alpha
    return _as_result(_binary_operand(input, "add") + scaled)


def sub(input: Any, other: Any, *, alpha: Any = 1, out: Any = None) -> Tensor:
    """``input - alpha * other``."""
    _no_out("sub", out)
    scaled = other if alpha == 1 else _binary_operand(other, "sub") * alpha
    return _as_result(_binary_operand(input, "sub") - scaled)


subtract = sub


def mul(input: Any, other: Any, *, out: Any = None) -> Tensor:
    _no_out("mul", out)
    return _as_result(_binary_operand(input, "mul") * _binary_operand(other, "mul"))


multiply = mul


def div(input: Any, other: Any, *, rounding_mode: str | None = None, out: Any = None) -> Tensor:
    """True division, or with ``rounding_mode`` "trunc"/"floor" rounded (no gradient, as torch's is
    zero almost everywhere)."""
    _no_out("div", out)
    quotient = _as_result(_binary_operand(input, "div") / _binary_operand(other, "div"))
    if rounding_mode is None:
        return quotient
    if rounding_mode not in ("trunc", "floor"):
        raise InvalidHyperparameterError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but "
                                         f"found {rounding_mode!r}")
    a, b = (np.asarray(v.data if isinstance(v, Tensor) else v) for v in (input, other))
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        rounded = np.floor_divide(a, b) if rounding_mode == "floor" else np.trunc(a / b).astype(np.result_type(a, b))
    else:
        rounded = (np.floor if rounding_mode == "floor" else np.trunc)(quotient.data)
    return Tensor(np.asarray(rounded))


divide = true_divide = div


def pow(input: Any, exponent: Any, *, out: Any = None) -> Tensor:
    """``input ** exponent``; either may be a number."""
    _no_out("pow", out)
    return _as_result(_binary_operand(input, "pow") ** _binary_operand(exponent, "pow"))


def _as_result(value: Any) -> Tensor:
    """An op of two numbers gives an ndarray scalar: made a tensor (torch refuses such calls,
    optrs computes them)."""
    return value if isinstance(value, Tensor) else Tensor(np.asarray(value))


def maximum(input: Tensor, other: Tensor, *, out: Any = None) -> Tensor:
    """Elementwise larger (NaN if either is); ties share the gradient."""
    _no_out("maximum", out)
    return _select.Maximum.apply(_t(input, "maximum"), _t(other, "maximum", "other"))


def minimum(input: Tensor, other: Tensor, *, out: Any = None) -> Tensor:
    _no_out("minimum", out)
    return _select.Minimum.apply(_t(input, "minimum"), _t(other, "minimum", "other"))


def where(condition: Any, input: Any = None, other: Any = None) -> Any:
    """``where(condition, input, other)``: ``input`` where the bool ``condition`` holds, else
    ``other`` (tensors or numbers, broadcast; two numbers give the default dtype for floats);
    differentiable in both. ``where(condition)`` is ``condition.nonzero(as_tuple=True)``: one
    int64 index tensor per dimension."""
    cond = _t(condition, "where", "condition").data
    if cond.dtype != np.bool_:
        raise ParamDTypeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                              f"{cond.dtype}")
    if input is None and other is None:
        return tuple(Tensor(i.astype(np.int64)) for i in np.nonzero(cond))
    if input is None or other is None:
        raise TypeError("where() takes the condition alone, or the condition, input and other")
    if not isinstance(input, (Tensor, np.ndarray)) and not isinstance(other, (Tensor, np.ndarray)):
        # two numbers: torch's dtype rules for numbers
        input, other = (Tensor(dtypes.new_array(v)) for v in (input, other))
        common = np.result_type(input.data, other.data)
        input, other = input.to(common), other.to(common)
    return _select.Where.apply(cond, input, other)


# -- linear algebra -------------------------------------------------------------------------------

def matmul(input: Tensor, other: Tensor, *, out: Any = None) -> Tensor:
    """``input @ other`` with NumPy's (and torch's) rules for 1-D and batched operands."""
    _no_out("matmul", out)
    return _ops.MatMul.apply(_t(input, "matmul"), _t(other, "matmul", "other"))


def mm(input: Tensor, mat2: Tensor, *, out: Any = None) -> Tensor:
    """The product of two matrices (2-D only; ``matmul`` broadcasts)."""
    _no_out("mm", out)
    a, b = _t(input, "mm"), _t(mat2, "mm", "mat2")
    if a.ndim != 2 or b.ndim != 2:
        raise InvalidParamError(f"mm: both arguments must be matrices (2-D), got shapes {a.shape} and {b.shape}")
    return _ops.MatMul.apply(a, b)


def bmm(input: Tensor, mat2: Tensor, *, out: Any = None) -> Tensor:
    """Batched matrix products: (b, n, m) @ (b, m, p) -> (b, n, p), batch sizes equal (no
    broadcasting, as torch's)."""
    _no_out("bmm", out)
    a, b = _t(input, "bmm"), _t(mat2, "bmm", "mat2")
    if a.ndim != 3 or b.ndim != 3:
        raise InvalidParamError(f"bmm: both arguments must be 3-D (batch, rows, cols), got shapes {a.shape} and "
                                f"{b.shape}")
    if a.shape[0] != b.shape[0]:
        raise InvalidParamError(f"bmm: batch sizes differ: {a.shape[0]} and {b.shape[0]} (shapes {a.shape} and "
                                f"{b.shape}); use matmul to broadcast")
    return _ops.MatMul.apply(a, b)


def dot(input: Tensor, other: Tensor) -> Tensor:
    """The dot product of two 1-D tensors of one size."""
    a, b = _t(input, "dot"), _t(other, "dot", "other")
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise InvalidParamError(f"dot: 1-D tensors of the same size expected, got shapes {a.shape} and {b.shape}")
    return _ops.MatMul.apply(a, b)


# -- reductions -----------------------------------------------------------------------------------

def sum(input: Tensor, dim: Dims = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """The sum over ``dim`` (all elements if None), in ``dtype`` if given (bools and ints sum in
    int64, as torch's)."""
    x = _t(input, "sum")
    x = x if dtype is None else x.to(dtype)
    if dtype is None and x.dtype.kind in "biu" and x.dtype != np.int64:
        x = x.to(np.int64)
    return x.sum(dim, keepdim)


def mean(input: Tensor, dim: Dims = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """The mean over ``dim``; integer tensors need a float ``dtype``, as in torch."""
    x = _t(input, "mean")
    x = x if dtype is None else x.to(dtype)
    if not dtypes.is_floating(x.dtype):
        raise ParamDTypeError(f"mean(): could not infer output dtype. Input dtype must be either a floating point "
                              f"or complex dtype. Got: {x.dtype}; pass dtype=optrs.float32")
    return x.mean(dim, keepdim)


def _extreme_of(what: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """torch.max/min's three forms: ``(input)``, ``(input, dim, keepdim=False)`` and ``(input,
    other)`` (elementwise)."""
    largest = what == "max"
    if "out" in kwargs:
        _no_out(what, kwargs.pop("out"))
    names = ("input", "dim", "keepdim")
    bound = dict(zip(names, args))
    if len(args) > 3 or set(bound) & set(kwargs):
        raise TypeError(f"{what}() takes (input), (input, dim, keepdim=False) or (input, other)")
    bound.update(kwargs)
    if set(bound) - {*names, "other"} or "input" not in bound:
        raise TypeError(f"{what}() takes (input), (input, dim, keepdim=False) or (input, other); got "
                        f"{sorted(bound)}")
    x = _t(bound["input"], what)
    second = bound.get("dim", bound.get("other"))
    if isinstance(second, (Tensor, np.ndarray)):
        return (maximum if largest else minimum)(x, _t(second, what, "other"))
    if second is None:
        if "keepdim" in bound:
            raise TypeError(f"{what}(): keepdim needs a dim")
        return x.max() if largest else x.min()
    return x.max(second, bool(bound.get("keepdim", False))) if largest else \
        x.min(second, bool(bound.get("keepdim", False)))


def max(*args: Any, **kwargs: Any) -> Any:
    """``max(input)`` (a 0-d tensor), ``max(input, dim, keepdim=False)`` (``(values, indices)``)
    or ``max(input, other)`` (elementwise, as ``maximum``)."""
    return _extreme_of("max", args, kwargs)


def min(*args: Any, **kwargs: Any) -> Any:
    """As ``max``, for the smallest."""
    return _extreme_of("min", args, kwargs)


def argmax(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _t(input, "argmax").argmax(dim, keepdim)


def argmin(input: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return _t(input, "argmin").argmin(dim, keepdim)


# -- sorting ------------------------------------------------------------------------------------

def _order(data: np.ndarray[Any, Any], dim: int, descending: bool) -> np.ndarray[Any, Any]:
    """Stable sorting indices along ``dim``; NaN counts as the largest value, as in torch."""
    if not descending:
        return np.argsort(data, axis=dim, kind="stable")
    # Descending and stable: sort the reversed data ascending, then reverse back.
    reversed_order = np.argsort(np.flip(data, dim), axis=dim, kind="stable")
    return data.shape[dim] - 1 - np.flip(reversed_order, dim)


def _sorted(what: str, x: Tensor, dim: int, descending: bool, count: int | None) -> ValuesIndices:
    flat = x.ndim == 0
    y = x.reshape(1) if flat else x
    d = normalize_dim(dim, y.ndim)
    indices = _order(y.data, d, descending)
    if count is not None:
        indices = np.take(indices, np.arange(count), axis=d)
    values = _select.TakeAlong.apply(y, indices, d)
    index_tensor = Tensor(indices.astype(np.int64))
    if flat:
        return ValuesIndices(values.reshape(()), index_tensor.reshape(()))
    return ValuesIndices(values, index_tensor)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False, *,
         out: Any = None) -> ValuesIndices:
    """``(values, indices)`` sorted along ``dim``; always stable (equal elements keep their
    order); NaN sorts as the largest. The values are differentiable."""
    _no_out("sort", out)
    return _sorted("sort", _t(input, "sort"), dim, bool(descending), None)


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return sort(input, dim, descending).indices


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True, *,
         out: Any = None) -> ValuesIndices:
    """The ``k`` largest (``largest=False``: smallest) elements along ``dim`` and their indices,
    in order (also with ``sorted=False``); among equal elements the first come first, which may
    differ from torch's order of ties."""
    _no_out("topk", out)
    x = _t(input, "topk")
    size = x.shape[normalize_dim(dim, x.ndim)] if x.ndim else 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= size:
        raise InvalidParamError(f"topk: selected index k out of range: k={k} for a dimension of size {size}")
    return _sorted("topk", x, dim, bool(largest), int(k))


# -- comparison -----------------------------------------------------------------------------------

def allclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """``|input - other| <= atol + rtol * |other|`` everywhere (broadcast); the dtypes must match,
    as in torch."""
    a, b = _t(input, "allclose"), _t(other, "allclose", "other")
    if a.dtype != b.dtype:
        raise ParamDTypeError(f"allclose: the dtypes differ ({a.dtype} and {b.dtype}); convert one, e.g. "
                              "other.to(input.dtype)")
    try:
        return builtins.bool(np.allclose(a.data, b.data, rtol=rtol, atol=atol, equal_nan=equal_nan))
    except ValueError as e:
        raise InvalidParamError(f"allclose: shapes {a.shape} and {b.shape} do not broadcast together") from e


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both have the same shape and the same values (NaN equals nothing)."""
    a, b = _t(input, "equal"), _t(other, "equal", "other")
    return builtins.bool(np.array_equal(a.data, b.data))


# -- what optrs lacks -----------------------------------------------------------------------------

def _unsupported(name: str, why: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NotSupportedError(f"optrs.{name}: {why}")

    refuse.__name__ = refuse.__qualname__ = name
    refuse.__doc__ = f"Raises ``optrs.NotSupportedError``: {why}"
    return refuse


_SPARSE = "optrs has dense tensors only (no sparse layouts); keep the dense tensor"
_COMPLEX = "optrs computes in real numbers only; keep real and imaginary parts as two real tensors"
sparse_coo_tensor = _unsupported("sparse_coo_tensor", _SPARSE)
sparse_csr_tensor = _unsupported("sparse_csr_tensor", _SPARSE)
complex = _unsupported("complex", _COMPLEX)
view_as_complex = _unsupported("view_as_complex", _COMPLEX)
view_as_real = _unsupported("view_as_real", _COMPLEX)
polar = _unsupported("polar", _COMPLEX)


__all__ = ["is_tensor", "is_floating_point", "is_complex", "numel", "inference_mode", "is_inference_mode_enabled",
           "flatten", "reshape", "squeeze", "unsqueeze", "transpose", "swapaxes", "swapdims", "permute", "t", "cat",
           "concat", "concatenate", "stack", "split", "chunk", "exp", "log", "sqrt", "abs", "absolute", "neg",
           "negative", "square", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "clamp", "clip", "add", "sub",
           "subtract", "mul", "multiply", "div", "divide", "true_divide", "pow", "maximum", "minimum", "where",
           "matmul", "mm", "bmm", "dot", "sum", "mean", "max", "min", "argmax", "argmin", "sort", "argsort", "topk",
           "allclose", "equal", "sparse_coo_tensor", "sparse_csr_tensor", "complex", "view_as_complex",
           "view_as_real", "polar"]
