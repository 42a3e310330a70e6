"""ADOPT (Taniguchi et al., 2024, "ADOPT: Modified Adam Can Converge with Any beta2 with the
Optimal Rate"); not in torch."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT


class ADOPT(Optimizer):
    """ADOPT with the paper's defaults (Algorithm 2, with clipping). The first step only sets the
    second moment to ``g*g``; each later step ``t`` (counting that first one as ``t = 0``) does::

        n = clip(g / max(sqrt(v), eps), -t**0.25, t**0.25)
        m = beta1 * m + (1 - beta1) * n
        p = p - lr * m
        v = beta2 * v + (1 - beta2) * g * g

    ``decouple=True`` makes the weight decay AdamW-style; ``clip=False`` drops the clipping
    (Algorithm 1). Argument names follow the authors' implementation.
    State per param: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    _engine_class = _core.ADOPTEngine

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.9999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        decouple: bool = False,
        *,
        clip: bool = True,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, decouple=decouple,
                        clip=clip, maximize=maximize)
        super().__init__(params, defaults)
