"""The ops that pick, order or overwrite elements: gather, index_select, sort/topk, masked_fill,
and the writes behind the in-place ops (item assignment, fill_, copy_). Arguments arrive checked
(`tensor_methods`, `in_place`); each op's gradient goes to the elements it picked or kept."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParamError
from .function import Function

Array = NDArray[Any]


def _along(index: Array, dim: int) -> tuple[Any, ...]:
    """The full index tuple that picks ``index`` along ``dim`` (sparse grids elsewhere)."""
    grid: list[Any] = list(np.indices(index.shape, sparse=True))
    grid[dim] = index
    return tuple(grid)


class Gather(Function):
    """``out[i][j] = x[i][index[i][j]]`` (for ``dim`` 1); ``index`` may be smaller than ``x``
    outside ``dim``. Repeated indices accumulate their gradients."""

    def forward(self, x: Array, dim: int, index: Array) -> Array:
        self.shape, self.key = x.shape, _along(index, dim)
        return np.asarray(x[self.key])

    def backward(self, grad: Array) -> tuple[Array, None, None]:
        out = np.zeros(self.shape, grad.dtype)
        np.add.at(out, self.key, grad)
        return out, None, None


class IndexSelect(Function):
    """The slices ``index`` (1-D) along ``dim``, in that order."""

    def forward(self, x: Array, dim: int, index: Array) -> Array:
        self.shape = x.shape
        self.key: Any = (slice(None),) * dim + (index,)
        return np.take(x, index, axis=dim)

    def backward(self, grad: Array) -> tuple[Array, None, None]:
        out = np.zeros(self.shape, grad.dtype)
        np.add.at(out, self.key, grad)
        return out, None, None


def sort_order(x: Array, dim: int, descending: bool) -> Array:
    """A stable order along ``dim`` with NaN as the largest value, as torch sorts: ascending is
    NumPy's stable argsort; descending sorts the reversed array and reverses the result, so that
    equal elements keep their original order."""
    if not descending:
        return np.argsort(x, axis=dim, kind="stable")
    size = x.shape[dim]
    flipped = np.argsort(np.flip(x, axis=dim), axis=dim, kind="stable")
    return size - 1 - np.flip(flipped, axis=dim)


class Sort(Function):
    """The first ``k`` elements along ``dim`` in sorted order and their int64 indices (sort:
    k = the size; topk: ``descending`` picks the largest)."""

    non_differentiable_outputs = frozenset({1})

    def forward(self, x: Array, dim: int, descending: bool, k: int) -> tuple[Array, Array]:
        flat = x.reshape(1) if x.ndim == 0 else x
        order = sort_order(flat, dim, descending)
        if k < flat.shape[dim]:
            order = np.take(order, np.arange(k), axis=dim)
        self.shape, self.dim, self.order = x.shape, dim, order
        values = np.take_along_axis(flat, order, axis=dim)
        if x.ndim == 0:
            return values.reshape(()), order.reshape(()).astype(np.int64)
        return values, order.astype(np.int64)

    def backward(self, grad: Array, _: Any) -> tuple[Array, None, None, None]:
        out = np.zeros(self.shape if self.shape else (1,), grad.dtype)
        np.put_along_axis(out, self.order, grad.reshape(self.order.shape), axis=self.dim)
        return out.reshape(self.shape), None, None, None


class MaskedFill(Function):
    """``value`` where ``mask`` (broadcast) is true, ``x`` elsewhere, in ``x``'s dtype; ``value``
    (a number or a 0-d tensor) gets the gradient of the filled elements."""

    def forward(self, x: Array, mask: Array, value: Any) -> Array:
        self.mask = mask
        return np.asarray(np.where(mask, np.asarray(value).astype(x.dtype), x))

    def backward(self, grad: Array) -> tuple[Array, None, Array | None]:
        mask = np.broadcast_to(self.mask, grad.shape)
        grad_value = np.sum(grad, where=mask) if self.needs_input_grad[2] else None
        return np.where(mask, 0, grad), None, grad_value


class IndexPut(Function):
    """``x`` with ``x[key] = value``: the gradient of ``x`` is zero at ``key``, and ``value`` gets
    that of ``x[key]`` (summed over its broadcast)."""

    def forward(self, x: Array, key: Any, value: Any) -> Array:
        out = np.array(x, copy=True)
        try:
            out[key] = value
        except ValueError as e:
            raise InvalidParamError(f"item assignment: {e}") from None
        self.key = key
        return out

    def backward(self, grad: Array) -> tuple[Array | None, None, Array | None]:
        grad_x = None
        if self.needs_input_grad[0]:
            grad_x = np.array(grad, copy=True)
            grad_x[self.key] = 0
        return grad_x, None, np.asarray(grad[self.key]) if self.needs_input_grad[2] else None


class Fill(Function):
    """``x`` filled with ``value`` (a number or a 0-d tensor, which gets the summed gradient)."""

    def forward(self, x: Array, value: Any) -> Array:
        return np.full(x.shape, value, dtype=x.dtype)

    def backward(self, grad: Array) -> tuple[Array, Array | None]:
        return np.zeros_like(grad), np.sum(grad) if self.needs_input_grad[1] else None


class Copy(Function):
    """``src`` broadcast to ``x``'s shape and cast to its dtype (``copy_``): ``src`` gets the
    gradient, ``x`` none."""

    def forward(self, x: Array, src: Array) -> Array:
        return np.array(np.broadcast_to(src, x.shape), dtype=x.dtype)

    def backward(self, grad: Array) -> tuple[Array, Array]:
        return np.zeros_like(grad), grad


__all__ = ["Gather", "IndexSelect", "Sort", "MaskedFill", "IndexPut", "Fill", "Copy", "sort_order"]
