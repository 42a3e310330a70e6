"""swa_utils.AveragedModel and update_bn on optrs.nn modules, against torch's formulas (and torch
itself when it is installed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import optrs
import optrs.nn as nn
from optrs.optim.swa_utils import AveragedModel, get_ema_avg_fn, update_bn


def net() -> nn.Module:
    optrs.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))


def perturb(model: nn.Module, rng: np.random.Generator) -> None:
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape).astype(p.data.dtype)


def test_swa_is_torchs_running_mean() -> None:
    model = net()
    swa = AveragedModel(model)
    seen: list[list[np.ndarray]] = []
    rng = np.random.default_rng(1)
    for _ in range(5):
        perturb(model, rng)
        seen.append([p.data.copy() for p in model.parameters()])
        swa.update_parameters(model)
    assert int(swa.n_averaged.data) == 5
    for i, p in enumerate(swa.module.parameters()):
        want = seen[0][i].copy()
        for n, values in enumerate(seen[1:], start=1):
            want = want + (values[i] - want) / np.float32(n + 1)
        np.testing.assert_array_equal(p.data, want)


def test_ema_with_avg_fn_and_buffers_follow_the_model() -> None:
    model = net()
    ema = AveragedModel(model, avg_fn=get_ema_avg_fn(0.9))
    rng = np.random.default_rng(2)
    perturb(model, rng)
    ema.update_parameters(model)
    first = [p.data.copy() for p in model.parameters()]
    perturb(model, rng)
    model[1].running_mean.data[...] = 7.0
    ema.update_parameters(model)
    for avg, a, b in zip(ema.module.parameters(), first, model.parameters()):
        np.testing.assert_allclose(avg.data, 0.9 * a + 0.1 * b.data, rtol=1e-6)
    np.testing.assert_array_equal(ema.module[1].running_mean.data, 7.0)  # copied, not averaged
    assert "n_averaged" in ema.state_dict()


def test_use_buffers_averages_them_too() -> None:
    model = net()
    avg = AveragedModel(model, use_buffers=True)
    model[1].running_mean.data[...] = 2.0
    avg.update_parameters(model)
    model[1].running_mean.data[...] = 4.0
    avg.update_parameters(model)
    np.testing.assert_array_equal(avg.module[1].running_mean.data, 3.0)


def test_forward_runs_the_averaged_copy() -> None:
    model = net()
    swa = AveragedModel(model)
    swa.update_parameters(model)
    x = optrs.Tensor(np.random.default_rng(3).standard_normal((2, 1, 6, 6)).astype(np.float32))
    model.eval()
    swa.eval()
    np.testing.assert_array_equal(swa(x).data, model(x).data)
    perturb(model, np.random.default_rng(4))
    assert not np.array_equal(swa(x).data, model(x).data)


def test_update_bn_recomputes_the_statistics_as_a_plain_mean() -> None:
    model = net()
    rng = np.random.default_rng(5)
    batches = [rng.standard_normal((4, 1, 6, 6)).astype(np.float32) for _ in range(3)]
    model.eval()
    update_bn([(b, None) for b in batches], model)
    assert not model.training and model[1].momentum == 0.1
    conv_out = [model[0](optrs.Tensor(b)).data for b in batches]
    want = np.mean([c.mean(axis=(0, 2, 3)) for c in conv_out], axis=0)
    np.testing.assert_allclose(model[1].running_mean.data, want, rtol=1e-5)


def test_bad_models_are_refused() -> None:
    with pytest.raises(optrs.InvalidParamError, match="optrs.nn.Module"):
        AveragedModel([np.zeros(3)])  # type: ignore[arg-type]
    swa = AveragedModel(net())
    with pytest.raises(optrs.InvalidParamError, match="differ"):
        swa.update_parameters(nn.Linear(2, 2))
    with pytest.raises(optrs.InvalidHyperparameterError, match="device"):
        AveragedModel(net(), device="cuda")


def test_matches_torch_averaged_model() -> None:
    torch = pytest.importorskip("torch")
    model = net()
    tmodel = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(32, 3))
    for kwargs, tkwargs in [({}, {}), (dict(avg_fn=get_ema_avg_fn(0.95)),
                                      dict(multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.95)))]:
        ours: Any = AveragedModel(model, **kwargs)
        theirs = torch.optim.swa_utils.AveragedModel(tmodel, **tkwargs)
        rng = np.random.default_rng(6)
        for _ in range(4):
            perturb(model, rng)
            with torch.no_grad():
                for p, tp in zip(model.parameters(), tmodel.parameters()):
                    tp.copy_(torch.from_numpy(p.data.copy()))
            ours.update_parameters(model)
            theirs.update_parameters(tmodel)
        for p, tp in zip(ours.module.parameters(), theirs.module.parameters()):
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=2e-6, atol=1e-7)
