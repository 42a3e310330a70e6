"""Checkpoints: ``optrs.save(obj, path)`` and ``optrs.load(path)`` for a tree of state dicts.

One file per checkpoint, a safetensors file: every ndarray of ``obj`` is one of its tensors, named
by its path in the tree (``"optimizer/state/0/exp_avg"``), and the header's ``__metadata__``
holds ``format`` (``"optrs.checkpoint"``), ``format_version`` (``"1"``) and ``tree``, the JSON of
``obj`` with each array replaced by a reference to its tensor. In the tree, JSON's null, booleans,
strings, lists and numbers are themselves (ints of at most 2**53 in magnitude, finite floats,
written by ``repr`` so they read back to the same bits); everything else is an object with one
key: ``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}`` (keys of any saved type, order
kept), ``{"int": "digits"}``, ``{"float": "nan" | "inf" | "-inf"}``, ``{"array": name}`` and
``{"scalar": name}`` (a NumPy scalar, stored as a 0-d tensor). Any safetensors reader opens the
file; ``load`` also rebuilds the tree.

``save`` writes a hidden temporary file next to ``path``, fsyncs it, renames it over ``path``
(atomic) and fsyncs the directory, so ``path`` always holds a whole checkpoint, the old or the
new one, even if the process is killed or the machine loses power mid-save; a killed save leaves
hidden temporary files behind (``.NAME.PID.HEX.tmp``, or safetensors' own ``.tmpXXXXXX``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from .autograd.tensor import Tensor
from .errors import CheckpointError

FORMAT = "optrs.checkpoint"
FORMAT_VERSION = 1

# What safetensors.numpy reads back (complex128, strings and objects it cannot store).
_DTYPES = frozenset(np.dtype(t) for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                                          np.uint64, np.uint32, np.uint16, np.uint8, np.bool_, np.complex64))
_JSON_INT = 2**53
_SPECIAL_FLOATS = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}

PathLike = str | os.PathLike[str]


def _where(path: list[str]) -> str:
    return "obj" + "".join(f"[{p}]" for p in path)


def _encode(value: Any, path: list[str], arrays: dict[str, NDArray[Any]]) -> Any:
    """The JSON tree of ``value``; its arrays go to ``arrays`` under their path names."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        if array.dtype.newbyteorder("=") not in _DTYPES:
            raise CheckpointError(f"cannot save {_where(path)}: arrays of dtype {array.dtype} are not supported "
                                  "(bool, integers, float16/32/64 and complex64 are)")
        if not array.flags.c_contiguous:
            array = np.array(array, order="C")
        base = name = "/".join(path) or "."
        while name in arrays:
            name = f"{base}#{len(arrays)}"
        arrays[name] = array
        return {"array" if isinstance(value, np.ndarray) else "scalar": name}
    if isinstance(value, int):
        return value if abs(value) <= _JSON_INT else {"int": str(value)}
    if isinstance(value, float):
        return value if np.isfinite(value) else {"float": str(value)}
    if isinstance(value, list):
        return [_encode(v, [*path, str(i)], arrays) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, [*path, str(i)], arrays) for i, v in enumerate(value)]}
    if isinstance(value, Mapping):
        pairs = []
        for key, item in value.items():
            key_arrays: dict[str, NDArray[Any]] = {}
            encoded_key = _encode(key, path, key_arrays)
            if key_arrays:
                raise CheckpointError(f"cannot save {_where(path)}: its key {key!r} holds a NumPy value; use Python "
                                      "str, int, float, bool, None or tuples of them")
            pairs.append([encoded_key, _encode(item, [*path, str(key)], arrays)])
        return {"dict": pairs}
    hint = "save its .data (an ndarray), or a state_dict()" if isinstance(value, Tensor) else (
        "checkpoints hold ndarrays, NumPy scalars, None, bool, int, float, str, and lists, tuples and dicts of them")
    raise CheckpointError(f"cannot save {_where(path)}, a {type(value).__name__}: {hint}")


class _Reader:
    """Rebuilds the tree from an open safetensors file, checking every reference."""

    def __init__(self, path: str, handle: Any) -> None:
        self.path = path
        self.handle = handle
        self.names = set(handle.keys())
        self.used: set[str] = set()

    def error(self, problem: str) -> CheckpointError:
        return CheckpointError(f"{self.path!r} is not a valid optrs checkpoint: {problem}")

    def array(self, name: Any) -> NDArray[Any]:
        if not isinstance(name, str) or name not in self.names:
            raise self.error(f"its metadata refers to an array {name!r} that the file does not hold "
                             "(a mismatched or edited file)")
        self.used.add(name)
        array: NDArray[Any] = self.handle.get_tensor(name)
        return array

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict) or len(node) != 1:
            raise self.error(f"its metadata tree holds {str(node)[:80]!r}, which is no saved value")
        ((tag, content),) = node.items()
        if tag == "array":
            return self.array(content)
        if tag == "scalar":
            return self.array(content)[()]
        if tag == "tuple" and isinstance(content, list):
            return tuple(self.decode(v) for v in content)
        if tag == "dict" and isinstance(content, list) and all(isinstance(p, list) and len(p) == 2 for p in content):
            return {self.decode(k): self.decode(v) for k, v in content}
        if tag == "int" and isinstance(content, str):
            with contextlib.suppress(ValueError):
                return int(content)
        if tag == "float" and content in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[content]
        raise self.error(f"its metadata tree holds {str(node)[:80]!r}, which is no saved value")


def save(obj: Any, path: PathLike) -> None:
    """Writes ``obj`` (typically a dict of state dicts, RNG state and plain values) to ``path`` as
    one checkpoint file, atomically: see the module docstring for the format."""
    path = os.fspath(path)
    arrays: dict[str, NDArray[Any]] = {}
    tree = _encode(obj, [], arrays)
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "tree": json.dumps(tree, allow_nan=False, separators=(",", ":"))}
    directory, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, "the directory to save the checkpoint in does not exist", directory)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # Reserving the name with a file of our own tells the mode a new file gets here (0o666 less the
    # umask); safetensors writes its files 0o600, and a checkpoint should read like any other file.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    mode = os.fstat(fd).st_mode & 0o777
    os.close(fd)
    try:
        save_file(arrays, temporary, metadata=metadata)
        os.chmod(temporary, mode)
        with open(temporary, "r+b") as written:  # safetensors closed it: its bytes are written, not yet durable
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Makes the rename durable (POSIX; a no-op where directories cannot be opened)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno != errno.EINVAL:  # file systems that cannot sync a directory say EINVAL
            raise
    finally:
        os.close(fd)


def _check_header(path: str) -> None:
    """Clear errors for what safetensors would only call a bad header."""
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        head = file.read(9)
    if len(head) < 9:
        raise CheckpointError(f"{path!r} is not an optrs checkpoint: it is only {size} bytes long (truncated?)")
    header_size = int.from_bytes(head[:8], "little")
    if head[8:9] != b"{":
        raise CheckpointError(f"{path!r} is not an optrs checkpoint: it does not start as a safetensors file "
                              "(an 8-byte header size, then a JSON header)")
    if 8 + header_size > size:
        raise CheckpointError(f"{path!r} is truncated: its header announces {header_size} bytes of header and the "
                              f"file has {size} bytes in all")


def _check_metadata(path: str, metadata: Mapping[str, str] | None) -> str:
    """The tree's JSON, once the metadata says this is a checkpoint this version reads."""
    metadata = metadata or {}
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path!r} is a safetensors file but not an optrs checkpoint (its metadata has no "
                              f"format {FORMAT!r}); safetensors.numpy.load_file reads its arrays")
    version = metadata.get("format_version", "")
    if not version.isdigit() or int(version) < 1:
        raise CheckpointError(f"{path!r} has an unknown checkpoint format version {version!r}")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(f"{path!r} was written in checkpoint format version {version}, newer than this optrs "
                              f"reads ({FORMAT_VERSION}): upgrade optrs to load it")
    if "tree" not in metadata:
        raise CheckpointError(f"{path!r} is not a valid optrs checkpoint: its metadata has no 'tree'")
    return metadata["tree"]


def load(path: PathLike) -> Any:
    """Reads what ``save`` wrote: the same tree, with fresh writeable ndarrays (dicts come back as
    plain dicts, NumPy scalars as NumPy scalars). A file that is truncated, corrupt, not a
    checkpoint, of a newer format version or missing arrays raises ``optrs.CheckpointError``."""
    path = os.fspath(path)
    _check_header(path)
    try:
        with safe_open(path, framework="np") as handle:
            reader = _Reader(path, handle)
            text = _check_metadata(path, handle.metadata())
            try:
                tree = json.loads(text)
            except json.JSONDecodeError as error:
                raise reader.error(f"its metadata tree is not valid JSON ({error})") from None
            obj = reader.decode(tree)
    except SafetensorError as error:
        raise CheckpointError(f"{path!r} is corrupt or truncated: {error}") from error
    unused = reader.names - reader.used
    if unused:
        raise reader.error(f"it holds arrays its metadata does not describe: {sorted(unused)[:5]}")
    return obj


__all__ = ["save", "load", "FORMAT", "FORMAT_VERSION"]
