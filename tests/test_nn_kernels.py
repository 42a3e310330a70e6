"""The NN kernels of optrs._core (the contract of optrs.autograd.kernels) against straightforward NumPy
references (float64 to ~1e-12, float32 to float32 rounding), against torch 2.13's reference files
(tests/reference/torch-2.13/layer_*.npz, float64 rtol 1e-9), bit for bit across thread counts,
and on bad input."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import optrs
from optrs import _core

REFERENCE = Path(__file__).resolve().parent / "reference" / "torch-2.13"
Array = NDArray[Any]
DTYPES = [np.float64, np.float32]
RTOL = {np.float64: 1e-12, np.float32: 2e-5}


def close(actual: Any, expected: Any, dtype: Any, scale: float = 1.0) -> None:
    """Relative agreement, with an absolute floor at the data's scale for values near zero."""
    rtol = RTOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def randn(rng: np.random.Generator, *shape: int, dtype: Any = np.float64) -> Array:
    return rng.standard_normal(shape).astype(dtype)


@pytest.fixture
def threads() -> Iterator[Callable[[int], None]]:
    before = optrs.get_num_threads()
    yield optrs.set_num_threads
    optrs.set_num_threads(before)


# -- NumPy references (float64) -------------------------------------------------------------------


def ref_conv2d(x: Array, w: Array, b: Array | None, stride: tuple[int, int], padding: tuple[int, int],
               dilation: tuple[int, int], groups: int) -> Array:
    n, c_in, h, wd = x.shape
    c_out, gin, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    gout = c_out // groups
    y = np.zeros((n, c_out, oh, ow))
    for g in range(groups):
        xg = xp[:, g * gin:(g + 1) * gin]
        wg = w[g * gout:(g + 1) * gout]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
                y[:, g * gout:(g + 1) * gout] += np.einsum("ncij,oc->noij", patch, wg[:, :, i, j])
    if b is not None:
        y += b[None, :, None, None]
    return y


def ref_conv2d_backward(x: Array, w: Array, gy: Array, stride: tuple[int, int], padding: tuple[int, int],
                        dilation: tuple[int, int], groups: int) -> tuple[Array, Array, Array]:
    n, c_in, h, wd = x.shape
    c_out, gin, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    oh, ow = gy.shape[2:]
    gout = c_out // groups
    for g in range(groups):
        cin_g, cout_g = slice(g * gin, (g + 1) * gin), slice(g * gout, (g + 1) * gout)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
                cols = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
                gw[cout_g, :, i, j] = np.einsum("noij,ncij->oc", gy[:, cout_g], xp[:, cin_g, rows, cols])
                gxp[:, cin_g, rows, cols] += np.einsum("noij,oc->ncij", gy[:, cout_g], w[cout_g, :, i, j])
    gx = gxp[:, :, ph:ph + h, pw:pw + wd]
    return gx, gw, gy.sum(axis=(0, 2, 3))


def pool_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def ref_max_pool2d(x: Array, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int], d: tuple[int, int],
                   ceil_mode: bool) -> tuple[Array, Array]:
    n, c, h, w = x.shape
    oh, ow = (pool_out(h, k[0], s[0], p[0], d[0], ceil_mode), pool_out(w, k[1], s[1], p[1], d[1], ceil_mode))
    y = np.zeros((n, c, oh, ow), x.dtype)
    idx = np.zeros((n, c, oh, ow), np.int64)
    for a in range(n):
        for b in range(c):
            for i in range(oh):
                for j in range(ow):
                    best, best_index = -np.inf, -1
                    for ki in range(k[0]):
                        for kj in range(k[1]):
                            ih, iw = i * s[0] - p[0] + ki * d[0], j * s[1] - p[1] + kj * d[1]
                            if 0 <= ih < h and 0 <= iw < w:
                                v = x[a, b, ih, iw]
                                if best_index < 0 or v > best or np.isnan(v):
                                    best, best_index = v, ih * w + iw
                    y[a, b, i, j], idx[a, b, i, j] = best, best_index
    return y, idx


def ref_max_pool2d_backward(gy: Array, idx: Array, shape: tuple[int, ...]) -> Array:
    gx = np.zeros(shape, gy.dtype).reshape(shape[0], shape[1], -1)
    for a in range(shape[0]):
        for b in range(shape[1]):
            np.add.at(gx[a, b], idx[a, b].ravel(), gy[a, b].ravel())
    return gx.reshape(shape)


def avg_windows(shape: tuple[int, ...], k: tuple[int, int], s: tuple[int, int], p: tuple[int, int],
                ceil_mode: bool, count_include_pad: bool, divisor_override: int | None
                ) -> Iterator[tuple[int, int, slice, slice, float]]:
    h, w = shape[2:]
    oh, ow = (pool_out(h, k[0], s[0], p[0], 1, ceil_mode), pool_out(w, k[1], s[1], p[1], 1, ceil_mode))
    for i in range(oh):
        for j in range(ow):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
            padded = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            divisor = divisor_override or (padded if count_include_pad else (h1 - h0) * (w1 - w0))
            yield i, j, slice(h0, h1), slice(w0, w1), divisor


def ref_avg_pool2d(x: Array, *options: Any) -> Array:
    windows = list(avg_windows(x.shape, *options))
    oh, ow = windows[-1][0] + 1, windows[-1][1] + 1
    y = np.zeros(x.shape[:2] + (oh, ow), x.dtype)
    for i, j, rows, cols, divisor in windows:
        y[:, :, i, j] = x[:, :, rows, cols].sum(axis=(2, 3)) / divisor
    return y


def ref_avg_pool2d_backward(gy: Array, shape: tuple[int, ...], *options: Any) -> Array:
    gx = np.zeros(shape, gy.dtype)
    for i, j, rows, cols, divisor in avg_windows(shape, *options):
        gx[:, :, rows, cols] += (gy[:, :, i, j] / divisor)[:, :, None, None]
    return gx


def ref_log_softmax(x: Array) -> Array:
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def ref_nll(logp: Array, target: Array, weight: Array | None, ignore_index: int, reduction: str,
            smoothing: float = 0.0) -> tuple[Array, float]:
    """torch's nll_loss, or cross_entropy's label-smoothed mix of it when `smoothing` > 0."""
    n, c = logp.shape
    w = np.ones(c) if weight is None else weight
    counted = target != ignore_index
    safe = np.where(counted, target, 0)
    nll = np.where(counted, -logp[np.arange(n), safe] * w[safe], 0.0)
    smooth = np.where(counted, -(logp * w).sum(axis=1), 0.0)
    total_weight = float(w[safe][counted].sum())
    if reduction == "none":
        return (1 - smoothing) * nll + smoothing / c * smooth, 0.0
    nll_r, smooth_r = nll.sum(), smooth.sum()
    if reduction == "mean":
        nll_r, smooth_r = nll_r / total_weight, smooth_r / total_weight
    return np.asarray((1 - smoothing) * nll_r + smoothing / c * smooth_r), total_weight


def ref_nll_grad(grad_loss: Array, target: Array, weight: Array | None, ignore_index: int, reduction: str,
                 total_weight: float, c: int, smoothing: float = 0.0) -> Array:
    n = target.shape[0]
    w = np.ones(c) if weight is None else weight
    counted = target != ignore_index
    g = grad_loss if reduction == "none" else np.full(n, grad_loss / (total_weight if reduction == "mean" else 1))
    g = np.where(counted, g, 0.0)
    grad = -(smoothing / c) * w[None, :] * g[:, None]
    rows = np.arange(n)[counted]
    grad[rows, target[counted]] -= (1 - smoothing) * w[target[counted]] * g[counted]
    return grad


# -- convolution ----------------------------------------------------------------------------------

CONV_CASES = [
    # (N, C_in, H, W), (C_out, kH, kW), stride, padding, dilation, groups, bias
    ((2, 3, 9, 9), (4, 3, 3), (1, 1), (0, 0), (1, 1), 1, True),
    ((2, 2, 8, 7), (3, 3, 3), (2, 2), (1, 1), (1, 1), 1, True),
    ((3, 4, 10, 11), (6, 3, 2), (2, 1), (1, 0), (2, 3), 2, False),
    ((2, 6, 7, 7), (6, 3, 3), (1, 2), (2, 1), (1, 1), 3, True),
    ((2, 5, 6, 6), (4, 1, 1), (1, 1), (0, 0), (1, 1), 1, True),
    ((1, 4, 6, 5), (4, 1, 1), (2, 2), (1, 1), (1, 1), 4, False),
    ((2, 1, 5, 5), (2, 5, 5), (1, 1), (2, 2), (1, 1), 1, True),
    ((0, 2, 5, 5), (3, 3, 3), (1, 1), (0, 0), (1, 1), 1, True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_numpy(case: Any, dtype: Any) -> None:
    x_shape, (c_out, kh, kw), stride, padding, dilation, groups, with_bias = case
    rng = np.random.default_rng(1)
    x = randn(rng, *x_shape)
    w = randn(rng, c_out, x_shape[1] // groups, kh, kw)
    b = randn(rng, c_out) if with_bias else None
    y64 = ref_conv2d(x, w, b, stride, padding, dilation, groups)
    gy = randn(rng, *y64.shape)
    gx64, gw64, gb64 = ref_conv2d_backward(x, w, gy, stride, padding, dilation, groups)
    cast = [None if a is None else a.astype(dtype) for a in (x, w, b, gy)]
    xd, wd, bd, gyd = cast
    y = _core.conv2d(xd, wd, bd, stride, padding, dilation, groups)
    assert y.dtype == dtype and y.shape == y64.shape
    close(y, y64, dtype, scale=10)
    gx, gw, gb = _core.conv2d_backward(xd, wd, gyd, stride, padding, dilation, groups, True, True, True)
    for got, want in ((gx, gx64), (gw, gw64), (gb, gb64)):
        assert got.dtype == dtype and got.shape == want.shape
        close(got, want, dtype, scale=10 * math.sqrt(max(x_shape[0], 1) * 100))
    only_w = _core.conv2d_backward(xd, wd, gyd, stride, padding, dilation, groups, False, True, False)
    assert only_w[0] is None and only_w[2] is None
    np.testing.assert_array_equal(only_w[1], gw)


def test_conv2d_takes_ints_for_pairs() -> None:
    rng = np.random.default_rng(2)
    x, w = randn(rng, 2, 3, 8, 8), randn(rng, 4, 3, 3, 3)
    paired = _core.conv2d(x, w, None, (2, 2), (1, 1), (1, 1), 1)
    np.testing.assert_array_equal(_core.conv2d(x, w, None, 2, 1, 1, 1), paired)


def load_reference(name: str) -> tuple[dict[str, Any], dict[str, Array]]:
    data = np.load(REFERENCE / f"layer_{name}.npz")
    return json.loads(str(data["meta"])), {k: data[k] for k in data.files if k != "meta"}


def as_pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


@pytest.mark.parametrize("name", ["conv2d", "conv2d_stride_pad"])
def test_conv2d_matches_torch(name: str) -> None:
    meta, d = load_reference(name)
    stride, padding = as_pair(meta["kwargs"].get("stride", 1)), as_pair(meta["kwargs"].get("padding", 0))
    y = _core.conv2d(d["x_0"], d["x_1"], d["x_2"], stride, padding, (1, 1), 1)
    np.testing.assert_allclose(y, d["y"], rtol=1e-9, atol=1e-12)
    grads = _core.conv2d_backward(d["x_0"], d["x_1"], d["gy"], stride, padding, (1, 1), 1, True, True, True)
    for i, got in enumerate(grads):
        np.testing.assert_allclose(got, d[f"gx_{i}"], rtol=1e-9, atol=1e-12)


# -- pooling --------------------------------------------------------------------------------------

MAX_POOL_CASES = [
    # kernel, stride, padding, dilation, ceil_mode
    ((2, 2), (2, 2), (0, 0), (1, 1), False),
    ((3, 3), (2, 2), (1, 1), (1, 1), True),
    ((3, 2), (1, 2), (1, 0), (2, 1), False),
    ((2, 3), (3, 2), (1, 1), (1, 2), True),
    ((3, 3), (3, 3), (0, 0), (1, 1), True),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MAX_POOL_CASES)
def test_max_pool2d_matches_numpy(case: Any, dtype: Any) -> None:
    rng = np.random.default_rng(3)
    x = randn(rng, 2, 3, 9, 8, dtype=dtype)
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 5.0  # a tie: the first maximum wins
    x[1, 2, 4, 4] = np.nan
    y_ref, idx_ref = ref_max_pool2d(x, *case)
    y, idx = _core.max_pool2d(x, *case)
    assert y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    gy = randn(rng, *y.shape, dtype=dtype)
    gx = _core.max_pool2d_backward(gy, idx, x.shape)
    close(gx, ref_max_pool2d_backward(gy.astype(np.float64), idx, x.shape), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", [(2, 2), (3, 2), (1, 1)])
def test_tiling_max_pool2d_keeps_torchs_tie_and_nan_rules(kernel: tuple[int, int], dtype: Any) -> None:
    """Windows that tile the input (kernel = stride, no padding) take a faster path; it must pick
    the same element as torch: the first maximum, the last NaN, the first tap of an all -inf
    window."""
    rng = np.random.default_rng(4)
    x = randn(rng, 3, 2, 7, 9, dtype=dtype)
    x[0, 0, :2, :2] = 5.0                            # a four-way tie
    x[0, 1, :3, :3] = -np.inf                        # all -inf
    x[1, 0, 0, 0], x[1, 0, 1, 1] = np.nan, np.nan    # two NaNs: the last wins
    x[2, 1, 0, 1] = np.nan
    for args in [(kernel, kernel, (0, 0), (1, 1), False), (kernel, kernel, (0, 0), (1, 1), True)]:
        y_ref, idx_ref = ref_max_pool2d(x, *args)
        y, idx = _core.max_pool2d(x, *args)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(idx, idx_ref)


def test_max_pool2d_matches_torch() -> None:
    meta, d = load_reference("max_pool2d")
    k = as_pair(meta["kwargs"]["kernel_size"])
    y, idx = _core.max_pool2d(d["x_0"], k, k, (0, 0), (1, 1), False)
    np.testing.assert_allclose(y, d["y"], rtol=1e-9)
    np.testing.assert_allclose(_core.max_pool2d_backward(d["gy"], idx, d["x_0"].shape), d["gx_0"], rtol=1e-9)


AVG_POOL_CASES = [
    # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ((2, 2), (2, 2), (0, 0), False, True, None),
    ((3, 3), (2, 2), (1, 1), True, True, None),
    ((3, 3), (2, 2), (1, 1), True, False, None),
    ((3, 2), (2, 1), (1, 1), False, False, 5),
    ((2, 3), (3, 2), (1, 1), True, True, None),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", AVG_POOL_CASES)
def test_avg_pool2d_matches_numpy(case: Any, dtype: Any) -> None:
    rng = np.random.default_rng(4)
    x = randn(rng, 2, 3, 9, 8)
    y_ref = ref_avg_pool2d(x, *case)
    y = _core.avg_pool2d(x.astype(dtype), *case)
    assert y.dtype == dtype
    close(y, y_ref, dtype)
    gy = randn(rng, *y.shape)
    gx = _core.avg_pool2d_backward(gy.astype(dtype), x.shape, *case)
    close(gx, ref_avg_pool2d_backward(gy, x.shape, *case), dtype)


# -- softmax, losses, relu ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_and_log_softmax_match_numpy(dtype: Any) -> None:
    rng = np.random.default_rng(5)
    x, gy = randn(rng, 37, 11) * 4, randn(rng, 37, 11)
    logp_ref = ref_log_softmax(x)
    p_ref = np.exp(logp_ref)
    xd, gyd = x.astype(dtype), gy.astype(dtype)
    logp, p = _core.log_softmax(xd), _core.softmax(xd)
    close(logp, logp_ref, dtype, scale=10)
    close(p, p_ref, dtype)
    close(_core.log_softmax_backward(gyd, logp), gy - p_ref * gy.sum(axis=1, keepdims=True), dtype, scale=10)
    close(_core.softmax_backward(gyd, p), p_ref * (gy - (gy * p_ref).sum(axis=1, keepdims=True)), dtype)


def test_log_softmax_matches_torch() -> None:
    _, d = load_reference("log_softmax")
    y = _core.log_softmax(d["x_0"])
    np.testing.assert_allclose(y, d["y"], rtol=1e-9)
    np.testing.assert_allclose(_core.log_softmax_backward(d["gy"], y), d["gx_0"], rtol=1e-9, atol=1e-15)


LOSS_CASES = [
    # weighted, ignore_index, reduction
    (False, -100, "mean"),
    (True, -100, "mean"),
    (True, 2, "mean"),
    (False, 3, "sum"),
    (True, -100, "none"),
    (False, 0, "none"),
]


def loss_inputs(dtype: Any, weighted: bool, ignore_index: int) -> tuple[Array, Array, Array | None]:
    rng = np.random.default_rng(6)
    x = randn(rng, 40, 7) * 3
    target = rng.integers(0, 7, 40).astype(np.int64)
    if ignore_index < 0:
        target[[3, 17]] = ignore_index
    weight = rng.uniform(0.2, 2.0, 7) if weighted else None
    return x, target, weight


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LOSS_CASES)
def test_nll_loss_matches_numpy(case: Any, dtype: Any) -> None:
    weighted, ignore_index, reduction = case
    x, target, weight = loss_inputs(dtype, weighted, ignore_index)
    logp = ref_log_softmax(x)
    loss_ref, total_ref = ref_nll(logp, target, weight, ignore_index, reduction)
    wd = None if weight is None else weight.astype(dtype)
    loss, total = _core.nll_loss(logp.astype(dtype), target, wd, ignore_index, reduction)
    assert loss.dtype == dtype and loss.shape == loss_ref.shape
    assert isinstance(total, float)
    close(loss, loss_ref, dtype)
    if reduction != "none":
        assert total == pytest.approx(total_ref, rel=RTOL[dtype])
    rng = np.random.default_rng(7)
    grad_loss = randn(rng, *loss_ref.shape)
    grad = _core.nll_loss_backward(grad_loss.astype(dtype), target, wd, ignore_index, reduction, total, 7)
    close(grad, ref_nll_grad(grad_loss, target, weight, ignore_index, reduction, total_ref, 7), dtype)


def test_nll_loss_matches_torch() -> None:
    _, d = load_reference("nll_loss")
    logp = _core.log_softmax(d["x_0"])
    loss, total = _core.nll_loss(logp, d["x_1"], None, -100, "mean")
    np.testing.assert_allclose(loss, d["y"], rtol=1e-9)
    grad_logp = _core.nll_loss_backward(d["gy"], d["x_1"], None, -100, "mean", total, logp.shape[1])
    np.testing.assert_allclose(_core.log_softmax_backward(grad_logp, logp), d["gx_0"], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("case", LOSS_CASES)
def test_cross_entropy_matches_numpy(case: Any, smoothing: float, dtype: Any) -> None:
    weighted, ignore_index, reduction = case
    x, target, weight = loss_inputs(dtype, weighted, ignore_index)
    logp = ref_log_softmax(x)
    loss_ref, total_ref = ref_nll(logp, target, weight, ignore_index, reduction, smoothing)
    wd = None if weight is None else weight.astype(dtype)
    loss, probabilities = _core.cross_entropy(x.astype(dtype), target, wd, ignore_index, reduction, smoothing)
    assert loss.dtype == dtype and loss.shape == loss_ref.shape
    close(loss, loss_ref, dtype, scale=10)
    close(probabilities, np.exp(logp), dtype)
    rng = np.random.default_rng(8)
    grad_loss = randn(rng, *loss_ref.shape)
    grad_logp = ref_nll_grad(grad_loss, target, weight, ignore_index, reduction, total_ref, 7, smoothing)
    grad_ref = grad_logp - np.exp(logp) * grad_logp.sum(axis=1, keepdims=True)
    grad = _core.cross_entropy_backward(grad_loss.astype(dtype), probabilities, target, wd, ignore_index,
                                        reduction, smoothing)
    close(grad, grad_ref, dtype)


def test_cross_entropy_gradient_is_the_loss_derivative() -> None:
    # Central differences of the loss itself: checks the backward formula, not a transcription of it.
    x, target, weight = loss_inputs(np.float64, True, -100)
    x, target = x[:5], target[:5]
    target[1] = -100

    def loss_at(z: Array) -> float:
        return float(_core.cross_entropy(z, target, weight, -100, "mean", 0.2)[0])

    _, probabilities = _core.cross_entropy(x, target, weight, -100, "mean", 0.2)
    grad = _core.cross_entropy_backward(np.ones(()), probabilities, target, weight, -100, "mean", 0.2)
    numeric = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[i] = 1e-6
        numeric[i] = (loss_at(x + step) - loss_at(x - step)) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_cross_entropy_matches_torch() -> None:
    _, d = load_reference("cross_entropy")
    loss, probabilities = _core.cross_entropy(d["x_0"], d["x_1"], None, -100, "mean", 0.0)
    np.testing.assert_allclose(loss, d["y"], rtol=1e-9)
    grad = _core.cross_entropy_backward(d["gy"], probabilities, d["x_1"], None, -100, "mean", 0.0)
    np.testing.assert_allclose(grad, d["gx_0"], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_matches_numpy(dtype: Any) -> None:
    rng = np.random.default_rng(9)
    x, gy = randn(rng, 3, 4, 5, dtype=dtype), randn(rng, 3, 4, 5, dtype=dtype)
    x[0, 0, :3] = [0.0, -0.0, np.nan]
    y = _core.relu(x)
    np.testing.assert_array_equal(y, np.where(x < 0, 0, x))
    np.testing.assert_array_equal(_core.relu_backward(gy, y), np.where(y > 0, gy, 0) + np.where(np.isnan(y), gy, 0))


def test_outputs_are_new_arrays() -> None:
    rng = np.random.default_rng(10)
    x = randn(rng, 4, 6)
    before = x.copy()
    y = _core.relu(x)
    assert not np.shares_memory(x, y)
    _core.log_softmax(x)
    np.testing.assert_array_equal(x, before)


# -- matmul ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
def test_matmul_matches_numpy(transpose_a: bool, transpose_b: bool, dtype: Any) -> None:
    rng = np.random.default_rng(12)
    m, k, n = 37, 300, 29
    a = randn(rng, *((k, m) if transpose_a else (m, k)), dtype=dtype)
    b = randn(rng, *((n, k) if transpose_b else (k, n)), dtype=dtype)
    want = (a.T if transpose_a else a).astype(np.float64) @ (b.T if transpose_b else b).astype(np.float64)
    got = _core.matmul(a, b, transpose_a, transpose_b)
    assert got.dtype == dtype and got.shape == (m, n)
    close(got, want, dtype, scale=k ** 0.5)


def test_matmul_of_empty_inner_dimension_is_zeros() -> None:
    got = _core.matmul(np.ones((3, 0)), np.ones((0, 2)))
    np.testing.assert_array_equal(got, np.zeros((3, 2)))


def test_bad_matmul_inputs_name_the_argument() -> None:
    a = np.ones((2, 3), np.float32)
    with pytest.raises(optrs.InvalidParamError, match="a's columns must match b's rows"):
        _core.matmul(a, np.ones((2, 3), np.float32))
    with pytest.raises(optrs.ParamDTypeError, match="b has dtype float64"):
        _core.matmul(a, np.ones((3, 2)))
    with pytest.raises(optrs.InvalidParamError, match="b"):
        _core.matmul(a, np.ones((3,), np.float32))
    with pytest.raises(optrs.InvalidParamError, match="a"):
        _core.matmul(np.ones((4, 6), np.float32)[:, ::2], np.ones((3, 2), np.float32))


# -- determinism ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_the_thread_count(dtype: Any, threads: Callable[[int], None]) -> None:
    rng = np.random.default_rng(11)
    x, w, b = randn(rng, 13, 8, 20, 20, dtype=dtype), randn(rng, 16, 8, 3, 3, dtype=dtype), randn(rng, 16, dtype=dtype)
    gy = randn(rng, 13, 16, 18, 18, dtype=dtype)
    logits = randn(rng, 3000, 10, dtype=dtype)
    target = rng.integers(0, 10, 3000).astype(np.int64)

    def run() -> list[Array]:
        out = [_core.conv2d(x, w, b, 1, 0, 1, 1)]
        out += list(_core.conv2d_backward(x, w, gy, 1, 0, 1, 1, True, True, True))
        out += list(_core.conv2d_backward(x[:1], w, gy[:1], 1, 0, 1, 1, True, True, True))
        y, idx = _core.max_pool2d(x, 3, 2, 1, 1, True)
        out += [y, idx, _core.max_pool2d_backward(y, idx, x.shape)]
        a = _core.avg_pool2d(x, 3, 2, 1, True, False, None)
        out += [a, _core.avg_pool2d_backward(a, x.shape, 3, 2, 1, True, False, None)]
        logp = _core.log_softmax(logits)
        out += [logp, _core.log_softmax_backward(logits, logp), _core.relu(x), _core.relu_backward(x, x)]
        loss, p = _core.cross_entropy(logits, target, None, -100, "mean", 0.1)
        out += [loss, p, _core.cross_entropy_backward(np.ones((), dtype), p, target, None, -100, "mean", 0.1)]
        out += [_core.nll_loss(logp, target, None, -100, "sum")[0]]
        y2, idx2 = _core.max_pool2d(x, 2, 2, 0, 1, False)
        w10 = np.ascontiguousarray(w.reshape(16, -1)[:, :10])
        out += [y2, idx2, _core.matmul(logits, logits, True, False), _core.matmul(logits, w10, False, True)]
        return out

    results = []
    for n in (1, 2, 3):
        threads(n)
        results.append(run())
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            np.testing.assert_array_equal(got, want)


# -- bad input ------------------------------------------------------------------------------------


def test_bad_conv_inputs_name_the_argument() -> None:
    x, w = np.ones((2, 3, 8, 8)), np.ones((4, 3, 3, 3))
    with pytest.raises(optrs.ParamDTypeError, match="weight"):
        _core.conv2d(x, w.astype(np.float32), None, 1, 0, 1, 1)
    with pytest.raises(optrs.ParamDTypeError, match="x"):
        _core.conv2d(x.astype(np.int64), w, None, 1, 0, 1, 1)
    with pytest.raises(optrs.InvalidParamError, match="x .*C-contiguous"):
        _core.conv2d(np.ones((2, 3, 8, 16))[..., ::2], w, None, 1, 0, 1, 1)
    with pytest.raises(optrs.InvalidParamError, match="x has shape"):
        _core.conv2d(np.ones((3, 8, 8)), w, None, 1, 0, 1, 1)
    with pytest.raises(optrs.InvalidParamError, match="input channels"):
        _core.conv2d(np.ones((2, 2, 8, 8)), w, None, 1, 0, 1, 1)
    with pytest.raises(optrs.InvalidParamError, match="bias"):
        _core.conv2d(x, w, np.ones(5), 1, 0, 1, 1)
    with pytest.raises(optrs.InvalidParamError, match="kernel"):
        _core.conv2d(np.ones((2, 3, 2, 2)), w, None, 1, 0, 1, 1)
    with pytest.raises(optrs.InvalidHyperparameterError, match="stride"):
        _core.conv2d(x, w, None, (1, 0), 0, 1, 1)
    with pytest.raises(optrs.InvalidHyperparameterError, match="padding"):
        _core.conv2d(x, w, None, 1, -1, 1, 1)
    with pytest.raises(optrs.InvalidHyperparameterError, match="dilation"):
        _core.conv2d(x, w, None, 1, 0, "a", 1)
    with pytest.raises(optrs.InvalidHyperparameterError, match="groups"):
        _core.conv2d(x, w, None, 1, 0, 1, 0)
    with pytest.raises(optrs.InvalidHyperparameterError, match="groups"):
        _core.conv2d(np.ones((2, 3, 8, 8)), np.ones((4, 1, 3, 3)), None, 1, 0, 1, 3)
    with pytest.raises(optrs.InvalidParamError, match="grad_y"):
        _core.conv2d_backward(x, w, np.ones((2, 4, 5, 5)), 1, 0, 1, 1, True, True, True)
    assert issubclass(optrs.InvalidParamError, ValueError)


def test_bad_pool_inputs_name_the_argument() -> None:
    x = np.ones((2, 3, 8, 8), np.float32)
    with pytest.raises(optrs.InvalidHyperparameterError, match="padding"):
        _core.max_pool2d(x, 2, 2, 2, 1, False)
    with pytest.raises(optrs.InvalidHyperparameterError, match="kernel_size"):
        _core.max_pool2d(x, 0, 2, 0, 1, False)
    with pytest.raises(optrs.InvalidParamError, match="x has shape"):
        _core.max_pool2d(np.ones((8, 8), np.float32), 2, 2, 0, 1, False)
    y, idx = _core.max_pool2d(x, 2, 2, 0, 1, False)
    with pytest.raises(optrs.ParamDTypeError, match="indices"):
        _core.max_pool2d_backward(y, idx.astype(np.int32), x.shape)
    with pytest.raises(optrs.InvalidParamError, match="indices"):
        _core.max_pool2d_backward(y, idx + 64, x.shape)
    with pytest.raises(optrs.InvalidParamError, match="input_shape"):
        _core.max_pool2d_backward(y, idx, (2, 4, 8, 8))
    with pytest.raises(optrs.InvalidHyperparameterError, match="divisor_override"):
        _core.avg_pool2d(x, 2, 2, 0, False, True, 0)
    with pytest.raises(optrs.InvalidParamError, match="grad_y"):
        _core.avg_pool2d_backward(np.ones((2, 3, 3, 3), np.float32), x.shape, 2, 2, 0, False, True, None)


def test_bad_loss_inputs_name_the_argument() -> None:
    logp, target = np.zeros((4, 3)), np.array([0, 1, 2, 1])
    with pytest.raises(optrs.InvalidHyperparameterError, match="reduction"):
        _core.nll_loss(logp, target, None, -100, "avg")
    with pytest.raises(optrs.InvalidParamError, match=r"target\[2\] is 5"):
        _core.nll_loss(logp, np.array([0, 1, 5, 1]), None, -100, "mean")
    with pytest.raises(optrs.ParamDTypeError, match="target"):
        _core.nll_loss(logp, target.astype(np.int32), None, -100, "mean")
    with pytest.raises(optrs.InvalidParamError, match="target"):
        _core.nll_loss(logp, target[:3], None, -100, "mean")
    with pytest.raises(optrs.InvalidParamError, match="weight"):
        _core.nll_loss(logp, target, np.ones(4), -100, "mean")
    with pytest.raises(optrs.InvalidParamError, match="logp"):
        _core.nll_loss(np.zeros((4, 3, 2)), target, None, -100, "mean")
    with pytest.raises(optrs.InvalidParamError, match="grad_loss"):
        _core.nll_loss_backward(np.ones(4), target, None, -100, "mean", 4.0, 3)
    with pytest.raises(optrs.InvalidHyperparameterError, match="label_smoothing"):
        _core.cross_entropy(logp, target, None, -100, "mean", 1.5)
    with pytest.raises(optrs.ParamDTypeError, match="softmax"):
        _core.cross_entropy_backward(np.ones(()), logp.astype(np.float32), target, None, -100, "mean", 0.0)
    with pytest.raises(optrs.InvalidParamError, match="x has shape"):
        _core.log_softmax(np.zeros(3))
    with pytest.raises(optrs.InvalidParamError, match="y has shape"):
        _core.relu_backward(np.zeros(3), np.zeros(4))
