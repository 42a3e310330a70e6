"""Ops that pick elements, one `Function` each: ``where``, ``maximum``/``minimum``, ``clamp`` with
tensor bounds, and the values of ``sort``/``topk`` (taken along a dimension at given indices).
Their gradients go to the elements picked, as torch's do."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParamError
from .function import Function

Array = NDArray[Any]


def _broadcast_error(op: str, *arrays: Any) -> InvalidParamError:
    shapes = " and ".join(str(np.shape(a)) for a in arrays)
    return InvalidParamError(f"{op}: shapes {shapes} do not broadcast together (trailing dimensions must be equal "
                             "or 1)")


class Where(Function):
    """``where(condition, input, other)``: the gradient goes to ``input`` where the condition
    holds and to ``other`` elsewhere; the condition is a constant bool array."""

    def forward(self, condition: Array, a: Any, b: Any) -> Array:
        try:
            out: Array = np.where(condition, a, b)
        except ValueError as e:
            raise _broadcast_error("where", condition, a, b) from e
        self.save_for_backward(condition)
        return out

    def backward(self, grad: Array) -> tuple[None, Array | None, Array | None]:
        (condition,) = self.saved_tensors
        zero = np.zeros((), grad.dtype)
        return (None, np.where(condition, grad, zero) if self.needs_input_grad[1] else None,
                np.where(condition, zero, grad) if self.needs_input_grad[2] else None)


class _Extremum(Function):
    """Elementwise ``maximum``/``minimum``: the gradient goes to the operand picked, half to each
    where they are equal (torch's rule); NaN propagates."""

    ufunc: Any

    def forward(self, a: Any, b: Any) -> Array:
        try:
            out: Array = self.ufunc(a, b)
        except ValueError as e:
            raise _broadcast_error(self.ufunc.__name__, a, b) from e
        self.save_for_backward(a, b)
        return out

    def backward(self, grad: Array) -> tuple[Array | None, Array | None]:
        a, b = self.saved_tensors
        larger = self.ufunc is np.maximum
        share = np.where(a == b, grad / 2, grad)
        zero = np.zeros((), grad.dtype)
        # Where a NaN is compared, neither loses: both get the gradient, as in torch.
        return (np.where(a < b if larger else a > b, zero, share) if self.needs_input_grad[0] else None,
                np.where(a > b if larger else a < b, zero, share) if self.needs_input_grad[1] else None)


class Maximum(_Extremum):
    ufunc = np.maximum


class Minimum(_Extremum):
    ufunc = np.minimum


class ClampTensor(Function):
    """``clamp(input, min, max)`` with tensor bounds (either may be None): ``min(max(input, min),
    max)``, with torch's gradients: ``input``'s where ``min <= input <= max``, ``min``'s where
    ``input < min < max``, ``max``'s where ``input > max`` or ``max < min``."""

    def forward(self, x: Array, low: Any, high: Any) -> Array:
        inside = np.ones((), bool)
        to_low = to_high = None
        try:
            out = x if low is None else np.maximum(x, low)
            out = np.asarray(out if high is None else np.minimum(out, high))
            if low is not None:
                inside = inside & (x >= low)
                to_low = (x < low) if high is None else (x < low) & (low < high)
            if high is not None:
                inside = inside & (x <= high)
                to_high = (x > high) if low is None else (x > high) | (high < low)
        except ValueError as e:
            raise _broadcast_error("clamp", *(a for a in (x, low, high) if a is not None)) from e
        self.save_for_backward(inside, to_low, to_high)
        return out

    def backward(self, grad: Array) -> tuple[Array, Array | None, Array | None]:
        inside, to_low, to_high = self.saved_tensors
        zero = np.zeros((), grad.dtype)
        return (np.where(inside, grad, zero),
                np.where(to_low, grad, zero) if self.needs_input_grad[1] else None,
                np.where(to_high, grad, zero) if self.needs_input_grad[2] else None)


class TakeAlong(Function):
    """``x``'s values at ``indices`` along ``dim`` (``sort``'s and ``topk``'s values); each index
    appears at most once along the dimension, so the gradient is put back, not added."""

    def forward(self, x: Array, indices: Array, dim: int) -> Array:
        self.shape = x.shape
        self.save_for_backward(indices)
        self.dim = dim
        return np.take_along_axis(x, indices, axis=dim)

    def backward(self, grad: Array) -> tuple[Array, None, None]:
        (indices,) = self.saved_tensors
        out = np.zeros(self.shape, grad.dtype)
        np.put_along_axis(out, indices, grad, axis=self.dim)
        return out, None, None


__all__ = ["Where", "Maximum", "Minimum", "ClampTensor", "TakeAlong"]
