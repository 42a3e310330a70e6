"""Issue 10's checkpoint and thread-pool defects, each a regression test: set_num_threads and
OPTRS_NUM_THREADS capped (no multi-second hang), load refusing FIFOs and other non-regular files,
every malformed tree or tensor a CheckpointError, checksums catching flipped bits, and stale
temporary files of killed saves removed by the next save (never a live writer's or anyone
else's)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

import optrs
from optrs.checkpoint import FORMAT, MAX_DEPTH

# -- defect 7: set_num_threads and OPTRS_NUM_THREADS are capped ---------------------------------


def _cap() -> int:
    with pytest.raises(optrs.InvalidHyperparameterError, match=r"between 1 and \d+") as caught:
        optrs.set_num_threads(10**9)
    match = re.search(r"between 1 and (\d+)", str(caught.value))
    assert match is not None
    return int(match[1])


def test_set_num_threads_refuses_more_than_the_cap_at_once() -> None:
    cap = _cap()
    assert cap >= 64 and cap >= 8 * len(os.sched_getaffinity(0)) // 2  # cgroup quotas may lower the CPU count
    before = optrs.get_num_threads()
    for threads in (10_000, 2**31, 2**64, 2**200, cap + 1, 0, -1, -(2**70)):
        if threads <= cap and threads >= 1:
            continue
        with pytest.raises(optrs.InvalidHyperparameterError, match=rf"set_num_threads\(threads={threads}\).*"
                           rf"between 1 and {cap} \(8 per CPU"):
            optrs.set_num_threads(threads)
        assert optrs.get_num_threads() == before
    with pytest.raises(TypeError):
        optrs.set_num_threads(2.0)  # type: ignore[arg-type]
    try:
        optrs.set_num_threads(cap)
        assert optrs.get_num_threads() == cap
    finally:
        optrs.set_num_threads(before)


def _threads_in_subprocess(value: str | None) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPTRS_NUM_THREADS"}
    if value is not None:
        env["OPTRS_NUM_THREADS"] = value
    script = "import warnings; warnings.simplefilter('always'); import optrs; print(optrs.get_num_threads())"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                          check=True)
    return int(done.stdout), done.stderr


def test_absurd_optrs_num_threads_is_clamped_or_ignored_with_a_warning() -> None:
    cap = _cap()
    default, quiet = _threads_in_subprocess(None)
    assert "OPTRS_NUM_THREADS" not in quiet
    assert _threads_in_subprocess("3") == (3, "")
    for value in ("10000000", "99999999999999999999999999"):
        threads, warning = _threads_in_subprocess(value)
        assert threads == cap
        assert f"RuntimeWarning: OPTRS_NUM_THREADS={value} is more threads than optrs starts ({cap}" in warning
    for value in ("0", "-4", "2.5"):
        threads, warning = _threads_in_subprocess(value)
        assert threads == default
        assert f'RuntimeWarning: OPTRS_NUM_THREADS="{value}" is not a positive whole number' in warning


# -- defect 8: only regular files are read -------------------------------------------------------

_FIFO_SCRIPT = """
import os, sys
import optrs
from optrs.checkpoint import _files
fifo, regular = sys.argv[1], sys.argv[2]
try:
    optrs.load(fifo)
except optrs.CheckpointError as error:
    print("refused:", error)
real_stat = os.stat
os.stat = lambda path, *a, **k: real_stat(regular)  # as if the path became a FIFO after the check
try:
    optrs.load(fifo)
except optrs.CheckpointError as error:
    print("refused after opening:", error)
"""


def test_load_of_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.optrs"
    os.mkfifo(fifo)
    regular = tmp_path / "regular.optrs"
    optrs.save({}, regular)
    # In a subprocess: a regression would block forever in open() or read().
    done = subprocess.run([sys.executable, "-c", _FIFO_SCRIPT, str(fifo), str(regular)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [f"refused: {str(fifo)!r} is a FIFO, not a checkpoint file: optrs.load reads only regular files",
                     f"refused after opening: {str(fifo)!r} is a FIFO, not a checkpoint file: optrs.load reads only "
                     "regular files"]


def test_load_of_directories_devices_and_links_to_them_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "link.optrs"
    link.symlink_to("/dev/null")
    for path, kind in ((tmp_path, "a directory"), (Path("/dev/null"), "a character device"),
                       (link, "a character device")):
        with pytest.raises(optrs.CheckpointError, match=f"is {kind}, not a checkpoint file"):
            optrs.load(path)
    with pytest.raises(FileNotFoundError):
        optrs.load(tmp_path / "missing.optrs")


# -- defect 9: every malformed file is a CheckpointError ----------------------------------------


def _tensor_checksum(tag: str, shape: list[int], data: bytes) -> str:
    described = tag + "[" + ",".join(map(str, shape)) + "]"
    return f"{zlib.crc32(data, zlib.crc32(described.encode())):08x}"


def _craft(path: Path, tree: str, tensors: dict[str, tuple[str, list[int], bytes]] | None = None,
           version: int = 2, header_extra: str = "", **metadata: str) -> Path:
    """A checkpoint written byte by byte: ``tensors`` maps names to (dtype tag, shape, bytes),
    ``metadata`` overrides the computed metadata, ``header_extra`` is raw JSON added to the header."""
    tensors = tensors or {}
    meta = {"format": FORMAT, "format_version": str(version), "tree": tree}
    if version >= 2:
        meta["tree_checksum"] = f"{zlib.crc32(tree.encode()):08x}"
        meta["checksums"] = json.dumps({n: _tensor_checksum(*t) for n, t in tensors.items()})
    meta.update(metadata)
    header: dict[str, Any] = {"__metadata__": meta}
    offset = 0
    for name, (tag, shape, data) in tensors.items():
        header[name] = {"dtype": tag, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header)
    if header_extra:
        text = text[:-1] + "," + header_extra + "}"
    raw = text.encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + b"".join(t[2] for t in tensors.values()))
    return path


def _refused(path: Path, message: str) -> None:
    with pytest.raises(optrs.CheckpointError, match=message) as caught:
        optrs.load(path)
    assert str(path) in str(caught.value)


W = {"w": ("F64", [3], np.arange(3.0).tobytes())}


def test_deep_trees_are_refused_on_save_and_load(tmp_path: Path) -> None:
    path = tmp_path / "deep.optrs"
    for kind in ("list", "dict", "tuple"):
        deep: Any = 1
        for _ in range(MAX_DEPTH):
            deep = [deep] if kind == "list" else {"k": deep} if kind == "dict" else (deep,)
        optrs.save(deep, path)
        assert optrs.load(path) == deep
        with pytest.raises(optrs.CheckpointError, match=f"nests more than {MAX_DEPTH} lists, tuples and dicts deep"):
            optrs.save([deep], path)
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(optrs.CheckpointError, match="one that holds itself"):
        optrs.save({"a": cycle}, path)
    for version in (1, 2):
        for depth in (MAX_DEPTH + 1, 1_000, 100_000):
            _craft(path, "[" * depth + "]" * depth, version=version)
            _refused(path, "nests (more than 100|deeper than Python's JSON reader goes)")
        tuples = '{"tuple":[' * 150 + "]}" * 150
        _refused(_craft(path, tuples, version=version), "nests more than 100 deep")
        deep_in_a_bad_node = '{"a":1,"b":' + "[" * 950 + "]" * 950 + "}"  # too deep for repr in the message
        _refused(_craft(path, deep_in_a_bad_node, version=version), r"holds {'a': 1, 'b': \[\[\[\[\[\[...")


@pytest.mark.parametrize("version", [1, 2])
def test_every_malformed_tree_is_a_checkpoint_error(tmp_path: Path, version: int) -> None:
    path = tmp_path / "tree.optrs"
    cases = [
        ('{"dict":[[{"dict":[]},1]]}', "a dict key {}, which cannot be a key"),
        ('{"dict":[[[1,2],1]]}', r"a dict key \[1, 2\], which cannot be a key"),
        ('{"dict":[[{"tuple":[[1]]},1]]}', r"a dict key \(\[1\],\), which cannot be a key"),
        ('{"dict":[[{"array":"w"},1]]}', "no saved value"),
        ('{"dict":[["a",1],["a",2]]}', "the dict key 'a' twice"),
        ('{"dict":[[1,1],[true,2]]}', "the dict key True twice"),
        ('{"dict":[[1]]}', "no saved value"),
        ('{"dict":{"a":1}}', "no saved value"),
        ('{"tuple":1}', "no saved value"),
        ('{"array":5}', "refers to an array 5 that"),
        ('{"array":"nope"}', "refers to an array 'nope' that the file does not hold"),
        ('[{"array":"w"},{"array":"w"}]', "refers to the array 'w' twice"),
        ('{"scalar":"w"}', "no saved value"),
        ('{"int":"12x"}', "no saved value"),
        ('{"int":" 12"}', "no saved value"),
        ('{"int":"' + "9" * 5000 + '"}', "no saved value"),
        ("9" * 5000, "not valid JSON"),
        ('{"float":"1.5"}', "no saved value"),
        ('{"set":[1]}', "no saved value"),
        ('{"a":1,"b":2}', "no saved value"),
        ('{"a":1,"a":1}', "names 'a' twice"),
        ("[NaN]", "the number NaN, which save never writes"),
        ("[1e999]", "the number 1e999, which save never writes"),
        ("[-Infinity]", "the number -Infinity"),
        ("{not json", "not valid JSON"),
        ('"\\ud800"', "no saved value|not valid"),
        ("1", "arrays its metadata does not describe"),
    ]
    for tree, message in cases:
        if tree == '"\\ud800"':
            continue  # a lone surrogate is valid JSON for Python: it loads as that string (save refuses it)
        _refused(_craft(path, tree, W, version=version), message)
    assert optrs.load(_craft(path, '{"dict":[[{"float":"nan"},1],[{"float":"nan"},2]]}', version=version)).keys()


@pytest.mark.parametrize("version", [1, 2])
def test_every_malformed_tensor_is_a_checkpoint_error(tmp_path: Path, version: int) -> None:
    path = tmp_path / "tensors.optrs"
    tree = '{"array":"w"}'
    cases: list[tuple[dict[str, tuple[str, list[int], bytes]], str, str]] = [
        ({"w": ("BF16", [2], bytes(4))}, "", "tensor 'w' of dtype 'BF16', which optrs checkpoints do not hold"),
        ({"w": ("F8_E4M3", [2], bytes(2))}, "", "tensor 'w' of dtype 'F8_E4M3'"),
        ({"w": ("F8_E5M2", [2], bytes(2))}, "", "dtype 'F8_E5M2'"),
        ({"w": ("Q7", [2], bytes(2))}, "", "dtype 'Q7'"),
        ({"w": ("F32", [3], bytes(8))}, "", r"dtype F32 and shape \[3\] spans bytes 0 to 8"),
        ({"w": ("F32", [-1], bytes(4))}, "", "shape"),
        ({"w": ("F32", [True], bytes(4))}, "", "shape"),
        ({"w": ("F32", [1] * 65, bytes(4))}, "", "not a list of at most 64 sizes"),
        ({"w": ("F32", [0, 2**62, 2**62], b"")}, "", "which NumPy cannot hold"),
        ({"w": ("F32", [1], bytes(4))}, '"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}', "overlap"),
        ({"w": ("F32", [1], bytes(4))}, '"x":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}', "overlap or leave"),
        ({"w": ("F32", [1], bytes(4))}, '"x":{"dtype":"F32","shape":[1],"data_offsets":[4]}', "data_offsets"),
        ({"w": ("F32", [1], bytes(4))}, '"x":{"dtype":"F32","shape":[1]}', "not by dtype, shape and data_offsets"),
        ({"w": ("F32", [1], bytes(4))}, '"x":[1]', "not by dtype, shape and data_offsets"),
        ({"w": ("F32", [1], bytes(4))}, '"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}', "names 'w' twice"),
    ]
    for tensors, extra, message in cases:
        _refused(_craft(path, tree, tensors, version=version, header_extra=extra), message)
    bad_metadata = [({"format_version": "٣"}, "unknown checkpoint format version"),
                    ({"format_version": "0"}, "unknown checkpoint format version"),
                    ({"format": "optrs.checkpoint "}, "not an optrs checkpoint")]
    for metadata, message in bad_metadata:
        _refused(_craft(path, tree, W, version=version, **metadata), message)
    raw = b'{"__metadata__":{"format":1}}'
    path.write_bytes(len(raw).to_bytes(8, "little") + raw)
    _refused(path, "__metadata__ is not a map of strings")
    for raw in (b"[1]", b"{", b'{"a":1}\xff'):
        path.write_bytes(len(raw).to_bytes(8, "little") + raw)
        _refused(path, "corrupt|not an optrs checkpoint")
    path.write_bytes(bytes(8) + b"{}")
    _refused(path, "header size is 0 bytes")


# -- checksums -----------------------------------------------------------------------------------


def _checkpoint(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    model = optrs.nn.Linear(4, 3)
    opt = optrs.optim.Adam(model.parameters())
    model(optrs.tensor(np.ones((2, 4), np.float32))).sum().backward()
    opt.step()
    obj = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}
    path = tmp_path / "ckpt.optrs"
    optrs.save(obj, path)
    return path, obj


def test_a_flipped_bit_in_any_tensor_is_caught_naming_the_tensor(tmp_path: Path) -> None:
    path, _ = _checkpoint(tmp_path)
    data = path.read_bytes()
    header_size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_size])
    metadata = header.pop("__metadata__")
    assert metadata["format_version"] == "2" and set(json.loads(metadata["checksums"])) == set(header)
    corrupt = tmp_path / "corrupt.optrs"
    for name, entry in header.items():
        begin, end = (8 + header_size + offset for offset in entry["data_offsets"])
        for position in (begin, (begin + end) // 2, end - 1):
            flipped = bytearray(data)
            flipped[position] ^= 1 << (position % 8)
            corrupt.write_bytes(flipped)
            _refused(corrupt, f"tensor {name!r} does not match its checksum")
    epoch = data.index(b'\\"epoch\\",3]')
    corrupt.write_bytes(data[:epoch] + data[epoch:].replace(b'\\"epoch\\",3]', b'\\"epoch\\",7]', 1))
    _refused(corrupt, "its metadata tree does not match its checksum")
    as_int = data.replace(b'"dtype":"F32","shape":[3,4]', b'"dtype":"I32","shape":[3,4]', 1)
    assert as_int != data
    corrupt.write_bytes(as_int)
    _refused(corrupt, "tensor 'model/weight' does not match its checksum")
    as_other_shape = data.replace(b'"dtype":"F32","shape":[3,4]', b'"dtype":"F32","shape":[4,3]', 1)
    corrupt.write_bytes(as_other_shape)
    _refused(corrupt, "tensor 'model/weight' does not match its checksum")


def test_safetensors_reads_our_files_and_version_1_files_still_load(tmp_path: Path) -> None:
    path, obj = _checkpoint(tmp_path)
    arrays = load_file(path)
    assert np.array_equal(arrays["model/weight"], obj["model"]["weight"])
    assert np.array_equal(arrays["optimizer/state/0/exp_avg"], obj["optimizer"]["state"][0]["exp_avg"])
    with safe_open(str(path), framework="np") as handle:
        assert handle.metadata()["format_version"] == "2"
    # A version 1 file, as optrs wrote them through safetensors.numpy.save_file: no checksums.
    old = tmp_path / "v1.optrs"
    tree = json.dumps({"dict": [["w", {"array": "w"}], ["step", {"scalar": "s"}]]})
    save_file({"w": np.arange(4.0), "s": np.array(5, np.int64)}, str(old),
              metadata={"format": FORMAT, "format_version": "1", "tree": tree})
    loaded = optrs.load(old)
    assert loaded["w"].tolist() == [0.0, 1.0, 2.0, 3.0] and loaded["step"] == 5
    assert isinstance(loaded["step"], np.int64)


# -- stale temporary files ----------------------------------------------------------------------

_WRITER = """
import sys
import numpy as np
import optrs
path = sys.argv[1]
version = 0
while True:
    optrs.save({"version": version, "weights": np.full(2_000_000, version, np.float64)}, path)
    print(version, flush=True)
    version += 1
"""


def _hidden(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name.startswith(".")}


def _start_writer(path: Path) -> subprocess.Popen[str]:
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    writer.stdout.readline()  # one whole save done
    return writer


def _catch_mid_save(writer: subprocess.Popen[str], directory: Path, before: set[str]) -> set[str]:
    """Stops ``writer`` (SIGSTOP) once its next save has made its temporary file; returns the
    hidden files that appeared."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        os.kill(writer.pid, signal.SIGSTOP)
        new = _hidden(directory) - before
        if new:
            return new
        os.kill(writer.pid, signal.SIGCONT)
        time.sleep(0.001)
    raise AssertionError("the writer never made a temporary file")


def test_stale_temporary_files_of_killed_saves_are_removed_by_the_next_save(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.optrs"
    for _ in range(5):
        writer = _start_writer(path)  # its first save removed the previous writer's temporary file
        stale = _catch_mid_save(writer, tmp_path, _hidden(tmp_path))
        os.kill(writer.pid, signal.SIGKILL)  # mid-save, with its temporary file made
        writer.wait()
        assert writer.stdout is not None
        writer.stdout.close()
        assert _hidden(tmp_path) == stale and len(stale) == 1
        assert re.fullmatch(rf"\.ckpt\.optrs\.{writer.pid}\.[0-9a-f]{{8}}\.tmp", stale.pop())
    optrs.save({"fresh": np.ones(3)}, path)
    assert _hidden(tmp_path) == set()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.optrs"]
    assert optrs.load(path)["fresh"].tolist() == [1.0, 1.0, 1.0]


def test_a_live_writers_temporary_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.optrs"
    writer = _start_writer(path)
    try:
        live = _catch_mid_save(writer, tmp_path, _hidden(tmp_path))  # stopped mid-save: alive, lock held
        optrs.save({"other": 1}, path)
        assert _hidden(tmp_path) == live
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        assert writer.stdout is not None
        writer.stdout.close()
    optrs.save({"other": 2}, path)
    assert _hidden(tmp_path) == set()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_other_files_are_never_removed(tmp_path: Path) -> None:
    dead = _dead_pid()
    path = tmp_path / "ckpt.optrs"
    keep = [
        ".tmpAbC123",  # safetensors' own, from optrs before format version 2: whose, nobody knows
        f".other.optrs.{dead}.0123abcd.tmp",  # another checkpoint's
        f".ckpt.optrs.{dead}.0123abcd.tmp.bak",
        f".ckpt.optrs.{dead}.0123ABCD.tmp",
        f".ckpt.optrs.{os.getpid()}.0123abcd.tmp",  # a thread of this process may be writing it
        f".ckpt.optrs.{dead}.aaaaaaaa.tmp",  # locked below, as by a writer on another machine
        f".ckpt.optrs.{dead}.bbbbbbbb.tmp",  # a directory
        f".ckpt.optrs.{dead}.cccccccc.tmp",  # a symlink to a file
    ]
    for name in keep[:6]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / keep[6]).mkdir()
    (tmp_path / keep[7]).symlink_to(tmp_path / keep[0])
    if os.geteuid() == 0:  # root can make a file that belongs to someone else
        keep.append(f".ckpt.optrs.{dead}.dddddddd.tmp")
        (tmp_path / keep[-1]).write_bytes(b"x")
        os.chown(tmp_path / keep[-1], 65534, 65534)
    stale = f".ckpt.optrs.{dead}.eeeeeeee.tmp"
    (tmp_path / stale).write_bytes(b"half a checkpoint")
    with open(tmp_path / keep[5], "rb") as locked:
        fcntl.flock(locked, fcntl.LOCK_EX)
        optrs.save({"x": 1}, path)
    assert _hidden(tmp_path) == set(keep)
