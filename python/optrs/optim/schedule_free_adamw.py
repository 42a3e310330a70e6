"""Schedule-Free AdamW (Defazio et al., 2024, "The Road Less Scheduled"); not in torch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _core
from .optimizer import Grads, Optimizer, ParamsT


class ScheduleFreeAdamW(Optimizer):
    """Schedule-Free AdamW, computing what the authors' ``schedulefree.AdamWScheduleFree``
    computes (same arguments, defaults, state and group entries). No learning-rate schedule is
    needed: the method averages its iterates instead.

    It keeps ``z`` (AdamW-style steps) and ``x`` (the weighted average of the ``z``), and takes
    gradients at ``y = (1 - beta1) * z + beta1 * x``. In train mode the params hold ``y``;
    :meth:`eval` moves them to ``x``, the point to evaluate, test and checkpoint, and
    :meth:`train` moves them back. Like the reference, the optimizer starts in eval mode: call
    ``train()`` before the first step (``step()`` in eval mode raises). Step ``k + 1`` of a group::

        lr_k = lr * min(1, (k + 1) / warmup_steps)        (lr without warmup)
        lr_max = max(lr_max, lr_k)
        weight = (k + 1)**r * lr_max**weight_lr_power;  weight_sum += weight
        c = weight / weight_sum
        v = beta2 * v + (1 - beta2) * g * g
        n = g / (sqrt(v / (1 - beta2**(k + 1))) + eps) + weight_decay * y
        y = lerp(y, z, c) + lr_k * (beta1 * (1 - c) - 1) * n
        z = z - lr_k * n

    with ``z`` starting at the param. The schedule is per group, as in the reference: ``k``,
    ``weight_sum``, ``lr_max``, ``scheduled_lr`` and ``train_mode`` are entries of each param
    group (so ``state_dict()`` carries them), and ``k`` advances every step, also for params
    without a grad. A group added later joins in the optimizer's current mode. ``foreach`` is
    accepted and ignored. State per param: ``z``, ``exp_avg_sq``.
    """

    _engine_class = _core.ScheduleFreeAdamWEngine
    _step_in_state = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, warmup_steps=warmup_steps,
                        r=r, weight_lr_power=weight_lr_power, maximize=maximize,
                        k=0, train_mode=False, weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a group, in the optimizer's current mode (the reference would add it in eval mode
        and leave its params at ``y`` on the next ``eval()``)."""
        if self.param_groups and isinstance(param_group, dict):
            param_group = {**param_group, "train_mode": self.param_groups[0]["train_mode"]}
        super().add_param_group(param_group)

    def train(self) -> None:
        """Train mode: moves the params from ``x`` to ``y``, where gradients are taken."""
        self._sync_params()
        self._engine.set_train_mode(self.param_groups, True)

    def eval(self) -> None:
        """Eval mode: moves the params from ``y`` to the average ``x``, to evaluate or save."""
        self._sync_params()
        self._engine.set_train_mode(self.param_groups, False)

    def step(self, grads: Grads | Callable[[], Any] | None = None,
             closure: Callable[[], Any] | None = None) -> Any:
        """One step, in train mode only (see :meth:`Optimizer.step`)."""
        if not all(group["train_mode"] for group in self.param_groups):
            raise RuntimeError("ScheduleFreeAdamW is in eval mode (its params hold the averaged point x); "
                               "call optimizer.train() before training steps, and optimizer.eval() before "
                               "evaluating or saving")
        return super().step(grads, closure)
