"""`Conv2d`."""

from __future__ import annotations

from typing import Any

from numpy.typing import DTypeLike

from ...autograd.tensor import Tensor
from ...errors import InvalidHyperparameterError
from .. import functional as F
from ..functional import IntOrPair, _pair
from ._util import empty_parameter, float_dtype, positive, reset_weight_and_bias
from .module import Module


class Conv2d(Module):
    """2-D convolution over (N, C, H, W) inputs; weight (out_channels, in_channels / groups,
    kH, kW), initialised as torch's. ``padding`` may be ``"same"`` or ``"valid"``; only
    ``padding_mode="zeros"`` is supported."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair | str = 0, dilation: IntOrPair = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device: Any = None, dtype: DTypeLike | None = None) -> None:
        super().__init__()
        self.in_channels = positive("in_channels", in_channels)
        self.out_channels = positive("out_channels", out_channels)
        self.groups = positive("groups", groups)
        if in_channels % groups:
            raise InvalidHyperparameterError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise InvalidHyperparameterError("out_channels must be divisible by groups")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.dilation = _pair(dilation, "dilation")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise InvalidHyperparameterError(f"Invalid padding string {padding!r}, should be one of "
                                                 "{'valid', 'same'}")
            if padding == "same" and self.stride != (1, 1):
                raise InvalidHyperparameterError("padding='same' is not supported for strided convolutions")
            self.padding: tuple[int, int] | str = padding
        else:
            self.padding = _pair(padding, "padding", minimum=0)
        if padding_mode != "zeros":
            raise InvalidHyperparameterError(f"padding_mode={padding_mode!r} is not supported by optrs; use 'zeros'")
        self.padding_mode = padding_mode
        resolved = float_dtype(dtype, device)
        self.weight = empty_parameter((out_channels, in_channels // groups, *self.kernel_size), resolved)
        if bias:
            self.bias = empty_parameter((out_channels,), resolved)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input: Tensor) -> Tensor:
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


__all__ = ["Conv2d"]
