"""The ``optrs`` command: ``optrs train`` (the MNIST CNN example), ``optrs bench`` (the benchmark
tables) and ``optrs info`` (version, build, SIMD level, threads, GPU adapters)."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence

import numpy as np

import optrs

BENCHES = ("adam", "cnn", "optim")


def info() -> int:
    """What this installation is and runs on: the build (version, revision, compiler, flags) and the
    machine (SIMD level picked at run time, threads, GPU adapters)."""
    from optrs.benchmarks.adam import transparent_hugepages

    build = dict(optrs._core.build_info())
    forced = os.environ.get("OPTRS_SIMD")
    rows = [
        ("optrs", f"{optrs.__version__} ({optrs.__file__})"),
        ("git revision", build["git_revision"]),
        ("rustc", build["rustc"]),
        ("profile", build["profile"]),
        ("target", build["target"]),
        ("target features", f"{build['target_features']} (compiled in; wider SIMD: {build['simd_dispatch']})"),
        ("RUSTFLAGS", build["rustflags"]),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("numpy", np.__version__),
        ("platform", f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"),
        ("huge pages", f"transparent huge pages: {transparent_hugepages()} (NumPy asks for them on arrays "
                       "of 4 MB and up; big steps run about 8% faster with them)"),
        ("freed memory", optrs._core.freed_memory_policy()),
        ("SIMD level", optrs.simd_level() + (f" (OPTRS_SIMD={forced})" if forced else "")),
        ("threads", f"{optrs.get_num_threads()} (OPTRS_NUM_THREADS={os.environ.get('OPTRS_NUM_THREADS', 'unset')})"),
        ("GPU adapters", gpu_adapters()),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


def gpu_adapters() -> str:
    # The wgpu backend (rust/gpu) is a cargo feature this build may lack; report what is known.
    adapters = getattr(optrs._core, "gpu_adapters", None)
    if adapters is None:
        return "none: this build has no GPU backend (the wgpu feature is not compiled in)"
    found = adapters()
    return ", ".join(found) if found else "none found"


def bench(which: str, rest: list[str]) -> int:
    from optrs.benchmarks import adam, cnn, optim

    status = 0
    for name in BENCHES if which == "all" else (which,):
        print(f"== optrs bench {name} ==", flush=True)
        status |= {"adam": adam.main, "cnn": cnn.main, "optim": optim.main}[name](rest)
    return status


def train(rest: list[str]) -> int:
    from optrs.examples import mnist

    mnist.main(rest, prog="optrs train")  # a user error exits with status 2 (SystemExit)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="optrs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,bench,info}")
    commands.add_parser("train", add_help=False,
                        help="train the seed's MNIST CNN (try optrs train --help)")
    bench_parser = commands.add_parser("bench", help="print the benchmark tables (optrs vs NumPy, torch, the machine)")
    bench_parser.add_argument("which", nargs="?", choices=[*BENCHES, "all"], default="all",
                              help="adam: Adam vs the memory bandwidth; cnn: CNN training vs torch; "
                                   "optim: every optimizer vs torch and the yardsticks")
    commands.add_parser("info", help="version, build (revision, compiler, flags), SIMD level, threads and GPU adapters")
    args, rest = parser.parse_known_args(argv)
    if args.command == "train":
        return train(rest)
    if args.command == "bench":
        return bench(args.which, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return info()


if __name__ == "__main__":
    sys.exit(main())
