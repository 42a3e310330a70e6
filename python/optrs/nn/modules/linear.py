"""`Linear` and `Identity`."""

from __future__ import annotations

from typing import Any

from numpy.typing import DTypeLike

from ...autograd.tensor import Tensor
from .. import functional as F
from ._util import empty_parameter, float_dtype, positive, reset_weight_and_bias
from .module import Module


class Identity(Module):
    """Returns its input (arguments are accepted and ignored, as torch's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Linear(Module):
    """``y = x @ weight.T + bias``; weight (out_features, in_features), initialised as torch's."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                 dtype: DTypeLike | None = None) -> None:
        super().__init__()
        self.in_features = positive("in_features", in_features)
        self.out_features = positive("out_features", out_features)
        resolved = float_dtype(dtype, device)
        self.weight = empty_parameter((out_features, in_features), resolved)
        if bias:
            self.bias = empty_parameter((out_features,), resolved)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


__all__ = ["Linear", "Identity"]
