"""optrs.nn: the layer files from torch 2.13 replayed (forward and backward, float64 rtol 1e-9),
every functional op's backward through gradcheck, forward values against naive loop
transcriptions, the Module API, init, and bad inputs."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import optrs
import optrs.nn as nn
import optrs.nn.functional as F
from optrs.autograd import gradcheck
from optrs.autograd import kernels as _kernels
from optrs.examples.mnist import Net
from reference import REFERENCE_DIR

RNG = np.random.default_rng(11)


def leaf(*shape: int, dtype: Any = np.float64) -> optrs.Tensor:
    return optrs.Tensor(RNG.standard_normal(shape).astype(dtype), requires_grad=True)


# -- torch's layer files ------------------------------------------------------------------------

LAYER_FILES = sorted(REFERENCE_DIR.glob("layer_*.npz"))


def _layer_call(op: str, kwargs: dict[str, Any]) -> Callable[..., optrs.Tensor]:
    if op == "nll_loss":
        return lambda x, t: F.nll_loss(F.log_softmax(x, 1), t, **kwargs)
    fn = getattr(F, op, None) or getattr(optrs, op)  # torch.bmm is not in torch.nn.functional
    return lambda *args: fn(*args, **kwargs)


def test_the_layer_files_are_here() -> None:
    names = {p.stem for p in LAYER_FILES}
    assert {"layer_conv2d", "layer_conv2d_stride_pad", "layer_max_pool2d", "layer_linear", "layer_log_softmax",
            "layer_nll_loss", "layer_cross_entropy", "layer_mse_loss"} <= names


@pytest.mark.parametrize("path", LAYER_FILES, ids=lambda p: p.stem)
def test_layer_matches_torch(path: Path) -> None:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        arrays = {k: data[k] for k in data.files if k != "meta"}
    inputs = [arrays[f"x_{i}"] for i in range(sum(k.startswith("x_") for k in arrays))]
    tensors = [optrs.Tensor(a.copy(), requires_grad=True) if a.dtype.kind == "f" else a for a in inputs]
    y = _layer_call(meta["op"], meta["kwargs"])(*tensors)
    # The reference README's tolerances, which torch's own CPU kernels meet.
    tol = dict(rtol=1e-9, atol=1e-12) if arrays["y"].dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(y.data, arrays["y"], **tol)
    y.backward(arrays["gy"])
    for i, t in enumerate(tensors):
        if isinstance(t, optrs.Tensor) and f"gx_{i}" in arrays:
            np.testing.assert_allclose(t.grad, arrays[f"gx_{i}"], **tol, err_msg=f"gx_{i}")


# -- naive transcriptions (loops; the oracle for the vectorised kernels) ------------------------

def naive_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: tuple[int, int],
                 padding: tuple[int, int], dilation: tuple[int, int], groups: int) -> np.ndarray:
    n, c_in, h, wd = x.shape
    c_out, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, c_out, ho, wo))
    per_group = c_out // groups
    for o in range(c_out):
        g = o // per_group
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, g * cg:(g + 1) * cg, i * stride[0]:i * stride[0] + dilation[0] * (kh - 1) + 1:dilation[0],
                           j * stride[1]:j * stride[1] + dilation[1] * (kw - 1) + 1:dilation[1]]
                y[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3)) + (0 if b is None else b[o])
    return y


CONV_CASES = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=1),
    dict(stride=(1, 2), padding=(2, 0), dilation=(2, 1), groups=1),
    dict(stride=1, padding=1, dilation=1, groups=2),
    dict(stride=2, padding=(1, 2), dilation=2, groups=4),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_forward_and_gradcheck(case: dict[str, Any], bias: bool) -> None:
    groups = case["groups"]
    x, w = leaf(2, 4, 6, 5), leaf(4, 4 // groups, 3, 2)
    b = leaf(4) if bias else None
    pair = F._pair
    expected = naive_conv2d(x.data, w.data, None if b is None else b.data, pair(case["stride"], "s"),
                            pair(case["padding"], "p", 0), pair(case["dilation"], "d"), groups)
    np.testing.assert_allclose(F.conv2d(x, w, b, **case).data, expected, rtol=1e-12, atol=1e-12)
    inputs = [x, w] + ([b] if b is not None else [])
    assert gradcheck(lambda *a: F.conv2d(a[0], a[1], a[2] if len(a) > 2 else None, **case), inputs)


@pytest.mark.parametrize("kernel,dilation", [((3, 3), 1), ((2, 4), 1), ((3, 2), 2)])
def test_conv2d_same_and_valid_padding(kernel: tuple[int, int], dilation: int) -> None:
    x, w, b = leaf(1, 2, 5, 6), leaf(3, 2, *kernel), leaf(3)
    y = F.conv2d(x, w, b, padding="same", dilation=dilation)
    assert y.shape == (1, 3, 5, 6)
    # torch pads the odd extra row/column after the input
    totals = [dilation * (k - 1) for k in kernel]
    xp = np.pad(x.data, ((0, 0), (0, 0), (totals[0] // 2, totals[0] - totals[0] // 2),
                         (totals[1] // 2, totals[1] - totals[1] // 2)))
    np.testing.assert_allclose(y.data, naive_conv2d(xp, w.data, b.data, (1, 1), (0, 0), (dilation,) * 2, 1),
                               rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda *a: F.conv2d(*a, padding="same", dilation=dilation), [x, w, b])
    assert F.conv2d(x, w, padding="valid").shape == F.conv2d(x, w).shape


def test_conv2d_unbatched_input() -> None:
    x, w = leaf(2, 5, 5), leaf(3, 2, 3, 3)
    np.testing.assert_allclose(F.conv2d(x, w).data, F.conv2d(x.unsqueeze(0), w).data[0])


def naive_pool(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
               dilation: tuple[int, int], ceil_mode: bool, reduce: str, count_include_pad: bool = True,
               divisor_override: int | None = None) -> np.ndarray:
    n, c, h, w = x.shape

    def size(length: int, k: int, s: int, p: int, d: int) -> int:
        span = length + 2 * p - d * (k - 1) - 1
        out = (-(-span // s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= length + p:
            out -= 1
        return out

    ho, wo = size(h, kernel[0], stride[0], padding[0], dilation[0]), size(w, kernel[1], stride[1], padding[1],
                                                                           dilation[1])
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            rows = [i * stride[0] - padding[0] + a * dilation[0] for a in range(kernel[0])]
            cols = [j * stride[1] - padding[1] + a * dilation[1] for a in range(kernel[1])]
            inside_r = [r for r in rows if 0 <= r < h]
            inside_c = [q for q in cols if 0 <= q < w]
            window = x[:, :, inside_r][:, :, :, inside_c]
            if reduce == "max":
                y[:, :, i, j] = window.max(axis=(2, 3))
            else:
                end_r = min(rows[0] + kernel[0], h + padding[0])
                end_c = min(cols[0] + kernel[1], w + padding[1])
                if divisor_override:
                    divisor = divisor_override
                elif count_include_pad:
                    divisor = (end_r - rows[0]) * (end_c - cols[0])
                else:
                    divisor = len(inside_r) * len(inside_c)
                y[:, :, i, j] = window.sum(axis=(2, 3)) / divisor
    return y


MAX_POOL_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(2, 1), dilation=(2, 1)),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=2, stride=2, padding=1, ceil_mode=True),
]


@pytest.mark.parametrize("case", MAX_POOL_CASES, ids=str)
def test_max_pool2d_forward_indices_and_gradcheck(case: dict[str, Any]) -> None:
    x = leaf(2, 3, 7, 8)
    pair = F._pair
    k = pair(case["kernel_size"], "k")
    s = pair(case.get("stride", k), "s")
    expected = naive_pool(x.data, k, s, pair(case.get("padding", 0), "p", 0), pair(case.get("dilation", 1), "d"),
                          case.get("ceil_mode", False), "max")
    y, indices = F.max_pool2d(x, **case, return_indices=True)
    np.testing.assert_array_equal(y.data, expected)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(np.take_along_axis(x.data.reshape(2, 3, -1), indices.data.reshape(2, 3, -1), 2),
                                  y.data.reshape(2, 3, -1))
    assert gradcheck(lambda t: F.max_pool2d(t, **case), [x])


AVG_POOL_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=(2, 3), stride=(1, 2), ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=2, divisor_override=3),
]


@pytest.mark.parametrize("case", AVG_POOL_CASES, ids=str)
def test_avg_pool2d_forward_and_gradcheck(case: dict[str, Any]) -> None:
    x = leaf(2, 2, 7, 6)
    pair = F._pair
    k = pair(case["kernel_size"], "k")
    expected = naive_pool(x.data, k, pair(case.get("stride", k), "s"), pair(case.get("padding", 0), "p", 0), (1, 1),
                          case.get("ceil_mode", False), "avg", case.get("count_include_pad", True),
                          case.get("divisor_override"))
    np.testing.assert_allclose(F.avg_pool2d(x, **case).data, expected, rtol=1e-12)
    assert gradcheck(lambda t: F.avg_pool2d(t, **case), [x])


# -- the other functional ops through gradcheck -------------------------------------------------

def test_linear_gradcheck_and_batched_input() -> None:
    x, w, b = leaf(2, 3, 4), leaf(5, 4), leaf(5)
    np.testing.assert_allclose(F.linear(x, w, b).data, x.data @ w.data.T + b.data)
    assert gradcheck(F.linear, [x, w, b])
    assert gradcheck(lambda a, c: F.linear(a, c), [x, w])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax(dim: int) -> None:
    x = leaf(3, 4, 2)
    e = np.exp(x.data - x.data.max(axis=dim, keepdims=True))
    expected = e / e.sum(axis=dim, keepdims=True)
    np.testing.assert_allclose(F.softmax(x, dim).data, expected, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(x, dim=dim).data, np.log(expected), rtol=1e-12)
    assert gradcheck(lambda t: F.softmax(t, dim), [x])
    assert gradcheck(lambda t: F.log_softmax(t, dim), [x])


def test_log_softmax_is_stable_for_large_logits() -> None:
    x = optrs.Tensor(np.array([[1000.0, 0.0, -1000.0]]))
    assert np.all(np.isfinite(F.log_softmax(x, 1).data))


LOSS_CASES = [
    dict(),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(weight=np.array([0.2, 1.0, 3.0, 0.5])),
    dict(ignore_index=1),
    dict(weight=np.array([0.2, 1.0, 3.0, 0.5]), ignore_index=2, reduction="mean"),
]


def _targets(n: int = 6) -> np.ndarray:
    return np.array([0, 1, 2, 3, 1, 2])[:n]


@pytest.mark.parametrize("case", LOSS_CASES, ids=lambda c: ",".join(c))
def test_nll_loss(case: dict[str, Any]) -> None:
    logp = leaf(6, 4)
    t = _targets()
    weight = case.get("weight", np.ones(4))
    ignore = case.get("ignore_index", -100)
    w = np.where(t != ignore, weight[t], 0.0)
    losses = -w * logp.data[np.arange(6), t]
    reduction = case.get("reduction", "mean")
    expected = {"none": losses, "sum": losses.sum(), "mean": losses.sum() / w.sum()}[reduction]
    np.testing.assert_allclose(F.nll_loss(logp, t, **case).data, expected, rtol=1e-12)
    assert gradcheck(lambda x: F.nll_loss(x, t, **case), [logp])


@pytest.mark.parametrize("case", LOSS_CASES + [dict(label_smoothing=0.1), dict(label_smoothing=0.3, reduction="sum"),
                                               dict(label_smoothing=0.2, weight=np.array([0.2, 1.0, 3.0, 0.5]),
                                                    ignore_index=1),
                                               dict(label_smoothing=0.2, reduction="none", ignore_index=3)],
                         ids=lambda c: ",".join(c))
def test_cross_entropy(case: dict[str, Any]) -> None:
    x = leaf(6, 4)
    t = _targets()
    eps = case.get("label_smoothing", 0.0)
    weight = case.get("weight", np.ones(4))
    ignore = case.get("ignore_index", -100)
    logp = x.data - np.log(np.exp(x.data).sum(1, keepdims=True))
    valid = t != ignore
    w = np.where(valid, weight[t], 0.0)
    nll = -w * logp[np.arange(6), np.where(valid, t, 0)]
    smooth = np.where(valid, -(logp * weight).sum(1), 0.0)
    reduction = case.get("reduction", "mean")
    if reduction == "none":
        expected = (1 - eps) * nll + eps / 4 * smooth
    elif reduction == "sum":
        expected = (1 - eps) * nll.sum() + eps / 4 * smooth.sum()
    else:
        expected = ((1 - eps) * nll.sum() + eps / 4 * smooth.sum()) / w.sum()
    np.testing.assert_allclose(F.cross_entropy(x, t, **case).data, expected, rtol=1e-12)
    assert gradcheck(lambda a: F.cross_entropy(a, t, **case), [x])


def test_losses_over_spatial_dimensions() -> None:
    x = leaf(2, 3, 4, 2)
    t = RNG.integers(0, 3, (2, 4, 2))
    rows = x.data.transpose(0, 2, 3, 1).reshape(-1, 3)
    flat = F.cross_entropy(optrs.Tensor(rows), t.reshape(-1), reduction="none").data.reshape(2, 4, 2)
    np.testing.assert_allclose(F.cross_entropy(x, t, reduction="none").data, flat, rtol=1e-12)
    assert gradcheck(lambda a: F.cross_entropy(a, t), [x])
    assert gradcheck(lambda a: F.nll_loss(F.log_softmax(a, 1), t, reduction="sum"), [x])


def test_cross_entropy_with_probability_targets() -> None:
    x = leaf(5, 4)
    p = RNG.dirichlet(np.ones(4), 5)
    logp = x.data - np.log(np.exp(x.data).sum(1, keepdims=True))
    np.testing.assert_allclose(F.cross_entropy(x, p).data, -(p * logp).sum(1).mean(), rtol=1e-12)
    assert gradcheck(lambda a: F.cross_entropy(a, p, label_smoothing=0.1), [x])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction: str) -> None:
    x, y = leaf(3, 4), leaf(3, 4)
    d = (x.data - y.data) ** 2
    expected = {"mean": d.mean(), "sum": d.sum(), "none": d}[reduction]
    np.testing.assert_allclose(F.mse_loss(x, y, reduction=reduction).data, expected, rtol=1e-12)
    assert gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction), [x, y])


def test_legacy_size_average_and_reduce() -> None:
    x = leaf(4, 3)
    t = np.array([0, 1, 2, 1])
    np.testing.assert_allclose(F.nll_loss(x, t, None, False).data, F.nll_loss(x, t, reduction="sum").data)
    assert F.mse_loss(x, x * 2, reduce=False).shape == (4, 3)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(training: bool) -> None:
    x, w, b = leaf(4, 3, 2, 2), leaf(3), leaf(3)
    mean, var = RNG.standard_normal(3), np.abs(RNG.standard_normal(3)) + 0.5
    rm, rv = mean.copy(), var.copy()
    y = F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.2, eps=1e-5)
    if training:
        m, v = x.data.mean(axis=(0, 2, 3)), x.data.var(axis=(0, 2, 3))
        np.testing.assert_allclose(rm, 0.8 * mean + 0.2 * m)
        np.testing.assert_allclose(rv, 0.8 * var + 0.2 * v * 16 / 15)
    else:
        m, v = mean, var
        np.testing.assert_array_equal(rm, mean)
    c = (1, 3, 1, 1)
    expected = (x.data - m.reshape(c)) / np.sqrt(v.reshape(c) + 1e-5) * w.data.reshape(c) + b.data.reshape(c)
    np.testing.assert_allclose(y.data, expected, rtol=1e-10)
    assert gradcheck(lambda *a: F.batch_norm(a[0], None if training else mean, None if training else var, a[1], a[2],
                                             training=training), [x, w, b])


def test_layer_norm() -> None:
    x, w, b = leaf(2, 3, 4), leaf(3, 4), leaf(3, 4)
    m = x.data.mean(axis=(1, 2), keepdims=True)
    v = x.data.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(F.layer_norm(x, (3, 4), w, b).data, (x.data - m) / np.sqrt(v + 1e-5) * w.data + b.data,
                               rtol=1e-10)
    assert gradcheck(lambda *a: F.layer_norm(a[0], (3, 4), a[1], a[2]), [x, w, b])
    assert gradcheck(lambda a: F.layer_norm(a, 4), [x])


def test_embedding() -> None:
    w = leaf(5, 3)
    idx = np.array([[0, 2], [2, 4]])
    np.testing.assert_array_equal(F.embedding(idx, w).data, w.data[idx])
    assert gradcheck(lambda a: F.embedding(idx, a), [w])
    # padding_idx and scale_grad_by_freq change the gradient on purpose (no finite differences).
    F.embedding(idx, w, padding_idx=2).sum().backward()
    np.testing.assert_array_equal(w.grad, np.array([[1] * 3, [0] * 3, [0] * 3, [0] * 3, [1] * 3]))
    w.grad = None
    F.embedding(idx, w, scale_grad_by_freq=True).sum().backward()
    np.testing.assert_array_equal(w.grad, np.array([[1] * 3, [0] * 3, [1] * 3, [0] * 3, [1] * 3]))
    big = optrs.Tensor(np.full((3, 2), 10.0))
    F.embedding(np.array([1]), big, max_norm=1.0)
    assert np.isclose(np.linalg.norm(big.data[1]), 1.0, atol=1e-6) and big.data[0, 0] == 10.0


def test_activations_and_flatten() -> None:
    x = leaf(2, 3, 2)
    assert gradcheck(F.sigmoid, [x]) and gradcheck(F.tanh, [x]) and gradcheck(F.relu, [x])
    np.testing.assert_allclose(F.sigmoid(x).data, 1 / (1 + np.exp(-x.data)))
    np.testing.assert_array_equal(F.relu(x).data, np.maximum(x.data, 0))
    assert F.flatten(x, 1).shape == (2, 6)
    extreme = F.sigmoid(optrs.Tensor(np.array([-800.0, 800.0]))).data
    assert np.array_equal(extreme, [0.0, 1.0])


def test_dropout() -> None:
    x = leaf(200, 50)
    optrs.manual_seed(3)
    y = F.dropout(x, 0.3)
    zeros = (y.data == 0).mean()
    assert 0.25 < zeros < 0.35
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], x.data[kept] / 0.7)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, kept / 0.7)
    assert F.dropout(x, 0.3, training=False) is x
    assert np.all(F.dropout(x, 1.0).data == 0)
    optrs.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.3).data, y.data)  # reproducible by seed

    def seeded(t: optrs.Tensor) -> optrs.Tensor:
        optrs.manual_seed(5)
        return F.dropout2d(t, 0.5)

    z = leaf(3, 4, 2, 2)
    assert gradcheck(seeded, [z])
    masked = seeded(z).data
    per_channel = (masked == 0).all(axis=(2, 3)) | (masked != 0).all(axis=(2, 3))
    assert per_channel.all()


# -- the kernels module -------------------------------------------------------------------------

def test_kernels_module_has_exactly_the_contract() -> None:
    assert set(_kernels.CONTRACT) == {
        "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
        "log_softmax", "log_softmax_backward", "softmax", "softmax_backward", "nll_loss", "nll_loss_backward",
        "cross_entropy", "cross_entropy_backward", "relu", "relu_backward"}
    for name in _kernels.CONTRACT:
        fn = getattr(_kernels, name)
        native = getattr(optrs._core, name, None)
        assert (fn is native) == (name in _kernels.NATIVE)


def test_kernels_never_write_their_inputs_and_keep_the_dtype() -> None:
    x = RNG.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
    before = x.copy(), w.copy()
    y = _kernels.conv2d(x, w, None, (1, 1), (1, 1), (1, 1), 1)
    gx, gw, gb = _kernels.conv2d_backward(x, w, np.ones_like(y), (1, 1), (1, 1), (1, 1), 1, True, True, False)
    assert gb is None and y.dtype == gx.dtype == gw.dtype == np.float32 and y.flags.c_contiguous
    p, idx = _kernels.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    assert p.dtype == np.float32 and idx.dtype == np.int64
    r = _kernels.relu(x)
    assert r is not x and r.dtype == np.float32
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(w, before[1])


def test_kernels_check_their_arguments() -> None:
    x = np.ones((1, 2, 4, 4))
    with pytest.raises(optrs.ParamDTypeError, match="weight"):
        _kernels.conv2d(x, np.ones((1, 2, 3, 3), np.float32), None, (1, 1), (0, 0), (1, 1), 1)
    with pytest.raises(optrs.InvalidParamError, match="C-contiguous"):
        _kernels.relu(x.transpose(0, 1, 3, 2))
    with pytest.raises(optrs.InvalidParamError, match="target"):
        _kernels.nll_loss(np.zeros((2, 3)), np.array([0, 5]), None, -100, "mean")


# -- Module API ---------------------------------------------------------------------------------

def test_mnist_net_trains_a_step_in_float32() -> None:
    optrs.manual_seed(1)
    model = Net()
    assert repr(model) == (
        "Net(\n"
        "  (conv1): Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (conv2): Conv2d(32, 64, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (dropout1): Dropout(p=0.25, inplace=False)\n"
        "  (dropout2): Dropout(p=0.5, inplace=False)\n"
        "  (fc1): Linear(in_features=9216, out_features=128, bias=True)\n"
        "  (fc2): Linear(in_features=128, out_features=10, bias=True)\n"
        ")")
    opt = optrs.optim.Adam(model.parameters(), lr=1e-3)
    x = RNG.standard_normal((4, 1, 28, 28)).astype(np.float32)
    labels = np.array([1, 7, 3, 0])
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = F.nll_loss(model(optrs.Tensor(x)), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert loss.dtype == np.float32 and all(p.grad.dtype == np.float32 for p in model.parameters())
    assert losses[-1] < losses[0]
    model.eval()
    with optrs.no_grad():
        out = model(optrs.Tensor(x))
    assert not out.requires_grad and out.argmax(dim=1).shape == (4,)


def test_small_mlp_fits() -> None:
    optrs.manual_seed(0)
    x = RNG.standard_normal((64, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(2, 16, dtype=np.float64), nn.Tanh(), nn.Linear(16, 2, dtype=np.float64))
    opt = optrs.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(200):
        opt.zero_grad()
        loss = loss_fn(model(optrs.Tensor(x)), y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.2


def test_parameters_children_modules_and_names() -> None:
    model = Net()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
                     "fc2.weight", "fc2.bias"]
    assert [p.shape for p in model.parameters()][:2] == [(32, 1, 3, 3), (32,)]
    assert all(isinstance(p, optrs.Parameter) for p in model.parameters())
    assert [n for n, _ in model.named_children()] == ["conv1", "conv2", "dropout1", "dropout2", "fc1", "fc2"]
    assert len(list(model.modules())) == 7 and next(model.modules()) is model
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1", "2"]
    assert isinstance(seq[1], nn.ReLU) and len(seq[:2]) == 2 and len(seq) == 3
    shared = nn.Linear(2, 2)
    twice = nn.Sequential(shared, shared)
    assert len(list(twice.parameters())) == 2


def test_setattr_registration_and_reassignment() -> None:
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = optrs.Parameter(np.zeros(2))
            self.sub = nn.Linear(2, 2)
            self.register_buffer("count", np.zeros(1))
            self.plain = 3

    m = M()
    assert set(dict(m.named_parameters())) == {"w", "sub.weight", "sub.bias"}
    assert list(m.state_dict()) == ["w", "count", "sub.weight", "sub.bias"]
    m.sub = None
    assert set(dict(m.named_parameters())) == {"w"}
    with pytest.raises(optrs.ParamDTypeError, match="Parameter"):
        m.w = np.zeros(2)
    m.w = None
    assert list(m.parameters()) == []
    del m.count
    assert "count" not in m.state_dict()

    class Early(nn.Module):
        def __init__(self) -> None:
            self.w = optrs.Parameter(np.zeros(1))

    with pytest.raises(AttributeError, match="super"):
        Early()


def test_train_eval_and_zero_grad() -> None:
    model = Net()
    assert model.training and model.dropout1.training
    model.eval()
    assert not model.training and not model.fc1.training
    model.train()
    assert model.dropout2.training
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    model.zero_grad(set_to_none=False)
    assert all(np.all(p.grad == 0) for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_round_trip_and_strict_loading() -> None:
    a, b = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm2d(4)), nn.Sequential(nn.Linear(3, 4), nn.BatchNorm2d(4))
    state = a.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                           "1.num_batches_tracked"]
    assert state["0.weight"] is a[0].weight.data  # shared, as torch's
    weight_array = b[0].weight.data
    result = b.load_state_dict({k: v.copy() for k, v in state.items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b[0].weight.data is weight_array  # copied in place
    np.testing.assert_array_equal(b[0].weight.data, a[0].weight.data)
    partial = {k: v for k, v in state.items() if k != "0.bias"}
    partial["extra"] = np.zeros(1)
    with pytest.raises(optrs.InvalidParamError, match='Missing key.*"0.bias"'):
        b.load_state_dict(partial)
    with pytest.raises(optrs.InvalidParamError, match='Unexpected key.*"extra"'):
        b.load_state_dict(partial)
    assert b.load_state_dict(partial, strict=False) == (["0.bias"], ["extra"])
    bad = dict(state)
    bad["0.weight"] = np.zeros((2, 2))
    with pytest.raises(optrs.InvalidParamError, match="size mismatch for 0.weight"):
        b.load_state_dict(bad, strict=False)


def test_forward_hooks() -> None:
    layer = nn.Linear(2, 2, dtype=np.float64)
    calls: list[str] = []
    pre = layer.register_forward_pre_hook(lambda m, args: (args[0] * 2,))
    post = layer.register_forward_hook(lambda m, args, out: out + 1)
    x = optrs.Tensor(np.ones((1, 2)))
    expected = F.linear(x * 2, layer.weight, layer.bias) + 1
    np.testing.assert_allclose(layer(x).data, expected.data)
    pre.remove()
    post.remove()
    np.testing.assert_allclose(layer(x).data, F.linear(x, layer.weight, layer.bias).data)
    layer.register_forward_hook(lambda m, args, out: calls.append(type(m).__name__))
    layer(x)
    assert calls == ["Linear"]


def test_full_backward_hook() -> None:
    layer = nn.Linear(3, 2, dtype=np.float64)
    seen: dict[str, Any] = {}

    def hook(module: nn.Module, grad_input: tuple[Any, ...], grad_output: tuple[Any, ...]) -> tuple[Any, ...]:
        seen["in"], seen["out"] = grad_input, grad_output
        return grad_input if grad_input[0] is None else (grad_input[0] * 0,)

    handle = layer.register_full_backward_hook(hook)
    x = leaf(4, 3)
    out = layer(x)
    (out * 2).sum().backward()
    np.testing.assert_allclose(seen["out"][0].data, np.full((4, 2), 2.0))
    np.testing.assert_allclose(seen["in"][0].data, 2 * np.ones((4, 2)) @ layer.weight.data)
    np.testing.assert_array_equal(x.grad, np.zeros((4, 3)))  # the hook's replacement
    assert layer.weight.grad is not None
    handle.remove()
    no_grad_input = optrs.Tensor(np.ones((1, 3)))
    layer.register_full_backward_hook(hook)
    layer(no_grad_input).sum().backward()
    assert seen["in"] == (None,)


def test_default_initialisation_is_torchs() -> None:
    optrs.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (lin.weight, lin.bias):
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.95 * bound
    assert abs(lin.weight.data.std() - bound / math.sqrt(3)) < 0.01 * bound
    conv = nn.Conv2d(8, 16, (3, 5))
    fan_in = 8 * 3 * 5
    assert np.abs(conv.weight.data).max() <= 1 / math.sqrt(fan_in)
    assert nn.init._calculate_fan_in_and_fan_out(conv.weight) == (fan_in, 16 * 15)
    optrs.manual_seed(0)
    np.testing.assert_array_equal(nn.Linear(400, 300).weight.data, lin.weight.data)


def test_init_functions() -> None:
    w = optrs.Parameter(np.empty((200, 300)))
    nn.init.xavier_uniform_(w, gain=2.0)
    a = 2.0 * math.sqrt(6 / 500)
    assert np.abs(w.data).max() <= a and np.abs(w.data).max() > 0.98 * a
    nn.init.xavier_normal_(w)
    assert abs(w.data.std() - math.sqrt(2 / 500)) < 0.002
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.data.std() - math.sqrt(2 / 200)) < 0.003
    nn.init.kaiming_uniform_(w, nonlinearity="relu")
    assert np.abs(w.data).max() <= math.sqrt(6 / 300)
    nn.init.normal_(w, 1.0, 0.1)
    assert abs(w.data.mean() - 1.0) < 0.01
    nn.init.uniform_(w, -2, -1)
    assert w.data.min() >= -2 and w.data.max() <= -1
    nn.init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert np.abs(w.data).max() <= 0.5
    assert np.all(nn.init.zeros_(w).data == 0) and np.all(nn.init.ones_(w).data == 1)
    assert np.all(nn.init.constant_(w, 0.3).data == 0.3)
    assert nn.init.calculate_gain("relu") == math.sqrt(2)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert nn.init.calculate_gain("tanh") == 5 / 3 and nn.init.calculate_gain("conv2d") == 1
    with pytest.raises(optrs.InvalidHyperparameterError, match="Unsupported nonlinearity"):
        nn.init.calculate_gain("swish")
    with pytest.raises(optrs.InvalidParamError, match="fewer than 2 dimensions"):
        nn.init.xavier_uniform_(optrs.Parameter(np.zeros(3)))


def test_batchnorm2d_module() -> None:
    bn = nn.BatchNorm2d(3, momentum=0.5, dtype=np.float64)
    x = optrs.Tensor(RNG.standard_normal((4, 3, 2, 2)) * 2 + 1)
    bn(x)
    np.testing.assert_allclose(bn.running_mean.data, 0.5 * x.data.mean(axis=(0, 2, 3)))
    assert int(bn.num_batches_tracked.item()) == 1
    bn.eval()
    y = bn(x)
    expected = (x.data - bn.running_mean.data.reshape(1, 3, 1, 1)) / np.sqrt(
        bn.running_var.data.reshape(1, 3, 1, 1) + 1e-5)
    np.testing.assert_allclose(y.data, expected, rtol=1e-10)
    assert int(bn.num_batches_tracked.item()) == 1
    cumulative = nn.BatchNorm2d(3, momentum=None, dtype=np.float64)
    cumulative(x)
    cumulative(x * 3)
    np.testing.assert_allclose(cumulative.running_mean.data, 2 * x.data.mean(axis=(0, 2, 3)))
    assert repr(bn) == "BatchNorm2d(3, eps=1e-05, momentum=0.5, affine=True, track_running_stats=True)"


def test_other_modules() -> None:
    x = leaf(2, 3, 6, 6)
    assert nn.MaxPool2d(2)(x).shape == (2, 3, 3, 3)
    assert nn.AvgPool2d(3, stride=1, padding=1)(x).shape == (2, 3, 6, 6)
    assert nn.Flatten()(x).shape == (2, 108)
    assert nn.Conv2d(3, 4, 3, padding="same", dtype=np.float64)(x).shape == (2, 4, 6, 6)
    assert nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3, bias=False, dtype=np.float64)(x).shape == (2, 6, 3, 3)
    drop = nn.Dropout2d(0.5)
    drop.eval()
    assert drop(x) is x
    ln = nn.LayerNorm(6, dtype=np.float64)
    assert ln(x).shape == x.shape and list(dict(ln.named_parameters())) == ["weight", "bias"]
    emb = nn.Embedding(10, 4, padding_idx=0)
    assert np.all(emb.weight.data[0] == 0) and emb(np.array([[1, 0]])).shape == (1, 2, 4)
    assert repr(emb) == "Embedding(10, 4, padding_idx=0)"
    assert nn.Softmax(dim=1)(x).shape == x.shape and nn.LogSoftmax(1)(x).shape == x.shape
    assert nn.Sigmoid()(x).shape == x.shape and nn.Identity()(x) is x
    t = np.array([0, 1])
    logits = leaf(2, 3)
    np.testing.assert_allclose(nn.NLLLoss()(F.log_softmax(logits, 1), t).data,
                               nn.CrossEntropyLoss()(logits, t).data, rtol=1e-12)
    weighted = nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 3.0]), label_smoothing=0.1, reduction="sum")
    np.testing.assert_allclose(weighted(logits, t).data, F.cross_entropy(logits, t, np.array([1.0, 2.0, 3.0]),
                                                                        reduction="sum", label_smoothing=0.1).data)
    assert nn.MSELoss(reduction="none")(logits, logits * 0).shape == (2, 3)
    ml = nn.ModuleList([nn.Linear(2, 2), nn.ReLU()])
    assert len(ml) == 2 and len(list(ml.parameters())) == 2
    seq = nn.Sequential(OrderedDict(first=nn.Linear(2, 2), act=nn.ReLU()))
    assert [n for n, _ in seq.named_children()] == ["first", "act"]


def test_module_to_double() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm2d(2))
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64 and model[1].num_batches_tracked.dtype == np.int64


# -- bad inputs ---------------------------------------------------------------------------------

def test_bad_inputs_name_the_argument() -> None:
    x = optrs.Tensor(np.ones((2, 3, 8, 8), np.float32))
    w = optrs.Tensor(np.ones((4, 2, 3, 3), np.float32))
    with pytest.raises(optrs.InvalidParamError, match="3 channels.*expects 2"):
        F.conv2d(x, w)
    with pytest.raises(optrs.ParamDTypeError, match="weight is float64 but input is float32"):
        F.conv2d(x, np.ones((4, 3, 3, 3)))
    with pytest.raises(optrs.InvalidHyperparameterError, match="stride"):
        F.conv2d(x, np.ones((4, 3, 3, 3), np.float32), stride=0)
    with pytest.raises(optrs.InvalidHyperparameterError, match="strided"):
        F.conv2d(x, np.ones((4, 3, 3, 3), np.float32), stride=2, padding="same")
    with pytest.raises(optrs.InvalidHyperparameterError, match="padding"):
        F.conv2d(x, np.ones((4, 3, 3, 3), np.float32), padding="full")
    with pytest.raises(optrs.InvalidParamError, match="larger than"):
        F.conv2d(x, np.ones((4, 3, 9, 9), np.float32))
    with pytest.raises(optrs.InvalidParamError, match="input must be"):
        F.max_pool2d(optrs.Tensor(np.ones((8, 8), np.float32)), 2)
    with pytest.raises(optrs.InvalidHyperparameterError, match="half of the kernel"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(optrs.InvalidParamError, match="in_features"):
        F.linear(optrs.Tensor(np.ones((2, 5))), np.ones((3, 4)))
    logits = optrs.Tensor(np.zeros((3, 4)))
    with pytest.raises(optrs.InvalidParamError, match="target 4 is out of bounds"):
        F.nll_loss(logits, np.array([0, 4, 1]))
    with pytest.raises(optrs.ParamDTypeError, match="target must hold integer"):
        F.nll_loss(logits, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(optrs.InvalidParamError, match="target of shape"):
        F.cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(optrs.InvalidHyperparameterError, match="reduction"):
        F.mse_loss(logits, logits, reduction="avg")
    with pytest.raises(optrs.InvalidHyperparameterError, match="label_smoothing"):
        F.cross_entropy(logits, np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(optrs.InvalidParamError, match="weight must have one entry per class"):
        F.cross_entropy(logits, np.array([0, 1, 2]), weight=np.ones(3))
    with pytest.raises(optrs.InvalidHyperparameterError, match="p=1.5"):
        F.dropout(logits, 1.5)
    with pytest.raises(optrs.InvalidHyperparameterError, match="dropout probability"):
        nn.Dropout(-0.1)
    with pytest.raises(optrs.ParamDTypeError, match="input must be an optrs.Tensor"):
        F.relu([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(optrs.ParamDTypeError, match="input must be a floating-point"):
        F.relu(np.arange(3))
    with pytest.raises(IndexError, match="index 7 is out of range"):
        F.embedding(np.array([7]), np.ones((5, 2)))
    with pytest.raises(optrs.InvalidParamError, match="more than 1 value per channel"):
        F.batch_norm(optrs.Tensor(np.ones((1, 3, 1, 1))), None, None, training=True)
    with pytest.raises(optrs.InvalidParamError, match="normalized_shape"):
        F.layer_norm(logits, (3,))
    with pytest.raises(optrs.InvalidHyperparameterError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(optrs.InvalidHyperparameterError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(optrs.InvalidHyperparameterError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(optrs.ParamDTypeError, match="dtype"):
        nn.Linear(2, 3, dtype=np.int32)
    with pytest.raises(optrs.InvalidParamError, match="4-D"):
        nn.BatchNorm2d(3)(optrs.Tensor(np.ones((2, 3), np.float32)))
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(x)
