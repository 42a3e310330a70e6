"""The autograd ops behind `optrs.nn.functional` (which validates arguments and calls these).

The heavy ops (conv2d, the pools, softmax and log_softmax, the losses, relu) compute only through
`kernels`, whose arrays must be C-contiguous: these classes make them so and reshape to and from
the kernels' layouts. linear multiplies with NumPy's ``@`` (BLAS); batch_norm, layer_norm and
embedding are short NumPy formulas.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import kernels as _kernels
from .function import Function

Array = NDArray[Any]
Pair = tuple[int, int]


def _c(a: Array) -> Array:
    """``a`` C-contiguous (0-d arrays stay 0-d, unlike np.ascontiguousarray's)."""
    return a if a.flags.c_contiguous else np.array(a, order="C")


class Conv2d(Function):
    def forward(self, x: Array, weight: Array, bias: Array | None, stride: Pair, padding: Pair, dilation: Pair,
                groups: int) -> Array:
        x, weight = _c(x), _c(weight)
        self.save_for_backward(x, weight)
        self.options = (stride, padding, dilation, groups)
        return _kernels.conv2d(x, weight, None if bias is None else _c(bias), stride, padding, dilation, groups)

    def backward(self, grad: Array) -> tuple[Any, ...]:
        x, weight = self.saved_tensors
        need_x, need_w, need_b = self.needs_input_grad[:3]
        grads = _kernels.conv2d_backward(x, weight, _c(grad), *self.options, need_x, need_w, need_b)
        return (*grads, None, None, None, None)


class MaxPool2d(Function):
    non_differentiable_outputs = frozenset({1})

    def forward(self, x: Array, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair,
                ceil_mode: bool) -> tuple[Array, Array]:
        y, indices = _kernels.max_pool2d(_c(x), kernel_size, stride, padding, dilation, ceil_mode)
        self.save_for_backward(indices)
        self.input_shape = x.shape
        return y, indices

    def backward(self, grad: Array, _: Any) -> tuple[Any, ...]:
        (indices,) = self.saved_tensors
        return _kernels.max_pool2d_backward(_c(grad), indices, self.input_shape), None, None, None, None, None


class AvgPool2d(Function):
    def forward(self, x: Array, kernel_size: Pair, stride: Pair, padding: Pair, ceil_mode: bool,
                count_include_pad: bool, divisor_override: int | None) -> Array:
        self.input_shape = x.shape
        self.options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        return _kernels.avg_pool2d(_c(x), *self.options)

    def backward(self, grad: Array) -> tuple[Any, ...]:
        return _kernels.avg_pool2d_backward(_c(grad), self.input_shape, *self.options), *(None,) * 6


def _to_rows(a: Array, dim: int) -> Array:
    """The kernels' (rows, classes) layout with ``dim`` as the classes."""
    moved = np.moveaxis(a.reshape(1) if a.ndim == 0 else a, dim, -1)
    return _c(moved).reshape(-1, moved.shape[-1])


def _from_rows(rows: Array, shape: tuple[int, ...], dim: int) -> Array:
    if not shape:
        return rows.reshape(())
    moved = list(shape)
    moved.append(moved.pop(dim))
    return np.moveaxis(rows.reshape(moved), -1, dim)


class LogSoftmax(Function):
    # Looked up at each call, so the kernels can be swapped (or wrapped by a profiler).
    kernel_name = "log_softmax"

    def forward(self, x: Array, dim: int) -> Array:
        self.shape, self.dim = x.shape, dim
        y = getattr(_kernels, self.kernel_name)(_to_rows(x, dim))
        self.save_for_backward(y)
        return _from_rows(y, x.shape, dim)

    def backward(self, grad: Array) -> tuple[Array, None]:
        (y,) = self.saved_tensors
        grad_rows = getattr(_kernels, self.kernel_name + "_backward")(_to_rows(grad, self.dim), y)
        return _from_rows(grad_rows, self.shape, self.dim), None


class Softmax(LogSoftmax):
    kernel_name = "softmax"


class NLLLoss(Function):
    """On (N, C) log-probabilities; ``weight`` and ``target`` are constants."""

    def forward(self, logp: Array, target: Array, weight: Array | None, ignore_index: int,
                reduction: str) -> Array:
        loss, self.total_weight = _kernels.nll_loss(_c(logp), target, weight, ignore_index, reduction)
        self.save_for_backward(target, weight)
        self.options = (ignore_index, reduction)
        self.classes = logp.shape[1]
        return loss

    def backward(self, grad: Array) -> tuple[Any, ...]:
        target, weight = self.saved_tensors
        ignore_index, reduction = self.options
        grad_logp = _kernels.nll_loss_backward(_c(grad), target, weight, ignore_index, reduction, self.total_weight,
                                               self.classes)
        return grad_logp, None, None, None, None


class CrossEntropy(Function):
    """log_softmax and nll_loss fused (with label smoothing), on (N, C) logits."""

    def forward(self, x: Array, target: Array, weight: Array | None, ignore_index: int, reduction: str,
                label_smoothing: float) -> Array:
        loss, softmax = _kernels.cross_entropy(_c(x), target, weight, ignore_index, reduction, label_smoothing)
        self.save_for_backward(softmax, target, weight)
        self.options = (ignore_index, reduction, label_smoothing)
        return loss

    def backward(self, grad: Array) -> tuple[Any, ...]:
        softmax, target, weight = self.saved_tensors
        grad_x = _kernels.cross_entropy_backward(_c(grad), softmax, target, weight, *self.options)
        return grad_x, None, None, None, None, None


class ReLU(Function):
    def forward(self, x: Array) -> Array:
        y = _kernels.relu(_c(x))
        self.save_for_backward(y)
        return y

    def backward(self, grad: Array) -> Array:
        (y,) = self.saved_tensors
        return _kernels.relu_backward(_c(grad), y)


class Linear(Function):
    """``x @ weight.T + bias`` for x of shape (*, in_features); the products are the Rust core's
    ``matmul`` (on optrs's pool), the bias added by NumPy."""

    def forward(self, x: Array, weight: Array, bias: Array | None) -> Array:
        self.save_for_backward(x, weight)
        rows = _c(x).reshape(-1, weight.shape[1])
        y = _kernels.matmul(rows, _c(weight), False, True)
        if bias is not None:
            y += bias
        return y.reshape(*x.shape[:-1], weight.shape[0])

    def backward(self, grad: Array) -> tuple[Array | None, Array | None, Array | None]:
        x, weight = self.saved_tensors
        need_x, need_w, need_b = self.needs_input_grad
        rows = _c(grad).reshape(-1, weight.shape[0])
        grad_x = _kernels.matmul(rows, _c(weight)).reshape(x.shape) if need_x else None
        grad_w = _kernels.matmul(rows, _c(x).reshape(-1, weight.shape[1]), True, False) if need_w else None
        return grad_x, grad_w, rows.sum(axis=0) if need_b else None


def _normalize(x: Array, axes: tuple[int, ...], eps: float) -> tuple[Array, Array, Array, Array]:
    """(x_hat, invstd, mean, biased variance) over ``axes``, the statistics with keepdims."""
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    invstd = 1 / np.sqrt(var + eps)
    return (x - mean) * invstd, invstd, mean, var


def _normalize_backward(grad_hat: Array, x_hat: Array, invstd: Array, axes: tuple[int, ...]) -> Array:
    """d(loss)/dx through x_hat = (x - mean(x)) / sqrt(var(x) + eps), the statistics over ``axes``."""
    count = int(np.prod([x_hat.shape[a] for a in axes]))
    return invstd / count * (count * grad_hat - grad_hat.sum(axis=axes, keepdims=True)
                             - x_hat * (grad_hat * x_hat).sum(axis=axes, keepdims=True))


def _affine_grads(grad: Array, x_hat: Array, needs: tuple[bool, ...], axes: tuple[int, ...],
                  shape: tuple[int, ...]) -> tuple[Array | None, Array | None]:
    return ((grad * x_hat).sum(axis=axes).reshape(shape) if needs[0] else None,
            grad.sum(axis=axes).reshape(shape) if needs[1] else None)


class BatchNorm(Function):
    """Normalises over every dimension but the channels (dimension 1). In training, the batch's
    statistics are used and ``running_mean``/``running_var`` (when given) are updated in place
    with ``momentum`` (the variance unbiased, as torch); otherwise the running ones are used."""

    def forward(self, x: Array, weight: Array | None, bias: Array | None, running_mean: Array | None,
                running_var: Array | None, training: bool, momentum: float, eps: float) -> Array:
        channels = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        self.axes = (0, *range(2, x.ndim))
        self.training = training
        if training:
            x_hat, invstd, mean, var = _normalize(x, self.axes, eps)
            count = x.size // x.shape[1]
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean.reshape(-1)
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += momentum * count / (count - 1) * var.reshape(-1)
        else:
            assert running_mean is not None and running_var is not None
            invstd = (1 / np.sqrt(running_var + eps)).astype(x.dtype).reshape(channels)
            x_hat = (x - running_mean.reshape(channels)) * invstd
        self.save_for_backward(x_hat, invstd, weight)
        y = x_hat if weight is None else x_hat * weight.reshape(channels)
        return y if bias is None else y + bias.reshape(channels)

    def backward(self, grad: Array) -> tuple[Any, ...]:
        x_hat, invstd, weight = self.saved_tensors
        grad_x = None
        if self.needs_input_grad[0]:
            grad_hat = grad if weight is None else grad * weight.reshape(invstd.shape)
            grad_x = _normalize_backward(grad_hat, x_hat, invstd, self.axes) if self.training else grad_hat * invstd
        grad_w, grad_b = _affine_grads(grad, x_hat, self.needs_input_grad[1:3], self.axes, (-1,))
        return grad_x, grad_w, grad_b, None, None, None, None, None


class LayerNorm(Function):
    """Normalises over the last ``dims`` dimensions; weight and bias have their shape."""

    def forward(self, x: Array, weight: Array | None, bias: Array | None, dims: int, eps: float) -> Array:
        self.axes = tuple(range(x.ndim - dims, x.ndim))
        x_hat, invstd, _, _ = _normalize(x, self.axes, eps)
        self.save_for_backward(x_hat, invstd, weight)
        y = x_hat if weight is None else x_hat * weight
        return y if bias is None else y + bias

    def backward(self, grad: Array) -> tuple[Any, ...]:
        x_hat, invstd, weight = self.saved_tensors
        grad_x = None
        if self.needs_input_grad[0]:
            grad_x = _normalize_backward(grad if weight is None else grad * weight, x_hat, invstd, self.axes)
        lead = tuple(range(x_hat.ndim - len(self.axes)))
        grad_w, grad_b = _affine_grads(grad, x_hat, self.needs_input_grad[1:3], lead, x_hat.shape[len(lead):])
        return grad_x, grad_w, grad_b, None, None


class Embedding(Function):
    """Rows of ``weight`` picked by integer ``indices``; repeated rows accumulate gradient."""

    def forward(self, weight: Array, indices: Array, padding_idx: int | None, scale_grad_by_freq: bool) -> Array:
        self.save_for_backward(indices)
        self.shape, self.padding_idx, self.scale_grad_by_freq = weight.shape, padding_idx, scale_grad_by_freq
        return weight[indices]

    def backward(self, grad: Array) -> tuple[Any, ...]:
        (indices,) = self.saved_tensors
        flat = indices.reshape(-1)
        rows = grad.reshape(flat.size, -1)
        if self.scale_grad_by_freq:
            rows = rows / np.bincount(flat, minlength=self.shape[0])[flat, None]
        grad_weight = np.zeros(self.shape, grad.dtype)
        np.add.at(grad_weight, flat, rows)
        if self.padding_idx is not None:
            grad_weight[self.padding_idx] = 0
        return grad_weight, None, None, None


class Mask(Function):
    """``x * mask`` with a constant mask (dropout's, already scaled by 1 / (1 - p))."""

    def forward(self, x: Array, mask: Array) -> Array:
        self.save_for_backward(mask)
        return x * mask

    def backward(self, grad: Array) -> tuple[Array, None]:
        (mask,) = self.saved_tensors
        return grad * mask, None
