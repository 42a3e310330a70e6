"""Checkpoints: ``optrs.save(obj, path)`` and ``optrs.load(path)`` for a tree of state dicts.

One file per checkpoint, a safetensors file: every ndarray of ``obj`` is one of its tensors, named
by its path in the tree (``"optimizer/state/0/exp_avg"``), and the header's ``__metadata__``
holds ``format`` (``"optrs.checkpoint"``), ``format_version`` (``"2"``), ``tree``, the JSON of
``obj`` with each array replaced by a reference to its tensor, and two checksums (CRC-32, 8 hex
digits): ``tree_checksum``, of the tree's text, and ``checksums``, a JSON object giving for each
tensor the CRC-32 of its dtype tag and shape (``F32[2,3]``) followed by its bytes. In the tree,
JSON's null, booleans, strings, lists and numbers are themselves (ints of at most 2**53 in
magnitude, finite floats, written by ``repr`` so they read back to the same bits); everything
else is an object with one key: ``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}`` (keys of
any saved type but arrays, order kept), ``{"int": "digits"}``, ``{"float": "nan" | "inf" |
"-inf"}``, ``{"array": name}`` and ``{"scalar": name}`` (a NumPy scalar, stored as a 0-d tensor).
Lists, tuples and dicts nest at most ``MAX_DEPTH`` (100) deep. Any safetensors reader opens the
file; ``load`` also rebuilds the tree, after checking every checksum. Version 1 files (the same
without checksums) still load.

``save`` writes a hidden temporary file ``.NAME.PID.HEX.tmp`` next to ``path``, fsyncs it, renames
it over ``path`` (atomic) and fsyncs the directory, so ``path`` always holds a whole checkpoint,
the old or the new one, even if the process is killed or the machine loses power mid-save. A
killed save leaves its temporary file behind; the next save of the same path removes it (only
when its writer process is gone: see ``_files``).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping
from typing import Any

from numpy.typing import NDArray

from ..errors import CheckpointError
from . import _files, _format
from ._format import Corrupt
from ._tree import MAX_DEPTH, Decoder, encode

FORMAT = "optrs.checkpoint"
FORMAT_VERSION = 2

PathLike = str | os.PathLike[str]


def _crc32(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"


def save(obj: Any, path: PathLike) -> None:
    """Writes ``obj`` (typically a dict of state dicts, RNG state and plain values) to ``path`` as
    one checkpoint file, atomically: see the module docstring for the format."""
    path = os.fspath(path)
    arrays: dict[str, NDArray[Any]] = {}
    tree = json.dumps(encode(obj, [], arrays), allow_nan=False, separators=(",", ":"))
    checksums = {name: _format.checksum(_format.tag(a.dtype) or "", a.shape, _format.raw_bytes(a))
                 for name, a in arrays.items()}
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "tree": tree, "tree_checksum": _crc32(tree),
                "checksums": json.dumps(checksums, separators=(",", ":"))}
    _files.write_atomically(path, lambda file: _format.write(file, arrays, metadata))


def _checksums(metadata: Mapping[str, str], names: set[str]) -> tuple[str, dict[str, str] | None]:
    """The tree's JSON, once the metadata says this is a checkpoint this version reads, and the
    tensors' checksums (None in version 1 files)."""
    if metadata.get("format") != FORMAT:
        raise Corrupt(f"is a safetensors file but not an optrs checkpoint (its metadata has no format {FORMAT!r}); "
                      "safetensors.numpy.load_file reads its arrays")
    version = metadata.get("format_version", "")
    if not (version.isascii() and version.isdigit()) or int(version) < 1:
        raise Corrupt(f"has an unknown checkpoint format version {version[:20]!r}")
    if int(version) > FORMAT_VERSION:
        raise Corrupt(f"was written in checkpoint format version {version}, newer than this optrs reads "
                      f"({FORMAT_VERSION}): upgrade optrs to load it")
    if "tree" not in metadata:
        raise Corrupt("is not a valid optrs checkpoint: its metadata has no 'tree'")
    tree = metadata["tree"]
    if int(version) == 1:
        return tree, None
    if metadata.get("tree_checksum") != _crc32(tree):
        raise Corrupt("is corrupt: its metadata tree does not match its checksum")
    checksums = _format.parse_json(metadata.get("checksums", ""), "checksums")
    if not isinstance(checksums, dict) or set(checksums) != names:
        raise Corrupt("is corrupt: its checksums do not list exactly the tensors it holds")
    return tree, checksums


def load(path: PathLike) -> Any:
    """Reads what ``save`` wrote: the same tree, with fresh writeable ndarrays (dicts come back as
    plain dicts, NumPy scalars as NumPy scalars). A file that is not a regular file, truncated,
    corrupt (a checksum that does not match included), not a checkpoint, of a newer format
    version or missing arrays raises ``optrs.CheckpointError``; nothing else but ``OSError``s of
    the file system (``FileNotFoundError``) comes out."""
    path = os.fspath(path)
    fd, size = _files.open_regular(path)
    try:
        with open(fd, "rb", buffering=0) as file:
            tensors, metadata = _format.read_header(file, size)
            tree, checksums = _checksums(metadata, set(tensors))

            def read(name: str) -> NDArray[Any]:
                return _format.read_tensor(file, name, tensors[name], None if checksums is None else checksums[name])

            decoder = Decoder(set(tensors), read)
            obj = decoder.decode(_format.parse_json(tree, "metadata tree"))
            unused = set(tensors) - decoder.used
            if unused:
                raise Corrupt(f"is not a valid optrs checkpoint: it holds arrays its metadata does not describe: "
                              f"{sorted(unused)[:5]}")
    except Corrupt as problem:
        raise CheckpointError(f"{path!r} {problem}") from None
    return obj


__all__ = ["save", "load", "FORMAT", "FORMAT_VERSION", "MAX_DEPTH"]
