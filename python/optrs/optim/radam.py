"""RAdam (Liu et al., 2020), as ``torch.optim.RAdam``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT, check_implementation_flags


class RAdam(Optimizer):
    """RAdam: Adam whose adaptive learning rate is rectified, and switched off while the variance
    estimate is unreliable (rho_t <= 5). Computes exactly what ``torch.optim.RAdam`` computes
    (same arguments and defaults). State per param: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    _engine_class = _core.RAdamEngine

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_implementation_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)
