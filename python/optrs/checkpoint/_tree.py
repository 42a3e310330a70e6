"""The tree of a checkpoint: Python values to JSON with arrays set aside (``encode``), and back
(``decode``), which checks every node of a file's tree and raises ``Corrupt`` for anything save
does not write. Both stop at ``MAX_DEPTH`` nested containers, far below Python's recursion limit."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..autograd.tensor import Tensor
from ..errors import CheckpointError
from ..parameter import Parameter
from ._format import Corrupt, short, tag

MAX_DEPTH = 100
_JSON_INT = 2**53
_SPECIAL_FLOATS = ("nan", "inf", "-inf")
_DIGITS = re.compile(r"-?[0-9]+")


def _where(path: list[str]) -> str:
    shown = path if len(path) <= 8 else [*path[:3], f"...{len(path) - 5} more...", *path[-2:]]
    return "obj" + "".join(f"[{p}]" for p in shown)


def _refuse(path: list[str], problem: str) -> CheckpointError:
    return CheckpointError(f"cannot save {_where(path)}: {problem}")


def encode(value: Any, path: list[str], arrays: dict[str, NDArray[Any]]) -> Any:
    """The JSON tree of ``value``; its arrays go to ``arrays`` (little-endian, C-contiguous) under
    their path names, Tensors' arrays too (the tree says ``{"tensor": [name, requires_grad]}``,
    or ``"parameter"`` for a Parameter)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                raise _refuse(path, f"the string {value!r} is not valid Unicode (a lone surrogate)") from None
        return value
    if isinstance(value, Tensor):  # as torch.save: the data and requires_grad; a Parameter stays one
        name = encode(value.data, path, arrays)["array"]
        return {"parameter" if isinstance(value, Parameter) else "tensor": [name, value.requires_grad]}
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if tag(array.dtype) is None:
            raise _refuse(path, f"arrays of dtype {array.dtype} are not supported (bool, integers, float16/32/64 "
                                "and complex64 are)")
        array = np.asarray(array, dtype=array.dtype.newbyteorder("<"), order="C")  # 0-d stays 0-d
        base = name = "/".join(path) or "."
        while name in arrays:
            name = f"{base}#{len(arrays)}"
        arrays[name] = array
        return {"array" if isinstance(value, np.ndarray) else "scalar": name}
    if isinstance(value, int):
        if abs(value) <= _JSON_INT:
            return value
        try:
            return {"int": str(value)}
        except ValueError:
            raise _refuse(path, "an int of more digits than Python converts to text "
                                "(sys.set_int_max_str_digits)") from None
    if isinstance(value, float):
        return value if np.isfinite(value) else {"float": str(value)}
    if isinstance(value, (list, tuple, Mapping)) and len(path) >= MAX_DEPTH:
        raise _refuse(path, f"it nests more than {MAX_DEPTH} lists, tuples and dicts deep (one that holds itself?)")
    if isinstance(value, list):
        return [encode(v, [*path, str(i)], arrays) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"tuple": [encode(v, [*path, str(i)], arrays) for i, v in enumerate(value)]}
    if isinstance(value, Mapping):
        pairs = []
        for key, item in value.items():
            key_arrays: dict[str, NDArray[Any]] = {}
            encoded_key = encode(key, path, key_arrays)
            if key_arrays:
                raise _refuse(path, f"its key {key!r} holds a NumPy value; use Python str, int, float, bool, None or "
                                    "tuples of them")
            pairs.append([encoded_key, encode(item, [*path, str(key)], arrays)])
        return {"dict": pairs}
    raise CheckpointError(f"cannot save {_where(path)}, a {type(value).__name__}: checkpoints hold Tensors, ndarrays, "
                          "NumPy scalars, None, bool, int, float, str, and lists, tuples and dicts of them")


def _no_value(node: Any) -> Corrupt:
    return Corrupt(f"is not a valid optrs checkpoint: its metadata tree holds {short(node)}, which is no saved value")


class Decoder:
    """Rebuilds a tree, reading each array it refers to through ``read`` exactly once."""

    def __init__(self, names: set[str], read: Callable[[str], NDArray[Any]]) -> None:
        self.names = names
        self.read = read
        self.used: set[str] = set()

    def _array(self, name: Any) -> NDArray[Any]:
        if not isinstance(name, str) or name not in self.names:
            raise Corrupt(f"is not a valid optrs checkpoint: its metadata refers to an array {short(name)} that "
                          "the file does not hold (a mismatched or edited file)")
        if name in self.used:
            raise Corrupt(f"is not a valid optrs checkpoint: its metadata refers to the array {name!r} twice")
        self.used.add(name)
        return self.read(name)

    def decode(self, node: Any, depth: int = 0, in_key: bool = False) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node  # the JSON reader gave finite floats and ints of at most 4300 digits
        if depth >= MAX_DEPTH:
            raise Corrupt(f"is not a valid optrs checkpoint: its metadata tree nests more than {MAX_DEPTH} deep")
        if isinstance(node, list):
            return [self.decode(v, depth + 1, in_key) for v in node]
        if not isinstance(node, dict) or len(node) != 1:
            raise _no_value(node)
        ((kind, content),) = node.items()
        if kind in ("array", "scalar") and not in_key:
            array = self._array(content)
            if kind == "array":
                return array
            if array.ndim != 0:
                raise _no_value(node)
            return array[()]
        if kind in ("tensor", "parameter") and not in_key and isinstance(content, list) and len(content) == 2 \
                and isinstance(content[1], bool):
            array = self._array(content[0])
            if content[1] and array.dtype.kind != "f":
                raise _no_value(node)
            return (Parameter if kind == "parameter" else Tensor)(array, requires_grad=content[1])
        if kind == "tuple" and isinstance(content, list):
            return tuple([self.decode(v, depth + 1, in_key) for v in content])
        if kind == "dict" and isinstance(content, list):
            return self._dict(content, depth, in_key)
        if kind == "int" and isinstance(content, str) and _DIGITS.fullmatch(content):
            try:
                return int(content)
            except ValueError:  # more digits than sys.get_int_max_str_digits()
                raise _no_value(node) from None
        if kind == "float" and content in _SPECIAL_FLOATS:
            return float(content)  # a new NaN each time: two NaN keys stay two keys
        raise _no_value(node)

    def _dict(self, pairs: list[Any], depth: int, in_key: bool) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise _no_value({"dict": pairs})
            key = self.decode(pair[0], depth, in_key=True)  # at the dict's depth, as encode sees it
            try:
                duplicate = key in result
            except TypeError:  # a list or dict: save never writes one as a key
                raise Corrupt(f"is not a valid optrs checkpoint: its metadata tree has a dict key {short(key)}, "
                              "which cannot be a key") from None
            if duplicate:
                raise Corrupt(f"is not a valid optrs checkpoint: its metadata tree has the dict key {short(key)} twice")
            result[key] = self.decode(pair[1], depth + 1, in_key)
        return result
