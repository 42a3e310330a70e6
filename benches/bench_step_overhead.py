"""What a step costs beyond its arithmetic: Adam and SGD on 200 x 4,096 float32 params and on
1 x 10, timed with ``time.perf_counter_ns`` over many steps.

Compares builds of optrs in one run: each ``NAME=PATH`` puts ``PATH`` (a directory holding an
``optrs`` package, such as ``python`` of a checkout built with ``scripts/setup.sh``, or a
``pip install --target`` of a wheel) first on ``sys.path`` of a worker process. Rounds alternate
between the builds, so that drift in the machine's speed falls on all of them alike; the table
shows each case's median over the rounds (each round's figure is the best of a few repeats).

    .venv/bin/python benches/bench_step_overhead.py before=/tmp/base after=python --rounds 7

With no builds it times the optrs that ``import optrs`` finds. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = [("Adam", 200, 4096), ("SGD", 200, 4096), ("Adam", 1, 10), ("SGD", 1, 10)]


def worker(repeats: int) -> None:
    """Times every case with the optrs on sys.path and prints {case: [wall, cpu] ns per step} as
    JSON: ``perf_counter_ns``, and ``process_time_ns``, which leaves out the time the process
    waited for a CPU (on a shared machine, most of the noise)."""
    import numpy as np

    import optrs

    rng = np.random.default_rng(0)
    results = {}
    for name, count, size in CASES:
        params = [rng.standard_normal(size).astype(np.float32) for _ in range(count)]
        grads = [rng.standard_normal(size).astype(np.float32) * 1e-3 for _ in range(count)]
        opt = getattr(optrs.optim, name)(params, lr=1e-6)
        steps = max(50, 2_000_000 // (count * size))  # about 2M elements per repeat, >= 50 steps
        for _ in range(steps // 5):  # warm up
            opt.step(grads)
        wall = cpu = float("inf")
        for _ in range(repeats):
            start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
            for _ in range(steps):
                opt.step(grads)
            wall = min(wall, (time.perf_counter_ns() - start) / steps)
            cpu = min(cpu, (time.process_time_ns() - start_cpu) / steps)
        results[f"{name} {count}x{size}"] = [wall, cpu]
    results["simd"] = optrs.simd_level()  # type: ignore[assignment]
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", nargs="*", help="NAME=PATH: a directory holding the optrs package to time")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.repeats)
        return
    builds = dict(b.split("=", 1) for b in args.builds) or {"installed": ""}
    times: dict[str, dict[str, list[list[float]]]] = {name: {} for name in builds}
    simd = {}
    for round_ in range(args.rounds):
        for name, path in builds.items():
            env = dict(os.environ)
            if path:
                env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(path), env.get("PYTHONPATH", "")])
            out = subprocess.run([sys.executable, __file__, "--worker", "--repeats", str(args.repeats)],
                                 env=env, check=True, capture_output=True, text=True).stdout
            result = json.loads(out)
            simd[name] = result.pop("simd")
            for case, ns in result.items():
                times[name].setdefault(case, []).append(ns)
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    cases = [f"{n} {c}x{s}" for n, c, s in CASES]
    for clock, title in enumerate(["perf_counter_ns", "process_time_ns"]):
        print(f"{title}: ns per step, median over {args.rounds} rounds (each the best of {args.repeats})")
        print(f"{'case':<16}" + "".join(f"{name:>14}" for name in builds))
        for case in cases:
            row = "".join(f"{statistics.median(t[clock] for t in times[name][case]):>14,.0f}" for name in builds)
            print(f"{case:<16}{row}")
    print("simd: " + ", ".join(f"{name} {level}" for name, level in simd.items()))


if __name__ == "__main__":
    main()
