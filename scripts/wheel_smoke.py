"""Smoke test of an installed optrs wheel, run by scripts/wheel.sh from a directory outside the
source tree with `python -I`, so that only the installed package can be imported. It catches what
an editable install hides: missing package data, stubs, yardsticks, licenses, a wrong version.

    python -I wheel_smoke.py          # everything, the CLI's `info` and `train --epochs 1` included
    python -I wheel_smoke.py --core   # import, build info, an optimizer step and a conv step only
                                      # (what runs under qemu-user on a CPU without AVX)
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"wheel smoke test: {what}")


def core() -> None:
    import optrs

    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    check(Path(optrs.__file__).resolve().is_relative_to(site),
          f"optrs was imported from {optrs.__file__}, not from the installed wheel in {site}")
    version = importlib.metadata.version("optrs-numpy")
    check(optrs.__version__ == version, f"optrs.__version__ {optrs.__version__} != the wheel's {version}")
    info = dict(optrs._core.build_info())
    check(info["version"] == version, f"build_info version {info['version']} != {version}")
    check("avx" not in info["target_features"].split(),
          f"the extension assumes AVX everywhere ({info['target_features']}); it must be baseline x86-64")
    print(f"optrs {version} from {Path(optrs.__file__).parent}, SIMD level {optrs.simd_level()}, "
          f"revision {info['git_revision']}", flush=True)
    expected_level = os.environ.get("OPTRS_SMOKE_EXPECT_SIMD")
    if expected_level:
        check(optrs.simd_level() == expected_level, f"SIMD level {optrs.simd_level()}, expected {expected_level}")

    # One Adam step: the first step moves each element by lr * g / (|g| + eps), i.e. about lr.
    w = np.linspace(-1, 1, 10_001, dtype=np.float32)
    grad = np.sign(w).astype(np.float32) + 0.5
    opt = optrs.optim.Adam([w], lr=0.1)
    before = w.copy()
    opt.step([grad])
    step = before - w
    check(bool(np.allclose(step, 0.1 * np.sign(grad), rtol=1e-5, atol=1e-6)), f"Adam's first step is off: {step[:4]}")

    # A conv-linear forward and backward: the gemm and conv kernels.
    model = optrs.nn.Sequential(optrs.nn.Conv2d(1, 4, 3), optrs.nn.ReLU(), optrs.nn.Flatten(),
                                optrs.nn.Linear(4 * 6 * 6, 3))
    x = optrs.randn(5, 1, 8, 8)
    loss = optrs.nn.functional.cross_entropy(model(x), optrs.tensor([0, 1, 2, 0, 1]))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    check(all(g is not None and np.isfinite(np.asarray(g)).all() for g in grads), "conv/linear backward gave no grads")
    print(f"Adam step and conv backward fine (loss {loss.item():.4f})", flush=True)


def package_data() -> None:
    files = importlib.resources.files("optrs")
    for relative in ["py.typed", "_core.pyi", "benchmarks/yardsticks/ref_adam.c", "benchmarks/yardsticks/stream.c"]:
        check(files.joinpath(relative).is_file(), f"the installed package has no {relative}")
    licenses = {Path(str(f)).name for f in importlib.metadata.files("optrs-numpy") or [] if "licenses" in str(f)}
    for name in ["LICENSE-MIT", "LICENSE-APACHE", "THIRD-PARTY-LICENSES.md"]:
        check(name in licenses, f"the installed distribution has no {name}")
    from optrs.benchmarks.adam import Yardsticks

    if shutil.which("gcc"):
        for name in ("ref_adam", "stream"):
            check(Yardsticks.build(name).exists(), f"the {name} yardstick did not build from the installed C file")
    print("package data fine: py.typed, stubs, yardsticks (built with gcc), licenses", flush=True)


def command_line() -> None:
    scripts = Path(sysconfig.get_paths()["scripts"])
    optrs_command = str(scripts / "optrs")
    info = subprocess.run([optrs_command, "info"], check=True, capture_output=True, text=True).stdout
    print(info, end="", flush=True)
    for field in ("optrs", "git revision", "rustc", "target features", "SIMD level"):
        check(field in info, f"`optrs info` does not print {field!r}")
    train = subprocess.run([optrs_command, "train", "--epochs", "1"], capture_output=True, text=True)
    check(train.returncode == 0, "`optrs train --epochs 1` failed:\n" + train.stderr[-3000:])
    tail = train.stdout.strip().splitlines()[-3:]  # (the progress bar is on stderr)
    check(any(line.startswith("test accuracy:") for line in tail), f"`optrs train` ended with {tail}")
    print("optrs train --epochs 1:", tail[-1], flush=True)


if __name__ == "__main__":
    core()
    if "--core" not in sys.argv[1:]:
        package_data()
        command_line()
    print("wheel smoke test passed", flush=True)
