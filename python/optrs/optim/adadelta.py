"""Adadelta (Zeiler, 2012), as ``torch.optim.Adadelta``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT, check_implementation_flags


class Adadelta(Optimizer):
    """Adadelta, computing exactly what ``torch.optim.Adadelta`` computes (same arguments and
    defaults). State per param: ``step``, ``square_avg``, ``acc_delta``.
    """

    _engine_class = _core.AdadeltaEngine

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_implementation_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)
