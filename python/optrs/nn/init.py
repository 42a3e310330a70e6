"""torch.nn.init: in-place initialisations of a Tensor's (or an ndarray's) data, with torch's
formulas, drawn from ``optrs.manual_seed``'s generator unless one is passed. They run outside
the graph (as under torch's ``no_grad``) and return their argument."""

from __future__ import annotations

import math
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from .. import random as _random
from ..autograd.tensor import Tensor
from ..errors import InvalidHyperparameterError, InvalidParamError

T = TypeVar("T", Tensor, NDArray[Any])

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for ``nonlinearity`` (torch's table)."""
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise InvalidHyperparameterError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise InvalidHyperparameterError(f"Unsupported nonlinearity {nonlinearity!r}")


def _array(tensor: Tensor | NDArray[Any]) -> NDArray[Any]:
    array = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise InvalidParamError(f"tensor must be a floating-point Tensor or ndarray, got "
                                f"{getattr(array, 'dtype', type(array).__name__)}")
    return array


def _generator(generator: np.random.Generator | None) -> np.random.Generator:
    return _random.get_generator() if generator is None else generator


def _calculate_fan_in_and_fan_out(tensor: Tensor | NDArray[Any]) -> tuple[int, int]:
    """(fan_in, fan_out): size(1) and size(0) times the receptive field (the rest)."""
    shape = _array(tensor).shape
    if len(shape) < 2:
        raise InvalidParamError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor | NDArray[Any], mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise InvalidHyperparameterError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: T, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None) -> T:
    """Fills with U(a, b)."""
    array = _array(tensor)
    array[...] = _generator(generator).uniform(a, b, array.shape)
    return tensor


def normal_(tensor: T, mean: float = 0.0, std: float = 1.0, generator: np.random.Generator | None = None) -> T:
    """Fills with N(mean, std**2)."""
    array = _array(tensor)
    array[...] = _generator(generator).normal(mean, std, array.shape)
    return tensor


def trunc_normal_(tensor: T, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: np.random.Generator | None = None) -> T:
    """Fills with N(mean, std**2) truncated to [a, b] (redrawing what falls outside)."""
    array = _array(tensor)
    rng = _generator(generator)
    values = rng.normal(mean, std, array.size)
    outside = (values < a) | (values > b)
    while outside.any():
        values[outside] = rng.normal(mean, std, int(outside.sum()))
        outside = (values < a) | (values > b)
    array[...] = values.reshape(array.shape)
    return tensor


def constant_(tensor: T, val: float) -> T:
    _array(tensor)[...] = val
    return tensor


def ones_(tensor: T) -> T:
    return constant_(tensor, 1.0)


def zeros_(tensor: T) -> T:
    return constant_(tensor, 0.0)


def xavier_uniform_(tensor: T, gain: float = 1.0, generator: np.random.Generator | None = None) -> T:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: T, gain: float = 1.0, generator: np.random.Generator | None = None) -> T:
    """N(0, std**2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)), generator)


def _kaiming_std(tensor: Tensor | NDArray[Any], a: float, mode: str, nonlinearity: str) -> float:
    fan = _calculate_correct_fan(tensor, mode)
    if fan == 0:
        raise InvalidParamError("Initializing zero-element tensors is a no-op")
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: T, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator: np.random.Generator | None = None) -> T:
    """U(-b, b) with b = gain * sqrt(3 / fan) (He et al. 2015). Linear and Conv2d weights use
    ``a=sqrt(5)``, which gives b = 1 / sqrt(fan_in)."""
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: T, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator: np.random.Generator | None = None) -> T:
    """N(0, std**2) with std = gain / sqrt(fan)."""
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)


__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "xavier_uniform_",
    "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
]
