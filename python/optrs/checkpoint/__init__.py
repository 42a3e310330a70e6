"""Checkpoints: ``optrs.save(obj, path)`` and ``optrs.load(path)`` for a tree of state dicts.

One file per checkpoint, a safetensors file: every ndarray of ``obj`` is one of its tensors, named
by its path in the tree (``"optimizer/state/0/exp_avg"``), and the header's ``__metadata__``
holds ``format`` (``"optrs.checkpoint"``), ``format_version`` (``"3"`` when the tree holds a
Tensor, else ``"2"``, which optrs before version 3 reads too), ``tree``, the JSON of
``obj`` with each array replaced by a reference to its tensor, and two checksums (CRC-32, 8 hex
digits): ``tree_checksum``, of the tree's text, and ``checksums``, a JSON object giving for each
tensor the CRC-32 of its dtype tag and shape (``F32[2,3]``) followed by its bytes. In the tree,
JSON's null, booleans, strings, lists and numbers are themselves (ints of at most 2**53 in
magnitude, finite floats, written by ``repr`` so they read back to the same bits); everything
else is an object with one key: ``{"tuple": [...]}``, ``{"dict": [[key, value], ...]}`` (keys of
any saved type but arrays, order kept), ``{"int": "digits"}``, ``{"float": "nan" | "inf" |
"-inf"}``, ``{"array": name}``, ``{"scalar": name}`` (a NumPy scalar, stored as a 0-d tensor),
and (version 3) ``{"tensor": [name, requires_grad]}`` and ``{"parameter": [name,
requires_grad]}`` for an ``optrs.Tensor`` and an ``optrs.Parameter``, which load as such.
Lists, tuples and dicts nest at most ``MAX_DEPTH`` (100) deep. Any safetensors reader opens the
file; ``load`` also rebuilds the tree, after checking every checksum. Version 1 files (the same
without checksums) still load. As torch's ``save``/``load``, both take a path (any suffix) or a
binary file object; ``load`` accepts torch's ``map_location`` (the CPU only) and ``weights_only``
(nothing is ever unpickled).

``save`` writes a hidden temporary file ``.NAME.PID.HEX.tmp`` next to ``path``, fsyncs it, renames
it over ``path`` (atomic) and fsyncs the directory, so ``path`` always holds a whole checkpoint,
the old or the new one, even if the process is killed or the machine loses power mid-save. A
killed save leaves its temporary file behind; the next save of the same path removes it (only
when its writer process is gone: see ``_files``).
"""

from __future__ import annotations

import io
import json
import os
import re
import zlib
from collections.abc import Mapping
from typing import Any, BinaryIO, cast

from numpy.typing import NDArray

from ..autograd import devices
from ..errors import CheckpointError
from . import _files, _format
from ._format import Corrupt
from ._tree import MAX_DEPTH, Decoder, encode

FORMAT = "optrs.checkpoint"
FORMAT_VERSION = 3
# A tree node that only version 3 writes (a Tensor or Parameter).
_TENSOR_TAGS = re.compile(r'\{"(tensor|parameter)":\[')

PathLike = str | os.PathLike[str]


def _crc32(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"


def save(obj: Any, f: PathLike | BinaryIO, pickle_module: Any = None, pickle_protocol: int = 2,
         _use_new_zipfile_serialization: bool = True) -> None:
    """Writes ``obj`` (typically a dict of state dicts, RNG state and plain values) to ``f`` as one
    checkpoint file: a path (any suffix; written atomically) or a binary file object (written
    at its position, as torch's). See the module docstring for the format. torch's pickle
    options are accepted and ignored: nothing is pickled."""
    arrays: dict[str, NDArray[Any]] = {}
    tree = json.dumps(encode(obj, [], arrays), allow_nan=False, separators=(",", ":"))
    checksums = {name: _format.checksum(_format.tag(a.dtype) or "", a.shape, _format.raw_bytes(a))
                 for name, a in arrays.items()}
    # Files without Tensors stay version 2, which optrs before version 3 reads too.
    version = FORMAT_VERSION if _TENSOR_TAGS.search(tree) else 2
    metadata = {"format": FORMAT, "format_version": str(version), "tree": tree, "tree_checksum": _crc32(tree),
                "checksums": json.dumps(checksums, separators=(",", ":"))}
    if hasattr(f, "write"):
        _format.write(cast(BinaryIO, f), arrays, metadata)
        return
    _files.write_atomically(os.fspath(f), lambda file: _format.write(file, arrays, metadata))


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


def _check_map_location(map_location: Any) -> None:
    """torch.load's ``map_location``: None, the CPU (a string or device), a callable (not called:
    everything loads on the CPU), or a dict whose targets are the CPU."""
    if map_location is None or callable(map_location) and not isinstance(map_location, devices.device):
        return
    targets = map_location.values() if isinstance(map_location, Mapping) else [map_location]
    for target in targets:
        devices.check(target, f"load(map_location={map_location!r})")


def load(f: PathLike | BinaryIO, map_location: Any = None, pickle_module: Any = None, *,
         weights_only: bool | None = None, mmap: bool | None = None, **pickle_load_args: Any) -> Any:
    """Reads what ``save`` wrote, from a path or a binary file object: the same tree, with fresh
    writeable ndarrays and Tensors (dicts come back as plain dicts, NumPy scalars as NumPy
    scalars). A file that is not a regular file, truncated, corrupt (a checksum that does not
    match included), not a checkpoint, of a newer format version or missing arrays raises
    ``optrs.CheckpointError``; nothing else but ``OSError``s of the file system
    (``FileNotFoundError``) comes out. Nothing is unpickled, so ``weights_only`` holds whatever
    it says; ``map_location`` may only name the CPU, where everything loads."""
    _check_map_location(map_location)
    if hasattr(f, "read"):
        data = cast(BinaryIO, f).read()
        return _load_open(io.BytesIO(data), len(data), repr(getattr(f, "name", "<file object>")))
    path = os.fspath(f)
    fd, size = _files.open_regular(path)
    with open(fd, "rb", buffering=0) as file:
        return _load_open(file, size, repr(path))


def _load_open(file: _format.Readable, size: int, shown: str) -> Any:
    try:
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
        raise CheckpointError(f"{shown} {problem}") from None
    return obj


__all__ = ["save", "load", "FORMAT", "FORMAT_VERSION", "MAX_DEPTH"]
