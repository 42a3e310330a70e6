"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT, check_implementation_flags


class Adam(Optimizer):
    """Adam, computing exactly what ``torch.optim.Adam`` computes (same arguments and defaults).

    State per param: ``step``, ``exp_avg``, ``exp_avg_sq`` and, with ``amsgrad``,
    ``max_exp_avg_sq``. ``decoupled_weight_decay=True`` makes it AdamW.
    ``foreach`` and ``fused`` are accepted for compatibility and ignored: every step is one fused
    multi-tensor call.
    """

    _engine_class = _core.AdamEngine

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_implementation_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)
