"""torch's ``AveragedModel`` and ``update_bn`` (``torch.optim.swa_utils``) for ``optrs.nn`` Modules.

They need both nn (Modules, BatchNorm2d) and optim (the averaging functions), so they sit in the
tools layer above both, and install themselves in `optrs.optim.swa_utils`, torch's import path.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..errors import InvalidHyperparameterError, InvalidParamError
from ..nn.modules.module import Module
from ..nn.modules.normalization import BatchNorm2d
from ..optim import swa_utils
from ..optim.averaging import AvgFn, get_swa_avg_fn

__all__ = ["AveragedModel", "update_bn"]


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


# torch's path: optrs.optim.swa_utils.AveragedModel (optim itself never imports nn).
swa_utils.AveragedModel = AveragedModel  # type: ignore[misc]
swa_utils.update_bn = update_bn
