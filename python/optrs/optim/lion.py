"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"); not in torch."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT


class Lion(Optimizer):
    """Lion, the sign of an interpolated momentum, with the paper's defaults (Algorithm 2)::

        c = beta1 * m + (1 - beta1) * g
        p = p * (1 - lr * weight_decay) - lr * sign(c)
        m = beta2 * m + (1 - beta2) * g

    The paper suggests a learning rate 3-10x smaller than AdamW's and a weight decay 3-10x larger.
    State per param: ``exp_avg``.
    """

    _engine_class = _core.LionEngine
    _step_in_state = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize))
