"""ASGD, averaged SGD (Polyak & Juditsky, 1992), as ``torch.optim.ASGD``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT, check_implementation_flags


class ASGD(Optimizer):
    """Averaged SGD: SGD with step size ``eta = lr / (1 + lambd * lr * step) ** alpha`` and a
    running average ``ax`` of the params that starts after ``t0`` steps. Computes exactly what
    ``torch.optim.ASGD`` computes (same arguments and defaults). State per param: ``step``,
    ``eta`` and ``mu`` (at float32 precision, as torch keeps them), ``ax``.
    """

    _engine_class = _core.ASGDEngine

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_implementation_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)
