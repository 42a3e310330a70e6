"""The losses: `NLLLoss`, `CrossEntropyLoss`, `MSELoss`."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ...autograd.tensor import Tensor
from .. import functional as F
from .module import Module


class _WeightedLoss(Module):
    def __init__(self, weight: Tensor | ArrayLike | None, ignore_index: int, reduction: str) -> None:
        super().__init__()
        self.register_buffer("weight", None if weight is None else np.asarray(
            weight.data if isinstance(weight, Tensor) else weight))
        self.ignore_index, self.reduction = ignore_index, reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class NLLLoss(_WeightedLoss):
    """``F.nll_loss`` on log-probabilities (pair it with ``LogSoftmax``)."""

    def __init__(self, weight: Tensor | ArrayLike | None = None, size_average: Any = None, ignore_index: int = -100,
                 reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(weight, ignore_index, F._legacy_reduction(size_average, reduce, reduction))

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """``F.cross_entropy``: log_softmax and nll_loss on logits, with optional label smoothing."""

    def __init__(self, weight: Tensor | ArrayLike | None = None, size_average: Any = None, ignore_index: int = -100,
                 reduce: Any = None, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(weight, ignore_index, F._legacy_reduction(size_average, reduce, reduction))
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)


class MSELoss(Module):
    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = F._legacy_reduction(size_average, reduce, reduction)

    def forward(self, input: Tensor, target: Tensor | ArrayLike) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


__all__ = ["NLLLoss", "CrossEntropyLoss", "MSELoss"]
