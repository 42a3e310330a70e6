"""Instructions per element of one optimizer step, counted by valgrind's callgrind: optrs, torch's
fused and foreach kernels (when torch is importable) and the C yardstick loop `ref_adam`.

    python benches/instructions_per_element.py [--n 8388608] [--only Adam,SGD]
        [--torch-python PATH] [--impls fused]

Where `perf stat` has no hardware counters (VMs), instruction counts still say what a kernel
executes per element. Each case runs twice under callgrind, with 1 and with 5 steps after one
warm-up step, and the difference over 4 x n elements is reported, so start-up, imports and array
set-up cancel out (PYTHONHASHSEED=0 keeps the interpreter's own work the same in both runs; n is
large so that what still varies is small next to 4 x n x a few instructions). valgrind runs no
AVX-512, so every program takes its AVX2 path here (optrs detects valgrind's CPU as AVX2; torch
is told `ATEN_CPU_CAPABILITY=avx2`; the C loop is built with `-march=x86-64-v3`). One thread
each. Slow: minutes per case, most of it torch's import.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

OPTIMIZERS = {  # name: (optrs class kwargs, torch kwargs or None when torch has no fused kernel)
    "SGD": (dict(lr=1e-3, momentum=0.9), dict(lr=1e-3, momentum=0.9)),
    "Adagrad": (dict(lr=1e-2), dict(lr=1e-2)),
    "Adam": (dict(lr=1e-3), dict(lr=1e-3)),
    "AdamW": (dict(lr=1e-3), dict(lr=1e-3)),
    "ASGD": (dict(lr=1e-2), None),
    "LAMB": (dict(lr=1e-3), None),
    "Adafactor": (dict(lr=1e-2), None),
    "ADOPT": (dict(lr=1e-3), None),
}
YARDSTICK = Path(__file__).resolve().parents[1] / "python/optrs/benchmarks/yardsticks/ref_adam.c"


def inner(impl: str, name: str, n: int, steps: int) -> None:
    """Runs under callgrind: one warm-up step, then `steps` steps, on one fp32 tensor of n elements."""
    import numpy as np
    if impl == "optrs":
        import optrs
        optrs.set_num_threads(1)
        shape = (n // 1024, 1024) if name == "Adafactor" else (n,)
        param = np.full(shape, 0.5, np.float32)
        grad = np.full(shape, 0.01, np.float32)
        opt = getattr(optrs.optim, name)([param], **OPTIMIZERS[name][0])
        for _ in range(1 + steps):
            opt.step([grad])
        return
    import torch
    torch.set_num_threads(1)
    param = torch.nn.Parameter(torch.full((n,), 0.5))
    param.grad = torch.full((n,), 0.01)
    kwargs = {**OPTIMIZERS[name][1], impl: True}
    opt = getattr(torch.optim, name)([param], **kwargs)
    for _ in range(1 + steps):
        opt.step()


def callgrind_instructions(command: list[str], env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
                       env=env, check=True, capture_output=True)
        totals = re.search(r"^(?:totals|summary): (\d+)", out.read_text(), re.M)
        assert totals, "callgrind wrote no totals"
        return int(totals.group(1))


def per_element(command: list[str], env: dict[str, str], n: int) -> float:
    """Instructions per element and step of an `--inner` command: its runs with 1 and 5 steps."""
    low, high = (callgrind_instructions([*command, str(steps)], env) for steps in (1, 5))
    return (high - low) / (4 * n)


def c_loop_per_element(program: str, env: dict[str, str], n: int) -> float:
    """The C loop runs 21 steps of its own: the difference between n and 2n elements (its set-up
    loop, a few instructions per element once, is counted in, 1/21 of it per step)."""
    low, high = (callgrind_instructions([program, str(size)], env) for size in (n, 2 * n))
    return (high - low) / (21 * n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1 << 23)
    parser.add_argument("--only", default=",".join(OPTIMIZERS))
    parser.add_argument("--torch-python", default=sys.executable,
                        help="a Python that imports torch (and optrs), for the torch rows")
    parser.add_argument("--impls", default="fused,foreach", help="torch's implementations to count")
    parser.add_argument("--inner", nargs=4, metavar=("IMPL", "NAME", "N", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        impl, name, n, steps = args.inner
        return inner(impl, name, int(n), int(steps))
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    env = {**os.environ, "OPTRS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2",
           "PYTHONHASHSEED": "0"}
    print(f"instructions per element and step, fp32, 1 x {args.n:,}, 1 thread, AVX2 paths (callgrind)")
    print("| optimizer | optrs | torch fused | torch foreach |\n| --- | ---: | ---: | ---: |")
    script = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory() as tmp:
        c_loop = Path(tmp) / "ref_adam"
        if shutil.which("gcc"):
            subprocess.run(["gcc", "-O3", "-march=x86-64-v3", "-fno-math-errno", "-fopenmp", str(YARDSTICK),
                            "-o", str(c_loop), "-lm"], check=True)
        for name in args.only.split(","):
            row = [per_element([sys.executable, script, "--inner", "optrs", name, str(args.n)], env, args.n)]
            for impl in ("fused", "foreach"):
                has = OPTIMIZERS[name][1] is not None and bool(args.torch_python) and impl in args.impls
                row.append(per_element([args.torch_python, script, "--inner", impl, name, str(args.n)], env, args.n)
                           if has else float("nan"))
            print(f"| {name} | " + " | ".join("-" if v != v else f"{v:.1f}" for v in row) + " |", flush=True)
        if c_loop.exists():
            print(f"\nC loop ref_adam (Adam, gcc -O3 -march=x86-64-v3): "
                  f"{c_loop_per_element(str(c_loop), env, args.n):.1f} instructions per element and step")


if __name__ == "__main__":
    main()
