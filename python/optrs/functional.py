"""One in-place function per update rule, for users who keep the state themselves.

Each function updates ``params`` and the state arrays in place with exactly the arithmetic of the
matching optimizer class (the same Rust rule), in one call. ``state_steps`` are float64 arrays of
one element (``np.zeros(1)``), incremented in place. A None grad skips its param. Arrays are
checked as in the optimizers: nothing is changed if any is unusable.
"""

from __future__ import annotations

from collections.abc import MutableSequence, Sequence
from typing import Any

import numpy as np
from numpy.lib.array_utils import byte_bounds
from numpy.typing import NDArray

from . import _core
from .errors import InvalidParamError, ParamDTypeError

Arrays = Sequence[NDArray[Any]]
OptionalArrays = Sequence[NDArray[Any] | None]


def _columns(count: int, **columns: Sequence[Any] | None) -> list[list[Any]]:
    """Per-param state lists from per-state columns (None columns are unused), checking that every
    column has ``count`` entries."""
    used = {name: list(c) for name, c in columns.items() if c is not None}
    for name, column in used.items():
        if len(column) != count:
            raise InvalidParamError(f"{name} has {len(column)} entries for {count} params")
    return [list(row) for row in zip(*used.values())] if used else [[] for _ in range(count)]


def sgd(params: Arrays, grads: OptionalArrays, momentum_buffer_list: list[NDArray[Any] | None], *,
        lr: float, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
        nesterov: bool = False, maximize: bool = False) -> None:
    """``torch.optim.SGD``'s step. With momentum, a None entry of ``momentum_buffer_list`` is
    replaced by a new buffer holding the first gradient, as torch does."""
    group = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                 nesterov=nesterov, maximize=maximize)
    if momentum == 0:
        states: list[list[Any]] = [[] for _ in params]
        steps = [np.zeros(1) for _ in params]
    else:
        if len(grads) != len(params):
            raise InvalidParamError(f"got {len(grads)} grads for {len(params)} params; "
                                    "pass one grad (or None) per param")
        if len(momentum_buffer_list) != len(params):
            raise InvalidParamError(f"momentum_buffer_list has {len(momentum_buffer_list)} entries "
                                    f"for {len(params)} params")
        fresh = [buf is None and g is not None for buf, g in zip(momentum_buffer_list, grads)]
        if any(fresh) and not isinstance(momentum_buffer_list, MutableSequence):
            raise InvalidParamError("momentum_buffer_list must be a list: the step stores the new momentum "
                                    f"buffers in its None entries, got a {type(momentum_buffer_list).__name__}")
        buffers = [np.empty_like(p) if buf is None else buf for p, buf in zip(params, momentum_buffer_list)]
        states = [[b] for b in buffers]
        # A step count of 1 tells the rule to start the buffer from the gradient.
        steps = [np.zeros(1) if new else np.ones(1) for new in fresh]
    _core.SGDEngine.apply(group, list(params), list(grads), states, steps)
    if momentum != 0:
        for i, new in enumerate(fresh):
            if new:
                momentum_buffer_list[i] = states[i][0]


def adam(params: Arrays, grads: OptionalArrays, exp_avgs: Arrays, exp_avg_sqs: Arrays,
         max_exp_avg_sqs: Arrays | None, state_steps: Arrays, *, amsgrad: bool = False, beta1: float,
         beta2: float, lr: float, weight_decay: float, eps: float, maximize: bool = False,
         decoupled_weight_decay: bool = False) -> None:
    """``torch.optim.Adam``'s step (AdamW's with ``decoupled_weight_decay=True``)."""
    group = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                 maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
    states = _columns(len(params), exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs,
                      max_exp_avg_sqs=max_exp_avg_sqs if amsgrad else None)
    _core.AdamEngine.apply(group, list(params), list(grads), states, list(state_steps))


def adamw(params: Arrays, grads: OptionalArrays, exp_avgs: Arrays, exp_avg_sqs: Arrays,
          max_exp_avg_sqs: Arrays | None, state_steps: Arrays, *, amsgrad: bool = False, beta1: float,
          beta2: float, lr: float, weight_decay: float, eps: float, maximize: bool = False) -> None:
    """``torch.optim.AdamW``'s step."""
    adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, amsgrad=amsgrad, beta1=beta1,
         beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps, maximize=maximize, decoupled_weight_decay=True)


def adagrad(params: Arrays, grads: OptionalArrays, state_sums: Arrays, state_steps: Arrays, *, lr: float,
            weight_decay: float = 0.0, lr_decay: float = 0.0, eps: float = 1e-10,
            maximize: bool = False) -> None:
    """``torch.optim.Adagrad``'s step (``state_sums`` start at ``initial_accumulator_value``)."""
    group = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=0.0,
                 eps=eps, maximize=maximize)
    states = _columns(len(params), state_sums=state_sums)
    _core.AdagradEngine.apply(group, list(params), list(grads), states, list(state_steps))


def adadelta(params: Arrays, grads: OptionalArrays, square_avgs: Arrays, acc_deltas: Arrays,
             state_steps: Arrays, *, lr: float, rho: float, eps: float, weight_decay: float = 0.0,
             maximize: bool = False) -> None:
    """``torch.optim.Adadelta``'s step."""
    group = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
    states = _columns(len(params), square_avgs=square_avgs, acc_deltas=acc_deltas)
    _core.AdadeltaEngine.apply(group, list(params), list(grads), states, list(state_steps))


def rmsprop(params: Arrays, grads: OptionalArrays, square_avgs: Arrays, grad_avgs: Arrays | None,
            momentum_buffer_list: Arrays | None, state_steps: Arrays, *, lr: float, alpha: float,
            eps: float, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
            maximize: bool = False) -> None:
    """``torch.optim.RMSprop``'s step (``grad_avgs`` used when centered, ``momentum_buffer_list``
    when momentum > 0)."""
    group = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                 centered=centered, maximize=maximize)
    states = _columns(len(params), square_avgs=square_avgs,
                      momentum_buffer_list=momentum_buffer_list if momentum > 0 else None,
                      grad_avgs=grad_avgs if centered else None)
    _core.RMSpropEngine.apply(group, list(params), list(grads), states, list(state_steps))


def _with_scalars(params: Arrays, grads: OptionalArrays, states: list[list[Any]], state_steps: Arrays,
                  **scalars: Arrays) -> list[NDArray[np.float64]]:
    """The engine's per-param counters: the step, then the rule's scalar state (one-element arrays
    in torch's functional signatures). Everything ``_write_back`` will write is checked here,
    before the step changes anything: each entry a writeable one-element float array that shares
    no memory with another entry, a param, a grad or a state buffer."""
    columns = {"state_steps": list(state_steps), **{name: list(c) for name, c in scalars.items()}}
    for name, column in columns.items():
        if len(column) != len(params):
            raise InvalidParamError(f"{name} has {len(column)} entries for {len(params)} params")
        for i, target in enumerate(column):
            where = f"{name}[{i}]"
            if not isinstance(target, np.ndarray) or target.size != 1:
                raise InvalidParamError(f"{where} must be a one-element array (np.zeros(1)), got "
                                        f"{type(target).__name__} of size {np.size(target)}")
            if target.dtype.kind != "f":
                raise ParamDTypeError(f"{where} has dtype {target.dtype}; pass a float array (np.zeros(1))")
            if not target.flags.writeable:
                raise InvalidParamError(f"{where} is read-only; the step writes it, so pass a writeable array")
    targets = [(f"{name}[{i}]", a) for name, column in columns.items() for i, a in enumerate(column)]
    others = [(f"{name}[{i}]", a) for name, column in (("params", params), ("grads", grads))
              for i, a in enumerate(column)]
    others += [(f"state of params[{i}]", a) for i, row in enumerate(states) for a in row]
    _check_disjoint(targets, [(w, a) for w, a in others if isinstance(a, np.ndarray)])
    return [np.array([float(a.reshape(-1)[0]) for a in row]) for row in zip(*columns.values())]


def _check_disjoint(targets: list[tuple[str, NDArray[Any]]], others: list[tuple[str, NDArray[Any]]]) -> None:
    """Fails if a target shares memory with another target or with one of ``others`` (byte
    ranges, sorted: O(n log n) however many params)."""
    spans = sorted((*byte_bounds(a), is_target, where)
                   for is_target, arrays in ((True, targets), (False, others)) for where, a in arrays)
    end_any, end_target = (0, ""), (0, "")
    for start, end, is_target, where in spans:
        if start == end:
            continue
        if is_target and start < end_any[0]:
            raise InvalidParamError(f"{where} shares memory with {end_any[1]}; pass a separate array")
        if start < end_target[0]:
            raise InvalidParamError(f"{where} shares memory with {end_target[1]}; pass a separate array")
        end_any = max(end_any, (end, where))
        if is_target:
            end_target = max(end_target, (end, where))


def _write_back(counters: list[NDArray[np.float64]], state_steps: Arrays, *scalars: Arrays) -> None:
    """Writes the counters back into the caller's arrays, all checked by ``_with_scalars``."""
    for counter, *row in zip(counters, state_steps, *scalars):
        for value, target in zip(counter, row):
            target.reshape(-1)[0] = value


def adamax(params: Arrays, grads: OptionalArrays, exp_avgs: Arrays, exp_infs: Arrays, state_steps: Arrays, *,
           eps: float, beta1: float, beta2: float, lr: float, weight_decay: float, maximize: bool = False) -> None:
    """``torch.optim.Adamax``'s step."""
    group = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, maximize=maximize)
    states = _columns(len(params), exp_avgs=exp_avgs, exp_infs=exp_infs)
    _core.AdamaxEngine.apply(group, list(params), list(grads), states, list(state_steps))


def radam(params: Arrays, grads: OptionalArrays, exp_avgs: Arrays, exp_avg_sqs: Arrays, state_steps: Arrays, *,
          beta1: float, beta2: float, lr: float, weight_decay: float, eps: float,
          decoupled_weight_decay: bool = False, maximize: bool = False) -> None:
    """``torch.optim.RAdam``'s step."""
    group = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                 decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    states = _columns(len(params), exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs)
    _core.RAdamEngine.apply(group, list(params), list(grads), states, list(state_steps))


def nadam(params: Arrays, grads: OptionalArrays, exp_avgs: Arrays, exp_avg_sqs: Arrays, mu_products: Arrays,
          state_steps: Arrays, *, beta1: float, beta2: float, lr: float, weight_decay: float,
          momentum_decay: float, eps: float, decoupled_weight_decay: bool = False, maximize: bool = False) -> None:
    """``torch.optim.NAdam``'s step (``mu_products`` one-element arrays starting at 1)."""
    group = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                 decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    states = _columns(len(params), exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs)
    counters = _with_scalars(params, grads, states, state_steps, mu_products=mu_products)
    _core.NAdamEngine.apply(group, list(params), list(grads), states, counters)
    _write_back(counters, state_steps, mu_products)


def rprop(params: Arrays, grads: OptionalArrays, prevs: Arrays, step_sizes: Arrays, state_steps: Arrays, *,
          step_size_min: float, step_size_max: float, etaminus: float, etaplus: float,
          maximize: bool = False) -> None:
    """``torch.optim.Rprop``'s step (``prevs`` start at 0, ``step_sizes`` at the learning rate)."""
    group = dict(lr=0.0, etas=(etaminus, etaplus), step_sizes=(step_size_min, step_size_max), maximize=maximize)
    states = _columns(len(params), prevs=prevs, step_sizes=step_sizes)
    _core.RpropEngine.apply(group, list(params), list(grads), states, list(state_steps))


def asgd(params: Arrays, grads: OptionalArrays, axs: Arrays, mus: Arrays, etas: Arrays, state_steps: Arrays, *,
         lambd: float, lr: float, t0: float, alpha: float, weight_decay: float, maximize: bool = False) -> None:
    """``torch.optim.ASGD``'s step (``etas`` one-element arrays starting at ``lr`` rounded to float32,
    as torch keeps it, ``mus`` at 1)."""
    group = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)
    states = _columns(len(params), axs=axs)
    counters = _with_scalars(params, grads, states, state_steps, etas=etas, mus=mus)
    _core.ASGDEngine.apply(group, list(params), list(grads), states, counters)
    _write_back(counters, state_steps, etas, mus)


__all__ = ["sgd", "adam", "adamw", "adagrad", "adadelta", "rmsprop", "adamax", "radam", "nadam", "rprop", "asgd"]
