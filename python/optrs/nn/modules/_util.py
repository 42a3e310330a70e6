"""Helpers shared by the layers: new parameters in torch's default dtype and the init they get."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from ...autograd import devices, dtypes
from ...errors import InvalidHyperparameterError, ParamDTypeError
from ...parameter import Parameter
from .. import init


def float_dtype(dtype: DTypeLike | None, device: Any = None) -> np.dtype[Any]:
    """``dtype`` (the default dtype, float32 unless ``optrs.set_default_dtype`` changed it, when
    None), which must be a float type, for a layer on ``device``, which must be the CPU."""
    devices.check(device, f"device={device!r}")
    resolved = dtypes.resolve_or_default(dtype)
    if not dtypes.is_floating(resolved):
        raise ParamDTypeError(f"dtype must be a floating-point type (float32 or float64), got {resolved}")
    return resolved


def empty_parameter(shape: tuple[int, ...], dtype: np.dtype[Any]) -> Parameter:
    return Parameter(np.empty(shape, dtype))


def positive(name: str, value: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise InvalidHyperparameterError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def reset_weight_and_bias(weight: Parameter, bias: Parameter | None) -> None:
    """torch's Linear/Conv initialisation: kaiming_uniform_ with a=sqrt(5) for the weight (which
    is U(-1/sqrt(fan_in), 1/sqrt(fan_in))), and the bias uniform in the same bounds."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)
