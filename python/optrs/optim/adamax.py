"""Adamax (Kingma & Ba, 2015, section 7), as ``torch.optim.Adamax``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT, check_implementation_flags


class Adamax(Optimizer):
    """Adamax: Adam with the infinity norm, computing exactly what ``torch.optim.Adamax`` computes
    (same arguments and defaults). State per param: ``step``, ``exp_avg``, ``exp_inf``.
    """

    _engine_class = _core.AdamaxEngine

    def __init__(
        self,
        params: ParamsT,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_implementation_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)
