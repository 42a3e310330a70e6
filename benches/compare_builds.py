"""Step times of two optrs builds, in rounds that alternate between them, to compare a change.

Install each build's wheel into its own directory (``pip install --no-deps --target DIR wheel``),
then ``python benches/compare_builds.py BEFORE_DIR AFTER_DIR --level avx512 --rounds 15``. Each
build runs in a worker process of its own (both are ``optrs``); the driver asks them in turn for a
round of steps, so drifting load on a shared machine hits both alike, and reports each case's
median time and the median of the per-round after/before ratios. Cases: Adam, RMSprop and SGD
(momentum 0.9, weight decay 1e-4) on 1 x 16,777,216 and 200 x 4,096 float32 params; `--optimizers
LAMB,Adafactor` names others (any `optrs.optim` class, with its defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

WORKER = r"""
import json, sys, time
import numpy as np, optrs
level = sys.argv[1]
optrs._core.force_simd_level(None if level == "detected" else level)
rng = np.random.default_rng(0)
OPTIONS = {"Adam": (optrs.optim.Adam, dict(lr=1e-3)), "RMSprop": (optrs.optim.RMSprop, dict(lr=1e-3)),
           "SGD": (optrs.optim.SGD, dict(lr=1e-3, momentum=0.9, weight_decay=1e-4))}
made = {}
for line in sys.stdin:
    name, size, count, steps = line.split()
    if (name, size, count) not in made:
        shape = (int(size) // 1024, 1024) if int(size) >= 1 << 20 and name == "Adafactor" else (int(size),)
        params = [rng.standard_normal(shape).astype(np.float32) for _ in range(int(count))]
        grads = [rng.standard_normal(shape).astype(np.float32) for _ in range(int(count))]
        cls, options = OPTIONS.get(name, (getattr(optrs.optim, name), {}))
        opt = cls(params, **options)
        opt.step(grads)
        made[(name, size, count)] = opt, grads
    opt, grads = made[(name, size, count)]
    times = []
    for _ in range(int(steps)):
        start = time.perf_counter()
        opt.step(grads)
        times.append(time.perf_counter() - start)
    print(json.dumps(sorted(times)[len(times) // 2]), flush=True)
"""

SIZES = [(16_777_216, 1, 10), (4096, 200, 50)]  # elements per param, params, steps per round


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", help="directory holding the first build's optrs package")
    parser.add_argument("after", help="directory holding the second build's optrs package")
    parser.add_argument("--level", default="detected", help="baseline, avx2, avx512 or detected")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--optimizers", default="Adam,RMSprop,SGD", help="comma-separated optrs.optim names")
    args = parser.parse_args()
    names = args.optimizers.split(",")
    workers = {}
    for build, path in (("before", args.before), ("after", args.after)):
        env = dict(os.environ, PYTHONPATH=os.path.abspath(path))
        workers[build] = subprocess.Popen([sys.executable, "-c", WORKER, args.level], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, env=env)
    cases = [(name, size, count, steps) for size, count, steps in SIZES for name in names]
    if args.level == "baseline":
        cases = [(n, s, c, max(3, k // 3)) for n, s, c, k in cases]
    times: dict[tuple[str, int, int], dict[str, list[float]]] = {}
    for round_index in range(args.rounds):
        for name, size, count, steps in cases:
            order = ("before", "after") if round_index % 2 == 0 else ("after", "before")
            for build in order:
                worker = workers[build]
                assert worker.stdin is not None and worker.stdout is not None
                worker.stdin.write(f"{name} {size} {count} {steps}\n")
                worker.stdin.flush()
                times.setdefault((name, size, count), {}).setdefault(build, []).append(
                    json.loads(worker.stdout.readline()))
    for worker in workers.values():
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait()
    print(f"level={args.level} rounds={args.rounds}")
    for (name, size, count), runs in times.items():
        before, after = statistics.median(runs["before"]), statistics.median(runs["after"])
        ratio = statistics.median(a / b for a, b in zip(runs["after"], runs["before"]))
        print(f"  {name:8s} {count} x {size:<11,} before {before * 1e3:9.3f} ms  after {after * 1e3:9.3f} ms  "
              f"after/before {ratio:.3f}")


if __name__ == "__main__":
    main()
