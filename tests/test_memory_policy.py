"""Freed memory kept for reuse (rust/py/src/memory.rs): on by default on glibc, off when the user says
so or tunes malloc themselves."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def policy(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OPTRS_KEEP_FREED_MEMORY", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
                          "GLIBC_TUNABLES")}
    code = "import optrs; print(optrs._core.freed_memory_policy())"
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(not glibc, reason="the policy sets glibc's malloc thresholds; other C libraries keep theirs")
def test_kept_by_default_on_glibc() -> None:
    assert policy().startswith("kept for reuse")


@pytest.mark.parametrize(("env", "why"), [
    ({"OPTRS_KEEP_FREED_MEMORY": "0"}, "OPTRS_KEEP_FREED_MEMORY=0"),
    ({"MALLOC_TRIM_THRESHOLD_": "1000000"}, "MALLOC_TRIM_THRESHOLD_ is set"),
    ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=200000"}, "GLIBC_TUNABLES sets malloc thresholds"),
])
def test_the_users_settings_win(env: dict[str, str], why: str) -> None:
    assert policy(**env).startswith(f"not kept: {why}")
