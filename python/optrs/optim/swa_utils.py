"""``torch.optim.swa_utils``: ``SWALR``, the learning-rate schedule of stochastic weight averaging,
torch's ``AveragedModel`` of an ``optrs.nn.Module`` and ``update_bn``, and the averages of plain
param lists (``AveragedParams``) and torch's averaging functions re-exported from ``optrs.utils``."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np

from ..autograd.grad_mode import no_grad
from ..errors import InvalidHyperparameterError, InvalidParamError
from ..nn.modules.module import Module
from ..nn.modules.normalization import BatchNorm2d
from ..utils.averaging import AveragedParams, AvgFn, get_ema_avg_fn, get_swa_avg_fn
from .lr_scheduler._base import LRScheduler, OptimizerLike, _check_optimizer, _format_param

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



class AveragedModel(Module):
    """torch's ``AveragedModel``: a deep copy of ``model`` whose parameters (and, with
    ``use_buffers=True``, buffers) hold running averages of ``model``'s, updated by
    ``update_parameters(model)``; calling it runs the averaged copy. By default the equal-weight
    SWA mean, computed as torch does on the CPU (``avg + (p - avg) / (n + 1)``); ``avg_fn(avg,
    p, n) -> new avg`` (``get_ema_avg_fn(0.999)`` for EMA) or ``multi_avg_fn(avgs, ps, n)``
    (in place on lists) replaces it. Without ``use_buffers`` the buffers (batch-norm statistics)
    are copied from ``model`` at each update, as torch does. ``n_averaged`` is a buffer, so it
    travels in ``state_dict()``."""

    def __init__(self, model: Module, device: Any = None, avg_fn: AvgFn | None = None,
                 multi_avg_fn: Callable[[list[Any], list[Any], int], None] | None = None,
                 use_buffers: bool = False) -> None:
        super().__init__()
        if not isinstance(model, Module):
            raise InvalidParamError(f"model must be an optrs.nn.Module, got {type(model).__name__}")
        if device not in (None, "cpu"):
            raise InvalidHyperparameterError(f"device must be None or 'cpu' (optrs runs on NumPy arrays), "
                                             f"got {device!r}")
        self.module = copy.deepcopy(model)
        self.register_buffer("n_averaged", np.array(0, np.int64))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def _averaged(self, model: Module) -> tuple[list[Any], list[Any]]:
        def tensors(m: Module) -> list[Any]:
            return [*m.parameters(), *(m.buffers() if self.use_buffers else ())]

        ours, theirs = tensors(self.module), tensors(model)
        if len(ours) != len(theirs) or any(a.shape != b.shape for a, b in zip(ours, theirs)):
            raise InvalidParamError("model's parameters differ in number or shape from the averaged copy's; "
                                    "pass the model this AveragedModel was made from")
        return ours, theirs

    def update_parameters(self, model: Module) -> None:
        """Folds ``model``'s current parameters into the averages (the first call copies them)."""
        ours, theirs = self._averaged(model)
        n = int(self.n_averaged.data)
        averages = [t.data for t in ours if np.issubdtype(t.data.dtype, np.floating) or n == 0]
        currents = [t.data for o, t in zip(ours, theirs) if np.issubdtype(o.data.dtype, np.floating) or n == 0]
        if n == 0:
            for avg, p in zip(averages, currents):
                np.copyto(avg, p, casting="unsafe")
        elif self.multi_avg_fn is not None:
            self.multi_avg_fn(averages, currents, n)
        else:
            avg_fn = self.avg_fn or get_swa_avg_fn()
            for avg, p in zip(averages, currents):
                np.copyto(avg, avg_fn(avg, p.astype(avg.dtype, copy=False), n), casting="same_kind")
        if not self.use_buffers:
            for ours_b, theirs_b in zip(self.module.buffers(), model.buffers()):
                np.copyto(ours_b.data, theirs_b.data, casting="unsafe")
        self.n_averaged.data[...] = n + 1


def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    """torch's ``update_bn``: recomputes every batch-norm layer's running statistics as the plain
    average over one pass of ``loader`` (batches, or tuples/lists whose first item is the input)
    through ``model`` in training mode; the model's mode and momenta are restored after."""
    norms = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    if not norms:
        return
    momenta = {m: m.momentum for m in norms}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    try:
        with no_grad():
            for batch in loader:
                model(batch[0] if isinstance(batch, (list, tuple)) else batch)
    finally:
        for m, momentum in momenta.items():
            m.momentum = momentum
        model.train(was_training)
