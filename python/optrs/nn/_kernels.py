"""The heavy kernels behind optrs.nn: the only place the autograd layer computes convolutions,
pools, softmaxes, the losses and relu. Names and signatures are the issue-4 contract
(``notes/issue4-contract.md``): float32 or float64 arrays (one dtype per call), C-contiguous;
int64 targets and indices; every function returns new arrays and never writes its inputs.

TEMPORARY STAND-INS: the functions below are vectorised NumPy versions (sliding windows, BLAS
matmuls, bincount; Python loops run over kernel taps, never over elements or pixels), written so
the autograd layer and its tests work before the Rust kernels land. Each name that
``optrs._core`` already exports replaces its NumPy version at import (``NATIVE`` lists them), so
the Rust kernels take over one by one as they land; once all have, this module's body becomes
``from .._core import <the names in __all__>``.
"""

from __future__ import annotations

from typing import Any as _Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view as _sliding_window_view
from numpy.typing import NDArray as _NDArray

from .. import _core
from .. import errors as _errors

_Array = _NDArray[_Any]
_Pair = tuple[int, int]

CONTRACT = (
    "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "log_softmax", "log_softmax_backward", "softmax", "softmax_backward", "nll_loss", "nll_loss_backward",
    "cross_entropy", "cross_entropy_backward", "relu", "relu_backward",
)
# The contract's names that the Rust core provides; they are bound over the NumPy versions at the
# end of this module.
NATIVE: frozenset[str] = frozenset(name for name in CONTRACT if hasattr(_core, name))


# -- checks -------------------------------------------------------------------------------------

def _floats(**arrays: _Array | None) -> np.dtype[_Any]:
    """The one float dtype of the named arrays (None entries skipped), C-contiguous all."""
    dtype = None
    for name, a in arrays.items():
        if a is None:
            continue
        if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
            raise _errors.ParamDTypeError(f"{name} must be a float32 or float64 ndarray, got "
                                          f"{getattr(a, 'dtype', type(a).__name__)}")
        if dtype is None:
            dtype = a.dtype
        elif a.dtype != dtype:
            raise _errors.ParamDTypeError(f"{name} is {a.dtype} but the other arrays are {dtype}; use one dtype")
        if not a.flags.c_contiguous:
            raise _errors.InvalidParamError(f"{name} must be C-contiguous (np.ascontiguousarray)")
    assert dtype is not None
    return dtype


def _targets(target: _Array, rows: int, classes: int, ignore_index: int) -> tuple[_Array, _Array]:
    """(valid row mask, targets with ignored rows set to class 0)."""
    if not isinstance(target, np.ndarray) or target.dtype != np.int64 or target.shape != (rows,):
        raise _errors.InvalidParamError(f"target must be an int64 array of shape ({rows},), got "
                                        f"{getattr(target, 'dtype', type(target).__name__)} {np.shape(target)}")
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= classes))
    if bad.any():
        raise _errors.InvalidParamError(f"target {int(target[bad][0])} is out of bounds: targets must be in "
                                        f"[0, {classes}) or equal ignore_index ({ignore_index})")
    return valid, np.where(valid, target, 0)


def _positive(name: str, pair: _Pair) -> None:
    if min(pair) <= 0:
        raise _errors.InvalidHyperparameterError(f"{name} must be positive, got {pair}")


def _reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum", "none"):
        raise _errors.InvalidHyperparameterError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# -- windows ------------------------------------------------------------------------------------

def _out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling_output_shape (and, without ceil_mode, the convolution's)."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _padded(x: _Array, out: _Pair, kernel: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair,
            value: float) -> _Array:
    """``x`` padded by ``padding`` before and at least as much after as the windows reach."""
    ends = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(out, stride, dilation, kernel)]
    after = [max(p, e - n - p) for e, n, p in zip(ends, x.shape[2:], padding)]
    if not any(padding) and not any(after):
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding[0], after[0]), (padding[1], after[1])), constant_values=value)


def _windows(xp: _Array, out: _Pair, kernel: _Pair, stride: _Pair, dilation: _Pair) -> _Array:
    """A (N, C, H_out, W_out, kH, kW) view of the windows of a padded input."""
    span = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    view = _sliding_window_view(xp, span, axis=(2, 3))
    return view[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]][:, :, :out[0], :out[1]]


def _scatter_windows(grad_windows: _Array, padded_shape: tuple[int, ...], out: _Pair, kernel: _Pair, stride: _Pair,
                     dilation: _Pair) -> _Array:
    """The adjoint of ``_windows``: adds each (*lead, kH, kW, H_out, W_out) window entry back to
    its place in a zero array of ``padded_shape`` (N, C, H, W), where ``lead`` splits (N, C) in
    any way (conv2d's (N, groups, C/groups)); one vectorised add per kernel tap, reading the
    entries in place (they may be a strided view)."""
    result = np.zeros(padded_shape, grad_windows.dtype)
    target = result.reshape(*grad_windows.shape[:-4], *padded_shape[2:])
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            h0, w0 = i * dilation[0], j * dilation[1]
            target[..., h0:h0 + stride[0] * (out[0] - 1) + 1:stride[0],
                   w0:w0 + stride[1] * (out[1] - 1) + 1:stride[1]] += grad_windows[..., i, j, :, :]
    return result


# -- conv2d -------------------------------------------------------------------------------------

def _conv_geometry(x: _Array, weight: _Array, stride: _Pair, padding: _Pair, dilation: _Pair,
                   groups: int) -> _Pair:
    if x.ndim != 4 or weight.ndim != 4:
        raise _errors.InvalidParamError(f"conv2d expects x (N, C_in, H, W) and weight (C_out, C_in/groups, kH, kW), "
                                        f"got shapes {x.shape} and {weight.shape}")
    _positive("stride", stride)
    _positive("dilation", dilation)
    if groups <= 0 or x.shape[1] % groups or weight.shape[0] % groups or x.shape[1] // groups != weight.shape[1]:
        raise _errors.InvalidParamError(f"conv2d: x of shape {x.shape} and weight of shape {weight.shape} do not match "
                                        f"with groups={groups}")
    if min(padding) < 0:
        raise _errors.InvalidHyperparameterError(f"padding must be non-negative, got {padding}")
    out = (_out_size(x.shape[2], weight.shape[2], stride[0], padding[0], dilation[0], False),
           _out_size(x.shape[3], weight.shape[3], stride[1], padding[1], dilation[1], False))
    if min(out) <= 0:
        raise _errors.InvalidParamError(f"conv2d: the output would be empty ({out}) for x of shape {x.shape} and "
                                        f"weight of shape {weight.shape}")
    return out


def _columns(x: _Array, kernel: _Pair, out: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair,
             groups: int) -> _Array:
    """im2col: (groups, N * H_out * W_out, C_in/groups * kH * kW)."""
    n, c = x.shape[:2]
    windows = _windows(_padded(x, out, kernel, stride, padding, dilation, 0.0), out, kernel, stride, dilation)
    windows = windows.reshape(n, groups, c // groups, out[0], out[1], kernel[0], kernel[1])
    return windows.transpose(1, 0, 3, 4, 2, 5, 6).reshape(groups, n * out[0] * out[1], -1)


def conv2d(x: _Array, weight: _Array, bias: _Array | None, stride: _Pair, padding: _Pair, dilation: _Pair,
           groups: int) -> _Array:
    _floats(x=x, weight=weight, bias=bias)
    out = _conv_geometry(x, weight, stride, padding, dilation, groups)
    n, c_out = x.shape[0], weight.shape[0]
    cols = _columns(x, weight.shape[2:], out, stride, padding, dilation, groups)
    y = cols @ weight.reshape(groups, c_out // groups, -1).transpose(0, 2, 1)  # (G, N*Ho*Wo, C_out/G)
    y = y.reshape(groups, n, out[0], out[1], c_out // groups).transpose(1, 0, 4, 2, 3).reshape(n, c_out, *out)
    if bias is not None:
        y += bias[None, :, None, None]
    return np.ascontiguousarray(y)


def conv2d_backward(x: _Array, weight: _Array, grad_y: _Array, stride: _Pair, padding: _Pair, dilation: _Pair,
                    groups: int, need_input: bool, need_weight: bool,
                    need_bias: bool) -> tuple[_Array | None, _Array | None, _Array | None]:
    _floats(x=x, weight=weight, grad_y=grad_y)
    out = _conv_geometry(x, weight, stride, padding, dilation, groups)
    n, c_out = x.shape[0], weight.shape[0]
    if grad_y.shape != (n, c_out, *out):
        raise _errors.InvalidParamError(f"grad_y has shape {grad_y.shape}, the output has {(n, c_out, *out)}")
    g = grad_y.reshape(n, groups, c_out // groups, out[0] * out[1]).transpose(1, 0, 3, 2)
    g = g.reshape(groups, n * out[0] * out[1], c_out // groups)
    grad_x = grad_weight = grad_bias = None
    if need_bias:
        grad_bias = grad_y.sum(axis=(0, 2, 3))
    if need_weight:
        cols = _columns(x, weight.shape[2:], out, stride, padding, dilation, groups)
        grad_weight = np.ascontiguousarray((g.transpose(0, 2, 1) @ cols).reshape(weight.shape))
    if need_input:
        kernel = weight.shape[2:]
        grad_cols = g @ weight.reshape(groups, c_out // groups, -1)  # (G, N*Ho*Wo, C_in/G*kH*kW)
        # (N, G, C_in/G, kH, kW, H_out, W_out), a view: the scatter reads it where it lies.
        grad_cols = grad_cols.reshape(groups, n, out[0], out[1], -1, kernel[0], kernel[1])
        grad_cols = grad_cols.transpose(1, 0, 4, 5, 6, 2, 3)
        padded = _padded(x, out, kernel, stride, padding, dilation, 0.0).shape
        full = _scatter_windows(grad_cols, padded, out, kernel, stride, dilation)
        grad_x = np.ascontiguousarray(full[:, :, padding[0]:padding[0] + x.shape[2],
                                           padding[1]:padding[1] + x.shape[3]])
    return grad_x, grad_weight, grad_bias


# -- pooling ------------------------------------------------------------------------------------

def _pool_geometry(x: _Array, kernel: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair,
                   ceil_mode: bool) -> _Pair:
    if x.ndim != 4:
        raise _errors.InvalidParamError(f"pooling expects x of shape (N, C, H, W), got {x.shape}")
    for name, pair in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        _positive(name, pair)
    if min(padding) < 0 or padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise _errors.InvalidHyperparameterError(f"padding {padding} must be non-negative and at most half of "
                                                 f"kernel_size {kernel}")
    out = (_out_size(x.shape[2], kernel[0], stride[0], padding[0], dilation[0], ceil_mode),
           _out_size(x.shape[3], kernel[1], stride[1], padding[1], dilation[1], ceil_mode))
    if min(out) <= 0:
        raise _errors.InvalidParamError(f"pooling: the output would be empty ({out}) for x of shape {x.shape} and "
                                        f"kernel_size {kernel}")
    return out


def max_pool2d(x: _Array, kernel_size: _Pair, stride: _Pair, padding: _Pair, dilation: _Pair,
               ceil_mode: bool) -> tuple[_Array, _Array]:
    _floats(x=x)
    out = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    n, c, h, w = x.shape
    windows = _windows(_padded(x, out, kernel_size, stride, padding, dilation, -np.inf), out, kernel_size, stride,
                       dilation).reshape(n, c, out[0], out[1], -1)
    # argmax takes the first maximum and treats NaN as the largest value, as torch's kernel does.
    best = np.argmax(windows, axis=-1)
    y = np.take_along_axis(windows, best[..., None], axis=-1)[..., 0]
    rows = np.arange(out[0])[:, None] * stride[0] - padding[0] + best // kernel_size[1] * dilation[0]
    cols = np.arange(out[1])[None, :] * stride[1] - padding[1] + best % kernel_size[1] * dilation[1]
    # A window of -inf only: torch points at its first element inside the input.
    indices = np.clip(rows, 0, h - 1) * w + np.clip(cols, 0, w - 1)
    return np.ascontiguousarray(y), indices.astype(np.int64)


def max_pool2d_backward(grad_y: _Array, indices: _Array, input_shape: tuple[int, int, int, int]) -> _Array:
    _floats(grad_y=grad_y)
    if indices.shape != grad_y.shape or indices.dtype != np.int64:
        raise _errors.InvalidParamError(f"indices must be int64 of grad_y's shape {grad_y.shape}, got {indices.dtype} "
                                        f"{indices.shape}")
    n, c, h, w = input_shape
    planes = np.arange(n * c).reshape(n, c, 1, 1) * (h * w)
    flat = np.bincount((planes + indices).ravel(), weights=grad_y.ravel(), minlength=n * c * h * w)
    return flat.astype(grad_y.dtype).reshape(input_shape)


def _avg_divisor(x_size: _Pair, out: _Pair, kernel: _Pair, stride: _Pair, padding: _Pair, count_include_pad: bool,
                 divisor_override: int | None) -> _Array:
    """The (H_out, W_out) divisors of torch's avg_pool2d."""
    if divisor_override is not None:
        return np.full(out, float(divisor_override))
    sizes = []
    for o, n, k, s, p in zip(out, x_size, kernel, stride, padding):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        sizes.append(end - start if count_include_pad else np.minimum(end, n) - np.maximum(start, 0))
    return np.outer(sizes[0], sizes[1]).astype(np.float64)


def avg_pool2d(x: _Array, kernel_size: _Pair, stride: _Pair, padding: _Pair, ceil_mode: bool, count_include_pad: bool,
               divisor_override: int | None) -> _Array:
    dtype = _floats(x=x)
    if divisor_override is not None and divisor_override <= 0:
        raise _errors.InvalidHyperparameterError(f"divisor_override must be positive, got {divisor_override}")
    out = _pool_geometry(x, kernel_size, stride, padding, (1, 1), ceil_mode)
    windows = _windows(_padded(x, out, kernel_size, stride, padding, (1, 1), 0.0), out, kernel_size, stride, (1, 1))
    divisor = _avg_divisor(x.shape[2:], out, kernel_size, stride, padding, count_include_pad, divisor_override)
    return np.ascontiguousarray(windows.sum(axis=(-2, -1)) / divisor.astype(dtype))


def avg_pool2d_backward(grad_y: _Array, input_shape: tuple[int, int, int, int], kernel_size: _Pair, stride: _Pair,
                        padding: _Pair, ceil_mode: bool, count_include_pad: bool,
                        divisor_override: int | None) -> _Array:
    dtype = _floats(grad_y=grad_y)
    x = np.empty(input_shape, dtype)  # only its shape is used: no data is read
    out = _pool_geometry(x, kernel_size, stride, padding, (1, 1), ceil_mode)
    divisor = _avg_divisor(input_shape[2:], out, kernel_size, stride, padding, count_include_pad, divisor_override)
    share = grad_y / divisor.astype(dtype)
    taps = np.broadcast_to(share[:, :, None, None], (*share.shape[:2], *kernel_size, *out))
    padded = _padded(x, out, kernel_size, stride, padding, (1, 1), 0.0).shape
    full = _scatter_windows(taps, padded, out, kernel_size, stride, (1, 1))
    return np.ascontiguousarray(full[:, :, padding[0]:padding[0] + input_shape[2],
                                     padding[1]:padding[1] + input_shape[3]])


# -- softmax ------------------------------------------------------------------------------------

def _rows(x: _Array, name: str) -> None:
    _floats(**{name: x})
    if x.ndim != 2:
        raise _errors.InvalidParamError(f"{name} must be 2-D (rows, classes), got shape {x.shape}")


def log_softmax(x: _Array) -> _Array:
    _rows(x, "x")
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def log_softmax_backward(grad_y: _Array, y: _Array) -> _Array:
    _floats(grad_y=grad_y, y=y)
    return grad_y - np.exp(y) * grad_y.sum(axis=1, keepdims=True)


def softmax(x: _Array) -> _Array:
    _rows(x, "x")
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_backward(grad_y: _Array, y: _Array) -> _Array:
    _floats(grad_y=grad_y, y=y)
    return y * (grad_y - (grad_y * y).sum(axis=1, keepdims=True))


# -- losses -------------------------------------------------------------------------------------

def _row_weights(weight: _Array | None, target: _Array, valid: _Array, dtype: np.dtype[_Any]) -> _Array:
    picked = weight[target] if weight is not None else np.ones(target.shape, dtype)
    return np.where(valid, picked, 0).astype(dtype)


def _check_weight(weight: _Array | None, classes: int) -> None:
    if weight is not None and weight.shape != (classes,):
        raise _errors.InvalidParamError(f"weight must have shape ({classes},), one per class, got {weight.shape}")


def nll_loss(logp: _Array, target: _Array, weight: _Array | None, ignore_index: int,
             reduction: str) -> tuple[_Array, float]:
    _rows(logp, "logp")
    dtype = _floats(logp=logp, weight=weight)
    _reduction(reduction)
    rows, classes = logp.shape
    _check_weight(weight, classes)
    valid, safe = _targets(target, rows, classes, ignore_index)
    w = _row_weights(weight, safe, valid, dtype)
    losses = -w * logp[np.arange(rows), safe]
    if reduction == "none":
        return losses, 0.0
    total = float(w.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        loss = losses.sum() / dtype.type(total) if reduction == "mean" else losses.sum()
    return np.asarray(loss, dtype), total


def nll_loss_backward(grad_loss: _Array, target: _Array, weight: _Array | None, ignore_index: int, reduction: str,
                      total_weight: float, num_classes: int) -> _Array:
    dtype = _floats(grad_loss=grad_loss, weight=weight)
    _reduction(reduction)
    rows = target.shape[0] if isinstance(target, np.ndarray) and target.ndim == 1 else -1
    valid, safe = _targets(target, rows, num_classes, ignore_index)
    w = _row_weights(weight, safe, valid, dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = grad_loss / dtype.type(total_weight) if reduction == "mean" else grad_loss
        grad = np.zeros((rows, num_classes), dtype)
        grad[np.arange(rows), safe] = np.where(valid, -w * scale, 0)
    return grad


def cross_entropy(x: _Array, target: _Array, weight: _Array | None, ignore_index: int, reduction: str,
                  label_smoothing: float) -> tuple[_Array, _Array]:
    _rows(x, "x")
    dtype = _floats(x=x, weight=weight)
    if not 0.0 <= label_smoothing <= 1.0:
        raise _errors.InvalidHyperparameterError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    logp = log_softmax(x)
    loss, total = nll_loss(logp, target, weight, ignore_index, reduction)
    if label_smoothing > 0:
        classes = x.shape[1]
        valid = target != ignore_index
        smooth = -(logp * weight).sum(axis=1) if weight is not None else -logp.sum(axis=1)
        smooth = np.where(valid, smooth, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            if reduction == "mean":
                smooth = smooth.sum() / dtype.type(total)
            elif reduction == "sum":
                smooth = smooth.sum()
            loss = np.asarray((1 - label_smoothing) * loss + smooth * (label_smoothing / classes), dtype)
    return loss, np.exp(logp)


def cross_entropy_backward(grad_loss: _Array, softmax: _Array, target: _Array, weight: _Array | None,
                           ignore_index: int, reduction: str, label_smoothing: float) -> _Array:
    _rows(softmax, "softmax")
    dtype = _floats(grad_loss=grad_loss, softmax=softmax, weight=weight)
    _reduction(reduction)
    rows, classes = softmax.shape
    valid, safe = _targets(target, rows, classes, ignore_index)
    w = _row_weights(weight, safe, valid, dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = grad_loss / dtype.type(w.sum()) if reduction == "mean" else grad_loss
        per_row = np.where(valid, np.broadcast_to(scale, (rows,)), 0)[:, None]
        # d/dx of (1 - eps) * w_t * nll + eps / C * sum_c w_c * (-log p_c), per row.
        one_hot = np.zeros((rows, classes), dtype)
        one_hot[np.arange(rows), safe] = 1
        grad = (1 - label_smoothing) * w[:, None] * (softmax - one_hot)
        if label_smoothing > 0:
            class_weights = weight if weight is not None else np.ones(classes, dtype)
            grad += (label_smoothing / classes) * (softmax * class_weights.sum() - class_weights)
        return np.asarray(per_row * grad, dtype)


# -- relu ---------------------------------------------------------------------------------------

def relu(x: _Array) -> _Array:
    _floats(x=x)
    return np.maximum(x, 0)


def relu_backward(grad_y: _Array, y: _Array) -> _Array:
    _floats(grad_y=grad_y, y=y)
    return np.where(y > 0, grad_y, 0).astype(grad_y.dtype, copy=False)


globals().update({name: getattr(_core, name) for name in NATIVE})

__all__ = [*CONTRACT, "NATIVE"]
