"""The `Optimizer` base class: torch's user-facing contract over an engine that lives in Rust.

The subclass names its engine and defaults; this class validates and registers params, holds
the state buffers (NumPy arrays the engine writes in place) and makes each `step` one call.
The engine re-checks every array it writes before each step; when a group's ``params`` list was
edited, the step registers the groups again (torch steps what the lists hold).
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from .._plumbing.hooks import profiled_method
from .._plumbing.params import ParamLike, VersionedData, array_of, is_param_object
from ..errors import InvalidHyperparameterError, InvalidParamError, ParamDTypeError

ParamsT = Iterable[ParamLike] | Iterable[dict[str, Any]]
Grads = Sequence[NDArray[Any] | None]


class _Engine(Protocol):
    def add_group(self, group: dict[str, Any], params: list[NDArray[Any]], states: list[list[NDArray[Any]]],
                  steps: list[NDArray[Any]], prefix: str) -> None: ...
    def refresh(self, params: list[NDArray[Any]]) -> None: ...
    def step(self, grads: Any, groups: list[dict[str, Any]]) -> bool: ...


def _allocate_state(spec: list[tuple[str, float]], arrays: list[NDArray[Any]],
                    state_shapes: list[list[list[int] | None]]) -> list[dict[str, NDArray[Any]]]:
    """One flat buffer per (state name, dtype) of a group, and each param's view of it, of the
    shape ``state_shapes[param][k]`` for the ``k``-th name (None: the param keeps no such state;
    the engine's rule says, ``state_shapes``)."""
    states: list[dict[str, NDArray[Any]]] = [{} for _ in arrays]
    for k, (name, initial) in enumerate(spec):
        shapes = [None if (given := s[k]) is None else tuple(given) for s in state_shapes]
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
    plain ndarrays (which are unhashable) work as keys. A param without state maps to ``{}``.
    As in torch, a param removed from its group's list keeps its state here (and gets it back if
    it is listed again) until ``del optimizer.state[param]``."""

    def __init__(self, optimizer: Optimizer) -> None:
        self._optimizer = optimizer

    def __getitem__(self, param: Any) -> dict[str, Any]:
        opt = self._optimizer
        opt._sync_for_reading()
        index = opt._index_of.get(id(param))
        if index is not None:
            return opt._state_of(index)
        if id(param) in opt._removed:
            return opt._state_for(opt._removed[id(param)], "state of a param removed from its group")
        raise KeyError("not a param of this optimizer")

    def __delitem__(self, param: Any) -> None:
        """Drops the state of a param no group lists any more (as ``del`` on torch's dict)."""
        opt = self._optimizer
        opt._sync_for_reading()
        if id(param) in opt._removed:
            del opt._removed[id(param)]
        elif id(param) in opt._index_of:
            raise InvalidParamError("a param that a group lists keeps its state; remove it from its group's "
                                    "'params' first")
        else:
            raise KeyError("not a param of this optimizer")

    def __iter__(self) -> Iterator[Any]:
        opt = self._optimizer
        opt._sync_for_reading()
        listed = (p for i, p in enumerate(opt._params) if opt._has_state(i))
        removed = (r.param for r in opt._removed.values() if opt._eager_state or r.has_state)
        return iter([*listed, *removed])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, param: object) -> bool:
        opt = self._optimizer
        opt._sync_for_reading()
        index = opt._index_of.get(id(param))
        if index is None:
            removed = opt._removed.get(id(param))
            return removed is not None and (opt._eager_state or removed.has_state)
        return opt._has_state(index)

    def __repr__(self) -> str:
        return repr({i: self._optimizer._state_of(i) for i in range(len(self._optimizer._params))
                     if self._optimizer._has_state(i)})


class _ParamState(dict[str, Any]):
    """``optimizer.state[param]`` of a param with state: its state arrays, which the engine
    writes in place. Assigning ``state[name] = value`` copies ``value`` into the optimizer's
    buffer, after checking it (a number array of the buffer's shape; a ``step`` a whole number
    >= 0); entries cannot be added or removed, since the engine keeps exactly these."""

    def __init__(self, entries: dict[str, Any], where: str) -> None:
        super().__init__(entries)
        self._where = where

    def _checked(self, name: str, value: Any) -> tuple[NDArray[Any], NDArray[Any]]:
        where = f"{self._where}['{name}']"
        if name not in self:
            raise InvalidParamError(f"{self._where} has no state '{name}'; it keeps {list(self)}, which can be "
                                    "assigned but not added to")
        target: NDArray[Any] = dict.__getitem__(self, name)
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise ParamDTypeError(f"{where} must be a real number array, got dtype {array.dtype}")
        if array.shape != target.shape:
            raise InvalidParamError(f"{where} has shape {target.shape}; cannot assign an array of shape "
                                    f"{array.shape} (assign one of the same shape, or load a state_dict)")
        if name == "step":
            step = float(array)
            if not (math.isfinite(step) and step >= 0 and step == int(step)):
                raise InvalidHyperparameterError(f"{where} must be a whole number >= 0, got {step}")
        return target, array

    def __setitem__(self, name: str, value: Any) -> None:
        target, array = self._checked(name, value)
        np.copyto(target, array, casting="unsafe")

    def update(self, *args: Any, **kwargs: Any) -> None:
        checked = [self._checked(name, value) for name, value in dict(*args, **kwargs).items()]
        for target, array in checked:  # all checked first: nothing half-assigned
            np.copyto(target, array, casting="unsafe")

    def __ior__(self, other: Any) -> _ParamState:  # type: ignore[override,misc]
        self.update(other)
        return self

    def setdefault(self, name: str, default: Any = None) -> Any:
        if name not in self:
            self._checked(name, default)  # raises: entries cannot be added
        return self[name]

    def _cannot_remove(self, *args: Any) -> Any:
        raise InvalidParamError(f"{self._where}'s entries cannot be removed: the optimizer keeps exactly "
                                f"{list(self)}; assign new values instead")

    __delitem__ = pop = popitem = clear = _cannot_remove


class _Registered:
    """A param's registration: the object listed, and its state (views and engine arrays)."""

    __slots__ = ("param", "buffers", "views", "step")

    def __init__(self, param: Any, buffers: dict[str, NDArray[Any]], views: dict[str, NDArray[Any]],
                 step: NDArray[np.float64]) -> None:
        self.param, self.buffers, self.views, self.step = param, buffers, views, step

    @property
    def has_state(self) -> bool:
        return bool(self.step[0] != 0)  # NaN too: a bad count shows, and the step rejects it


def _param_list(params: Any, where: str) -> list[Any]:
    """A group's 'params' as a list (a lone array or Parameter is wrapped, as torch does); a
    list is kept as it is, so that a caller's reference to it stays the group's list."""
    if isinstance(params, list):
        return params
    if is_param_object(params):
        return [params]
    if isinstance(params, (set, frozenset)):
        raise ParamDTypeError(_SET_OF_PARAMS)
    if params is None:
        raise InvalidParamError(f"{where} needs a 'params' entry")
    return list(params)


def _split_names(params: list[Any]) -> tuple[list[Any], list[str] | None]:
    """torch 2.13's named params: ``model.named_parameters()`` gives (name, param) pairs, whose
    names the group keeps under 'param_names' (and its state_dict carries). All or none named."""
    named = [isinstance(p, tuple) for p in params]
    if not any(named):
        return params, None
    if not all(named) or any(len(p) != 2 for p in params):
        raise InvalidParamError("all optimizer params should be with/without names (as (name, param) pairs, "
                                "which model.named_parameters() gives); some param names are missing")
    return [p for _, p in params], [str(name) for name, _ in params]


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
    # torch creates the state at construction rather than at a param's first step (Adagrad; its Rust
    # rule says so too, `Rule::EAGER_STATE`, so that its engine does not create the state again).
    _eager_state: ClassVar[bool] = False

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        self.state = _State(self)
        self._engine = type(self)._engine_class()
        # Per registered param, in group order: the object listed and its state.
        self._params: list[Any] = []
        self._registered: list[_Registered] = []
        self._index_of: dict[int, int] = {}
        # What each group's 'params' listed when it was registered, to spot edits of the lists.
        self._listed: list[list[Any]] = []
        # State of params removed from their group's list, by id (torch keeps it in its dict).
        self._removed: dict[int, _Registered] = {}
        self._has_plain_arrays = False
        self._has_foreign_params = False
        self._seen_data_version = VersionedData.data_version
        if isinstance(params, (np.ndarray, VersionedData)):
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
        self._sync_params()
        group = dict(param_group)
        params = list(_param_list(group.get("params"), "a param group"))  # a copy, as torch
        params, names = _split_names(params)
        if names is not None:
            group["param_names"] = names
        for g, other in enumerate(self.param_groups):
            if ("param_names" in group) != ("param_names" in other):
                raise InvalidParamError(
                    f"all param groups must be with or without names, as torch's: param_groups[{g}] is "
                    f"{'with' if 'param_names' in other else 'without'} names; pass this group's params "
                    f"{'as (name, param) pairs' if 'param_names' in other else 'without names'}")
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        group["params"] = params
        for i, p in enumerate(params):
            if id(p) in self._index_of:
                raise InvalidParamError(f"param_groups[{len(self.param_groups)}]['params'][{i}] appears in "
                                        "more than one param group")
        registered = self._register(self._engine, group, len(self.param_groups), self._removed)
        for entry in registered:
            self._removed.pop(id(entry.param), None)
        self._add_registered(registered)
        self._listed.append(list(params))
        self.param_groups.append(group)

    def _add_registered(self, registered: list[_Registered]) -> None:
        for entry in registered:
            p = entry.param
            self._index_of[id(p)] = len(self._params)
            self._params.append(p)
            self._registered.append(entry)
            self._has_plain_arrays |= isinstance(p, np.ndarray)
            self._has_foreign_params |= not isinstance(p, (np.ndarray, VersionedData))

    def _register(self, engine: _Engine, group: dict[str, Any], index: int,
                  kept: Mapping[int, _Registered]) -> list[_Registered]:
        """Registers a group with ``engine``: each param keeps its entry in ``kept`` (its state,
        when it was registered before) or gets fresh state at its initial values. Unless the
        optimizer's state is eager (Adagrad), the engine sets those values again at the param's
        first step, from that step's options, as torch creates state then (ASGD's ``eta`` and
        Rprop's ``step_size`` start at the lr of that step)."""
        prefix = f"param_groups[{index}]['params']"
        params = group["params"]
        arrays = [array_of(p, f"{prefix}[{i}]") for i, p in enumerate(params)]
        spec, scalar_spec = self._engine_class.state_spec(group, f"param_groups[{index}]")
        shapes = self._engine_class.state_shapes(group, [a.shape for a in arrays], f"param_groups[{index}]")
        # A param without state yet (it has not stepped) starts afresh, with the state that the
        # options need now: torch creates it at the first step.
        fresh = [i for i, p in enumerate(params)
                 if id(p) not in kept or not (self._eager_state or kept[id(p)].has_state)]
        states = _allocate_state(spec, [arrays[i] for i in fresh], [shapes[i] for i in fresh])
        # Per param: the step count, then the rule's scalar state (NAdam's mu_product, ...).
        counters = np.zeros((len(fresh), 1 + len(scalar_spec)), dtype=np.float64)
        counters[:, 1:] = [initial for _, initial in scalar_spec]
        new = dict(zip(fresh, zip(states, counters)))
        registered = []
        for i, p in enumerate(params):
            if i in new:
                buffers, step = new[i]
                views = dict(buffers)
                views.update((name, step[k + 1:k + 2].reshape(())) for k, (name, _) in enumerate(scalar_spec))
                registered.append(_Registered(p, buffers, views, step))
                continue
            entry = kept[id(p)]
            needed = [name for (name, _), shape in zip(spec, shapes[i]) if shape is not None]
            if list(entry.buffers) != needed or len(entry.step) != 1 + len(scalar_spec):
                raise InvalidHyperparameterError(
                    f"{prefix}[{i}] keeps the state {list(entry.views)}, but param_groups[{index}]'s options "
                    "now need other state; options that change the optimizer's state (amsgrad, momentum, "
                    "centered) cannot change once a param has taken a step, create a new optimizer instead")
            registered.append(entry)
        engine.add_group(group, arrays, [list(r.buffers.values()) for r in registered],
                         [r.step for r in registered], prefix)
        return registered

    def _sync_for_reading(self) -> None:
        """Follows list edits before ``opt.state`` is read. Lists the step would refuse (a param
        listed twice, an array it cannot take) leave the state as last registered: reading state
        never raises for them, the next ``step`` does, with the reason."""
        with contextlib.suppress(InvalidParamError, ParamDTypeError, InvalidHyperparameterError):
            self._sync_params(refresh=False)

    def _sync_params(self, refresh: bool = True, force: bool = False) -> None:
        """Registers the params the groups list now if a list was edited, or with ``force`` (torch
        steps what the lists hold: a param that stays keeps its state, a new one starts fresh, a
        removed one keeps its state aside), and with ``refresh`` points the engine at replaced
        ``Parameter.data`` arrays."""
        if not force and len(self._listed) == len(self.param_groups) and all(
                isinstance(group.get("params"), list) and len(group["params"]) == len(listed)
                and all(a is b for a, b in zip(group["params"], listed))
                for group, listed in zip(self.param_groups, self._listed)):
            if refresh and (self._has_foreign_params or self._seen_data_version != VersionedData.data_version):
                self._engine.refresh([array_of(p, "param") for p in self._params])
                self._seen_data_version = VersionedData.data_version
            return
        if len(self._listed) != len(self.param_groups):
            raise InvalidParamError(f"the optimizer has {len(self._listed)} param groups registered but "
                                    f"param_groups has {len(self.param_groups)}; add groups with add_param_group")
        kept = {**self._removed, **{id(r.param): r for r in self._registered}}
        lists = [_param_list(group.get("params"), f"param_groups[{g}]")
                 for g, group in enumerate(self.param_groups)]
        seen: set[int] = set()
        for g, params in enumerate(lists):
            for i, p in enumerate(params):
                if id(p) in seen:
                    raise InvalidParamError(f"param_groups[{g}]['params'][{i}] appears twice in the param groups")
                seen.add(id(p))
        engine = self._engine_class()
        registered = []
        for g, (group, params) in enumerate(zip(self.param_groups, lists)):
            registered.extend(self._register(engine, {**group, "params": params}, g, kept))
        # Everything is registered on the side: switch over.
        for group, params in zip(self.param_groups, lists):
            group["params"] = params
        self._engine, self._listed = engine, [list(params) for params in lists]
        self._params, self._registered, self._index_of = [], [], {}
        self._has_plain_arrays = self._has_foreign_params = False
        self._add_registered(registered)
        self._removed = {key: entry for key, entry in kept.items() if key not in self._index_of}
        self._seen_data_version = VersionedData.data_version

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
        if self._has_foreign_params or self._seen_data_version != VersionedData.data_version:
            self._sync_params()
        # The engine does nothing and returns False when a group's 'params' list was edited, or
        # when options of a group that has not stepped yet need other state (amsgrad, ...).
        if not self._engine.step(grads, self.param_groups):
            self._sync_params(force=True)
            self._engine.step(grads, self.param_groups)
        return loss

    def _grads_from_params(self) -> Grads:
        params = [p for group in self.param_groups for p in group["params"]]
        if any(isinstance(p, np.ndarray) for p in params):
            raise InvalidParamError(
                "this optimizer's params are plain ndarrays, which carry no .grad: pass the grads, "
                "opt.step([g0, g1, ...]), or use optrs.Parameter"
            )
        return [p.grad for p in params]

    @profiled_method
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Resets the ``.grad`` of every param (plain ndarrays have none and are left alone)."""
        for p in (p for group in self.param_groups for p in group["params"]):
            if isinstance(p, np.ndarray) or getattr(p, "grad", None) is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad[...] = 0

    # -- state ----------------------------------------------------------------------------------

    def _has_state(self, index: int) -> bool:
        return self._eager_state or self._registered[index].has_state

    def _state_of(self, index: int) -> dict[str, Any]:
        return self._state_for(self._registered[index], f"state of {self._label_of(index)}")

    def _state_for(self, entry: _Registered, where: str) -> dict[str, Any]:
        if not (self._eager_state or entry.has_state):
            return {}
        state: dict[str, Any] = {}
        if self._step_in_state:
            state["step"] = entry.step[0:1].reshape(())
        state.update(entry.views)
        return _ParamState(state, where)

    def _label_of(self, index: int) -> str:
        for g, group in enumerate(self.param_groups):
            if index < len(group["params"]):
                return f"param_groups[{g}]['params'][{index}]"
            index -= len(group["params"])
        return "param"  # pragma: no cover (every index is in a group)

    def state_dict(self) -> dict[str, Any]:
        """torch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``,
        with NumPy copies, so it pickles and is a snapshot that later steps do not change, plus
        ``"optimizer_class"``, the class name, which ``load_state_dict`` checks (torch ignores it)."""
        self._sync_params(refresh=False)
        removed = [r for r in self._removed.values() if self._eager_state or r.has_state]
        if removed:
            raise InvalidParamError(
                f"{len(removed)} param(s) removed from the param groups still have state, which a state_dict "
                "cannot index (torch raises KeyError here); drop it with del opt.state[param], or list the "
                "param again")
        state = {i: {k: np.array(v, copy=True) for k, v in self._state_of(i).items()}
                 for i in range(len(self._params)) if self._has_state(i)}
        groups = []
        index = 0
        for group in self.param_groups:
            saved = {k: v for k, v in group.items() if k != "params"}
            saved["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            groups.append(saved)
        return {"state": state, "param_groups": groups, self._SAVED_BY: type(self).__name__}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Loads a ``state_dict()`` (of this or another optimizer of the same class over params of
        the same shapes), options included.

        The new state is built on the side and checked completely (the optimizer that saved it,
        group and param counts, state names, shapes, step counts) before it replaces the current
        one; arrays are cast to their param's dtype.
        """
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            raise InvalidParamError("state_dict must be a dict with 'state' and 'param_groups', "
                                    "as returned by Optimizer.state_dict()")
        self._check_saved_by(state_dict)
        self._sync_params(refresh=False)
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise InvalidParamError(f"state_dict has {len(saved_groups)} param groups, "
                                    f"this optimizer has {len(self.param_groups)}")
        engine = self._engine_class()
        new_groups: list[dict[str, Any]] = []
        registered: list[_Registered] = []
        position_of: dict[Any, int] = {}
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            keys = list(saved.get("params", []))
            if len(keys) != len(group["params"]):
                raise InvalidParamError(f"state_dict's param_groups[{g}] has {len(keys)} params, "
                                        f"this optimizer's has {len(group['params'])}")
            for key in keys:
                position_of[key] = len(position_of)
            new_group = {**self.defaults, **saved, "params": group["params"]}
            if "param_names" in group and "param_names" not in saved:  # torch keeps the names it has
                new_group["param_names"] = group["param_names"]
            registered.extend(self._register(engine, new_group, g, {}))
            new_groups.append(new_group)
        for key, entry in dict(state_dict["state"]).items():
            if key not in position_of:
                raise InvalidParamError(f"state_dict's state has an entry for param {key!r}, "
                                        "which no param group lists")
            target = registered[position_of[key]]
            step = float(np.asarray(entry.get("step", 1.0)))
            if not (math.isfinite(step) and step >= 0 and step == int(step)):
                raise InvalidHyperparameterError(f"state_dict's state[{key!r}]['step'] is {step}; "
                                                 "it must be a whole number >= 0")
            target.step[0] = step
            for name, view in target.views.items():
                if name not in entry:
                    raise InvalidParamError(f"state_dict's state[{key!r}] has no '{name}'")
                value = np.asarray(entry[name])
                if value.shape != view.shape:
                    raise InvalidParamError(f"state_dict's state[{key!r}]['{name}'] has shape {value.shape}, "
                                            f"but this optimizer's has shape {view.shape}")
                np.copyto(view, value, casting="unsafe")
        # Everything is checked and in place on the side: switch over. As torch's load replaces
        # its whole state dict, the state of params no group lists is dropped.
        self._engine, self._registered, self._removed = engine, registered, {}
        for group, new_group in zip(self.param_groups, new_groups):
            group.clear()
            group.update(new_group)

    # The state_dict key naming the optimizer class that saved it; torch's dicts have no such key.
    _SAVED_BY: ClassVar[str] = "optimizer_class"
    # torch's implementation flags, in every torch dict; optrs takes them and keeps none.
    _TORCH_FLAGS: ClassVar[frozenset[str]] = frozenset({"foreach", "fused", "capturable", "differentiable"})
    # Options that torch added in 1.x and 2.x: an older torch's dict lacks them, and torch's load
    # (as optrs's) fills them in from the defaults.
    _LATE_OPTIONS: ClassVar[frozenset[str]] = _TORCH_FLAGS | {"maximize", "decoupled_weight_decay"}

    def _check_saved_by(self, state_dict: Mapping[str, Any]) -> None:
        """Refuses a state_dict that another optimizer class saved: by the class it names or, in a
        dict without the name (torch's), by its groups' options. A group that lacks options this
        optimizer has, or holds options of another optrs optimizer that this one does not take,
        was not made by this class; other extra keys (a scheduler's ``initial_lr``, a user's
        ``name``) are kept, as torch keeps them."""
        name = type(self).__name__
        saved_by = state_dict.get(self._SAVED_BY)
        if saved_by is not None:
            if saved_by != name:
                raise InvalidParamError(f"this state_dict was saved by {saved_by}; it cannot be loaded into {name}: "
                                        f"load it into {saved_by}, or let {name} start afresh")
            return

        def options_of(cls: type[Optimizer]) -> set[str]:
            return {p.name for p in inspect.signature(cls.__init__).parameters.values()
                    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)} - {"self", "params"}

        classes, known = Optimizer.__subclasses__(), set()
        while classes:
            cls = classes.pop()
            classes.extend(cls.__subclasses__())
            known |= options_of(cls)
        own = set(self.defaults) | self._TORCH_FLAGS
        for g, saved in enumerate(state_dict["param_groups"]):
            if not isinstance(saved, Mapping):
                raise InvalidParamError(f"state_dict's param_groups[{g}] must be a dict, got {type(saved).__name__}")
            keys = set(saved)
            missing = sorted(set(self.defaults) - keys - self._LATE_OPTIONS)
            unexpected = sorted(keys & known - own)
            if missing or unexpected:
                problems = ([f"has options {name} does not take {unexpected}"] if unexpected else []) + (
                    [f"lacks {name}'s options {missing}"] if missing else [])
                raise InvalidParamError(
                    f"state_dict's param_groups[{g}] {' and '.join(problems)}: another optimizer saved it; "
                    f"load it into that one, or let {name} start afresh")

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
