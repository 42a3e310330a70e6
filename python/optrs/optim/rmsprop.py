"""RMSprop (Hinton, 2012), as ``torch.optim.RMSprop``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT, check_implementation_flags


class RMSprop(Optimizer):
    """RMSprop, optionally centered and with momentum, computing exactly what
    ``torch.optim.RMSprop`` computes (same arguments and defaults).

    State per param: ``step``, ``square_avg``, ``momentum_buffer`` (if ``momentum > 0``) and
    ``grad_avg`` (if ``centered``).
    """

    _engine_class = _core.RMSpropEngine

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_implementation_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)
