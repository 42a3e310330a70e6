"""The safetensors file layout, written and read here rather than by the ``safetensors`` package:
its ``save_file`` writes a temporary ``.tmpXXXXXX`` of its own that a killed save leaves behind,
and its reader cannot open a file with a check that it is a regular file, or tell a tensor it
does not know (BF16, F8) from a bug.

A file is an 8-byte little-endian header size, the header (JSON, padded with spaces to a multiple
of 8 bytes) and the tensors' bytes, little-endian, in the order of their ``data_offsets``, which
tile the rest of the file exactly. The header maps each tensor name to ``{"dtype", "shape",
"data_offsets"}`` and ``"__metadata__"`` to a dict of strings.
"""

from __future__ import annotations

import io
import json
import math
import reprlib
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, NoReturn

import numpy as np
from numpy.typing import NDArray

# safetensors' dtype tags of the dtypes optrs saves; files with others (BF16, F8_*, ...) are refused.
DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "I16": np.int16, "I8": np.int8, "U64": np.uint64, "U32": np.uint32, "U16": np.uint16,
          "U8": np.uint8, "BOOL": np.bool_, "C64": np.complex64}
_TAGS = {np.dtype(dtype): tag for tag, dtype in DTYPES.items()}
_METADATA = "__metadata__"
Readable = io.RawIOBase | io.BufferedIOBase  # a file opened unbuffered, or the bytes of a file object


class Corrupt(Exception):
    """What is wrong with a file, phrased to follow its path ("is truncated: ...")."""


def short(value: Any) -> str:
    """A value from a file, shown in an error: cut short, and safe for nesting deep enough to make
    ``repr`` raise RecursionError."""
    return reprlib.repr(value)


def _corrupt(problem: str) -> NoReturn:
    raise Corrupt(f"is corrupt: {problem}")


def tag(dtype: np.dtype[Any]) -> str | None:
    """The dtype's safetensors tag, None for a dtype a checkpoint cannot hold."""
    return _TAGS.get(dtype.newbyteorder("="))


def checksum(dtype_tag: str, shape: Iterable[int], data: memoryview) -> str:
    """CRC-32 of the tensor's dtype tag, shape (``F32[2,3]``) and bytes, as 8 hex digits: any
    change to a tensor's bytes, dtype or shape changes it."""
    described = f"{dtype_tag}[{','.join(map(str, shape))}]".encode()
    return f"{zlib.crc32(data, zlib.crc32(described)):08x}"


def raw_bytes(array: NDArray[Any]) -> memoryview:
    """The bytes of a C-contiguous array, as a flat byte view (0-d and complex included)."""
    return array.reshape(-1).view(np.uint8).data


def write(file: BinaryIO, arrays: Mapping[str, NDArray[Any]], metadata: Mapping[str, str]) -> None:
    """Writes little-endian C-contiguous ``arrays`` and ``metadata`` as a safetensors file. The
    widest dtypes come first, as safetensors orders them, so every tensor is aligned in the file."""
    names = sorted(arrays, key=lambda name: (-arrays[name].dtype.itemsize, name))
    header: dict[str, Any] = {_METADATA: dict(metadata)}
    offset = 0
    for name in names:
        array = arrays[name]
        header[name] = {"dtype": tag(array.dtype), "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    file.write(len(text).to_bytes(8, "little"))
    file.write(text)
    for name in names:
        file.write(raw_bytes(arrays[name]))


@dataclass(frozen=True)
class Tensor:
    dtype_tag: str
    shape: tuple[int, ...]
    begin: int  # from the start of the file
    end: int


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            _corrupt(f"its JSON names {short(key)} twice")
        result[key] = value
    return result


def _not_a_constant(name: str) -> NoReturn:
    _corrupt(f"its JSON holds the number {name}, which save never writes")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        _not_a_constant(text[:20])
    return value


def parse_json(text: str | bytes, what: str) -> Any:
    """JSON as the files hold it: finite numbers, no duplicate keys, bounded nesting."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_not_a_constant, parse_float=_finite)
    except RecursionError:
        _corrupt(f"its {what} nests deeper than Python's JSON reader goes")
    except (ValueError, UnicodeDecodeError) as error:  # ints of more digits than int() takes, too
        _corrupt(f"its {what} is not valid JSON ({error})")


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor(name: str, entry: Any, data_start: int) -> Tensor:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        _corrupt(f"tensor {name!r} is described by {short(entry)}, not by dtype, shape and data_offsets")
    dtype_tag, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype_tag not in DTYPES:
        raise Corrupt(f"holds tensor {name!r} of dtype {short(dtype_tag)}, which optrs checkpoints do not "
                      f"hold ({', '.join(DTYPES)}); safetensors' own readers may read it")
    if not isinstance(shape, list) or not all(map(_is_index, shape)) or len(shape) > 64:
        _corrupt(f"tensor {name!r} has shape {short(shape)}, not a list of at most 64 sizes")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_is_index, offsets)):
        _corrupt(f"tensor {name!r} has data_offsets {short(offsets)}, not two byte offsets")
    begin, end = offsets
    if end - begin != np.dtype(DTYPES[dtype_tag]).itemsize * math.prod(shape):
        _corrupt(f"tensor {name!r} of dtype {dtype_tag} and shape {short(shape)} spans bytes {short(begin)} to "
                 f"{short(end)}")
    return Tensor(dtype_tag, tuple(shape), data_start + begin, data_start + end)


def read_header(file: Readable, size: int) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and metadata of the open file of ``size`` bytes, every offset checked."""
    head = file.read(9)
    if len(head) < 9:
        raise Corrupt(f"is not an optrs checkpoint: it is only {size} bytes long (truncated?)")
    header_size = int.from_bytes(head[:8], "little")
    if head[8:9] != b"{":
        raise Corrupt("is not an optrs checkpoint: it does not start as a safetensors file (an 8-byte header size, "
                      "then a JSON header)")
    if header_size < 2:
        _corrupt(f"its header size is {header_size} bytes, too short for a JSON object")
    if 8 + header_size > size:
        raise Corrupt(f"is truncated: its header announces {header_size} bytes of header and the file has {size} "
                      "bytes in all")
    header = parse_json(head[8:] + file.read(header_size - 1), "header")
    if not isinstance(header, dict):
        _corrupt("its header is not a JSON object")
    metadata = header.pop(_METADATA, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        _corrupt("its header's __metadata__ is not a map of strings")
    data_start = 8 + header_size
    tensors = {name: _tensor(name, entry, data_start) for name, entry in header.items()}
    position = data_start
    for name, tensor in sorted(tensors.items(), key=lambda item: (item[1].begin, item[1].end)):
        if tensor.begin != position:
            _corrupt(f"tensor {name!r} starts at byte {tensor.begin}, where {position} was expected (tensors overlap "
                     "or leave gaps)")
        position = tensor.end
    if position != size:
        raise Corrupt(f"is corrupt or truncated: its tensors end at byte {position} and the file has {size} bytes")
    return tensors, metadata


def read_tensor(file: Readable, name: str, tensor: Tensor, expected_checksum: str | None) -> NDArray[Any]:
    """A fresh array of the tensor's bytes, checked against its checksum when one is given."""
    try:
        array: NDArray[Any] = np.empty(tensor.shape, DTYPES[tensor.dtype_tag])
    except ValueError as error:  # sizes whose product overflows, beside a zero
        _corrupt(f"tensor {name!r} has shape {short(list(tensor.shape))}, which NumPy cannot hold ({error})")
    data = raw_bytes(array)
    file.seek(tensor.begin)
    filled = 0
    while filled < len(data):
        count = file.readinto(data[filled:])
        if not count:
            raise Corrupt(f"is truncated: tensor {name!r} ends at byte {tensor.end}, past the end of the file")
        filled += count
    if expected_checksum is not None and checksum(tensor.dtype_tag, tensor.shape, data) != expected_checksum:
        _corrupt(f"tensor {name!r} does not match its checksum (a changed byte, dtype or shape)")
    return array
