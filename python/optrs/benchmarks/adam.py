"""Adam speed: optrs against plain NumPy, torch (fused and foreach) and a fused C loop, in one run.

    optrs bench adam [--quick] [--threads N] [--json PATH] [--check]

Cases: (a) one 16,777,216-element fp32 tensor (memory bound), (b) 200 tensors of 4,096 (fits
in L3: per-tensor overhead and threading), (c) one 10-element tensor (pure call overhead).
Every time is a median over many steps after a warm-up, read with time.perf_counter_ns; in cases
(a) and (b) the steps are timed in rounds that take turns with runs of the C loop.
The yardsticks (yardsticks/*.c next to this module, built here with gcc) say what the machine can do:
ref_adam is one fused OpenMP Adam pass over the same number of elements, stream its bandwidth.
"""

from __future__ import annotations

import argparse
import functools
import gc
import hashlib
import importlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import optrs

BYTES_PER_ELEMENT = 28  # fp32 Adam reads p, g, m, v and writes p, m, v
LR = 1e-3
CASES: dict[str, list[int]] = {"a": [16_777_216], "b": [4_096] * 200, "c": [10]}
CASE_LABELS = {"a": "(a) 1 x 16,777,216", "b": "(b) 200 x 4,096", "c": "(c) 1 x 10"}
REF_ELEMENTS = {"a": 16_777_216, "b": 819_200}  # ref_adam size that case (a)/(b) is compared with
MAX_VS_REF = {"a": 1.15, "b": 2.0}  # targets: optrs time / ref_adam time
MAX_SMALL_US = 3.0  # target: optrs step on case (c)
YARDSTICKS = Path(__file__).resolve().parent / "yardsticks"

Array = NDArray[np.float32]
Stepper = Callable[[], Any]


class NumpyAdam:
    """torch.optim.Adam's single-tensor formula (default options) written out in NumPy, in place.

    One scratch buffer per tensor, so a step allocates nothing; each line is the torch op it mirrors.
    """

    def __init__(self, params: Sequence[Array], lr: float = LR, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps, self.t = list(params), lr, betas, eps, 0
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.tmp = [np.empty_like(p) for p in self.params]

    def step(self, grads: Sequence[Array]) -> None:
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr / (1 - b1**self.t)
        bc2_sqrt = math.sqrt(1 - b2**self.t)
        # Python floats are NumPy "weak" scalars: fp32 arrays stay fp32.
        for p, g, m, v, tmp in zip(self.params, grads, self.m, self.v, self.tmp):
            np.subtract(g, m, out=tmp)  # m.lerp_(g, 1 - b1) = m + (1 - b1) * (g - m)
            tmp *= 1 - b1
            m += tmp
            v *= b2  # v.mul_(b2).addcmul_(g, g, value=1 - b2)
            np.multiply(g, g, out=tmp)
            tmp *= 1 - b2
            v += tmp
            np.sqrt(v, out=tmp)  # denom = (v.sqrt() / bc2_sqrt).add_(eps)
            tmp /= bc2_sqrt
            tmp += self.eps
            np.divide(m, tmp, out=tmp)  # p.addcdiv_(m, denom, value=-step_size)
            tmp *= -step_size
            p += tmp


def make_arrays(sizes: Sequence[int], seed: int = 0) -> tuple[list[Array], list[Array]]:
    """Params and grads (standard normal: no denormals in m and v to slow anyone down)."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(n, dtype=np.float32) for n in sizes]
    grads = [rng.standard_normal(n, dtype=np.float32) for n in sizes]
    return params, grads


# partial(bound method, args) keeps the timed call free of an extra Python frame, which case (c) would see.
def optrs_adam(sizes: Sequence[int]) -> Stepper:
    params, grads = make_arrays(sizes)
    return functools.partial(optrs.optim.Adam(params, lr=LR).step, grads)


def numpy_adam(sizes: Sequence[int]) -> Stepper:
    params, grads = make_arrays(sizes)
    return functools.partial(NumpyAdam(params).step, grads)


def import_torch() -> Any:
    """torch, or None: it is optional (its rows are left out with a note), and imported only when
    the harness runs, so that tests/test_bench_adam.py can import this file cheaply."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def torch_adam(torch: Any, **flags: bool) -> Callable[[Sequence[int]], Stepper]:
    def make(sizes: Sequence[int]) -> Stepper:
        params, grads = make_arrays(sizes)
        tensors = [torch.from_numpy(p).requires_grad_() for p in params]
        for t, g in zip(tensors, grads):
            t.grad = torch.from_numpy(g)
        step: Stepper = torch.optim.Adam(tensors, lr=LR, **flags).step
        return step

    return make


def step_times_ns(step: Stepper, budget_s: float, max_samples: int) -> list[float]:
    """Samples of ns per step, after a warm-up (page faults, caches, thread pools, torch's lazy state)."""
    start = time.perf_counter_ns()
    warm = 0
    while warm < 5 or time.perf_counter_ns() - start < budget_s * 0.1e9:
        step()
        warm += 1
    per_step = (time.perf_counter_ns() - start) / warm
    # Batch short steps so that the timer's own ~50 ns stays small next to each sample.
    inner = max(1, int(100_000 // per_step))
    samples = int(min(max_samples, max(11, budget_s * 1e9 / (inner * per_step))))
    times = []
    gc.disable()  # a collection inside a sample would be noise, not the optimizer's cost
    try:
        for _ in range(samples):
            t0 = time.perf_counter_ns()
            for _ in range(inner):
                step()
            times.append((time.perf_counter_ns() - t0) / inner)
    finally:
        gc.enable()
    return times


# -- yardsticks ----------------------------------------------------------------------------------


class Yardsticks:
    """The C programs of yardsticks/, built with gcc once per source version and machine."""

    def __init__(self, threads: int) -> None:
        self.env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        self.ref_adam, self.stream = self.build("ref_adam"), self.build("stream")

    @staticmethod
    def build(name: str) -> Path:
        source = YARDSTICKS / f"{name}.c"
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
        exe = Path(tempfile.gettempdir()) / f"optrs-bench-{os.getuid()}" / f"{name}-{digest}-{platform.node()}"
        if not exe.exists():
            exe.parent.mkdir(parents=True, exist_ok=True)
            # -fno-math-errno lets gcc vectorise sqrtf; without it ref_adam is ~8x slower.
            subprocess.run(["gcc", "-O3", "-march=native", "-fno-math-errno", "-fopenmp", str(source),
                            "-o", str(exe), "-lm"], check=True, capture_output=True, text=True)
        return exe

    def run(self, *args: str) -> str:
        return subprocess.run(args, env=self.env, check=True, capture_output=True, text=True).stdout

    def ref_adam_ms(self, elements: int) -> float:
        """One run: the median of its 21 steps."""
        return float(self.run(str(self.ref_adam), str(elements)))

    def stream_GBps(self) -> dict[str, float]:
        fields = dict(item.split("=") for item in self.run(str(self.stream)).split())
        return {"stream_copy_GBps": float(fields["copy_GBps"]), "stream_triad_GBps": float(fields["triad_GBps"])}


def yardstick_error(e: Exception) -> str:
    detail = getattr(e, "stderr", None) or e
    return f"yardsticks failed, continuing without them: {str(detail).strip()[:300]}"


YARDSTICK_ERRORS = (subprocess.CalledProcessError, OSError, ValueError, KeyError)


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    impl: str
    elements: int
    tensors: int
    ns_per_step: float
    ns_per_element: float = field(init=False)
    GBps: float = field(init=False)
    ref_ns: float | None = None  # ref_adam on the same elements, run in turns with this row (median)
    vs_ref_adam: float | None = None  # median over the rounds of (this row's time / ref_adam's time)
    vs_triad: float | None = None  # GB/s / STREAM triad GB/s
    vs_optrs: float | None = None  # time / optrs time
    target: str | None = None  # e.g. "<= 1.15x C loop"
    passed: bool | None = None  # None: no target, or no yardstick to judge it by

    def __post_init__(self) -> None:
        self.ns_per_element = self.ns_per_step / self.elements
        self.GBps = BYTES_PER_ELEMENT * self.elements / self.ns_per_step


def transparent_hugepages() -> str:
    """The kernel's THP mode ("always", "madvise", "never"; "unknown" off Linux). NumPy asks for huge
    pages on arrays of 4 MB and up, which makes big memory-bound steps about 8% faster where the
    mode is "madvise" or "always" (README "Performance")."""
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return "unknown"
    chosen = [word.strip("[]") for word in text.split() if word.startswith("[")]
    return chosen[0] if chosen else "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="optrs bench adam", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run, ~20 s)")
    parser.add_argument("--threads", type=int, default=optrs.get_num_threads(),
                        help="threads for optrs, torch and the yardsticks (default: optrs's default)")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    optrs.set_num_threads(args.threads)
    budget_s, max_samples = (0.4, 300) if args.quick else (3.0, 5000)
    notes: list[str] = []
    impls: dict[str, Callable[[Sequence[int]], Stepper]] = {"optrs Adam": optrs_adam, "NumPy Adam": numpy_adam}
    torch = import_torch()
    if torch is None:
        notes.append("torch is not importable: no torch rows")
    else:
        torch.set_num_threads(args.threads)
        impls["torch Adam fused"] = torch_adam(torch, fused=True)
        impls["torch Adam foreach"] = torch_adam(torch, foreach=True)

    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "simd_level": optrs.simd_level(),
               "threads": args.threads, "python": platform.python_version(), "numpy": np.__version__,
               "optrs": optrs.__version__, "torch": torch.__version__ if torch is not None else None,
               "transparent_hugepages": transparent_hugepages(),
               "load_average": round(os.getloadavg()[0], 2)}  # other work on the machine skews everything
    print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()), flush=True)

    yard: dict[str, float] = {}
    ref: Yardsticks | None = None
    if shutil.which("gcc") is None:
        notes.append("gcc not found: no yardsticks (ref_adam, STREAM)")
    else:
        try:
            ref = Yardsticks(args.threads)
            yard.update(ref.stream_GBps())
        except YARDSTICK_ERRORS as e:
            ref = None
            notes.append(yardstick_error(e))
    rounds = 2 if args.quick else 5

    rows: list[Row] = []
    for case, sizes in CASES.items():
        first, all_ref_ms = len(rows), []
        for name, make in impls.items():
            try:
                step = make(sizes)
            except (RuntimeError, ValueError, TypeError) as e:  # e.g. a torch without CPU fused Adam
                notes.append(f"{name} skipped on {case}: {e}")
                continue
            # This machine's memory bandwidth drifts by up to 2x within minutes, and other work
            # (another VM, kdamond) slows a 2-thread OpenMP loop up to 40x while it has a core. So
            # each row is timed in rounds that take turns with a run of the C loop on the same
            # elements, and its ratio to the C loop is the median of the rounds' ratios.
            times: list[float] = []
            rounds_ns: list[float] = []
            ref_ms: list[float] = []
            turns = rounds if ref is not None and case in REF_ELEMENTS else 1
            for _ in range(turns):
                if ref is not None and case in REF_ELEMENTS:
                    try:
                        ref_ms.append(ref.ref_adam_ms(REF_ELEMENTS[case]))
                    except YARDSTICK_ERRORS as e:
                        ref = None
                        notes.append(yardstick_error(e))
                samples = step_times_ns(step, budget_s / turns, max_samples // turns)
                times += samples
                rounds_ns.append(statistics.median(samples))
            del step  # free this case's arrays before the next implementation allocates its own
            row = Row(case, name, sum(sizes), len(sizes), statistics.median(times))
            if ref_ms and len(ref_ms) == len(rounds_ns):
                row.ref_ns = statistics.median(ref_ms) * 1e6
                row.vs_ref_adam = statistics.median(t / (r * 1e6) for t, r in zip(rounds_ns, ref_ms))
            rows.append(row)
            all_ref_ms += ref_ms
            print(f"  measured {CASE_LABELS[case]}: {name}", file=sys.stderr, flush=True)
        if all_ref_ms:
            key = f"ref_adam_{REF_ELEMENTS[case]}_ms"
            yard[key] = statistics.median(all_ref_ms)
            rows.insert(first, Row(case, "ref_adam (C, OpenMP)", REF_ELEMENTS[case], 1, yard[key] * 1e6,
                                   ref_ns=yard[key] * 1e6, vs_ref_adam=1.0))
        judge(case, rows[first:], yard.get("stream_triad_GBps"))

    if yard:
        print("yardsticks: " + ", ".join(f"{k}={v:.4g}" for k, v in yard.items()))
    print_table(rows)
    for note in notes:
        print(f"note: {note}")
    missed = [r for r in rows if r.passed is False]
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "yardsticks": yard, "quick": args.quick,
                                         "bytes_per_element": BYTES_PER_ELEMENT, "notes": notes,
                                         "results": [asdict(r) for r in rows]}, indent=2) + "\n")
    return 1 if args.check and missed else 0


def judge(case: str, rows: list[Row], triad: float | None) -> None:
    """Fills in a case's ratios and optrs's verdict."""
    optrs_ns = next((r.ns_per_step for r in rows if r.impl == "optrs Adam"), None)
    for row in rows:
        row.vs_optrs = None if optrs_ns is None else row.ns_per_step / optrs_ns
        if triad and case != "c":  # (c) is call overhead: bandwidth says nothing
            row.vs_triad = row.GBps / triad
        if row.impl != "optrs Adam":
            continue
        if case == "c":
            row.target, row.passed = f"< {MAX_SMALL_US:g} us/step", row.ns_per_step < MAX_SMALL_US * 1e3
        else:
            row.target = f"<= {MAX_VS_REF[case]:g}x C loop"
            row.passed = None if row.vs_ref_adam is None else row.vs_ref_adam <= MAX_VS_REF[case]


def print_table(rows: list[Row]) -> None:
    def fmt(x: float | None, spec: str, scale: float = 1.0) -> str:
        return "-" if x is None else format(x * scale, spec)

    header = (f"{'case':<20} {'implementation':<21} {'time/step':>11} {'ns/elem':>9} {'GB/s':>6} {'C loop':>9} "
              f"{'x C loop':>8} {'% triad':>7} {'x optrs':>7}  target")
    print("\n" + header + "\n" + "-" * len(header))
    for i, r in enumerate(rows):
        if i and r.case != rows[i - 1].case:
            print()
        small = r.case == "c"  # report microseconds where the step is call overhead
        unit, scale = (" us", 1e-3) if small else (" ms", 1e-6)
        verdict = "" if r.target is None else f"{r.target}: " + {True: "PASS", False: "MISS", None: "n/a"}[r.passed]
        ref = "-" if r.ref_ns is None else f"{r.ref_ns * scale:.3f}{unit}"
        print(f"{CASE_LABELS[r.case]:<20} {r.impl:<21} {fmt(r.ns_per_step, '.3f', scale) + unit:>11} "
              f"{r.ns_per_element:>9.3f} {r.GBps:>6.1f} {ref:>9} "
              f"{fmt(r.vs_ref_adam, '.2f'):>8} {fmt(r.vs_triad, '.0f', 100):>7} {fmt(r.vs_optrs, '.2f'):>7}  {verdict}")
    print(f"\nGB/s counts {BYTES_PER_ELEMENT} bytes/element. C loop: ref_adam on the same elements, run in turns "
          "with that row;\nx C loop: median of the per-turn time ratios; x optrs: time ratio (lower is faster); "
          "% triad: GB/s over STREAM triad.")


if __name__ == "__main__":
    sys.exit(main())
