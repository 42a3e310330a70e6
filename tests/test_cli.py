"""The ``optrs`` console script: info, bench's argument handling, and train on tiny IDX data."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_mnist_example import make_idx_dir

import optrs
from optrs import cli


def test_info_names_version_build_simd_threads_and_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info"]) == 0
    # Each row is a name, two or more spaces, then the value.
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in capsys.readouterr().out.splitlines())
    build = dict(optrs._core.build_info())
    assert rows["optrs"].startswith(optrs.__version__)
    assert rows["git revision"] == build["git_revision"] and rows["rustc"] == build["rustc"]
    assert rows["target features"].startswith(build["target_features"])
    assert rows["SIMD level"].startswith(optrs.simd_level())
    assert rows["threads"].startswith(str(optrs.get_num_threads()))
    assert "GPU adapters" in rows


def test_the_console_script_is_installed() -> None:
    exe = shutil.which("optrs") or str(Path(sys.executable).parent / "optrs")
    if not Path(exe).exists():
        pytest.skip("optrs is importable but its console script is not installed here")
    result = subprocess.run([exe, "info"], capture_output=True, text=True, check=True)
    assert "SIMD level" in result.stdout


def test_bad_commands_exit_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["frobnicate"], ["bench", "nothing"], ["info", "--extra"], []):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
    assert "usage: optrs" in capsys.readouterr().err


def test_train_runs_the_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_idx_dir(tmp_path, 64, 20, gz=False)
    assert cli.main(["train", "--data", str(tmp_path), "--epochs", "1", "--batch-size", "32",
                     "--log-dir", str(tmp_path / "log")]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1].startswith("test accuracy: ")
