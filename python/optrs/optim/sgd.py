"""Stochastic gradient descent, as ``torch.optim.SGD``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT, check_implementation_flags


class SGD(Optimizer):
    """SGD with optional momentum, dampening, Nesterov momentum and weight decay, computing exactly
    what ``torch.optim.SGD`` computes (same arguments and defaults).

    State per param, with momentum: ``momentum_buffer``, started as a copy of the first gradient.
    """

    _engine_class = _core.SGDEngine
    _step_in_state = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_implementation_flags(differentiable=differentiable)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)
