"""Fuzzing ``optrs.load`` with mutated real checkpoints (a small model and its Adam state): bit
flips, truncation, appended bytes, header sizes, header JSON edits (dtypes, shapes, offsets,
names), and random or deep metadata trees. The invariant: ``load`` returns the saved tree,
unchanged, or raises ``CheckpointError``; nothing else comes out, and no load takes more than a
few seconds (a watchdog turns a hang into a failure)."""

from __future__ import annotations

import contextlib
import json
import math
import signal
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optrs
import optrs.nn as nn
from optrs.checkpoint import FORMAT

_SAFETENSORS_DTYPES = ["F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL",
                       "C64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "E8M0", "", "f32", 5, None]


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-checkpoint")


@cache
def _real(directory: Path) -> tuple[bytes, Any]:
    """A real checkpoint's bytes and what load gives for them."""
    optrs.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    opt = optrs.optim.Adam(model.parameters(), lr=1e-2)
    model(optrs.tensor(np.ones((2, 3), np.float32))).sum().backward()
    opt.step()
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
           "misc": (1.5, None, "é", 2**70, float("nan"), np.float32(2.5), {(1, "a"): [True]})}
    path = directory / "real.optrs"
    optrs.save(obj, path)
    return path.read_bytes(), optrs.load(path)


def _same(a: Any, b: Any) -> bool:
    """Equal trees: types, dict order, arrays bit for bit, NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (np.ndarray, np.generic)):
        return bool(a.dtype == b.dtype and np.shape(a) == np.shape(b) and np.asarray(a).tobytes() == np.asarray(b)
                    .tobytes())
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


@contextlib.contextmanager
def _watchdog(seconds: float = 10.0) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"optrs.load took more than {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _load_or_refuse(directory: Path, content: bytes, expected: Any = None, check: bool = True) -> None:
    """Loads ``content``: a CheckpointError, or (when ``check``) a tree equal to ``expected``."""
    path = directory / "mutated.optrs"
    path.write_bytes(content)
    try:
        with _watchdog():
            loaded = optrs.load(path)
    except optrs.CheckpointError:
        return
    assert not check or _same(expected, loaded), "a changed file loaded as different data"


def _split(content: bytes) -> tuple[dict[str, Any], bytes]:
    size = int.from_bytes(content[:8], "little")
    return json.loads(content[8 : 8 + size]), content[8 + size :]


def _join(header: Any, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data


@settings(deadline=None)
@given(st.lists(st.integers(min_value=0), min_size=1, max_size=8))
def test_bit_flips(directory: Path, positions: list[int]) -> None:
    content, expected = _real(directory)
    flipped = bytearray(content)
    for position in positions:
        bit = position % (8 * len(content))
        flipped[bit // 8] ^= 1 << (bit % 8)
    _load_or_refuse(directory, bytes(flipped), expected, check=bytes(flipped) != content)


@settings(deadline=None)
@given(st.integers(min_value=0), st.binary(max_size=64), st.booleans())
def test_truncation_extension_and_overwrites(directory: Path, cut: int, tail: bytes, overwrite: bool) -> None:
    content, expected = _real(directory)
    cut %= len(content)
    mutated = content[:cut] + tail + (content[cut + len(tail) :] if overwrite else b"")
    _load_or_refuse(directory, mutated, expected)


@settings(deadline=None)
@given(st.one_of(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=-64, max_value=64)))
def test_header_sizes(directory: Path, size: int) -> None:
    content, expected = _real(directory)
    if size < 2**63 and -64 <= size <= 64:  # near the real size
        size += int.from_bytes(content[:8], "little")
    _load_or_refuse(directory, (size % 2**64).to_bytes(8, "little") + content[8:], expected)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


@settings(deadline=None)
@given(st.data())
def test_header_json_edits(directory: Path, data: st.DataObject) -> None:
    content, expected = _real(directory)
    header, tensors = _split(content)
    names = sorted(n for n in header if n != "__metadata__")
    name = data.draw(st.sampled_from(names))
    field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets", "delete", "rename", "entry", "metadata"]))
    if field == "dtype":
        header[name]["dtype"] = data.draw(st.sampled_from(_SAFETENSORS_DTYPES))
    elif field == "shape":
        header[name]["shape"] = data.draw(st.lists(st.integers(min_value=-2, max_value=2**64), max_size=4)
                                          | _json_values)
    elif field == "data_offsets":
        begin, end = header[name]["data_offsets"]
        header[name]["data_offsets"] = data.draw(
            st.tuples(st.integers(min_value=-8, max_value=8), st.integers(min_value=-8, max_value=8))
            .map(lambda d: [begin + d[0], end + d[1]]) | _json_values)
    elif field == "delete":
        del header[name]
    elif field == "rename":
        header[data.draw(st.text(max_size=12))] = header.pop(name)
    elif field == "entry":
        header[name] = data.draw(_json_values)
    else:
        key = data.draw(st.sampled_from(["format", "format_version", "tree", "tree_checksum", "checksums", "x"]))
        header["__metadata__"][key] = data.draw(st.text(max_size=12) | _json_values)
    _load_or_refuse(directory, _join(header, tensors), expected)


def _file(tree: str, version: int) -> bytes:
    """A checkpoint with the arrays ``a`` (float64, 3) and ``s`` (0-d int64) and the given tree,
    its checksums right (version 2) or absent (version 1)."""
    a, s = np.arange(3.0).tobytes(), np.array(7).tobytes()
    metadata = {"format": FORMAT, "format_version": str(version), "tree": tree}
    if version == 2:
        metadata["tree_checksum"] = f"{zlib.crc32(tree.encode()):08x}"
        metadata["checksums"] = json.dumps({"a": f"{zlib.crc32(a, zlib.crc32(b'F64[3]')):08x}",
                                            "s": f"{zlib.crc32(s, zlib.crc32(b'I64[]')):08x}"})
    header = {"__metadata__": metadata, "a": {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]},
              "s": {"dtype": "I64", "shape": [], "data_offsets": [24, 32]}}
    return _join(header, a + s)


_tags = st.sampled_from(["array", "scalar", "tuple", "dict", "int", "float", "set", ""])
_trees = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**60), max_value=2**60) | st.floats(allow_nan=False)
    | st.text(max_size=6) | st.sampled_from(["a", "s", "nan", "inf", "-inf", "12", "1" * 5000]),
    lambda children: (st.lists(children, max_size=3)
                      | st.builds(lambda tag, content: {tag: content}, _tags, children)
                      | st.dictionaries(st.text(max_size=4), children, max_size=3)),
    max_leaves=12,
)


@settings(deadline=None)
@given(_trees, st.sampled_from([1, 2]))
def test_random_trees(directory: Path, tree: Any, version: int) -> None:
    _load_or_refuse(directory, _file(json.dumps(tree), version), check=False)


@settings(deadline=None, max_examples=30)
@given(st.lists(st.sampled_from(["[", '{"tuple":[', '{"dict":[[1,', '{"dict":[[{"tuple":[', '{"x":1,"y":']),
                min_size=1, max_size=3000), st.sampled_from([1, 2]))
def test_deep_trees(directory: Path, openings: list[str], version: int) -> None:
    closings = {"[": "]", '{"tuple":[': "]}", '{"dict":[[1,': "]]}", '{"dict":[[{"tuple":[': "]},1]]}",
                '{"x":1,"y":': "}"}
    tree = "".join(openings) + "1" + "".join(closings[o] for o in reversed(openings))
    _load_or_refuse(directory, _file(tree, version), check=False)
