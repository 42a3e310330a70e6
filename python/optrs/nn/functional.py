"""torch.nn.functional's names and arguments, on `optrs.Tensor`.

Inputs may be Tensors or NumPy arrays (wrapped without copying); class targets may be integer
arrays of any integer dtype (they are used as int64). Float operands of one op must share a
dtype, as in torch: float32 stays float32. Arguments are checked here, before any kernel runs,
so a bad one is reported by its name.

Deviations from torch: ``inplace=True`` is accepted and computes out of place; dropout masks come from
``optrs.manual_seed``'s NumPy generator, so they differ from torch's for the same seed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import random as _random
from ..autograd import grad_mode
from ..autograd import nn_ops as fn
from ..autograd.ops import Pad
from ..autograd.tensor import Tensor, normalize_dim
from ..errors import InvalidHyperparameterError, InvalidParamError, ParamDTypeError

Array = NDArray[Any]
IntOrPair = int | Sequence[int]

_REDUCTIONS = ("mean", "sum", "none")


# -- argument checks ------------------------------------------------------------------------------

def _tensor(value: Tensor | ArrayLike, name: str) -> Tensor:
    """``value`` as a float Tensor (an ndarray is wrapped, not copied)."""
    if isinstance(value, Tensor):
        t = value
    elif isinstance(value, np.ndarray):
        t = Tensor._wrap(value)
    else:
        raise ParamDTypeError(f"{name} must be an optrs.Tensor or a NumPy array, got {type(value).__name__}")
    if t.dtype.kind != "f":
        raise ParamDTypeError(f"{name} must be a floating-point tensor (float32 or float64), got {t.dtype}; "
                              "convert it, e.g. x.float()")
    return t


def _optional(value: Tensor | ArrayLike | None, name: str, dtype: np.dtype[Any]) -> Tensor | None:
    if value is None:
        return None
    t = _tensor(value, name)
    if t.dtype != dtype:
        raise ParamDTypeError(f"{name} is {t.dtype} but input is {dtype}; they must have the same dtype "
                              f"(convert one, e.g. with .to(np.{dtype}))")
    return t


def _same_dtype(input: Tensor, **others: Tensor | None) -> None:
    for name, t in others.items():
        if t is not None and t.dtype != input.dtype:
            raise ParamDTypeError(f"{name} is {t.dtype} but input is {input.dtype}; they must have the same dtype "
                                  f"(convert one, e.g. with .to(np.{input.dtype}))")


def _target(value: Tensor | ArrayLike, name: str = "target") -> Array:
    """Class indices as a C-contiguous int64 array."""
    array = value.data if isinstance(value, Tensor) else np.asarray(value)
    if array.dtype.kind not in "iu":
        raise ParamDTypeError(f"{name} must hold integer class indices, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.int64)


def _pair(value: IntOrPair, name: str, minimum: int = 1) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    else:
        items = tuple(value)
        if len(items) == 1:
            items = items * 2
        if len(items) != 2 or not all(isinstance(v, (int, np.integer)) for v in items):
            raise InvalidHyperparameterError(f"{name} must be an int or a pair of ints, got {value!r}")
        pair = (int(items[0]), int(items[1]))
    if min(pair) < minimum:
        raise InvalidHyperparameterError(f"{name} must be {'positive' if minimum else 'non-negative'}, got {value!r}")
    return pair


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch's mapping of the deprecated ``size_average``/``reduce`` flags to ``reduction``."""
    if size_average is None and reduce is None:
        return _reduction(reduction)
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


def _reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise InvalidHyperparameterError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _probability(p: float, name: str = "p") -> float:
    if not 0.0 <= p <= 1.0:
        raise InvalidHyperparameterError(f"dropout probability has to be between 0 and 1, but got {name}={p}")
    return float(p)


def _spatial(input: Tensor, op: str) -> tuple[Tensor, bool]:
    """A (N, C, H, W) input, or a (C, H, W) one with a batch dimension added (then True)."""
    if input.ndim == 4:
        return input, False
    if input.ndim == 3:
        return input.unsqueeze(0), True
    raise InvalidParamError(f"{op}: input must be (N, C, H, W) or (C, H, W), got shape {input.shape}")


# -- layers ---------------------------------------------------------------------------------------

def linear(input: Tensor | ArrayLike, weight: Tensor | ArrayLike, bias: Tensor | ArrayLike | None = None) -> Tensor:
    """``input @ weight.T + bias``; input (*, in_features), weight (out_features, in_features)."""
    x = _tensor(input, "input")
    w = _optional(weight, "weight", x.dtype)
    b = _optional(bias, "bias", x.dtype)
    assert w is not None
    if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise InvalidParamError(f"linear: input of shape {x.shape} and weight of shape {w.shape} do not match: "
                                "the input's last dimension must equal weight.shape[1] (in_features)")
    if b is not None and b.shape != (w.shape[0],):
        raise InvalidParamError(f"linear: bias must have shape ({w.shape[0]},), got {b.shape}")
    return fn.Linear.apply(x, w, b)


def conv2d(input: Tensor | ArrayLike, weight: Tensor | ArrayLike, bias: Tensor | ArrayLike | None = None,
           stride: IntOrPair = 1, padding: IntOrPair | str = 0, dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, as torch). ``padding`` is an int, a pair, ``"valid"``
    (none) or ``"same"`` (output as large as the input; stride 1 only)."""
    x, unbatched = _spatial(_tensor(input, "input"), "conv2d")
    w = _optional(weight, "weight", x.dtype)
    b = _optional(bias, "bias", x.dtype)
    assert w is not None
    strides, dilations = _pair(stride, "stride"), _pair(dilation, "dilation")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise InvalidHyperparameterError(f"groups must be a positive int, got {groups!r}")
    if w.ndim != 4:
        raise InvalidParamError(f"conv2d: weight must be (out_channels, in_channels/groups, kH, kW), got shape "
                                f"{w.shape}")
    if x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
        raise InvalidParamError(f"conv2d: input of shape {x.shape} has {x.shape[1]} channels, but weight of shape "
                                f"{w.shape} with groups={groups} expects {w.shape[1] * groups} (and out_channels "
                                "divisible by groups)")
    if b is not None and b.shape != (w.shape[0],):
        raise InvalidParamError(f"conv2d: bias must have shape ({w.shape[0]},), got {b.shape}")
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0)
        elif padding == "same":
            if strides != (1, 1):
                raise InvalidHyperparameterError("padding='same' is not supported for strided convolutions")
            totals = [d * (k - 1) for d, k in zip(dilations, w.shape[2:])]
            pads = (totals[0] // 2, totals[1] // 2)
            if totals[0] % 2 or totals[1] % 2:
                # An even window: torch pads the odd extra row/column after the input.
                widths = ((0, 0), (0, 0), (0, totals[0] % 2), (0, totals[1] % 2))
                x = Pad.apply(x, widths, 0.0)
        else:
            raise InvalidHyperparameterError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    else:
        pads = _pair(padding, "padding", minimum=0)
    spans = [p * 2 + n - d * (k - 1) for p, n, d, k in zip(pads, x.shape[2:], dilations, w.shape[2:])]
    if min(spans) < 1:
        raise InvalidParamError(f"conv2d: the kernel {tuple(w.shape[2:])} (dilation {dilations}) is larger than "
                                f"the padded input {tuple(n + 2 * p for n, p in zip(x.shape[2:], pads))}")
    y = fn.Conv2d.apply(x, w, b, strides, pads, dilations, int(groups))
    return y.squeeze(0) if unbatched else y


def _pool_args(input: Tensor | ArrayLike, kernel_size: IntOrPair, stride: IntOrPair | None, padding: IntOrPair,
               op: str) -> tuple[Tensor, bool, tuple[int, int], tuple[int, int], tuple[int, int]]:
    x, unbatched = _spatial(_tensor(input, "input"), op)
    kernel = _pair(kernel_size, "kernel_size")
    strides = kernel if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _pair(stride,
                                                                                                        "stride")
    pads = _pair(padding, "padding", minimum=0)
    if pads[0] > kernel[0] // 2 or pads[1] > kernel[1] // 2:
        raise InvalidHyperparameterError(f"padding should be at most half of the kernel size, but got "
                                         f"padding={pads} and kernel_size={kernel}")
    return x, unbatched, kernel, strides, pads


def _pool_output_check(x: Tensor, kernel: tuple[int, int], pads: tuple[int, int], dilation: tuple[int, int],
                       op: str) -> None:
    for n, k, p, d in zip(x.shape[2:], kernel, pads, dilation):
        if n + 2 * p < d * (k - 1) + 1:
            raise InvalidParamError(f"{op}: input of shape {x.shape} is smaller than the kernel {kernel}")


def max_pool2d(input: Tensor | ArrayLike, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Any:
    """2-D max pooling (``stride`` defaults to ``kernel_size``); with ``return_indices`` also the
    int64 flat index ``h * W + w`` of each maximum in its input plane."""
    x, unbatched, kernel, strides, pads = _pool_args(input, kernel_size, stride, padding, "max_pool2d")
    dilations = _pair(dilation, "dilation")
    _pool_output_check(x, kernel, pads, dilations, "max_pool2d")
    y, indices = fn.MaxPool2d.apply_multi(x, kernel, strides, pads, dilations, bool(ceil_mode))
    if unbatched:
        y, indices = y.squeeze(0), indices.squeeze(0)
    return (y, indices) if return_indices else y


def avg_pool2d(input: Tensor | ArrayLike, kernel_size: IntOrPair, stride: IntOrPair | None = None,
               padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> Tensor:
    """2-D average pooling (``stride`` defaults to ``kernel_size``)."""
    x, unbatched, kernel, strides, pads = _pool_args(input, kernel_size, stride, padding, "avg_pool2d")
    if divisor_override is not None and (not isinstance(divisor_override, int) or divisor_override <= 0):
        raise InvalidHyperparameterError(f"divisor_override must be a positive int, got {divisor_override!r}")
    _pool_output_check(x, kernel, pads, (1, 1), "avg_pool2d")
    y = fn.AvgPool2d.apply(x, kernel, strides, pads, bool(ceil_mode), bool(count_include_pad), divisor_override)
    return y.squeeze(0) if unbatched else y


# -- activations ----------------------------------------------------------------------------------

def relu(input: Tensor | ArrayLike, inplace: bool = False) -> Tensor:
    """``max(input, 0)``; the gradient passes where the output is positive."""
    return fn.ReLU.apply(_tensor(input, "input"))


def sigmoid(input: Tensor | ArrayLike) -> Tensor:
    return _tensor(input, "input").sigmoid()


def tanh(input: Tensor | ArrayLike) -> Tensor:
    return _tensor(input, "input").tanh()


def _softmax_dim(x: Tensor, dim: int | None) -> int:
    if dim is None:
        # torch's legacy choice (with a deprecation warning there).
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return normalize_dim(dim, x.ndim)


def _cast(x: Tensor, dtype: Any) -> Tensor:
    return x if dtype is None else x.to(dtype)


def log_softmax(input: Tensor | ArrayLike, dim: int | None = None, _stacklevel: int = 3,
                dtype: Any = None) -> Tensor:
    """``log(softmax(input))`` along ``dim``, computed stably."""
    x = _cast(_tensor(input, "input"), dtype)
    return fn.LogSoftmax.apply(x, _softmax_dim(x, dim))


def softmax(input: Tensor | ArrayLike, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None) -> Tensor:
    """``exp(input) / sum(exp(input))`` along ``dim``."""
    x = _cast(_tensor(input, "input"), dtype)
    return fn.Softmax.apply(x, _softmax_dim(x, dim))


def _dropout(x: Tensor, p: float, mask_shape: tuple[int, ...]) -> Tensor:
    if p == 1.0:
        return x * 0.0
    keep = _random.get_generator().random(mask_shape, dtype=x.dtype.type) >= x.dtype.type(p)
    mask = keep * x.dtype.type(1.0 / (1.0 - p))
    return fn.Mask.apply(x, mask)


def dropout(input: Tensor | ArrayLike, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zeroes each element with probability ``p`` and scales the rest by ``1 / (1 - p)`` (in
    training only; otherwise returns ``input``)."""
    x = _tensor(input, "input")
    p = _probability(p)
    if not training or p == 0.0:
        return x
    return _dropout(x, p, x.shape)


def dropout2d(input: Tensor | ArrayLike, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zeroes whole channels with probability ``p``: torch's feature dropout, which keeps or drops
    each ``input[n, c]`` whole. As in torch 2.13, a 3-D input is read as (N, C, L) (with torch's
    warning), and other than 3-D or 4-D inputs warn and drop per (N, C) element for 2-D."""
    x = _tensor(input, "input")
    p = _probability(p)
    if x.ndim < 2:
        raise InvalidParamError(f"dropout2d: feature dropout requires at least 2 dimensions in the input, got "
                                f"shape {x.shape}")
    if x.ndim not in (3, 4):
        warnings.warn(f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is deprecated and will result "
                      "in an error in a future release. To retain the behavior and silence this warning, please "
                      "use dropout instead. Note that dropout2d exists to provide channel-wise dropout on inputs "
                      "with 2 spatial dimensions, a channel dimension, and an optional batch dimension (i.e. 3D "
                      "or 4D inputs).", stacklevel=2)
    if x.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout "
                      "behavior is desired - input is interpreted as shape (N, C, L), where C is the channel dim. "
                      "This behavior will change in a future release to interpret the input as one without a "
                      "batch dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise dropout behavior, "
                      "please switch to using dropout1d instead.", stacklevel=2)
    if not training or p == 0.0:
        return x
    return _dropout(x, p, x.shape[:2] + (1,) * (x.ndim - 2))


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    return _tensor(input, "input").flatten(start_dim, end_dim)


# -- losses ---------------------------------------------------------------------------------------

def _class_rows(x: Tensor, target: Array, op: str) -> tuple[Tensor, Array, tuple[int, ...]]:
    """(N, C, d1, ...) inputs as (N*d1*..., C) rows and targets (N*d1*...,); also the shape of
    an unreduced loss. A (C,) input with a 0-d target is one row."""
    if x.ndim == 1:
        if target.ndim != 0:
            raise InvalidParamError(f"{op}: an unbatched input of shape {x.shape} needs a 0-d target, got shape "
                                    f"{target.shape}")
        return x.reshape(1, -1), target.reshape(1), ()
    if x.ndim < 1 or target.shape != x.shape[:1] + x.shape[2:]:
        raise InvalidParamError(f"{op}: input of shape {x.shape} needs a target of shape "
                                f"{x.shape[:1] + x.shape[2:]} (one class index per row), got {target.shape}")
    if x.ndim == 2:
        return x, target, target.shape
    rows = x.permute(0, *range(2, x.ndim), 1).reshape(-1, x.shape[1])
    return rows, target.reshape(-1), target.shape


def _class_weight(weight: Tensor | ArrayLike | None, x: Tensor, classes: int) -> Array | None:
    if weight is None:
        return None
    w = weight.data if isinstance(weight, Tensor) else np.asarray(weight)
    if w.shape != (classes,):
        raise InvalidParamError(f"weight must have one entry per class, shape ({classes},), got {w.shape}")
    return np.ascontiguousarray(w, dtype=x.dtype)


def _check_classes(target: Array, classes: int, ignore_index: int) -> None:
    bad = (target != ignore_index) & ((target < 0) | (target >= classes))
    if bad.any():
        raise InvalidParamError(f"target {int(target[bad][0])} is out of bounds: class indices must be in "
                                f"[0, {classes}) (or equal ignore_index={ignore_index})")


def nll_loss(input: Tensor | ArrayLike, target: Tensor | ArrayLike, weight: Tensor | ArrayLike | None = None,
             size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
             reduction: str = "mean") -> Tensor:
    """The negative log-likelihood of ``target`` classes under log-probabilities ``input``
    ((N, C) or (N, C, d1, ...)); the mean is weighted by the targets' class weights, as torch."""
    x = _tensor(input, "input")
    t = _target(target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    rows, flat, shape = _class_rows(x, t, "nll_loss")
    classes = rows.shape[1]
    _check_classes(flat, classes, ignore_index)
    loss = fn.NLLLoss.apply(rows, flat, _class_weight(weight, x, classes), int(ignore_index), reduction)
    return loss.reshape(shape) if reduction == "none" else loss


def cross_entropy(input: Tensor | ArrayLike, target: Tensor | ArrayLike, weight: Tensor | ArrayLike | None = None,
                  size_average: bool | None = None, ignore_index: int = -100, reduce: bool | None = None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over the classes (dimension 1) then nll_loss, fused; with
    ``label_smoothing`` the target mixes in the uniform distribution. ``target`` is class
    indices, or class probabilities of the input's shape (floats)."""
    x = _tensor(input, "input")
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise InvalidHyperparameterError(f"label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    raw = target.data if isinstance(target, Tensor) else np.asarray(target)
    if raw.dtype.kind == "f":
        return _cross_entropy_probabilities(x, target, weight, reduction, label_smoothing)
    t = _target(target)
    rows, flat, shape = _class_rows(x, t, "cross_entropy")
    classes = rows.shape[1]
    _check_classes(flat, classes, ignore_index)
    loss = fn.CrossEntropy.apply(rows, flat, _class_weight(weight, x, classes), int(ignore_index), reduction,
                                 float(label_smoothing))
    return loss.reshape(shape) if reduction == "none" else loss


def _cross_entropy_probabilities(x: Tensor, target: Tensor | ArrayLike, weight: Tensor | ArrayLike | None,
                                 reduction: str, label_smoothing: float) -> Tensor:
    """torch's soft-target cross entropy: ``-sum_c w_c * p_c * log_softmax(x)_c`` per row,
    the mean over rows (not weighted)."""
    probabilities = target if isinstance(target, Tensor) else Tensor._wrap(np.asarray(target, dtype=x.dtype))
    if probabilities.shape != x.shape:
        raise InvalidParamError(f"cross_entropy: probability targets must have the input's shape {x.shape}, got "
                                f"{probabilities.shape}")
    dim = 0 if x.ndim == 1 else 1
    classes = x.shape[dim]
    if label_smoothing > 0:
        probabilities = probabilities * (1 - label_smoothing) + label_smoothing / classes
    terms = log_softmax(x, dim) * probabilities
    w = _class_weight(weight, x, classes)
    if w is not None:
        terms = terms * w.reshape((classes,) + (1,) * (x.ndim - dim - 1))
    losses = -terms.sum(dim)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / max(losses.numel(), 1)


def mse_loss(input: Tensor | ArrayLike, target: Tensor | ArrayLike, size_average: bool | None = None,
             reduce: bool | None = None, reduction: str = "mean") -> Tensor:
    """The squared error ``(input - target) ** 2``, averaged (or summed) over all elements."""
    x = _tensor(input, "input")
    y = target if isinstance(target, Tensor) else Tensor._wrap(np.asarray(target, dtype=x.dtype))
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if y.shape != x.shape:
        try:
            np.broadcast_shapes(x.shape, y.shape)
        except ValueError:
            raise InvalidParamError(f"mse_loss: input of shape {x.shape} and target of shape {y.shape} do not "
                                    "broadcast together") from None
    diff = x - y
    squared = diff * diff
    if reduction == "none":
        return squared
    return squared.sum() if reduction == "sum" else squared.mean()


# -- normalisation and embedding ------------------------------------------------------------------

def batch_norm(input: Tensor | ArrayLike, running_mean: Tensor | ArrayLike | None,
               running_var: Tensor | ArrayLike | None, weight: Tensor | ArrayLike | None = None,
               bias: Tensor | ArrayLike | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """Normalises each channel (dimension 1) over the batch and spatial dimensions. In training
    the batch statistics are used and the running ones (when given) updated in place; otherwise
    the running statistics are used."""
    x = _tensor(input, "input")
    if x.ndim < 2:
        raise InvalidParamError(f"batch_norm: input must be (N, C, ...), got shape {x.shape}")
    channels = x.shape[1]
    w, b = _optional(weight, "weight", x.dtype), _optional(bias, "bias", x.dtype)
    stats = []
    for name, value in (("running_mean", running_mean), ("running_var", running_var)):
        array = value.data if isinstance(value, Tensor) else value
        if array is not None and (not isinstance(array, np.ndarray) or array.shape != (channels,)):
            raise InvalidParamError(f"batch_norm: {name} must be an array of shape ({channels},), got "
                                    f"{np.shape(array)}")
        stats.append(array)
    for name, t in (("weight", w), ("bias", b)):
        if t is not None and t.shape != (channels,):
            raise InvalidParamError(f"batch_norm: {name} must have shape ({channels},), got {t.shape}")
    if training and x.numel() // channels <= 1:
        raise InvalidParamError(f"Expected more than 1 value per channel when training, got input of shape "
                                f"{x.shape}")
    if not training and (stats[0] is None or stats[1] is None):
        raise InvalidParamError("batch_norm: running_mean and running_var are needed when training=False")
    return fn.BatchNorm.apply(x, w, b, stats[0], stats[1], bool(training), float(momentum), float(eps))


def layer_norm(input: Tensor | ArrayLike, normalized_shape: int | Sequence[int],
               weight: Tensor | ArrayLike | None = None, bias: Tensor | ArrayLike | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalises over the last ``len(normalized_shape)`` dimensions."""
    x = _tensor(input, "input")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not shape or x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise InvalidParamError(f"layer_norm: normalized_shape {shape} must be the trailing dimensions of the "
                                f"input's shape {x.shape}")
    w, b = _optional(weight, "weight", x.dtype), _optional(bias, "bias", x.dtype)
    for name, t in (("weight", w), ("bias", b)):
        if t is not None and t.shape != shape:
            raise InvalidParamError(f"layer_norm: {name} must have shape {shape}, got {t.shape}")
    return fn.LayerNorm.apply(x, w, b, len(shape), float(eps))


def embedding(input: Tensor | ArrayLike, weight: Tensor | ArrayLike, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Tensor:
    """Rows of ``weight`` picked by the integer ``input``; the row ``padding_idx`` gets no
    gradient. With ``max_norm``, the picked rows of ``weight`` whose norm exceeds it are scaled
    down in place first (torch's renorm)."""
    indices = _target(input, "input")
    w = _tensor(weight, "weight")
    if w.ndim != 2:
        raise InvalidParamError(f"embedding: weight must be (num_embeddings, embedding_dim), got shape {w.shape}")
    rows = w.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= rows):
        bad = indices[(indices < 0) | (indices >= rows)][0]
        raise IndexError(f"embedding: index {int(bad)} is out of range for {rows} embeddings")
    if padding_idx is not None:
        if not -rows <= padding_idx < rows:
            raise InvalidHyperparameterError(f"padding_idx must be within num_embeddings ({rows}), got "
                                             f"{padding_idx}")
        padding_idx %= rows
    if sparse:
        raise InvalidHyperparameterError("sparse=True: optrs has no sparse gradients; use sparse=False")
    if max_norm is not None:
        with grad_mode.no_grad():
            used = np.unique(indices)
            norms = np.linalg.norm(w.data[used], ord=norm_type, axis=1)
            scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(w.dtype)
            w.data[used] *= scale[:, None]
    return fn.Embedding.apply(w, indices, padding_idx, bool(scale_grad_by_freq))


def one_hot(tensor: Tensor | ArrayLike, num_classes: int = -1) -> Tensor:
    """int64 one-hot rows of the class indices ``tensor`` (no gradient)."""
    indices = _target(tensor, "tensor")
    classes = int(indices.max()) + 1 if num_classes < 0 else num_classes
    if indices.size and (indices.min() < 0 or indices.max() >= classes):
        raise InvalidParamError(f"one_hot: class values must be in [0, {classes})")
    return Tensor._wrap(np.eye(classes, dtype=np.int64)[indices])


__all__ = [
    "linear", "conv2d", "max_pool2d", "avg_pool2d", "relu", "sigmoid", "tanh", "log_softmax", "softmax",
    "dropout", "dropout2d", "flatten", "nll_loss", "cross_entropy", "mse_loss", "batch_norm", "layer_norm",
    "embedding", "one_hot",
]
