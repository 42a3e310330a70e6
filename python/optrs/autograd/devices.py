"""torch's ``device``: optrs computes on the CPU, so every tensor's device is ``cpu``.

``optrs.device("cuda:1")`` can be made, as in torch (scripts build one before asking whether
CUDA is available), but moving a tensor or module to anything but the CPU raises
``optrs.DeviceError``, a ``RuntimeError`` as torch's "Torch not compiled with CUDA enabled".
`parse_to` reads the arguments of ``Tensor.to`` and ``Module.to``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..errors import DeviceError, InvalidParamError
from . import dtypes

# torch 2.13's device types (RuntimeError for any other name).
DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga", "maia",
                "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


class device:
    """``device("cpu")``, ``device("cuda", 0)``, ``device("cuda:0")``, ``device(other_device)``;
    ``.type`` and ``.index`` (None unless given). A bare int is a CUDA index, as in torch.
    Equal to another device of the same type and index (not to a string, as torch's). As a
    context manager it sets nothing for the CPU and raises for other devices."""

    __slots__ = ("_type", "_index")
    _type: str
    _index: int | None

    def __init__(self, type: str | device | int, index: int | None = None) -> None:
        if isinstance(type, device):
            if index is not None:
                raise DeviceError("device(device, index): pass the index in the device itself")
            self._type, self._index = type._type, type._index
            return
        if isinstance(type, (int, np.integer)) and not isinstance(type, bool):
            type, index = "cuda", int(type)
        if not isinstance(type, str):
            raise DeviceError(f"device() takes a string such as 'cpu' or 'cuda:0', a device or an int, got "
                              f"{type!r}")
        name, colon, number = type.partition(":")
        if colon:
            if index is not None:
                raise DeviceError(f"type (string) must not include an index because index was passed explicitly: "
                                  f"{type}")
            if not number.isdigit():
                raise DeviceError(f"Invalid device string: {type!r}")
            index = int(number)
        if name not in DEVICE_TYPES:
            raise DeviceError(f"Expected one of {', '.join(DEVICE_TYPES)} device type at start of device string: "
                              f"{type}")
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise DeviceError(f"device index must be an int, got {index!r}")
            if index < 0:
                raise DeviceError(f"Device index must not be negative, got {index}")
        self._type, self._index = name, None if index is None else int(index)

    @property
    def type(self) -> str:
        return self._type

    @property
    def index(self) -> int | None:
        return self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, device) and (self._type, self._index) == (other._type, other._index)

    def __hash__(self) -> int:
        return hash((self._type, self._index))

    def __str__(self) -> str:
        return self._type if self._index is None else f"{self._type}:{self._index}"

    def __repr__(self) -> str:
        index = "" if self._index is None else f", index={self._index}"
        return f"device(type='{self._type}'{index})"

    def __reduce__(self) -> tuple[Any, ...]:
        return device, (self._type, self._index)

    def __enter__(self) -> device:
        check(self, "with device(...)")
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


CPU = device("cpu")


class Layout:
    """torch's ``strided``, the only layout optrs's tensors have (``t.layout``)."""

    def __repr__(self) -> str:
        return "optrs.strided"


strided = Layout()


def not_available(device_type: str, what: str) -> DeviceError:
    return DeviceError(f"{what}: optrs computes on the CPU only and has no {device_type!r} device (optrs.cuda."
                       "is_available() is False); use device='cpu', or pick the device as "
                       "`'cuda' if optrs.cuda.is_available() else 'cpu'`")


def check(dev: Any, what: str) -> device:
    """``dev`` (None, a string, a device or an int) as a device, which must be the CPU."""
    resolved = CPU if dev is None else device(dev)
    if resolved.type != "cpu":
        raise not_available(resolved.type, what)
    return resolved


class ToArgs(NamedTuple):
    device: device | None
    dtype: np.dtype[Any] | None
    copy: bool


def _is_tensor(value: Any) -> bool:
    return hasattr(value, "dtype") and hasattr(value, "device") and not isinstance(value, (np.dtype, type))


def _is_device(value: Any) -> bool:
    return isinstance(value, (str, device)) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool))


def parse_to(what: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ToArgs:
    """The arguments of torch's ``to``: ``(dtype, non_blocking=False, copy=False)``,
    ``(device=None, dtype=None, non_blocking=False, copy=False)`` or ``(tensor,
    non_blocking=False, copy=False)``, each with keywords, plus ``memory_format`` (ignored: NumPy
    arrays have one layout here). The device is checked to be the CPU."""
    options = dict(kwargs)
    unknown = set(options) - {"device", "dtype", "non_blocking", "copy", "memory_format"}
    if unknown:
        raise TypeError(f"{what}() got unexpected keyword argument(s) {sorted(unknown)}")
    positional = list(args)
    target_device = target_dtype = None
    if positional and _is_tensor(positional[0]):
        other = positional.pop(0)
        target_device, target_dtype = other.device, other.dtype
    else:
        if positional and _is_device(positional[0]):
            target_device = positional.pop(0)
        if positional and not isinstance(positional[0], bool):
            target_dtype = positional.pop(0)
    if len(positional) > 2:
        raise TypeError(f"{what}() takes at most a device, a dtype, non_blocking and copy; got {args!r}")
    given = {"device": target_device, "dtype": target_dtype, **dict(zip(("non_blocking", "copy"), positional))}
    twice = [name for name, value in given.items() if value is not None and name in options]
    if twice:
        raise TypeError(f"{what}() got multiple values for argument '{twice[0]}'")
    target_device = options.get("device", target_device)
    target_dtype = options.get("dtype", target_dtype)
    flags = {name: options.get(name, given.get(name, False)) for name in ("non_blocking", "copy")}
    if any(not isinstance(v, (bool, np.bool_)) for v in flags.values()):
        raise InvalidParamError(f"{what}(): non_blocking and copy must be bools, got {flags}")
    resolved_device = None if target_device is None else check(target_device, f"{what}({target_device!r})")
    resolved_dtype = None if target_dtype is None else dtypes.resolve(target_dtype)
    return ToArgs(resolved_device, resolved_dtype, bool(flags.get("copy", False)))


__all__ = ["device", "CPU", "Layout", "strided", "check", "not_available", "parse_to", "ToArgs", "DEVICE_TYPES"]
