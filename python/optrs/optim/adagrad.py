"""Adagrad (Duchi et al., 2011), as ``torch.optim.Adagrad``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT, check_implementation_flags


class Adagrad(Optimizer):
    """Adagrad with learning-rate decay, computing exactly what ``torch.optim.Adagrad`` computes
    (same arguments and defaults).

    State per param, created at construction as in torch: ``step`` and ``sum`` (starting at
    ``initial_accumulator_value``).
    """

    _engine_class = _core.AdagradEngine
    _eager_state = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_implementation_flags(differentiable=differentiable)
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps, maximize=maximize)
        super().__init__(params, defaults)
