"""``torch.optim.swa_utils``: ``SWALR``, the learning-rate schedule of stochastic weight averaging,
the averages of plain param lists (``AveragedParams``) and torch's averaging functions, and
torch's ``AveragedModel`` and ``update_bn``.

Those two work on ``optrs.nn`` Modules, which optim never imports (it steps arrays): they live in
`optrs.utils.averaged_model`, a layer above both, which puts them in this module when ``optrs``
is imported, so ``from optrs.optim.swa_utils import AveragedModel`` works as in torch."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from .averaging import AveragedParams, get_ema_avg_fn, get_swa_avg_fn
from .lr_scheduler._base import LRScheduler, OptimizerLike, _check_optimizer, _format_param

if TYPE_CHECKING:  # installed at run time by optrs.utils.averaged_model (see above)
    from ..utils.averaged_model import AveragedModel as AveragedModel
    from ..utils.averaged_model import update_bn as update_bn

__all__ = ["SWALR", "AveragedModel", "AveragedParams", "get_ema_avg_fn", "get_swa_avg_fn", "update_bn"]


class SWALR(LRScheduler):
    """Anneals each group's lr to ``swa_lr`` (one value, or one per group) over ``anneal_epochs``
    epochs ('cos' or 'linear'), then keeps it there, as ``torch.optim.swa_utils.SWALR``."""

    def __init__(
        self,
        optimizer: OptimizerLike,
        swa_lr: float | list[float],
        anneal_epochs: int = 10,
        anneal_strategy: Literal["cos", "linear"] = "cos",
        last_epoch: int = -1,
    ) -> None:
        _check_optimizer(optimizer)
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for value, group in zip(swa_lrs, optimizer.param_groups, strict=True):
            group["swa_lr"] = value
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self) -> list[float]:
        """Interpolates from each group's lr towards ``swa_lr``, torch's recursive form."""
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
                          UserWarning, stacklevel=2)
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha)
                    for group in self.optimizer.param_groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [group["swa_lr"] * alpha + lr * (1 - alpha)
                for group, lr in zip(self.optimizer.param_groups, prev_lrs, strict=True)]

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func: Callable[[float], float] = (
            self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal
        )

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer and ``anneal_func``."""
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores a ``state_dict()``."""
        super().load_state_dict(state_dict)
        self._set_anneal_func(self._anneal_strategy)
