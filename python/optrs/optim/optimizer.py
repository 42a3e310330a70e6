"""The `Optimizer` base class: torch's user-facing contract over an engine that lives in Rust.

The subclass names its engine and defaults; this class validates and registers params, holds
the state buffers (NumPy arrays the engine writes in place) and makes each `step` one call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from ..autograd.tensor import Tensor
from ..errors import InvalidHyperparameterError, InvalidParamError, ParamDTypeError
from ..profiler._record import profiled_method


class _HasData(Protocol):
    data: NDArray[Any]
    grad: NDArray[Any] | None


ParamLike = NDArray[Any] | Tensor | _HasData
ParamsT = Iterable[ParamLike] | Iterable[dict[str, Any]]
Grads = Sequence[NDArray[Any] | None]


class _Engine(Protocol):
    def add_group(self, group: dict[str, Any], params: list[NDArray[Any]], states: list[list[NDArray[Any]]],
                  steps: list[NDArray[Any]], prefix: str) -> None: ...
    def refresh(self, params: list[NDArray[Any]]) -> None: ...
    def step(self, grads: Any, groups: list[dict[str, Any]]) -> None: ...


def _array_of(param: Any, where: str) -> NDArray[Any]:
    if isinstance(param, np.ndarray):
        return param
    data = getattr(param, "data", None)
    if isinstance(data, np.ndarray):
        return data
    raise ParamDTypeError(
        f"{where} must be a numpy.ndarray or an object with an ndarray .data (optrs.Parameter), "
        f"got {type(param).__name__}"
    )


def _allocate_state(spec: list[tuple[str, float]], arrays: list[NDArray[Any]],
                    state_shape: Callable[[str, tuple[int, ...]], tuple[int, ...] | None]
                    ) -> list[dict[str, NDArray[Any]]]:
    """One flat buffer per (state name, dtype) of a group, and each param's view of it, of shape
    ``state_shape(name, param.shape)`` (None: the param keeps no such state)."""
    states: list[dict[str, NDArray[Any]]] = [{} for _ in arrays]
    for name, initial in spec:
        shapes = [state_shape(name, a.shape) for a in arrays]
        for dtype in dict.fromkeys(a.dtype for a in arrays):
            members = [(i, shape) for i, (a, shape) in enumerate(zip(arrays, shapes))
                       if a.dtype == dtype and shape is not None]
            flat = np.full(sum(math.prod(shape) for _, shape in members), initial, dtype=dtype)
            offset = 0
            for i, shape in members:
                size = math.prod(shape)
                states[i][name] = flat[offset:offset + size].reshape(shape)
                offset += size
    return states


class _State(Mapping[Any, dict[str, Any]]):
    """``optimizer.state``: param -> its state, like torch's. Keys are compared by identity, so
    plain ndarrays (which are unhashable) work as keys. A param without state maps to ``{}``."""

    def __init__(self, optimizer: Optimizer) -> None:
        self._optimizer = optimizer

    def __getitem__(self, param: Any) -> dict[str, Any]:
        index = self._optimizer._index_of.get(id(param))
        if index is None:
            raise KeyError("not a param of this optimizer")
        return self._optimizer._state_of(index)

    def __iter__(self) -> Iterator[Any]:
        opt = self._optimizer
        return (p for i, p in enumerate(opt._params) if opt._has_state(i))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, param: object) -> bool:
        index = self._optimizer._index_of.get(id(param))
        return index is not None and self._optimizer._has_state(index)

    def __repr__(self) -> str:
        return repr({i: self._optimizer._state_of(i) for i in range(len(self._optimizer._params))
                     if self._optimizer._has_state(i)})


_SET_OF_PARAMS = ("params must be an ordered collection (a list), not a set: grads and state_dict "
                  "indices are matched to params by position")


class Optimizer:
    """Base class of optrs optimizers; mirrors ``torch.optim.Optimizer``.

    ``params`` is an iterable of ndarrays, of objects with an ndarray ``.data`` (such as
    ``optrs.Parameter``), or of dicts defining param groups (``{"params": [...], "lr": ...}``).
    """

    _engine_class: ClassVar[type[Any]]  # one of the optrs._core engines
    # torch keeps a 'step' entry in each param's state (SGD does not).
    _step_in_state: ClassVar[bool] = True
    # torch creates the state at construction rather than at a param's first step (Adagrad).
    _eager_state: ClassVar[bool] = False

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        self.state = _State(self)
        self._engine = type(self)._engine_class()
        self._params: list[Any] = []
        self._index_of: dict[int, int] = {}
        self._state_views: list[dict[str, NDArray[Any]]] = []
        self._steps: list[NDArray[np.float64]] = []
        self._has_plain_arrays = False
        self._has_foreign_params = False
        self._seen_data_version = Tensor.data_version
        if isinstance(params, (np.ndarray, Tensor)):
            raise ParamDTypeError("params must be an iterable of arrays or dicts, not a single array; "
                                  "wrap it in a list: [param]")
        if isinstance(params, (set, frozenset)):
            raise ParamDTypeError(_SET_OF_PARAMS)
        groups = list(params)
        if not groups:
            raise InvalidParamError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)  # type: ignore[arg-type]

    # -- param groups ---------------------------------------------------------------------------

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a group of params with its own options; unset options take the defaults."""
        if not isinstance(param_group, dict):
            raise ParamDTypeError(f"a param group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, (np.ndarray, Tensor)) or hasattr(params, "data"):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise ParamDTypeError(_SET_OF_PARAMS)
        elif params is None:
            raise InvalidParamError("a param group needs a 'params' entry")
        params = list(params)
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group["params"] = params
        for i, p in enumerate(params):
            if id(p) in self._index_of:
                raise InvalidParamError(f"param_groups[{len(self.param_groups)}]['params'][{i}] appears in "
                                        "more than one param group")
        views, steps = self._register(self._engine, group, len(self.param_groups))
        for p in params:
            self._index_of[id(p)] = len(self._params)
            self._params.append(p)
            self._has_plain_arrays |= isinstance(p, np.ndarray)
            self._has_foreign_params |= not isinstance(p, (np.ndarray, Tensor))
        self._state_views.extend(views)
        self._steps.extend(steps)
        self.param_groups.append(group)

    def _register(self, engine: _Engine, group: dict[str, Any],
                  index: int) -> tuple[list[dict[str, NDArray[Any]]], list[NDArray[np.float64]]]:
        """Allocates a group's state (fresh, at its initial values) and registers it with ``engine``;
        returns each param's state views and step counter."""
        prefix = f"param_groups[{index}]['params']"
        arrays = [_array_of(p, f"{prefix}[{i}]") for i, p in enumerate(group["params"])]
        spec, scalar_spec = self._engine_class.state_spec(group, f"param_groups[{index}]")
        states = _allocate_state(spec, arrays, self._state_shape)
        # Per param: the step count, then the rule's scalar state (NAdam's mu_product, ...).
        counters = np.zeros((len(arrays), 1 + len(scalar_spec)), dtype=np.float64)
        counters[:, 1:] = [initial for _, initial in scalar_spec]
        steps = list(counters)
        engine.add_group(group, arrays, [list(state.values()) for state in states], steps, prefix)
        views = []
        for state, row in zip(states, steps):
            view = dict(state)
            view.update((name, row[k + 1:k + 2].reshape(())) for k, (name, _) in enumerate(scalar_spec))
            views.append(view)
        return views, steps

    @staticmethod
    def _state_shape(name: str, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """The shape of state buffer ``name`` of a param of ``shape``, or None where such a param
        keeps no such buffer. Each buffer has its param's shape unless a subclass says otherwise."""
        return shape

    # -- stepping -------------------------------------------------------------------------------

    @profiled_method
    def step(self, grads: Grads | Callable[[], Any] | None = None,
             closure: Callable[[], Any] | None = None) -> Any:
        """Performs one optimization step, updating every param in place.

        ``grads``: one gradient (or None, which skips that param) per param, in param group order;
        without it each param's ``.grad`` is used. ``closure`` re-evaluates the model and returns
        the loss, which ``step`` returns; ``step(closure)`` works as in torch.
        """
        if closure is None and callable(grads):
            grads, closure = None, grads
        loss = closure() if closure is not None else None
        if grads is None:
            grads = self._grads_from_params()
        self._refresh_params()
        self._engine.step(grads, self.param_groups)
        return loss

    def _refresh_params(self) -> None:
        """Points the engine at the arrays of params whose ``.data`` may have been replaced."""
        if self._has_foreign_params or self._seen_data_version != Tensor.data_version:
            self._engine.refresh([_array_of(p, "param") for p in self._params])
            self._seen_data_version = Tensor.data_version

    def _grads_from_params(self) -> Grads:
        if self._has_plain_arrays:
            raise InvalidParamError(
                "this optimizer's params are plain ndarrays, which carry no .grad: pass the grads, "
                "opt.step([g0, g1, ...]), or use optrs.Parameter"
            )
        return [p.grad for p in self._params]

    @profiled_method
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Resets the ``.grad`` of every param (plain ndarrays have none and are left alone)."""
        for p in self._params:
            if isinstance(p, np.ndarray) or getattr(p, "grad", None) is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad[...] = 0

    # -- state ----------------------------------------------------------------------------------

    def _has_state(self, index: int) -> bool:
        return self._eager_state or self._steps[index][0] > 0

    def _state_of(self, index: int) -> dict[str, Any]:
        if not self._has_state(index):
            return {}
        state: dict[str, Any] = {}
        if self._step_in_state:
            state["step"] = self._steps[index][0:1].reshape(())
        state.update(self._state_views[index])
        return state

    def state_dict(self) -> dict[str, Any]:
        """torch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``,
        with NumPy copies, so it pickles and is a snapshot that later steps do not change."""
        state = {i: {k: np.array(v, copy=True) for k, v in self._state_of(i).items()}
                 for i in range(len(self._params)) if self._has_state(i)}
        groups = []
        index = 0
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            groups.append(saved)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Loads a ``state_dict()`` (of this or another optimizer of the same class over params of
        the same shapes), options included.

        The new state is built on the side and checked completely (group and param counts, state
        names, shapes, step counts) before it replaces the current one; arrays are cast to their
        param's dtype.
        """
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            raise InvalidParamError("state_dict must be a dict with 'state' and 'param_groups', "
                                    "as returned by Optimizer.state_dict()")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise InvalidParamError(f"state_dict has {len(saved_groups)} param groups, "
                                    f"this optimizer has {len(self.param_groups)}")
        engine = self._engine_class()
        new_groups: list[dict[str, Any]] = []
        views: list[dict[str, NDArray[Any]]] = []
        steps: list[NDArray[np.float64]] = []
        position_of: dict[Any, int] = {}
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            keys = list(saved.get("params", []))
            if len(keys) != len(group["params"]):
                raise InvalidParamError(f"state_dict's param_groups[{g}] has {len(keys)} params, "
                                        f"this optimizer's has {len(group['params'])}")
            for key in keys:
                position_of[key] = len(position_of)
            new_group = {**self.defaults, **saved, "params": group["params"]}
            group_views, group_steps = self._register(engine, new_group, g)
            new_groups.append(new_group)
            views.extend(group_views)
            steps.extend(group_steps)
        for key, entry in dict(state_dict["state"]).items():
            if key not in position_of:
                raise InvalidParamError(f"state_dict's state has an entry for param {key!r}, "
                                        "which no param group lists")
            index = position_of[key]
            step = float(np.asarray(entry.get("step", 1.0)))
            if not (math.isfinite(step) and step >= 0 and step == int(step)):
                raise InvalidHyperparameterError(f"state_dict's state[{key!r}]['step'] is {step}; "
                                                 "it must be a whole number >= 0")
            steps[index][0] = step
            for name, view in views[index].items():
                if name not in entry:
                    raise InvalidParamError(f"state_dict's state[{key!r}] has no '{name}'")
                value = np.asarray(entry[name])
                if value.shape != view.shape:
                    raise InvalidParamError(f"state_dict's state[{key!r}]['{name}'] has shape {value.shape}, "
                                            f"but this optimizer's has shape {view.shape}")
                np.copyto(view, value, casting="unsafe")
        # Everything is checked and in place on the side: switch over.
        self._engine, self._state_views, self._steps = engine, views, steps
        for group, new_group in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new_group)

    # -- display --------------------------------------------------------------------------------

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {key}: {group[key]}" for key in sorted(group) if key != "params")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self) -> Any:
        raise TypeError(f"{type(self).__name__} cannot be pickled; pickle its state_dict() instead "
                        "and load it with load_state_dict()")


def check_implementation_flags(*, capturable: bool = False, differentiable: bool = False) -> None:
    """torch's `foreach`/`fused` are accepted and ignored (optrs has one fused multi-tensor path);
    `capturable` and `differentiable` ask for things optrs does not do."""
    if capturable:
        raise InvalidHyperparameterError("capturable=True (CUDA graph capture) is not supported by optrs")
    if differentiable:
        raise InvalidHyperparameterError("differentiable=True (autograd through the step) is not supported by optrs")
