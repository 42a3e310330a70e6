"""`BatchNorm2d` and `LayerNorm`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from ...autograd.tensor import Tensor
from ...errors import InvalidParamError
from ...parameter import Parameter
from .. import functional as F
from ._util import float_dtype, positive
from .module import Module


class BatchNorm2d(Module):
    """Per-channel normalisation of (N, C, H, W) inputs. In training it uses the batch's
    statistics and updates ``running_mean``/``running_var`` (unbiased variance) with
    ``momentum`` (None: a cumulative average over ``num_batches_tracked``); in eval mode, or
    without ``track_running_stats``, as torch."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device: Any = None, dtype: DTypeLike | None = None) -> None:
        super().__init__()
        self.num_features = positive("num_features", num_features)
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        resolved = float_dtype(dtype, device)
        if affine:
            self.weight = Parameter(np.ones(num_features, resolved))
            self.bias = Parameter(np.zeros(num_features, resolved))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, resolved))
            self.register_buffer("running_var", np.ones(num_features, resolved))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim != 4:
            raise InvalidParamError(f"BatchNorm2d expects a 4-D input (N, C, H, W), got shape {input.shape}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data[...] += 1
            if self.momentum is None:
                factor = 1.0 / int(self.num_batches_tracked.data)
        use_batch_stats = self.training or self.running_mean is None
        # Running statistics are updated only while training (torch's rule).
        tracked = not use_batch_stats or self.training
        return F.batch_norm(input, self.running_mean if tracked else None, self.running_var if tracked else None,
                            self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class LayerNorm(Module):
    """Normalisation over the trailing ``normalized_shape`` dimensions, with an elementwise
    affine transform (weight ones, bias zeros)."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device: Any = None, dtype: DTypeLike | None = None) -> None:
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape = tuple(positive("normalized_shape", s) for s in shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        resolved = float_dtype(dtype, device)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, resolved))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, resolved))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


__all__ = ["BatchNorm2d", "LayerNorm"]
