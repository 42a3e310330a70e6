"""optrs.utils: gradient clipping, total norms, params <-> vector and weight averaging, against a
NumPy transcription of torch's code and against torch itself when it is importable."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import optrs
from optrs.utils import (
    AveragedParams,
    clip_grad_norm_,
    clip_grad_value_,
    clip_grads_norm_,
    clip_grads_with_norm_,
    get_ema_avg_fn,
    get_swa_avg_fn,
    get_total_norm,
    parameters_to_vector,
    vector_to_parameters,
)

INF = float("inf")
NORM_TYPES = [1.0, 2.0, 3.5, INF]
SHAPES = [[(7,)], [(3, 5), (0,), (1,)], [(200, 33), (4096,), (17, 3, 2)], [(70_001,), (5,)]]


def make(shapes: list[tuple[int, ...]], dtype: Any, seed: int = 0, scale: float = 1.0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in shapes]


def reference_clip(grads: list[np.ndarray], max_norm: float, p: float) -> tuple[Any, list[np.ndarray]]:
    """torch's clip_grad_norm_, transcribed: per-tensor norms, the norm of the norms in the result
    dtype, coef = reciprocal(total + 1e-6) * max_norm clamped to 1, grads * coef."""
    dtype = np.result_type(*grads) if grads else np.dtype(np.float32)
    wide = [np.abs(g.astype(np.float64)).reshape(-1) for g in grads]
    if p == INF:
        norms = [w.max(initial=0.0) if not np.isnan(w).any() else np.nan for w in wide]
        total = max(norms, default=0.0) if not any(np.isnan(norms)) else np.nan
    else:
        norms = [np.sum(w ** p) ** (1 / p) for w in wide]
        total = np.sum(np.asarray(norms) ** p) ** (1 / p)
    total = dtype.type(total)
    one = dtype.type(1)
    coef = min(one / (total + dtype.type(1e-6)) * dtype.type(max_norm), one) if not np.isnan(total) else total
    with np.errstate(invalid="ignore"):  # inf * 0
        return total, [g * g.dtype.type(coef) for g in grads]


def assert_close_to_reference(grads: list[np.ndarray], max_norm: float, p: float) -> None:
    originals = [g.copy() for g in grads]
    want_total, want_grads = reference_clip(originals, max_norm, p)
    total = clip_grads_norm_(grads, max_norm, p)
    assert total.dtype == want_total.dtype
    rtol = 2e-6 if total.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(total, want_total, rtol=rtol)
    for g, want in zip(grads, want_grads):
        if total == want_total:  # same norm: the clipping must be bit for bit torch's
            np.testing.assert_array_equal(g, want)
        else:
            np.testing.assert_allclose(g, want, rtol=2 * rtol)


@pytest.fixture
def restore_globals() -> Iterator[None]:
    threads = optrs.get_num_threads()
    try:
        yield
    finally:
        optrs._core.force_simd_level(None)
        optrs.set_num_threads(threads)


# -- clip_grad_norm_ ----------------------------------------------------------------------------


@pytest.mark.parametrize("p", NORM_TYPES)
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_matches_torch_transcription(p: float, shapes: list[tuple[int, ...]], dtype: Any, max_norm: float) -> None:
    assert_close_to_reference(make(shapes, dtype, seed=len(shapes)), max_norm, p)


@pytest.mark.parametrize("p", NORM_TYPES)
def test_mixed_dtypes_give_a_float64_norm(p: float) -> None:
    grads = make([(100,), (31, 2)], np.float32) + make([(50,)], np.float64, seed=1)
    assert_close_to_reference(grads, 0.1, p)
    assert grads[0].dtype == np.float32 and grads[2].dtype == np.float64


def test_small_norm_is_exact_and_grads_scaled_as_torch() -> None:
    g = [np.array([3.0, 4.0], np.float32), np.zeros(3, np.float32)]
    total = clip_grads_norm_(g, 1.0)
    assert isinstance(total, np.float32) and total == 5.0
    coef = np.float32(1) / (np.float32(5) + np.float32(1e-6)) * np.float32(1)
    np.testing.assert_array_equal(g[0], np.array([3, 4], np.float32) * coef)


def test_no_clipping_below_max_norm_keeps_grads() -> None:
    g = make([(1000,)], np.float64)
    before = g[0].copy()
    total = clip_grads_norm_(g, 1e9)
    assert math.isclose(total, np.linalg.norm(before), rel_tol=1e-14)
    np.testing.assert_array_equal(g[0], before)


def test_nan_max_norm_makes_every_grad_nan_as_in_torch() -> None:
    g = make([(10,)], np.float32)
    clip_grads_norm_(g, float("nan"))
    assert np.isnan(g[0]).all()


def test_parameters_and_none_grads() -> None:
    params = [optrs.Parameter(np.zeros(s, np.float32)) for s in [(3,), (4, 2), (5,)]]
    grads = make([(3,), (4, 2)], np.float32, seed=3, scale=10)
    params[0].grad, params[1].grad = grads[0], grads[1]
    want_total, want = reference_clip([g.copy() for g in grads], 1.0, 2.0)
    total = clip_grad_norm_(params, 1.0)
    np.testing.assert_allclose(total, want_total, rtol=2e-6)
    np.testing.assert_allclose(params[0].grad, want[0], rtol=4e-6)
    assert params[2].grad is None
    single = optrs.Parameter(np.zeros(2, np.float32))
    single.grad = np.array([6.0, 8.0], np.float32)
    assert clip_grad_norm_(single, 5.0, norm_type="inf") == 8.0
    assert float(clip_grad_norm_(iter([single]), 5.0)) > 0


def test_empty_inputs() -> None:
    with pytest.warns(UserWarning, match="empty generator"):
        total = clip_grad_norm_((p for p in []), 1.0)
    assert isinstance(total, np.float32) and total == 0.0
    assert clip_grads_norm_([], 1.0) == 0.0
    assert get_total_norm([np.zeros(0)]) == 0.0
    assert not np.signbit(get_total_norm([]))


def test_plain_arrays_are_not_parameters() -> None:
    with pytest.raises(optrs.ParamDTypeError, match="clip_grads_norm_"):
        clip_grad_norm_(np.zeros(3), 1.0)  # type: ignore[arg-type]
    with pytest.raises(optrs.ParamDTypeError, match="parameters\\[0\\]"):
        clip_grad_norm_([np.zeros(3)], 1.0)  # type: ignore[list-item]


@pytest.mark.parametrize("p", [0.0, -1.0, float("nan"), -INF])
def test_bad_norm_type(p: float) -> None:
    g = make([(4,)], np.float32)
    before = g[0].copy()
    with pytest.raises(optrs.InvalidHyperparameterError, match="norm_type"):
        clip_grads_norm_(g, 1.0, p)
    np.testing.assert_array_equal(g[0], before)


@pytest.mark.parametrize("p", NORM_TYPES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_propagates_or_raises(p: float, bad: float) -> None:
    grads = make([(50,), (9,)], np.float32, seed=5)
    grads[1][4] = bad
    before = [g.copy() for g in grads]
    with pytest.raises(RuntimeError, match=f"total norm of order {p!r} for gradients from `parameters` is non-finite"):
        clip_grads_norm_(grads, 1.0, p, error_if_nonfinite=True)
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)
    with pytest.raises(RuntimeError, match="non-finite"):
        get_total_norm(grads, p, error_if_nonfinite=True)
    total = clip_grads_norm_(grads, 1.0, p)
    assert np.isnan(total) if np.isnan(bad) else total == np.inf
    want_total, want = reference_clip(before, 1.0, p)
    np.testing.assert_array_equal(total, want_total)
    for g, w in zip(grads, want):
        np.testing.assert_array_equal(g, w)  # NaN everywhere, or 0 and NaN where inf * 0


def test_nan_and_inf_together_give_nan() -> None:
    g = [np.array([np.inf, np.nan, 1.0])]
    for p in NORM_TYPES:
        assert np.isnan(get_total_norm(g, p))


@pytest.mark.parametrize("make_bad", [
    pytest.param(lambda: np.zeros((4, 6), np.float32)[:, ::2], id="non-contiguous"),
    pytest.param(lambda: np.zeros(5, np.int64), id="int"),
    pytest.param(lambda: np.zeros(5, np.float16), id="float16"),
    pytest.param(lambda: _read_only(), id="read-only"),
    pytest.param(lambda: [1.0, 2.0], id="list"),
])
def test_bad_grad_raises_and_changes_nothing(make_bad: Any) -> None:
    good = make([(300_000,), (7,)], np.float32, scale=100)
    before = [g.copy() for g in good]
    grads = [good[0], make_bad(), good[1]]
    with pytest.raises(optrs.OptrsError, match=r"grads\[1\]"):
        clip_grads_norm_(grads, 1.0)
    for g, b in zip(good, before):
        np.testing.assert_array_equal(g, b)


def _read_only() -> np.ndarray:
    g = np.ones(5, np.float32)
    g.flags.writeable = False
    return g


def test_read_only_is_fine_for_the_norm_alone() -> None:
    assert get_total_norm([_read_only()]) == np.float32(math.sqrt(5))


def test_shared_grad_memory_is_refused() -> None:
    g = make([(100,)], np.float64, scale=10)[0]
    before = g.copy()
    with pytest.raises(optrs.InvalidParamError, match=r"grads\[2\] shares memory with grads\[0\]"):
        clip_grads_norm_([g, np.zeros(3), g[10:20]], 1.0)
    np.testing.assert_array_equal(g, before)
    assert get_total_norm([g, g]) == pytest.approx(math.sqrt(2) * np.linalg.norm(g))


def test_errors_name_the_param() -> None:
    params = [optrs.Parameter(np.zeros(3, np.float32)) for _ in range(3)]
    params[0].grad = np.ones(3, np.float32)
    params[2].grad = np.ones(3, np.int32)
    with pytest.raises(optrs.ParamDTypeError, match=r"grad of parameters\[2\] has dtype int32"):
        clip_grad_norm_(params, 1.0)


# -- determinism --------------------------------------------------------------------------------


def test_norm_is_bit_identical_across_threads_and_simd_levels(restore_globals: None) -> None:
    originals = (make([(1_500_000,), (300_001,), (4096,), (4096,)], np.float32, seed=11)
                 + make([(700_000,)], np.float64, seed=12))
    results: dict[float, set[bytes]] = {p: set() for p in NORM_TYPES}
    for level in [None, "baseline"]:
        optrs._core.force_simd_level(level)
        for threads in [1, 2]:
            optrs.set_num_threads(threads)
            for p in NORM_TYPES:
                grads = [g.copy() for g in originals]
                digest = hashlib.sha256(clip_grads_norm_(grads, 1.0, p).tobytes())
                digest.update(get_total_norm(originals[:4], p).tobytes())
                for g in grads:
                    digest.update(g)
                results[p].add(digest.digest())
    assert all(len(digests) == 1 for digests in results.values()), results


# -- clip_grads_with_norm_, clip_grad_value_ ----------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_get_total_norm_then_clip_equals_clip_grad_norm(dtype: Any) -> None:
    grads = make([(300,), (20, 20)], dtype, seed=2, scale=3)
    params = [optrs.Parameter(np.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.copy()
    total = get_total_norm([p.grad for p in params])
    clip_grads_with_norm_(params, 2.0, total)
    clip_grads_norm_(grads, 2.0)
    for p, g in zip(params, grads):
        np.testing.assert_array_equal(p.grad, g)


def test_clip_grads_with_norm_uses_the_norm_dtype() -> None:
    for total in [np.float32(3.0), 3.0, np.float64(3.0)]:
        p = optrs.Parameter(np.zeros(1))
        p.grad = np.array([1.0])
        clip_grads_with_norm_([p], 1.0, total)
        dtype = np.float32 if isinstance(total, np.float32) else np.float64
        coef = dtype(1) / (dtype(3) + dtype(1e-6)) * dtype(1)
        assert p.grad[0] == np.float64(coef)


def test_clip_grad_value() -> None:
    params = [optrs.Parameter(np.zeros(4, np.float32)), optrs.Parameter(np.zeros(2)), optrs.Parameter(np.zeros(1))]
    params[0].grad = np.array([1.0, np.nan, -3.0, 5.0], np.float32)
    params[1].grad = np.array([-0.0, 0.25])
    clip_grad_value_(params, 2)
    np.testing.assert_array_equal(params[0].grad, [1.0, np.nan, -2.0, 2.0])
    np.testing.assert_array_equal(params[1].grad, [-0.0, 0.25])
    assert np.signbit(params[1].grad[0])
    clip_grad_value_(params, -1.0)  # min > max: every element becomes max, as in torch
    np.testing.assert_array_equal(params[0].grad, [-1.0, np.nan, -1.0, -1.0])
    clip_grad_value_(params[1], float("nan"))
    assert np.isnan(params[1].grad).all()


def test_clip_grad_value_checks_everything_first() -> None:
    params = [optrs.Parameter(np.zeros(3)) for _ in range(2)]
    params[0].grad = np.array([5.0, -5.0, 0.0])
    params[1].grad = _read_only()
    with pytest.raises(optrs.InvalidParamError, match=r"grad of parameters\[1\] is read-only"):
        clip_grad_value_(params, 1.0)
    np.testing.assert_array_equal(params[0].grad, [5.0, -5.0, 0.0])
    params[1].grad = np.zeros(3, np.int64)
    with pytest.raises(optrs.ParamDTypeError, match="int64"):
        clip_grad_value_(params, 1.0)


# -- parameters_to_vector / vector_to_parameters -------------------------------------------------


def test_parameters_vector_round_trip() -> None:
    arrays = make([(3, 4), (5,), (2, 1, 2)], np.float32, seed=4)
    param = optrs.Parameter(np.arange(3.0, dtype=np.float32))
    vec = parameters_to_vector([*arrays, param])
    assert vec.shape == (12 + 5 + 4 + 3,) and vec.dtype == np.float32
    np.testing.assert_array_equal(vec[:12], arrays[0].reshape(-1))
    np.testing.assert_array_equal(vec[-3:], [0, 1, 2])
    targets = [np.zeros_like(a) for a in arrays] + [optrs.Parameter(np.zeros(3, np.float32))]
    held = [t if isinstance(t, np.ndarray) else t.data for t in targets]
    vector_to_parameters(vec * 2, targets)
    for t, a in zip(held, arrays):
        np.testing.assert_array_equal(t, a * 2)  # written in place: the same arrays
    np.testing.assert_array_equal(held[-1], [0, 2, 4])
    vector_to_parameters(vec.astype(np.float64), targets)
    np.testing.assert_array_equal(parameters_to_vector(targets), vec)


def test_vector_to_parameters_checks_first() -> None:
    a, b = np.zeros(3), np.zeros(2)
    with pytest.raises(optrs.InvalidParamError, match="6 elements but the parameters have 5"):
        vector_to_parameters(np.ones(6), [a, b])
    with pytest.raises(optrs.ParamDTypeError, match="expected numpy.ndarray"):
        vector_to_parameters([1.0] * 5, [a, b])  # type: ignore[arg-type]
    with pytest.raises(optrs.InvalidParamError, match="1-D"):
        vector_to_parameters(np.ones((5, 1)), [a, b])
    b.flags.writeable = False
    with pytest.raises(optrs.InvalidParamError, match=r"parameters\[1\] is read-only"):
        vector_to_parameters(np.ones(5), [a, b])
    assert not a.any()
    with pytest.raises(optrs.InvalidParamError, match="no parameters"):
        parameters_to_vector([])


# -- AveragedParams -----------------------------------------------------------------------------


def snapshots(dtype: Any, steps: int = 4) -> list[list[np.ndarray]]:
    return [make([(3, 2), (5,)], dtype, seed=20 + t) for t in range(steps)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_swa_is_the_running_mean(dtype: Any) -> None:
    history = snapshots(dtype)
    params = [np.zeros_like(a) for a in history[0]]
    swa = AveragedParams(params)
    for t, snap in enumerate(history):
        for p, s in zip(params, snap):
            p[...] = s
        swa.update_parameters(params)
        assert swa.n_averaged == t + 1
    for k, avg in enumerate(swa.params):
        want = history[0][k].copy()
        for n, snap in enumerate(history[1:], start=1):
            want = want + (snap[k] - want) / dtype(n + 1)
        np.testing.assert_array_equal(avg, want)
        assert avg.dtype == dtype
        np.testing.assert_allclose(avg, np.mean([s[k] for s in history], axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decay", [0.9, 0.3])
def test_ema_is_torch_lerp(dtype: Any, decay: float) -> None:
    history = snapshots(dtype)
    ema = AveragedParams([optrs.Parameter(a) for a in history[0]], mode="ema", decay=decay)
    for snap in history:
        ema.update_parameters(snap)
    w = dtype(1 - decay)
    for k, avg in enumerate(ema.params):
        want = history[0][k].copy()
        for snap in history[1:]:
            if w < 0.5:
                want = want + w * (snap[k] - want)
            else:
                want = snap[k] - (snap[k] - want) * (dtype(1) - w)
        np.testing.assert_array_equal(avg, want)
        formula = history[0][k].astype(np.float64)
        for snap in history[1:]:
            formula = decay * formula + (1 - decay) * snap[k]
        np.testing.assert_allclose(avg, formula, rtol=1e-5, atol=1e-6)


def test_custom_avg_fns_and_state_dict() -> None:
    history = snapshots(np.float32)
    ema = AveragedParams(history[0], avg_fn=get_ema_avg_fn(0.5))
    swa = AveragedParams(history[0], avg_fn=get_swa_avg_fn())
    plain = AveragedParams(history[0])
    for snap in history:
        for avg in (ema, swa, plain):
            avg.update_parameters(snap)
    for a, b in zip(swa.params, plain.params):
        np.testing.assert_array_equal(a, b)
    want = history[0][1]
    for snap in history[1:]:
        want = 0.5 * want + 0.5 * snap[1]
    np.testing.assert_array_equal(ema.params[1], want)

    saved = plain.state_dict()
    fresh = AveragedParams([np.zeros_like(a) for a in history[0]])
    fresh.load_state_dict(saved)
    assert fresh.n_averaged == 4
    for a, b in zip(fresh.params, plain.params):
        np.testing.assert_array_equal(a, b)
    fresh.update_parameters(history[0])
    plain.update_parameters(history[0])
    np.testing.assert_array_equal(fresh.params[0], plain.params[0])
    assert saved["n_averaged"] == 4  # the snapshot does not move


def test_averaging_rejects_bad_input() -> None:
    with pytest.raises(optrs.InvalidHyperparameterError, match="decay"):
        AveragedParams([np.zeros(2)], mode="ema", decay=1.5)
    with pytest.raises(optrs.InvalidHyperparameterError, match="mode"):
        AveragedParams([np.zeros(2)], mode="polyak")  # type: ignore[arg-type]
    with pytest.raises(optrs.InvalidHyperparameterError):
        get_ema_avg_fn(float("nan"))
    avg = AveragedParams([np.zeros(2), np.zeros(3)])
    with pytest.raises(optrs.InvalidParamError, match="got 1 params"):
        avg.update_parameters([np.zeros(2)])
    with pytest.raises(optrs.InvalidParamError, match=r"params\[1\] has shape \(4,\)"):
        avg.update_parameters([np.zeros(2), np.zeros(4)])
    with pytest.raises(optrs.InvalidParamError, match="n_averaged"):
        avg.load_state_dict({"params": []})
    with pytest.raises(optrs.InvalidParamError, match="shape"):
        avg.load_state_dict({"n_averaged": 1, "params": [np.zeros(2), np.zeros(5)]})
    assert avg.n_averaged == 0


# -- torch itself -------------------------------------------------------------------------------


@pytest.mark.parametrize("p", NORM_TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_against_torch_clip_grad_norm(p: float, dtype: Any) -> None:
    torch = pytest.importorskip("torch")
    grads = make([(300, 7), (4096,), (1,), (70_001,)], dtype, seed=9, scale=0.05)
    tensors = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype)) for g in grads]
    for t, g in zip(tensors, grads):
        t.grad = torch.from_numpy(g.copy())
    want = torch.nn.utils.clip_grad_norm_(tensors, 1.0, p)
    total = clip_grads_norm_(grads, 1.0, p)
    assert str(want.dtype) == f"torch.{total.dtype}"
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(total, want.item(), rtol=rtol)
    for t, g in zip(tensors, grads):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=2 * rtol, atol=0)
    assert get_total_norm(grads, p) == pytest.approx(float(torch.nn.utils.get_total_norm(
        [t.grad for t in tensors], p)), rel=rtol)


def test_against_torch_clip_grad_value() -> None:
    torch = pytest.importorskip("torch")
    g = np.array([1.0, np.nan, -3.0, 5.0, -0.0, np.inf], np.float32)
    t = torch.nn.Parameter(torch.zeros(6))
    t.grad = torch.from_numpy(g.copy())
    p = optrs.Parameter(np.zeros(6, np.float32))
    p.grad = g.copy()
    torch.nn.utils.clip_grad_value_([t], 2.5)
    clip_grad_value_([p], 2.5)
    np.testing.assert_array_equal(p.grad, t.grad.numpy())


def test_against_torch_vector_round_trip() -> None:
    torch = pytest.importorskip("torch")
    arrays = make([(3, 4), (5,)], np.float32)
    want = torch.nn.utils.parameters_to_vector([torch.from_numpy(a) for a in arrays])
    np.testing.assert_array_equal(parameters_to_vector(arrays), want.numpy())


@pytest.mark.parametrize("mode", ["swa", "ema"])
def test_against_torch_averaged_model(mode: str) -> None:
    torch = pytest.importorskip("torch")
    from torch.optim import swa_utils

    history = snapshots(np.float32, steps=5)
    model = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(a.copy())) for a in history[0]])
    kwargs = {"multi_avg_fn": swa_utils.get_ema_multi_avg_fn(0.8)} if mode == "ema" else {}
    averaged = swa_utils.AveragedModel(model, **kwargs)
    ours = AveragedParams(history[0], mode=mode, decay=0.8)  # type: ignore[arg-type]
    for snap in history:
        with torch.no_grad():
            for param, s in zip(model, snap):
                param.copy_(torch.from_numpy(s))
        averaged.update_parameters(model)
        ours.update_parameters(snap)
    assert ours.n_averaged == int(averaged.n_averaged)
    for a, t in zip(ours.params, averaged.module):
        np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_swa_utils_carries_torchs_averaging_names() -> None:
    from optrs.optim import averaging, swa_utils

    assert swa_utils.AveragedParams is averaging.AveragedParams
    assert swa_utils.get_ema_avg_fn is averaging.get_ema_avg_fn and swa_utils.get_swa_avg_fn is averaging.get_swa_avg_fn
