"""An optimizer's state_dict names its class, and load_state_dict refuses a dict that another
optimizer class saved: by that name, or, in a dict without it (torch's), by its groups' options.
torch's own dicts for the same class keep loading: checked live when torch is importable, and
against torch 2.13's recorded option keys otherwise."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

import optrs
from optrs.optim import SGD, Adam, Adamax, AdamW, RAdam

# torch 2.13's param_groups keys (less "params") for each optimizer both libraries have, recorded
# from `torch.optim.X([p]).state_dict()["param_groups"][0]`; test_recorded_torch_keys_are_torchs
# checks them against the installed torch.
TORCH_GROUP_KEYS = {
    "SGD": ["dampening", "differentiable", "foreach", "fused", "lr", "maximize", "momentum", "nesterov",
            "weight_decay"],
    "Adam": ["amsgrad", "betas", "capturable", "decoupled_weight_decay", "differentiable", "eps", "foreach", "fused",
             "lr", "maximize", "weight_decay"],
    "AdamW": ["amsgrad", "betas", "capturable", "decoupled_weight_decay", "differentiable", "eps", "foreach",
              "fused", "lr", "maximize", "weight_decay"],
    "Adadelta": ["capturable", "differentiable", "eps", "foreach", "lr", "maximize", "rho", "weight_decay"],
    "Adagrad": ["differentiable", "eps", "foreach", "fused", "initial_accumulator_value", "lr", "lr_decay",
                "maximize", "weight_decay"],
    "Adamax": ["betas", "capturable", "differentiable", "eps", "foreach", "lr", "maximize", "weight_decay"],
    "ASGD": ["alpha", "capturable", "differentiable", "foreach", "lambd", "lr", "maximize", "t0", "weight_decay"],
    "NAdam": ["betas", "capturable", "decoupled_weight_decay", "differentiable", "eps", "foreach", "lr", "maximize",
              "momentum_decay", "weight_decay"],
    "RAdam": ["betas", "capturable", "decoupled_weight_decay", "differentiable", "eps", "foreach", "lr", "maximize",
              "weight_decay"],
    "RMSprop": ["alpha", "capturable", "centered", "differentiable", "eps", "foreach", "lr", "maximize", "momentum",
                "weight_decay"],
    "Rprop": ["capturable", "differentiable", "etas", "foreach", "lr", "maximize", "step_sizes"],
    "LBFGS": ["history_size", "line_search_fn", "lr", "max_eval", "max_iter", "tolerance_change", "tolerance_grad"],
    "Muon": ["adjust_lr_fn", "eps", "lr", "momentum", "nesterov", "ns_coefficients", "ns_steps", "weight_decay"],
    "Adafactor": ["beta2_decay", "d", "eps", "foreach", "lr", "maximize", "weight_decay"],
}
# Pairs (saved by, loaded into) whose torch-made dicts pass the option check: Adam and AdamW share
# their options in torch 2.13 (torch loads either into the other too), and Adamax's options are
# RAdam's less decoupled_weight_decay, an option that older torch dicts lack too. A state saved
# after a step still fails on its state names.
ACCEPTED_ACROSS = {("Adam", "AdamW"), ("AdamW", "Adam"), ("Adamax", "RAdam")}


def params() -> list[optrs.Parameter]:
    # Two dims, so that every optimizer takes them (Muon steps matrices only).
    return [optrs.Parameter(np.ones((3, 2), dtype=np.float32))]


def torch_like(name: str, /, **values: Any) -> dict[str, Any]:
    """A state_dict as torch makes it (no class name), with torch's option keys for ``name``: the
    values do not matter to the check, so each key takes optrs's default where it has one."""
    defaults = getattr(optrs.optim, name)(params()).defaults
    group = {key: defaults.get(key) for key in TORCH_GROUP_KEYS[name]}
    return {"state": {}, "param_groups": [{**group, **values, "params": [0]}]}


def test_state_dict_names_the_class_that_saved_it() -> None:
    for cls in (SGD, Adam, AdamW, optrs.optim.LBFGS, optrs.optim.Muon):
        assert cls(params()).state_dict()["optimizer_class"] == cls.__name__


@pytest.mark.parametrize("stepped", [False, True])
def test_a_dict_saved_by_another_class_is_refused_naming_both(stepped: bool) -> None:
    sgd = SGD(params(), lr=0.5, momentum=0.9)
    if stepped:
        sgd.step([np.ones((3, 2), np.float32)])
    adam = Adam(params(), lr=0.01)
    before = copy.deepcopy(adam.state_dict())
    refused = "this state_dict was saved by SGD; it cannot be loaded into Adam"
    with pytest.raises(optrs.InvalidParamError, match=refused):
        adam.load_state_dict(sgd.state_dict())
    after = adam.state_dict()
    assert after["param_groups"] == before["param_groups"] and after["state"] == before["state"] == {}
    with pytest.raises(optrs.InvalidParamError, match="saved by Adam; it cannot be loaded into AdamW"):
        AdamW(params()).load_state_dict(Adam(params()).state_dict())
    with pytest.raises(optrs.InvalidParamError, match="saved by Adam; it cannot be loaded into LBFGS"):
        optrs.optim.LBFGS(params()).load_state_dict(Adam(params()).state_dict())


def test_a_dict_saved_by_the_same_class_loads_with_its_options() -> None:
    saved = Adam(params(), lr=0.25, betas=(0.8, 0.9)).state_dict()
    adam = Adam(params())
    adam.load_state_dict(saved)
    assert adam.param_groups[0]["lr"] == 0.25 and adam.param_groups[0]["betas"] == (0.8, 0.9)


def test_a_dict_without_the_name_is_judged_by_its_options() -> None:
    sgd_options = torch_like("SGD", lr=0.5)
    adam = Adam(params(), lr=0.01)
    with pytest.raises(optrs.InvalidParamError) as error:
        adam.load_state_dict(sgd_options)
    message = str(error.value)
    assert "param_groups[0] has options Adam does not take ['dampening', 'momentum', 'nesterov']" in message
    assert "lacks Adam's options ['amsgrad', 'betas', 'eps']" in message
    assert adam.param_groups[0]["lr"] == 0.01  # nothing taken
    with pytest.raises(optrs.InvalidParamError, match=r"has options RAdam does not take \['amsgrad'\]"):
        RAdam(params()).load_state_dict(torch_like("Adam"))
    with pytest.raises(optrs.InvalidParamError, match=r"lacks Adam's options \['amsgrad'\]"):
        Adam(params()).load_state_dict(torch_like("Adamax"))


def test_torch_dicts_of_the_same_class_load_with_extra_and_older_keys() -> None:
    """torch's flags, a scheduler's initial_lr and a user's own key are extra keys torch keeps;
    a dict from an older torch lacks the options torch added since (maximize, ...)."""
    adam = Adam(params())
    adam.load_state_dict(torch_like("Adam", lr=0.125, initial_lr=0.5, name="encoder"))
    assert adam.param_groups[0]["lr"] == 0.125 and adam.param_groups[0]["name"] == "encoder"
    older = torch_like("Adam", lr=0.25)
    for key in ("maximize", "foreach", "fused", "capturable", "differentiable", "decoupled_weight_decay"):
        del older["param_groups"][0][key]
    adam.load_state_dict(older)
    assert adam.param_groups[0]["lr"] == 0.25 and adam.param_groups[0]["maximize"] is False
    for name in TORCH_GROUP_KEYS:
        getattr(optrs.optim, name)(params()).load_state_dict(torch_like(name))


def test_which_torch_dicts_pass_across_classes() -> None:
    accepted = set()
    for saved_by in TORCH_GROUP_KEYS:
        for loaded_into in TORCH_GROUP_KEYS:
            if saved_by == loaded_into:
                continue
            try:
                getattr(optrs.optim, loaded_into)(params()).load_state_dict(torch_like(saved_by))
            except optrs.InvalidParamError as error:
                assert "another optimizer saved it" in str(error)
            else:
                accepted.add((saved_by, loaded_into))
    assert accepted == ACCEPTED_ACROSS


def test_adamax_state_still_fails_in_radam_on_its_state_names() -> None:
    adamax = Adamax(params())
    adamax.step([np.ones((3, 2), np.float32)])
    saved = adamax.state_dict()
    del saved["optimizer_class"]
    with pytest.raises(optrs.InvalidParamError, match="has no 'exp_avg_sq'"):
        RAdam(params()).load_state_dict(saved)


def test_recorded_torch_keys_are_torchs_and_torch_dicts_load_live() -> None:
    torch = pytest.importorskip("torch", reason="compares with torch when it is installed")
    for name, keys in TORCH_GROUP_KEYS.items():
        topt = getattr(torch.optim, name)([torch.zeros(3, 2, requires_grad=True)])
        tsd = topt.state_dict()
        assert sorted(k for k in tsd["param_groups"][0] if k != "params") == keys, name
        getattr(optrs.optim, name)(params()).load_state_dict(tsd)
    tsgd = torch.optim.SGD([torch.zeros(3, 2, requires_grad=True)], lr=0.5, momentum=0.9)
    with pytest.raises(optrs.InvalidParamError, match="has options Adam does not take"):
        Adam(params()).load_state_dict(tsgd.state_dict())
    # torch ignores the extra key: optrs's dict (arrays as tensors) loads into torch.
    opt = Adam(params(), lr=0.25)
    opt.step([np.ones((3, 2), np.float32)])
    saved = opt.state_dict()
    converted = {**saved, "state": {k: {n: torch.tensor(np.asarray(v)) for n, v in s.items()}
                                    for k, s in saved["state"].items()}}
    tadam = torch.optim.Adam([torch.zeros(3, 2, requires_grad=True)])
    tadam.load_state_dict(converted)
    assert tadam.param_groups[0]["lr"] == 0.25
