"""Adafactor (Shazeer & Stern, 2018), as ``torch.optim.Adafactor``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT


class Adafactor(Optimizer):
    """Adafactor, computing what ``torch.optim.Adafactor`` computes (same arguments and defaults).

    Per step and param, with ``t`` its step count and ``g`` its grad (negated with ``maximize``):
    ``rho = min(lr, 1 / sqrt(t))``; ``alpha = max(eps2, RMS(param)) * rho``; the param decays by
    ``lr * weight_decay`` (decoupled); the second moment, with weight ``t ** beta2_decay``, is
    for params of two or more dims factored over the last two (any leading dims are a batch):
    ``row_var`` and ``col_var`` are running means of ``g * g`` along the rows and the columns, and
    the estimate is ``row_var @ col_var / max(mean(row_var), eps1)``; for the others ``variance``
    is a running ``g * g``. The update ``g / sqrt(max(estimate, eps1 ** 2))`` is divided by
    ``max(1, RMS(update) / d)`` and the param moves by ``-alpha`` times it.

    ``eps=(eps1, eps2)``: ``eps1=None`` is the machine epsilon of the dtype of the first param of
    the group that has a grad in that step, as in torch (which resolves it once per group and
    step). Every reduction has a fixed order, so results do not depend on the thread count.

    State per param: ``step``, and ``row_var`` of shape ``(..., rows, 1)`` and ``col_var`` of shape
    ``(..., 1, cols)`` for a param of shape ``(..., rows, cols)``, else ``variance`` (the param's
    shape). ``foreach`` is accepted for compatibility and ignored.
    """

    _engine_class = _core.AdafactorEngine

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ) -> None:
        # A pair is kept as a tuple, as torch's defaults; anything else reaches the step's check,
        # which says what eps must be.
        pair = tuple(eps) if isinstance(eps, (tuple, list)) else eps
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=pair, d=d, weight_decay=weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)
