"""The tensor ops: elementwise arithmetic and functions, reductions, matmul, shape changes and
indexing, one `Function` each. Gradients of broadcast inputs are returned at the broadcast shape;
the engine sums them back (and casts them to the input's dtype)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ..errors import InvalidParamError
from .function import Function
from .tensor import Tensor, normalize_dim

Array = NDArray[Any]


def _shape(value: Any) -> tuple[int, ...]:
    return tuple(np.shape(value))


class _Binary(Function):
    """An elementwise op of two operands, either of which may be a constant (a Python scalar is
    weak, NEP 50); broadcasting errors name both shapes. It saves the operands its backward
    reads, as torch does (so changing another one in place is no error)."""

    ufunc: Any

    def forward(self, a: Any, b: Any) -> Array:
        try:
            out: Array = self.ufunc(a, b)
        except ValueError as e:
            raise InvalidParamError(f"{self.ufunc.__name__}: shapes {_shape(a)} and {_shape(b)} do not broadcast "
                                    "together (trailing dimensions must be equal or 1)") from e
        self.save_operands(a, b)
        return out

    def save_operands(self, a: Any, b: Any) -> None:
        self.save_for_backward(a, b)


class Add(_Binary):
    ufunc = np.add

    def save_operands(self, a: Any, b: Any) -> None:
        pass

    def backward(self, grad: Array) -> tuple[Array, Array]:
        return grad, grad


class Sub(_Binary):
    ufunc = np.subtract

    def save_operands(self, a: Any, b: Any) -> None:
        pass

    def backward(self, grad: Array) -> tuple[Array, Array | None]:
        return grad, -grad if self.needs_input_grad[1] else None


class Mul(_Binary):
    ufunc = np.multiply

    def save_operands(self, a: Any, b: Any) -> None:
        need_a, need_b = self.needs_input_grad
        self.save_for_backward(a if need_b else None, b if need_a else None)

    def backward(self, grad: Array) -> tuple[Array | None, Array | None]:
        a, b = self.saved_tensors
        return (grad * b if self.needs_input_grad[0] else None,
                grad * a if self.needs_input_grad[1] else None)


class Div(_Binary):
    ufunc = np.true_divide

    def save_operands(self, a: Any, b: Any) -> None:
        self.save_for_backward(a if self.needs_input_grad[1] else None, b)

    def backward(self, grad: Array) -> tuple[Array | None, Array | None]:
        a, b = self.saved_tensors
        return (grad / b if self.needs_input_grad[0] else None,
                -grad * a / (b * b) if self.needs_input_grad[1] else None)


class Pow(_Binary):
    ufunc = np.power

    def backward(self, grad: Array) -> tuple[Array | None, Array | None]:
        base, exponent = self.saved_tensors
        grad_base = grad_exponent = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.needs_input_grad[0]:
                # torch: a zero exponent gives a zero gradient, even where base ** -1 is infinite.
                grad_base = np.where(exponent == 0, 0, grad * exponent * np.power(base, exponent - 1))
            if self.needs_input_grad[1]:
                term = grad * np.power(base, exponent) * np.log(base)
                grad_exponent = np.where((base == 0) & (exponent >= 0), 0, term)
        return grad_base, grad_exponent


class MatMul(Function):
    """``a @ b`` with NumPy's rules (1-D operands, broadcast batch dimensions), through BLAS."""

    def forward(self, a: Any, b: Any) -> Array:
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim == 0 or b.ndim == 0:
            raise InvalidParamError(f"matmul: both operands need at least one dimension, got shapes {a.shape} "
                                    f"and {b.shape}; use * for scalars")
        inner = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if a.shape[-1] != inner:
            raise InvalidParamError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied: the last "
                                    f"dimension of the first ({a.shape[-1]}) must equal the "
                                    f"{'second to last' if b.ndim > 1 else 'only'} dimension of the second ({inner})")
        try:
            out: Array = a @ b
        except ValueError as e:
            raise InvalidParamError(f"matmul: the batch dimensions of shapes {a.shape} and {b.shape} do not "
                                    "broadcast together") from e
        self.save_for_backward(a, b)
        return out

    def backward(self, grad: Array) -> tuple[Array | None, Array | None]:
        a, b = self.saved_tensors
        # 1-D operands as matrices (a row, b a column), the gradient with their axes restored.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2 if b.ndim > 1 else -1)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            grad_a = g2 @ np.swapaxes(b2, -1, -2)
            grad_a = grad_a[..., 0, :] if a.ndim == 1 else grad_a
        if self.needs_input_grad[1]:
            grad_b = np.swapaxes(a2, -1, -2) @ g2
            grad_b = grad_b[..., 0] if b.ndim == 1 else grad_b
        return grad_a, grad_b


# -- elementwise functions ----------------------------------------------------------------------

class Neg(Function):
    def forward(self, x: Array) -> Array:
        return np.negative(x)

    def backward(self, grad: Array) -> Array:
        return -grad


class Exp(Function):
    def forward(self, x: Array) -> Array:
        y = np.exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, grad: Array) -> Array:
        (y,) = self.saved_tensors
        return grad * y


class Log(Function):
    def forward(self, x: Array) -> Array:
        self.save_for_backward(x)
        return np.log(x)

    def backward(self, grad: Array) -> Array:
        (x,) = self.saved_tensors
        return grad / x


class Sqrt(Function):
    def forward(self, x: Array) -> Array:
        y = np.sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, grad: Array) -> Array:
        (y,) = self.saved_tensors
        return grad / (2 * y)


class Abs(Function):
    def forward(self, x: Array) -> Array:
        self.save_for_backward(x)
        return np.abs(x)

    def backward(self, grad: Array) -> Array:
        (x,) = self.saved_tensors
        return grad * np.sign(x)


class Sigmoid(Function):
    def forward(self, x: Array) -> Array:
        # exp of -|x| only, so nothing overflows and small results keep their relative precision.
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        self.save_for_backward(y)
        return y

    def backward(self, grad: Array) -> Array:
        (y,) = self.saved_tensors
        return grad * y * (1 - y)


class Tanh(Function):
    def forward(self, x: Array) -> Array:
        y = np.tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, grad: Array) -> Array:
        (y,) = self.saved_tensors
        return grad * (1 - y * y)


class Clamp(Function):
    def forward(self, x: Array, low: float | None, high: float | None) -> Array:
        inside = np.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        self.save_for_backward(inside)
        return np.clip(x, low, high)

    def backward(self, grad: Array) -> tuple[Array, None, None]:
        (inside,) = self.saved_tensors
        return grad * inside, None, None


class Cast(Function):
    def forward(self, x: Array, dtype: DTypeLike) -> Array:
        return x.astype(dtype)

    def backward(self, grad: Array) -> tuple[Array, None]:
        return grad, None  # the engine casts it back to the input's dtype


class Clone(Function):
    def forward(self, x: Array) -> Array:
        return np.array(x, order="C", copy=True)

    def backward(self, grad: Array) -> Array:
        return grad


# -- reductions ---------------------------------------------------------------------------------

def _spread(grad: Array, shape: tuple[int, ...], dims: tuple[int, ...] | None, keepdim: bool) -> Array:
    """A reduction's gradient broadcast back over the reduced dimensions (a read-only view)."""
    if dims is None:
        return np.broadcast_to(np.reshape(grad, (1,) * len(shape)), shape)
    if not keepdim:
        grad = np.expand_dims(grad, dims)
    return np.broadcast_to(grad, shape)


class Sum(Function):
    def forward(self, x: Array, dims: tuple[int, ...] | None, keepdim: bool) -> Array:
        self.shape, self.dims, self.keepdim = x.shape, dims, keepdim
        return np.sum(x, axis=dims, keepdims=keepdim)

    def backward(self, grad: Array) -> tuple[Array, None, None]:
        return _spread(grad, self.shape, self.dims, self.keepdim), None, None


class Mean(Function):
    def forward(self, x: Array, dims: tuple[int, ...] | None, keepdim: bool) -> Array:
        self.shape, self.dims, self.keepdim = x.shape, dims, keepdim
        self.count = x.size if dims is None else int(np.prod([x.shape[d] for d in dims]))
        return np.mean(x, axis=dims, keepdims=keepdim)

    def backward(self, grad: Array) -> tuple[Array, None, None]:
        return _spread(grad / self.count, self.shape, self.dims, self.keepdim), None, None


class Extreme(Function):
    """The max (or min) of all elements; tied elements share the gradient evenly, as in torch."""

    def forward(self, x: Array, largest: bool) -> Array:
        if x.size == 0:
            raise InvalidParamError(f"{'max' if largest else 'min'}() of an empty tensor (shape {x.shape}); "
                                    "pass a dim or check the input")
        y = np.max(x) if largest else np.min(x)
        self.save_for_backward(x, y)
        return np.asarray(y)

    def backward(self, grad: Array) -> tuple[Array, None]:
        x, y = self.saved_tensors
        mask = np.isnan(x) if np.isnan(y) else x == y
        return mask * (grad / np.count_nonzero(mask)), None


class ExtremeAlong(Function):
    """``max(dim)``/``min(dim)``: values and int64 indices; the gradient goes to the index."""

    non_differentiable_outputs = frozenset({1})

    def forward(self, x: Array, dim: int, keepdim: bool, largest: bool) -> tuple[Array, Array]:
        if x.shape and x.shape[dim] == 0:
            raise InvalidParamError(f"{'max' if largest else 'min'}(dim={dim}) of a tensor of shape {x.shape}, "
                                    "which is empty along that dimension")
        index = (np.argmax if largest else np.argmin)(x, axis=dim, keepdims=True)
        values = np.take_along_axis(x, index, axis=dim)
        self.save_for_backward(index)
        self.shape, self.dim, self.keepdim = x.shape, dim, keepdim
        if not keepdim:
            values, index = values.squeeze(dim), index.squeeze(dim)
        return values, index.astype(np.int64)

    def backward(self, grad: Array, _: Any) -> tuple[Array, None, None, None]:
        (index,) = self.saved_tensors
        out = np.zeros(self.shape, grad.dtype)
        np.put_along_axis(out, index, grad if self.keepdim else np.expand_dims(grad, self.dim), axis=self.dim)
        return out, None, None, None


class Norm(Function):
    """The vector ``p``-norm over ``dims`` (all when None), as torch's ``Tensor.norm``/
    ``linalg.vector_norm``: p = inf and -inf are the largest and smallest ``|x|`` (tied elements
    share the gradient), p = 0 counts the non-zero elements; where the norm is 0 the gradient is 0."""

    def forward(self, x: Array, p: float, dims: tuple[int, ...] | None, keepdim: bool) -> Array:
        magnitude = np.abs(x)
        if p == np.inf or p == -np.inf:
            out = (np.max if p > 0 else np.min)(magnitude, axis=dims, keepdims=True)
        elif p == 0:
            out = np.sum(magnitude != 0, axis=dims, keepdims=True).astype(x.dtype)
        elif p == 1:
            out = np.sum(magnitude, axis=dims, keepdims=True)
        elif p == 2:
            out = np.sqrt(np.sum(magnitude * magnitude, axis=dims, keepdims=True))
        else:
            out = np.sum(magnitude**p, axis=dims, keepdims=True) ** (1 / p)
        self.save_for_backward(x, out)
        self.p, self.dims, self.keepdim = p, dims, keepdim
        return out if keepdim else np.reshape(out, _reduced_shape(x.shape, dims))

    def backward(self, grad: Array) -> tuple[Array, None, None, None]:
        x, norm = self.saved_tensors
        p = self.p
        grad = np.reshape(grad, norm.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == np.inf or p == -np.inf:
                hit = np.abs(x) == norm
                scale = np.sign(x) * hit / np.sum(hit, axis=self.dims, keepdims=True)
            elif p == 0:
                scale = np.zeros_like(x)
            elif p == 1:
                scale = np.sign(x)
            elif p == 2:
                scale = np.where(norm == 0, 0, x / norm)
            else:
                scale = np.where((norm == 0) | (x == 0), 0, np.sign(x) * np.abs(x) ** (p - 1) / norm ** (p - 1))
        return grad * scale, None, None, None


def _reduced_shape(shape: tuple[int, ...], dims: tuple[int, ...] | None) -> tuple[int, ...]:
    return () if dims is None else tuple(s for i, s in enumerate(shape) if i not in dims)


# -- shape --------------------------------------------------------------------------------------

class Reshape(Function):
    may_view = True

    def forward(self, x: Array, shape: tuple[int, ...], view: bool) -> Array:
        self.shape = x.shape
        try:
            out = x.reshape(shape)
        except ValueError as e:
            raise InvalidParamError(f"cannot reshape a tensor of shape {x.shape} ({x.size} elements) to "
                                    f"{shape}") from e
        if view and out.size and not np.may_share_memory(out, x):
            raise InvalidParamError(f"view{shape} of a tensor of shape {x.shape} whose layout (strides "
                                    f"{x.strides}) has no such view; use .reshape(...) instead, which copies")
        return out

    def backward(self, grad: Array) -> tuple[Array, None, None]:
        return grad.reshape(self.shape), None, None


class Permute(Function):
    may_view = True

    def forward(self, x: Array, order: tuple[int, ...]) -> Array:
        self.inverse = tuple(np.argsort(order))
        return x.transpose(order)

    def backward(self, grad: Array) -> tuple[Array, None]:
        return grad.transpose(self.inverse), None


class Expand(Function):
    may_view = True

    def forward(self, x: Array, shape: tuple[int, ...]) -> Array:
        try:
            return np.broadcast_to(x, shape)
        except ValueError as e:
            raise InvalidParamError(f"expand: a tensor of shape {x.shape} cannot be expanded to {shape} (only "
                                    "dimensions of size 1 can grow)") from e

    def backward(self, grad: Array) -> tuple[Array, None]:
        return grad, None  # summed back to the input's shape by the engine


class Repeat(Function):
    """torch's ``repeat``: the tensor tiled ``repeats`` times along each dimension (leading new
    dimensions where there are more repeats than dimensions); the gradient sums the tiles."""

    def forward(self, x: Array, repeats: tuple[int, ...]) -> Array:
        self.shape = (1,) * (len(repeats) - x.ndim) + x.shape
        self.input_shape, self.repeats = x.shape, repeats
        return np.tile(x.reshape(self.shape), repeats)

    def backward(self, grad: Array) -> tuple[Array, None]:
        tiles = [n for pair in zip(self.repeats, self.shape) for n in pair]
        summed = grad.reshape(tiles).sum(axis=tuple(range(0, len(tiles), 2)))
        return summed.reshape(self.input_shape), None


def _is_basic(key: Any) -> bool:
    """True for keys of ints, slices, None and Ellipsis only (no element is picked twice)."""
    parts = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice)) for k in parts)


class Index(Function):
    """``x[key]``: basic indexing (a view) and advanced indexing (integer and boolean arrays);
    repeated indices accumulate their gradients."""

    may_view = True

    def forward(self, x: Array, key: Any) -> Array:
        parts = key if isinstance(key, tuple) else (key,)
        if _is_basic(key) and not any(k is Ellipsis for k in parts):
            key = (*parts, Ellipsis)  # x[0, ...] is a 0-d view (as torch's x[0]), x[0] a copy
        self.shape, self.key = x.shape, key
        try:
            return np.asarray(x[key])
        except IndexError as e:
            raise IndexError(f"{e} (indexing a tensor of shape {x.shape})") from None

    def backward(self, grad: Array) -> tuple[Array, None]:
        out = np.zeros(self.shape, grad.dtype)
        if _is_basic(self.key):
            out[self.key] = grad
        else:
            np.add.at(out, self.key, grad)
        return out, None


class Cat(Function):
    def forward(self, *arrays: Array, dim: int) -> Array:
        self.dim = dim
        self.sizes = [a.shape[dim] for a in arrays]
        try:
            return np.concatenate(arrays, axis=dim)
        except ValueError as e:
            raise InvalidParamError(f"cat: shapes {[a.shape for a in arrays]} differ outside dimension {dim}") from e

    def backward(self, grad: Array) -> tuple[Array, ...]:
        return tuple(np.split(grad, np.cumsum(self.sizes)[:-1], axis=self.dim))


class Stack(Function):
    def forward(self, *arrays: Array, dim: int) -> Array:
        self.dim = dim
        try:
            return np.stack(arrays, axis=dim)
        except ValueError as e:
            raise InvalidParamError(f"stack: all shapes must be equal, got {[a.shape for a in arrays]}") from e

    def backward(self, grad: Array) -> tuple[Array, ...]:
        return tuple(np.moveaxis(grad, self.dim, 0))


class Pad(Function):
    """Constant padding; ``widths`` are NumPy's ((before, after) per dimension)."""

    def forward(self, x: Array, widths: tuple[tuple[int, int], ...], value: float) -> Array:
        self.crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return np.pad(x, widths, constant_values=value)

    def backward(self, grad: Array) -> tuple[Array, None, None]:
        return grad[self.crop], None, None


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Joins tensors along an existing dimension (torch.cat)."""
    if not tensors:
        raise InvalidParamError("cat needs at least one tensor")
    return Cat.apply(*tensors, dim=normalize_dim(dim, tensors[0].ndim))


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Joins tensors of one shape along a new dimension (torch.stack)."""
    if not tensors:
        raise InvalidParamError("stack needs at least one tensor")
    return Stack.apply(*tensors, dim=normalize_dim(dim, tensors[0].ndim + 1))
