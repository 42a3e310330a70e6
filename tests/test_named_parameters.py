"""Optimizers take ``model.named_parameters()`` as torch 2.13's do: each group keeps the names
under 'param_names', and state_dict carries them."""

from __future__ import annotations

import numpy as np
import pytest

import optrs
import optrs.nn as nn
from optrs import optim

OPTIMIZERS = ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Adadelta", "Adamax", "NAdam", "RAdam", "Rprop", "ASGD",
              "Lion", "ADOPT", "LAMB", "Adafactor", "LBFGS"]


def _model() -> nn.Module:
    optrs.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.ReLU(), nn.Linear(4, 2, dtype=np.float64))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_named_parameters_give_param_names_and_step(name: str) -> None:
    model = _model()
    opt = getattr(optim, name)(model.named_parameters(), lr=0.01)
    assert opt.param_groups[0]["param_names"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(isinstance(p, optrs.Parameter) for p in opt.param_groups[0]["params"])
    x = optrs.Tensor(np.ones((5, 3)))

    def closure() -> optrs.Tensor:
        opt.zero_grad()
        loss = model(x).pow(2).sum()
        loss.backward()
        return loss

    before = [p.data.copy() for p in model.parameters()]
    opt.step(closure)
    opt.step(closure)  # ADOPT's first step only fills its second moment
    assert any(not np.array_equal(p.data, b) for p, b in zip(model.parameters(), before))
    saved = opt.state_dict()
    assert saved["param_groups"][0]["param_names"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    other_model = _model()
    other = getattr(optim, name)(other_model.parameters(), lr=0.01)
    other.load_state_dict(saved)
    assert other.param_groups[0]["param_names"] == saved["param_groups"][0]["param_names"]


def test_names_all_or_none_and_across_groups() -> None:
    model = _model()
    named = list(model.named_parameters())
    with pytest.raises(optrs.InvalidParamError, match="with/without names"):
        optim.SGD([named[0], named[1][1]], lr=0.1)
    opt = optim.SGD(named[:2], lr=0.1)
    with pytest.raises(optrs.InvalidParamError, match="with or without names"):
        opt.add_param_group({"params": [p for _, p in named[2:]]})
    opt.add_param_group({"params": named[2:], "lr": 0.5})
    assert opt.param_groups[1]["param_names"] == ["2.weight", "2.bias"]


def test_loading_an_unnamed_dict_keeps_the_names() -> None:
    model = _model()
    opt = optim.Adam(model.named_parameters())
    unnamed = optim.Adam(_model().parameters()).state_dict()
    opt.load_state_dict(unnamed)
    assert opt.param_groups[0]["param_names"] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_named_state_dict_matches_torchs_layout() -> None:
    torch = pytest.importorskip("torch", reason="torch is optional; compares the named state_dict with torch's")
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    topt = torch.optim.Adam(tmodel.named_parameters(), lr=0.01)
    ours = optim.Adam(_model().named_parameters(), lr=0.01).state_dict()
    theirs = topt.state_dict()
    assert ours["param_groups"][0]["param_names"] == theirs["param_groups"][0]["param_names"]
    flags = {"foreach", "fused", "capturable", "differentiable"}  # torch's flags, which optrs takes and drops
    assert set(theirs["param_groups"][0]) - flags <= set(ours["param_groups"][0])
