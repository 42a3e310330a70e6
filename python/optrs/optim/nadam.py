"""NAdam (Dozat, 2016), as ``torch.optim.NAdam``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT, check_implementation_flags


class NAdam(Optimizer):
    """NAdam: Adam with Nesterov momentum and momentum decay, computing exactly what
    ``torch.optim.NAdam`` computes (same arguments and defaults; ``decoupled_weight_decay`` makes
    it NAdamW). State per param: ``step``, ``mu_product`` (kept at float32 precision, as torch
    does), ``exp_avg``, ``exp_avg_sq``.
    """

    _engine_class = _core.NAdamEngine

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_implementation_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)
