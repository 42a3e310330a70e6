"""The base class every scheduler derives from, and the helpers they share."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any, Protocol

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)


class OptimizerLike(Protocol):
    """What a scheduler needs of an optimizer: ``param_groups``, a list of dicts with an ``lr``."""

    @property
    def param_groups(self) -> list[dict[str, Any]]: ...


def _check_optimizer(optimizer: object) -> None:
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer: a scheduler needs an object whose "
                        "param_groups is a list of dicts (such as an optrs optimizer)")


def _format_param(name: str, optimizer: OptimizerLike, param: Any) -> list[Any]:
    """One value per param group: ``param`` itself if it is a list or tuple of the right length."""
    if isinstance(param, (list, tuple)):
        if len(param) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(param)} values, param_groups has {len(optimizer.param_groups)}."
            )
        return list(param)
    return [param] * len(optimizer.param_groups)


def _lrs(optimizer: OptimizerLike) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


def _momentum_uses_beta1(optimizer: OptimizerLike) -> bool:
    """torch's test for ``cycle_momentum``: the optimizer has ``momentum`` (SGD, RMSprop) or
    ``betas`` (Adam-like, whose ``betas[0]`` is cycled) among its defaults."""
    defaults = getattr(optimizer, "defaults", None)
    keys = defaults if isinstance(defaults, dict) else (optimizer.param_groups[0] if optimizer.param_groups else {})
    if "momentum" not in keys and "betas" not in keys:
        raise ValueError(
            "optimizer must support momentum or beta1 with `cycle_momentum` option enabled "
            f"({type(optimizer).__name__} has neither 'momentum' nor 'betas'; pass cycle_momentum=False)"
        )
    return "betas" in keys


def _set_momentum(group: dict[str, Any], use_beta1: bool, momentum: float) -> None:
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


def _lambdas(lr_lambda: Any, optimizer: OptimizerLike) -> list[Callable[[int], float]]:
    if not isinstance(lr_lambda, (list, tuple)):
        lambdas = [lr_lambda] * len(optimizer.param_groups)
    else:
        if len(lr_lambda) != len(optimizer.param_groups):
            raise ValueError(f"Expected {len(optimizer.param_groups)} lr_lambdas, but got {len(lr_lambda)}")
        lambdas = list(lr_lambda)
    for fn in lambdas:
        if not callable(fn):
            raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
    return lambdas


def _nonzero(name: str, value: Any) -> None:
    """torch divides by these at the first step (ZeroDivisionError); optrs says so up front."""
    if value == 0:
        raise ValueError(f"{name} must not be 0 (the schedule divides by it)")


class LRScheduler:
    """Base class of the schedulers, as ``torch.optim.lr_scheduler.LRScheduler``.

    Sets ``initial_lr`` in every param group (when ``last_epoch == -1``; otherwise it must be
    there already), keeps ``base_lrs``, and takes the initial step, which writes the schedule's
    first ``lr``. Subclasses implement ``get_lr`` (and optionally ``_get_closed_form_lr``, used by
    ``step(epoch)``).
    """

    _get_lr_called_within_step: bool = False
    _is_initial: bool = False
    optimizer: OptimizerLike
    base_lrs: list[float]
    last_epoch: int
    _step_count: int
    _last_lr: list[float]

    def __init__(self, optimizer: OptimizerLike, last_epoch: int = -1) -> None:
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when resuming scheduler "
                        "with last_epoch >= 0: load the optimizer's state_dict (which holds it) first"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Resets the step count and takes the initial step."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (a copy: later steps do not change it)."""
        return copy.deepcopy({key: value for key, value in self.__dict__.items() if key != "optimizer"})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores a ``state_dict()``."""
        self.__dict__.update(copy.deepcopy(state_dict))

    def get_last_lr(self) -> list[float]:
        """The learning rates of the param groups after the last step."""
        return self._last_lr

    def get_lr(self) -> list[float]:
        """The next learning rate of every param group (called by ``step``)."""
        raise NotImplementedError

    def _warn_get_lr_called_within_step(self) -> None:
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
                          UserWarning, stacklevel=3)

    def step(self, epoch: int | None = None) -> None:
        """Advances the schedule one step (call it after ``optimizer.step``). ``epoch`` is
        deprecated, as in torch: it sets ``last_epoch`` and uses the closed form where there is one."""
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                closed_form: Callable[[], list[float]] | None = getattr(self, "_get_closed_form_lr", None)
                values = closed_form() if closed_form is not None else self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            group["lr"] = lr
        self._last_lr = _lrs(self.optimizer)
