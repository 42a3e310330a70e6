"""Files for checkpoints: opening only regular files, atomic writes through a hidden temporary
file, and removing the temporary files of killed saves.

A save writes ``.NAME.PID.HEX.tmp`` next to ``NAME`` and holds an exclusive ``flock`` on it until
it has renamed it over ``NAME``. A temporary file of ``NAME`` whose writer process is gone (no
process ``PID`` here, and nobody holds its lock) is stale: the next save of ``NAME`` removes it.
A file of another name, of another user, of a live process or locked by one (a writer on another
machine sharing the directory) is never touched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Callable
from typing import BinaryIO

from ..errors import CheckpointError

try:
    import fcntl
except ImportError:  # not POSIX: no locks, and stale files are left alone
    fcntl = None  # type: ignore[assignment]

_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def _not_regular(path: str, mode: int) -> CheckpointError:
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    return CheckpointError(f"{path!r} is {kind}, not a checkpoint file: optrs.load reads only regular files")


def open_regular(path: str) -> tuple[int, int]:
    """A read-only descriptor of ``path`` and its size. Anything but a regular file (a FIFO, whose
    open and reads would block until a writer comes, a device, a directory) raises
    ``CheckpointError``: checked before opening, and again on what was opened, without blocking,
    in case the path was replaced in between."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _not_regular(path, mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode):
        os.close(fd)
        raise _not_regular(path, opened.st_mode)
    return fd, opened.st_size


def write_atomically(path: str, write: Callable[[BinaryIO], None]) -> None:
    """Calls ``write`` on a hidden temporary file next to ``path``, fsyncs it, renames it over
    ``path`` and fsyncs the directory: ``path`` holds the old file or the whole new one, whenever
    the process is killed. Stale temporary files of ``path`` go first (they may fill the disk)."""
    directory, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, "the directory to save the checkpoint in does not exist", directory)
    remove_stale_temporaries(directory, name)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd closes, or when the process dies
        with open(fd, "wb", closefd=False) as file:
            write(file)
        os.fsync(fd)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    finally:
        os.close(fd)
    _fsync_directory(directory)


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread's save, or a dead process of the same number: either way, leave it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # exists but belongs to someone else, or not a number this system checks
    return True


def remove_stale_temporaries(directory: str, name: str) -> None:
    """Removes the temporary files of ``name`` whose writer is gone (see the module docstring)."""
    if fcntl is None or os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return
    pattern = re.compile(re.escape(f".{name}.") + r"([0-9]{1,10})\.[0-9a-f]{8}\.tmp")
    stale: list[str] = []
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        stale = [entry.path for entry in entries
                 if (match := pattern.fullmatch(entry.name)) and not _writer_alive(int(match[1]))]
    for temporary in stale:
        with contextlib.suppress(OSError):  # gone already, or not ours to remove
            _remove_if_unlocked(temporary)


def _remove_if_unlocked(temporary: str) -> None:
    fd = os.open(temporary, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or opened.st_uid != os.geteuid():
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a live writer, maybe on another machine sharing the directory
        now = os.stat(temporary, follow_symlinks=False)
        if (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino):  # not renamed away and replaced since
            os.unlink(temporary)
    finally:
        os.close(fd)


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
