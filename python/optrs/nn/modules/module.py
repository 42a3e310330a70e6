"""`Module`: torch.nn.Module's contract. Parameters, buffers and submodules assigned as
attributes are registered (in assignment order) and found by ``parameters()``,
``state_dict()``, ``train()``/``eval()`` and ``repr``.

``state_dict()`` maps dotted names to the NumPy arrays themselves (shared, as torch's tensors
are: copy them to keep a snapshot); ``load_state_dict`` copies values into the existing arrays,
casting to their dtype, so optimizers built over the parameters keep working.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ...autograd import devices as _devices
from ...autograd import dtypes as _dtypes
from ...autograd import grad_mode
from ...autograd.hook_taps import InputTap, OutputTap
from ...autograd.tensor import RemovableHandle, Tensor
from ...errors import InvalidParamError, ParamDTypeError
from ...parameter import Parameter

Array = NDArray[Any]
ForwardPreHook = Callable[["Module", tuple[Any, ...]], Any]
ForwardHook = Callable[["Module", tuple[Any, ...], Any], Any]
BackwardHook = Callable[["Module", tuple[Any, ...], tuple[Any, ...]], Any]


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of the layers and of user models; see the module docstring."""

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent_buffers: set[str]
    _modules: dict[str, Module | None]
    _forward_pre_hooks: dict[int, ForwardPreHook]
    _forward_hooks: dict[int, ForwardHook]
    _backward_hooks: dict[int, BackwardHook]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:
            raise TypeError(f"Module.__init__() takes no arguments, got {args} {kwargs}")
        setattr_ = object.__setattr__
        setattr_(self, "training", True)
        setattr_(self, "_parameters", {})
        setattr_(self, "_buffers", {})
        setattr_(self, "_non_persistent_buffers", set())
        setattr_(self, "_modules", {})
        setattr_(self, "_forward_pre_hooks", {})
        setattr_(self, "_forward_hooks", {})
        setattr_(self, "_backward_hooks", {})

    def _forward_unimplemented(self, *args: Any) -> Any:
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')

    # As torch: a Callable attribute, so subclasses may define forward with any signature.
    forward: Callable[..., Any] = _forward_unimplemented

    # -- calling --------------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks):
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        state: dict[str, Any] | None = None
        if self._backward_hooks and grad_mode.is_grad_enabled():
            state = {"module": self, "n_inputs": len(args)}
            args = self._tap_inputs(args, state)
        output = self.forward(*args, **kwargs)
        for fhook in list(self._forward_hooks.values()):
            result = fhook(self, args, output)
            if result is not None:
                output = result
        if state is not None:
            output = self._tap_outputs(output, state)
        return output

    @staticmethod
    def _tap_inputs(args: tuple[Any, ...], state: dict[str, Any]) -> tuple[Any, ...]:
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        state["inputs"] = positions
        if not positions:
            return args
        tapped = InputTap.apply_multi(*[args[i] for i in positions], state=state)
        new = list(args)
        for i, t in zip(positions, tapped):
            new[i] = t
        return tuple(new)

    @staticmethod
    def _tap_outputs(output: Any, state: dict[str, Any]) -> Any:
        items = output if isinstance(output, tuple) else (output,)
        positions = [i for i, o in enumerate(items) if isinstance(o, Tensor) and o.requires_grad]
        if not positions:
            return output
        tapped = OutputTap.apply_multi(*[items[i] for i in positions], state=state)
        new = list(items)
        for i, t in zip(positions, tapped):
            new[i] = t
        return tuple(new) if isinstance(output, tuple) else new[0]

    def _call_backward_hooks(self, grad_input: tuple[Any, ...], grad_output: tuple[Any, ...]) -> Any:
        for hook in list(self._backward_hooks.values()):
            result = hook(self, grad_input, grad_output)
            if result is not None:
                grad_input = tuple(result)
        return grad_input

    def _add_hook(self, hooks: dict[int, Any], hook: Any, prepend: bool) -> RemovableHandle:
        key = max(hooks, default=-1) + 1
        if prepend:
            items = list(hooks.items())
            hooks.clear()
            hooks[key] = hook
            hooks.update(items)
        else:
            hooks[key] = hook
        return _DictHandle(hooks, key)

    def register_forward_pre_hook(self, hook: ForwardPreHook, *, prepend: bool = False) -> RemovableHandle:
        """``hook(module, args)`` runs before ``forward``; a returned value replaces the args (a
        tuple, or one value)."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend)

    def register_forward_hook(self, hook: ForwardHook, *, prepend: bool = False) -> RemovableHandle:
        """``hook(module, args, output)`` runs after ``forward``; a returned value replaces the
        output."""
        return self._add_hook(self._forward_hooks, hook, prepend)

    def register_full_backward_hook(self, hook: BackwardHook, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` runs when the gradients with respect to the
        module's tensor inputs are computed (tuples of Tensors, None where there is none); a
        returned tuple replaces ``grad_input``."""
        return self._add_hook(self._backward_hooks, hook, prepend)

    # -- registration ---------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign to a Module before Module.__init__() call: call "
                                 "super().__init__() first in your __init__")
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._forget(name, keep=params)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name, keep=modules)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise ParamDTypeError(f"cannot assign {type(value).__name__} as parameter {name!r} (an "
                                      "optrs.Parameter or None is required)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise ParamDTypeError(f"cannot assign {type(value).__name__} as child module {name!r} (a Module "
                                      "or None is required)")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                value = Tensor(np.asarray(value))
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: dict[str, Any]) -> None:
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: the registered entries live in these dicts.
        registries = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            registry = registries.get(key)
            if registry is not None and name in registry:
                return registry[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._parameters, *self._buffers, *self._modules})

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise ParamDTypeError(f"cannot assign {type(param).__name__} object to parameter {name!r} (an "
                                  "optrs.Parameter or None is required)")
        self._forget(name, keep=self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | Array | None, persistent: bool = True) -> None:
        """A state array that is not trained (BatchNorm's running statistics): in ``state_dict``
        unless ``persistent=False``."""
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            if not isinstance(tensor, np.ndarray):
                raise ParamDTypeError(f"cannot assign {type(tensor).__name__} object to buffer {name!r} (a Tensor, "
                                      "an ndarray or None is required)")
            tensor = Tensor(tensor)
        self._forget(name, keep=self._buffers)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def register_module(self, name: str, module: Module | None) -> None:
        self.add_module(name, module)

    def add_module(self, name: str, module: Module | None) -> None:
        self._check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise ParamDTypeError(f"{type(module).__name__} is not a Module subclass")
        self._forget(name, keep=self._modules)
        self._modules[name] = module

    def _check_name(self, name: str, kind: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")
        if name in self.__dict__ and not any(name in r for r in (self._parameters, self._buffers, self._modules)):
            raise KeyError(f"attribute '{name}' already exists")

    def get_submodule(self, target: str) -> Module:
        module: Module = self
        for part in target.split(".") if target else []:
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no submodule `{part}`")
            module = child
        return module

    def get_parameter(self, target: str) -> Parameter:
        path, _, name = target.rpartition(".")
        param = self.get_submodule(path)._parameters.get(name)
        if param is None:
            raise AttributeError(f"`{target}` is not a parameter")
        return param

    # -- traversal ------------------------------------------------------------------------------

    def named_modules(self, memo: set[int] | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set() if memo is None else memo
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module._modules.items() if child is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool,
                       remove_duplicate: bool) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else \
            iter([(prefix, self)])
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every Parameter, each once, in registration order: what optimizers take."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    # -- modes and in-place changes -------------------------------------------------------------

    def train(self, mode: bool = True) -> Module:
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Calls ``fn`` on every submodule (children first) and then on this module."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """torch's ``Module.to``: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``,
        ``to(tensor)`` (its dtype), ``non_blocking`` ignored. The device must be the CPU (others
        raise ``optrs.DeviceError``); a dtype, which must be floating-point, converts the
        floating-point parameters and buffers, replacing their data (the Parameter objects stay:
        build optimizers after, as their state has the old dtype)."""
        target = _devices.parse_to("Module.to", args, kwargs)
        if target.dtype is not None:
            if not _dtypes.is_floating(target.dtype):
                raise ParamDTypeError(f"nn.Module.to only accepts floating point dtypes, but got desired dtype="
                                      f"{target.dtype}")
            self._cast_floats(target.dtype)
        return self

    def _cast_floats(self, target: np.dtype[Any]) -> None:
        for t in [*self.parameters(), *self.buffers()]:
            if _dtypes.is_floating(t.dtype) and t.dtype != target:
                t.data = t.data.astype(target)
                if t.grad is not None:
                    t.grad = t.grad.astype(target)

    def cpu(self) -> Module:
        """The module itself (optrs computes on the CPU)."""
        return self

    def cuda(self, device: Any = None) -> Module:
        """Raises ``optrs.DeviceError``: optrs has no CUDA device."""
        raise _devices.not_available("cuda", "Module.cuda()")

    def type(self, dst_type: DTypeLike) -> Module:
        """Casts every parameter and buffer to ``dst_type`` (integer ones too, as torch's)."""
        target = _dtypes.resolve(dst_type)
        for t in [*self.parameters(), *self.buffers()]:
            if t.dtype != target:
                t.data = t.data.astype(target)
                if t.grad is not None:
                    t.grad = t.grad.astype(target)
        return self

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def half(self) -> Module:
        """float16 parameters: forward passes work where NumPy computes in float16; optimizers
        step float32 and float64 only and refuse these params, naming them."""
        return self.to(np.float16)

    def bfloat16(self) -> Module:
        """bfloat16 parameters (ml_dtypes); as ``half``, optimizers refuse them."""
        return self.to(_dtypes.bfloat16())

    # -- state_dict -----------------------------------------------------------------------------

    def state_dict(self, *, prefix: str = "", keep_vars: bool = False) -> OrderedDict[str, Any]:
        """Parameters and persistent buffers by dotted name: their arrays (shared, not copied),
        or the Parameter/Tensor objects with ``keep_vars=True``."""
        result: OrderedDict[str, Any] = OrderedDict()
        for module_prefix, module in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            dot = f"{module_prefix}." if module_prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    result[dot + name] = param if keep_vars else param.data
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    result[dot + name] = buffer if keep_vars else buffer.data
        return result

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False) -> IncompatibleKeys:
        """Copies ``state_dict``'s values into the parameters and persistent buffers of the same
        names (in place, cast to their dtype; ``assign=True`` replaces the arrays instead). With
        ``strict``, missing or unexpected keys are an error; a shape mismatch always is."""
        if not isinstance(state_dict, Mapping):
            raise ParamDTypeError(f"Expected state_dict to be dict-like, got {type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict:
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        updates = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            array = value.data if isinstance(value, Tensor) else np.asarray(value)
            if array.shape != target.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape {array.shape} from checkpoint, "
                              f"the shape in current model is {target.shape}.")
            updates.append((target, array))
        if errors:
            raise InvalidParamError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                                    + "\n\t".join(errors))
        for target, array in updates:
            if assign:
                target.data = np.array(array, dtype=target.dtype, copy=True)
            else:
                np.copyto(target.data, array, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    # -- repr -----------------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The layer's own settings, shown inside its parentheses in ``repr``."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, module in self._modules.items():
            body = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        if not lines:
            return f"{self._get_name()}()"
        if len(lines) == 1 and not self._modules:
            return f"{self._get_name()}({lines[0]})"
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class _DictHandle(RemovableHandle):
    """Removes a hook registered under ``key`` in a module's hook dict."""

    def __init__(self, hooks: dict[int, Any], key: int) -> None:
        self._dict, self._key = hooks, key

    def remove(self) -> None:
        self._dict.pop(self._key, None)


__all__ = ["Module", "IncompatibleKeys"]
