"""torch's tensor factories, with its signatures and dtype rules: sizes as ``*size`` or one
tuple; floats in the default dtype (``get_default_dtype``), ints in int64, bools as bool;
``device`` must be the CPU; ``requires_grad`` makes a leaf that requires grad. The random ones
draw from ``optrs.manual_seed``'s generator, or from ``generator=`` (a ``numpy.random.Generator``
or an object holding one), NumPy's streams: not torch's numbers for the same seed. ``out=`` and
``pin_memory=True`` raise (optrs makes new arrays; pinned memory is a CUDA concept).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import random as _random
from ..errors import InvalidHyperparameterError, InvalidParamError, NotSupportedError, ParamDTypeError
from . import devices as _devices
from . import dtypes
from .tensor import Tensor, tensor

Array = NDArray[Any]


def _size(what: str, size: tuple[Any, ...], keyword: Any = None) -> tuple[int, ...]:
    """``zeros(2, 3)``, ``zeros((2, 3))`` and ``zeros(size=(2, 3))`` alike, every size a
    non-negative int."""
    if keyword is not None:
        if size:
            raise TypeError(f"{what}() got the size both positionally and as size=")
        size = (keyword,)
    if not size:
        raise TypeError(f'{what}() missing 1 required positional arguments: "size"')
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise ParamDTypeError(f"{what}(): argument 'size' must be tuple of ints, not {type(s).__name__}")
        if s < 0:
            raise InvalidParamError(f"{what}: Dimension size must be non-negative, got size {size}")
    return tuple(int(s) for s in size)


def _finish(what: str, array: Array, requires_grad: bool = False, device: Any = None, out: Any = None,
            pin_memory: bool = False, layout: Any = None) -> Tensor:
    """The new leaf, once the options torch has and optrs lacks are checked."""
    _devices.check(device, f"{what}(device={device!r})")
    if out is not None:
        raise NotSupportedError(f"{what}(out=...) is not supported by optrs; assign the result instead "
                                  f"(x = optrs.{what}(...))")
    if pin_memory:
        raise _devices.not_available("cuda", f"{what}(pin_memory=True)")
    if layout is not None and layout is not _devices.strided:
        raise NotSupportedError(f"{what}(layout={layout!r}): optrs has dense (strided) tensors only")
    return Tensor(array, requires_grad=requires_grad)


def _generator(generator: Any) -> np.random.Generator:
    """The NumPy generator to draw from: the package's, or the one ``generator`` is or holds."""
    if generator is None:
        return _random.get_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    for value in (getattr(generator, name, None) for name in ("numpy_generator", "generator", "_generator")):
        if isinstance(value, np.random.Generator):
            return value
    raise ParamDTypeError(f"generator must be a numpy.random.Generator or an optrs Generator, got "
                          f"{type(generator).__name__}")


def _float_dtype(what: str, dtype: Any) -> np.dtype[Any]:
    resolved = dtypes.resolve_or_default(dtype)
    if not dtypes.is_floating(resolved):
        raise ParamDTypeError(f"{what}() draws floating-point numbers, dtype {resolved} is not one; draw floats "
                              "and convert, or use randint for integers")
    return resolved


# -- from data ----------------------------------------------------------------------------------

def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a tensor, sharing memory where it can (torch.as_tensor): a Tensor of that
    dtype is returned itself, an ndarray of it is wrapped without a copy; anything else is
    converted with ``tensor``'s dtype rules."""
    _devices.check(device, f"as_tensor(device={device!r})")
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray):
        dtypes.resolve(data.dtype)  # refuses what tensors cannot hold
        return Tensor(data if dtype is None else np.asarray(data, dtype=dtypes.resolve(dtype)))
    return tensor(data, dtype=dtype)


# -- filled -------------------------------------------------------------------------------------

def zeros(*sizes: Any, size: Any = None, out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
          requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A tensor of zeros; ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    array = np.zeros(_size("zeros", sizes, size), dtypes.resolve_or_default(dtype))
    return _finish("zeros", array, requires_grad, device, out, pin_memory, layout)


def ones(*sizes: Any, size: Any = None, out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
         requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    array = np.ones(_size("ones", sizes, size), dtypes.resolve_or_default(dtype))
    return _finish("ones", array, requires_grad, device, out, pin_memory, layout)


def empty(*sizes: Any, size: Any = None, out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
          requires_grad: bool = False, pin_memory: bool = False, memory_format: Any = None) -> Tensor:
    """A tensor whose values are whatever the memory held (torch.empty): write it before reading."""
    array = np.empty(_size("empty", sizes, size), dtypes.resolve_or_default(dtype))
    return _finish("empty", array, requires_grad, device, out, pin_memory, layout)


def _fill_dtype(fill_value: Any) -> np.dtype[Any]:
    """torch.full's dtype for a fill value: bool, int64 for ints, the default for floats, and a
    NumPy scalar's or 0-d tensor's own."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.data
    if isinstance(fill_value, (np.ndarray, np.generic)):
        return dtypes.resolve(np.asarray(fill_value).dtype)
    return dtypes.new_array(fill_value).dtype


def full(size: Sequence[int], fill_value: Any, *, out: Any = None, dtype: Any = None, layout: Any = None,
         device: Any = None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A tensor of ``size`` (a tuple) filled with ``fill_value``; its dtype follows the value
    (bool, int64 for ints, the default dtype for floats) unless ``dtype`` is given."""
    if not isinstance(size, (tuple, list)):
        raise ParamDTypeError(f"full(): argument 'size' (position 1) must be tuple of ints, not "
                              f"{type(size).__name__}")
    target = _fill_dtype(fill_value) if dtype is None else dtypes.resolve(dtype)
    value = fill_value.data if isinstance(fill_value, Tensor) else fill_value
    array = np.full(_size("full", (size,)), value, dtype=target)
    return _finish("full", array, requires_grad, device, out, pin_memory, layout)


def _number(what: str, name: str, value: Any) -> int | float:
    if isinstance(value, Tensor):
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParamDTypeError(f"{what}(): {name} must be a number, got {type(value).__name__}")
    return value


def arange(start: Any = None, end: Any = None, step: Any = 1, *, out: Any = None, dtype: Any = None, layout: Any = None,
           device: Any = None, requires_grad: bool = False) -> Tensor:
    """``[start, end)`` in steps of ``step`` (``arange(end)`` starts at 0): int64 when all three
    are ints, else the default dtype. Values are ``start + i * step``, computed in float64 for
    floats."""
    if end is None:
        if start is None:
            raise TypeError("arange() needs an end: arange(end), arange(start, end[, step]) or arange(end=...)")
        start, end = 0, start
    elif start is None:
        start = 0
    bounds = [_number("arange", name, v) for name, v in (("start", start), ("end", end), ("step", step))]
    first, last, by = bounds
    if by == 0:
        raise InvalidHyperparameterError("arange: step must be nonzero")
    if not all(math.isfinite(v) for v in bounds):
        raise InvalidHyperparameterError(f"arange: unsupported range: {first} -> {last}")
    if (last - first) * by < 0:
        raise InvalidHyperparameterError(f"arange: upper bound and lower bound inconsistent with step sign "
                                         f"(start={first}, end={last}, step={by})")
    integral = all(isinstance(v, int) for v in bounds)
    target = dtypes.resolve(dtype) if dtype is not None else dtypes.int64 if integral else dtypes.get_default_dtype()
    count = max(math.ceil((last - first) / by), 0)
    if integral:
        array = np.arange(count, dtype=np.int64) * by + first
    else:
        array = np.arange(count, dtype=np.float64) * by + first
    return _finish("arange", array.astype(target), requires_grad, device, out, False, layout)


def linspace(start: Any, end: Any, steps: int, *, out: Any = None, dtype: Any = None, layout: Any = None,
             device: Any = None, requires_grad: bool = False) -> Tensor:
    """``steps`` values evenly spaced from ``start`` to ``end`` inclusive (the default dtype
    unless given); as torch's, the first half counts up from ``start`` and the second half down
    from ``end``, so both ends are exact."""
    first, last = _number("linspace", "start", start), _number("linspace", "end", end)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise ParamDTypeError(f"linspace(): steps must be an int, got {type(steps).__name__}")
    if steps < 0:
        raise InvalidHyperparameterError(f"linspace: number of steps must be non-negative, got {steps}")
    target = dtypes.resolve_or_default(dtype)
    index = np.arange(int(steps), dtype=np.float64)
    if steps <= 1:
        values = np.full(int(steps), first, dtype=np.float64)
    else:
        step = (last - first) / (steps - 1)
        half = steps // 2
        values = np.where(index < half, first + step * index, last - step * (steps - 1 - index))
    return _finish("linspace", values.astype(target), requires_grad, device, out, False, layout)


def eye(n: int, m: int | None = None, *, out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
        requires_grad: bool = False) -> Tensor:
    """The ``n`` x ``m`` (``n`` x ``n``) identity matrix, in the default dtype unless given."""
    rows, cols = _size("eye", (n, n if m is None else m))
    array = np.eye(rows, cols, dtype=dtypes.resolve_or_default(dtype))
    return _finish("eye", array, requires_grad, device, out, False, layout)


# -- random -------------------------------------------------------------------------------------

def _uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    if dtype in (dtypes.float32, dtypes.float64):
        return rng.random(shape, dtype=dtype)
    # float16/bfloat16: drawn in float32, kept below 1 after rounding, as torch's are.
    below_one = np.nextafter(np.array(1, dtype), np.array(0, dtype))
    return np.minimum(rng.random(shape, dtype=np.float32).astype(dtype), below_one)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    if dtype in (dtypes.float32, dtypes.float64):
        return rng.standard_normal(shape, dtype=dtype)
    return rng.standard_normal(shape, dtype=np.float32).astype(dtype)


def rand(*sizes: Any, size: Any = None, generator: Any = None, out: Any = None, dtype: Any = None, layout: Any = None,
         device: Any = None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """Uniform on [0, 1)."""
    shape, target = _size("rand", sizes, size), _float_dtype("rand", dtype)
    return _finish("rand", _uniform(_generator(generator), shape, target), requires_grad, device, out, pin_memory,
                   layout)


def randn(*sizes: Any, size: Any = None, generator: Any = None, out: Any = None, dtype: Any = None, layout: Any = None,
          device: Any = None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """Standard normal."""
    shape, target = _size("randn", sizes, size), _float_dtype("randn", dtype)
    return _finish("randn", _normal(_generator(generator), shape, target), requires_grad, device, out, pin_memory,
                   layout)


def _integers(what: str, rng: np.random.Generator, low: Any, high: Any, shape: tuple[int, ...]) -> Array:
    low, high = _number(what, "low", low), _number(what, "high", high)
    if not (isinstance(low, int) and isinstance(high, int)):
        raise ParamDTypeError(f"{what}(): low and high must be ints, got {low!r} and {high!r}")
    if low >= high:
        raise InvalidHyperparameterError(f"{what}: random_ expects 'from' to be less than 'to', but got "
                                         f"from={low} >= to={high}")
    return rng.integers(low, high, shape, dtype=np.int64)


def randint(*args: Any, size: Any = None, generator: Any = None, out: Any = None, dtype: Any = None,
            layout: Any = None, device: Any = None, requires_grad: bool = False,
            pin_memory: bool = False) -> Tensor:
    """``randint(high, size)`` or ``randint(low, high, size)``: ints uniform in [low, high),
    int64 unless ``dtype`` is given; ``size`` is a tuple."""
    if size is not None:
        args = (*args, size)
    if len(args) not in (2, 3):
        raise TypeError("randint() takes (high, size) or (low, high, size), size a tuple of ints")
    *bounds, shape = args
    if not isinstance(shape, (tuple, list)):
        raise ParamDTypeError(f"randint(): size must be a tuple of ints, not {type(shape).__name__}")
    low, high = (0, bounds[0]) if len(bounds) == 1 else bounds
    array = _integers("randint", _generator(generator), low, high, _size("randint", (shape,)))
    return _finish("randint", array.astype(dtypes.resolve(dtypes.int64 if dtype is None else dtype)), requires_grad,
                   device, out, pin_memory, layout)


def randperm(n: int, *, generator: Any = None, out: Any = None, dtype: Any = None, layout: Any = None,
             device: Any = None, requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64 unless ``dtype`` is given)."""
    (count,) = _size("randperm", (n,))
    array = _generator(generator).permutation(count).astype(dtypes.resolve(dtypes.int64 if dtype is None else dtype))
    return _finish("randperm", array, requires_grad, device, out, pin_memory, layout)


def normal(mean: Any, std: Any = 1.0, size: Sequence[int] | None = None, *, generator: Any = None,
           out: Any = None, dtype: Any = None, layout: Any = None, device: Any = None, requires_grad: bool = False,
           pin_memory: bool = False) -> Tensor:
    """Normal samples: ``normal(mean, std, size)`` with numbers (the default dtype), or with a
    Tensor mean and/or std (broadcast together; their dtype), one sample per element."""
    rng = _generator(generator)
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("normal(mean, std) of two numbers needs a size: normal(mean, std, size)")
        mu, sigma = _number("normal", "mean", mean), _number("normal", "std", std)
        if not sigma >= 0:
            raise InvalidHyperparameterError(f"normal expects std >= 0.0, but found std {sigma}")
        target = _float_dtype("normal", dtype)
        array = (_normal(rng, _size("normal", (size,)), np.dtype(np.float64)) * sigma + mu).astype(target)
        return _finish("normal", array, requires_grad, device, out, pin_memory, layout)
    if size is not None:
        raise TypeError("normal(): size goes only with a number mean and std; a tensor's shape gives the size")
    means = mean.data if isinstance(mean, Tensor) else np.asarray(mean)
    stds = std.data if isinstance(std, Tensor) else np.asarray(std)
    if np.any(stds < 0):
        raise InvalidHyperparameterError(f"normal expects all elements of std >= 0.0, got min {np.min(stds)}")
    target = next(t.dtype for t in (mean, std) if isinstance(t, Tensor))
    if not dtypes.is_floating(target):
        raise ParamDTypeError(f"normal(): mean and std must be floating-point tensors, got {target}")
    shape = np.broadcast_shapes(means.shape, stds.shape)
    array = (_normal(rng, shape, target) * stds + means).astype(target)
    return _finish("normal", array, requires_grad, device, out, pin_memory, layout)


# -- like another tensor ------------------------------------------------------------------------

def _like(input: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    if not hasattr(input, "shape") or not hasattr(input, "dtype"):
        raise ParamDTypeError(f"expected a Tensor as input, got {type(input).__name__}")
    return tuple(input.shape), dtypes.resolve(input.dtype if dtype is None else dtype)


def zeros_like(input: Tensor, *, dtype: Any = None, layout: Any = None, device: Any = None,
               requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    shape, target = _like(input, dtype)
    return _finish("zeros_like", np.zeros(shape, target), requires_grad, device, layout=layout)


def ones_like(input: Tensor, *, dtype: Any = None, layout: Any = None, device: Any = None,
              requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    shape, target = _like(input, dtype)
    return _finish("ones_like", np.ones(shape, target), requires_grad, device, layout=layout)


def empty_like(input: Tensor, *, dtype: Any = None, layout: Any = None, device: Any = None,
               requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    shape, target = _like(input, dtype)
    return _finish("empty_like", np.empty(shape, target), requires_grad, device, layout=layout)


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, layout: Any = None, device: Any = None,
              requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    """``input``'s shape filled with ``fill_value``, in ``input``'s dtype (2.7 in an int tensor
    is 2) unless ``dtype`` is given."""
    shape, target = _like(input, dtype)
    value = fill_value.data if isinstance(fill_value, Tensor) else fill_value
    return _finish("full_like", np.full(shape, value).astype(target), requires_grad, device, layout=layout)


def rand_like(input: Tensor, *, generator: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
              requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    shape, target = _like(input, dtype)
    target = _float_dtype("rand_like", target)
    return _finish("rand_like", _uniform(_generator(generator), shape, target), requires_grad, device, layout=layout)


def randn_like(input: Tensor, *, generator: Any = None, dtype: Any = None, layout: Any = None, device: Any = None,
               requires_grad: bool = False, memory_format: Any = None) -> Tensor:
    shape, target = _like(input, dtype)
    target = _float_dtype("randn_like", target)
    return _finish("randn_like", _normal(_generator(generator), shape, target), requires_grad, device, layout=layout)


def randint_like(input: Tensor, low: int = 0, high: int | None = None, *, generator: Any = None, dtype: Any = None,
                 layout: Any = None, device: Any = None, requires_grad: bool = False,
                 memory_format: Any = None) -> Tensor:
    """``randint_like(input, high)`` or ``randint_like(input, low, high)``, in ``input``'s dtype."""
    if high is None:
        low, high = 0, low
    shape, target = _like(input, dtype)
    array = _integers("randint_like", _generator(generator), low, high, shape).astype(target)
    return _finish("randint_like", array, requires_grad, device, layout=layout)


__all__ = ["as_tensor", "zeros", "ones", "empty", "full", "arange", "linspace", "eye", "rand", "randn", "randint",
           "randperm", "normal", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
           "randint_like"]
