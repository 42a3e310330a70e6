"""Every optimizer, side by side with torch and the machine's yardsticks, in one run.

    optrs bench optim [--quick] [--threads N] [--sets big,mixed,small,tiny] [--only Adam,SGD]
                      [--markdown PATH] [--plot PATH] [--json PATH]

Sets: big (1 x 16,777,216), mixed (a transformer-like list: 8 layers of d_model 442, 81 tensors,
18.8 M elements), small (200 x 4,096) and tiny (1 x 10). Each optimizer runs with torch's defaults
(SGD with momentum 0.9) on fp32. Its implementations (optrs; torch fused, foreach and
single-tensor loop where torch has them) and, on big and mixed, the C loop ref_adam over the
same number of elements are timed in rounds that take turns, because these machines drift; each
figure is a median over the rounds.

GB/s counts the rule's bytes per element: what the update must read and write at the least (fp32
Adam: p, g, m, v read and p, m, v written, 28 B). "x best" divides the time by the best-measured
time for those bytes: the faster of the C loop and torch's fused Adam, per byte, on the same set.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import optrs

from .adam import (
    YARDSTICK_ERRORS,
    Yardsticks,
    cpu_model,
    import_torch,
    step_times_ns,
    transparent_hugepages,
    yardstick_error,
)

Stepper = Callable[[], Any]


def transformer_shapes(layers: int = 8, d: int = 442) -> list[tuple[int, ...]]:
    """A pre-norm transformer's weights without embeddings: per layer the fused QKV and output
    projections, the two FFN matrices (4 d), their biases and two norms' weights; then a final norm."""
    shapes: list[tuple[int, ...]] = []
    for _ in range(layers):
        shapes += [(3 * d, d), (3 * d,), (d, d), (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,), (d,)]
    return shapes + [(d,)]


SETS: dict[str, list[tuple[int, ...]]] = {
    "big": [(16_777_216,)],
    "mixed": transformer_shapes(),
    "small": [(4_096,)] * 200,
    "tiny": [(10,)],
}
SET_LABELS = {"big": "1 x 16,777,216", "mixed": "81 tensors, 18.8 M", "small": "200 x 4,096", "tiny": "1 x 10"}
BANDWIDTH_SETS = ("big", "mixed")  # memory bound: judged per byte; small and tiny by time


@dataclass(frozen=True)
class Spec:
    name: str
    options: dict[str, Any]
    bytes_per_element: int  # the least the update reads and writes, fp32
    torch_flags: tuple[str, ...] = ()  # torch's implementations: "fused", "foreach", "loop"

    def bytes(self, shapes: Sequence[tuple[int, ...]]) -> int:
        if self.name == "Adafactor":
            # The update is clipped by its RMS over the tensor, so one pass must finish before the
            # update pass. Factored (2-D and up): g for the row/column sums, g for the RMS, then p and
            # g read and p written (20 B). Unfactored: g and v read, v written (with the RMS sums),
            # then p, g, v read and p written (28 B).
            return sum(int(np.prod(s)) * (20 if len(s) >= 2 else 28) for s in shapes)
        return sum(int(np.prod(s)) for s in shapes) * self.bytes_per_element


ALL_TORCH = ("fused", "foreach", "loop")
SPECS = [
    Spec("SGD", {"lr": 1e-3, "momentum": 0.9}, 20, ALL_TORCH),
    Spec("Adagrad", {}, 20, ALL_TORCH),
    Spec("Adam", {}, 28, ALL_TORCH),
    Spec("AdamW", {}, 28, ALL_TORCH),
    Spec("Adamax", {}, 28, ("foreach", "loop")),
    Spec("NAdam", {}, 28, ("foreach", "loop")),
    Spec("RAdam", {}, 28, ("foreach", "loop")),
    Spec("Adadelta", {}, 28, ("foreach", "loop")),
    Spec("RMSprop", {}, 20, ("foreach", "loop")),
    Spec("Rprop", {}, 28, ("foreach", "loop")),
    Spec("ASGD", {}, 20, ("foreach", "loop")),
    Spec("Adafactor", {}, 28, ("foreach", "loop")),
    # Beyond torch: no torch rows. LAMB needs each tensor's norms before it can write: two passes.
    Spec("Lion", {}, 20),
    Spec("ADOPT", {}, 28),
    Spec("LAMB", {}, 40),
    Spec("ScheduleFreeAdamW", {}, 28),
]


def arrays(shapes: Sequence[tuple[int, ...]], seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    return params, grads


def optrs_stepper(spec: Spec, shapes: Sequence[tuple[int, ...]]) -> Stepper:
    params, grads = arrays(shapes)
    opt = getattr(optrs.optim, spec.name)(params, **spec.options)
    if hasattr(opt, "train"):  # ScheduleFreeAdamW starts in eval mode, as its authors' optimizer does
        opt.train()
    return functools.partial(opt.step, grads)  # no extra Python frame in the timed call


def torch_stepper(torch: Any, spec: Spec, flavour: str, shapes: Sequence[tuple[int, ...]]) -> Stepper:
    params, grads = arrays(shapes)
    tensors = [torch.from_numpy(p).requires_grad_() for p in params]
    for t, g in zip(tensors, grads):
        t.grad = torch.from_numpy(g)
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "loop": {"foreach": False}}[flavour]
    step: Stepper = getattr(torch.optim, spec.name)(tensors, **spec.options, **flags).step
    return step


def median_ns(step: Stepper, budget_s: float) -> float:
    """The median ns of a step over the budget (adam.py's sampling: warm-up, short steps batched)."""
    return statistics.median(step_times_ns(step, budget_s, max_samples=2_000))


@dataclass
class Row:
    set: str
    optimizer: str
    impl: str
    elements: int
    bytes: int
    ns: float
    ns_per_element: float = field(init=False)
    GBps: float = field(init=False)
    x_best: float | None = None  # time / best-measured time for these bytes (big, mixed)
    x_torch: dict[str, float] = field(default_factory=dict)  # torch flavour's time / optrs's time

    def __post_init__(self) -> None:
        self.ns_per_element = self.ns / self.elements
        self.GBps = self.bytes / self.ns


def measure_set(name: str, specs: Sequence[Spec], torch: Any, ref: Yardsticks | None, rounds: int,
                budget_s: float, notes: list[str]) -> tuple[list[Row], float | None]:
    """Every spec's implementations on one set, in alternating rounds; returns the rows and the
    best-measured ns per byte (None on small and tiny sets)."""
    shapes = SETS[name]
    elements = sum(int(np.prod(s)) for s in shapes)
    rows: list[Row] = []
    ref_ms: list[float] = []
    torch_adam_ns_per_byte: float | None = None
    for spec in specs:
        steppers: dict[str, Stepper] = {"optrs": optrs_stepper(spec, shapes)}
        for flavour in spec.torch_flags if torch is not None else ():
            try:
                steppers[f"torch {flavour}"] = torch_stepper(torch, spec, flavour, shapes)
            except (RuntimeError, ValueError, TypeError) as e:
                notes.append(f"torch {spec.name} {flavour} skipped on {name}: {e}")
        samples: dict[str, list[float]] = {impl: [] for impl in steppers}
        for _ in range(rounds):
            for impl, step in steppers.items():
                samples[impl].append(median_ns(step, budget_s / rounds))
            if ref is not None and name in BANDWIDTH_SETS:
                try:
                    ref_ms.append(ref.ref_adam_ms(elements))
                except YARDSTICK_ERRORS as e:
                    ref = None
                    notes.append(yardstick_error(e))
        del steppers
        gc.collect()
        nbytes = spec.bytes(shapes)
        spec_rows = [Row(name, spec.name, impl, elements, nbytes, statistics.median(ns))
                     for impl, ns in samples.items()]
        optrs_ns = spec_rows[0].ns
        spec_rows[0].x_torch = {r.impl: r.ns / optrs_ns for r in spec_rows[1:]}
        if spec.name == "Adam" and "torch fused" in samples:
            torch_adam_ns_per_byte = statistics.median(samples["torch fused"]) / nbytes
        rows += spec_rows
        print(f"  measured {name}: {spec.name}", file=sys.stderr, flush=True)
    if name not in BANDWIDTH_SETS:
        return rows, None
    candidates = [x for x in (torch_adam_ns_per_byte,
                              statistics.median(ref_ms) * 1e6 / (28 * elements) if ref_ms else None) if x]
    best = min(candidates) if candidates else None
    if ref_ms:
        rows.append(Row(name, "Adam", "C loop (ref_adam)", elements, 28 * elements, statistics.median(ref_ms) * 1e6))
    for row in rows:
        row.x_best = None if best is None else row.ns / (best * row.bytes)
    return rows, best


def markdown(rows: Sequence[Row], host: dict[str, Any]) -> str:
    lines = [f"Host: {host['cpu']}, SIMD level {host['simd_level']}, {host['threads']} threads, "
             f"STREAM triad {host.get('stream_triad_GBps', 0):.1f} GB/s, transparent huge pages "
             f"{host.get('transparent_hugepages', 'unknown')}; optrs {host['optrs']}, "
             f"torch {host['torch'] or 'not installed'}.", ""]
    flavours = ["torch fused", "torch foreach", "torch loop"]
    header = ["set", "optimizer", "optrs", "ns/elem", "GB/s", "x best", *(f"x {f}" for f in flavours)]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in flavours) + " |")
    for r in rows:
        if r.impl != "optrs":
            continue
        time = f"{r.ns / 1e3:.2f} us" if r.set == "tiny" else f"{r.ns / 1e6:.3f} ms"
        best = "-" if r.x_best is None else f"{r.x_best:.2f}"
        ratios = " | ".join(f"{r.x_torch[f]:.2f}" if f in r.x_torch else "-" for f in flavours)
        lines.append(f"| {r.set} | {r.optimizer} | {time} | {r.ns_per_element:.3f} | {r.GBps:.1f} | {best} "
                     f"| {ratios} |")
    lines += ["", "x best: time over the best-measured time for the rule's bytes (lower is better; 1.00 is the "
              "faster of the C loop and torch's fused Adam). x torch: torch's time over optrs's (higher: optrs "
              "is faster)."]
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[Row], path: Path, host: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = [s for s in SETS if any(r.set == s and r.impl == "optrs" for r in rows)]
    fig, axes = plt.subplots(len(sets), 1, figsize=(12, 3.2 * len(sets)), squeeze=False)
    for ax, name in zip(axes[:, 0], sets):
        ours = [r for r in rows if r.set == name and r.impl == "optrs"]
        labels = [r.optimizer for r in ours]
        x = np.arange(len(ours))
        flavours = ["optrs", "torch fused", "torch foreach", "torch loop"]
        width = 0.2
        for i, flavour in enumerate(flavours):
            values = [1.0 if flavour == "optrs" else r.x_torch.get(flavour, np.nan) for r in ours]
            ax.bar(x + (i - 1.5) * width, values, width, label=flavour)
        ax.axhline(1.0, color="black", linewidth=0.6)
        ax.set_yscale("log")
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("time / optrs time")
        ax.set_title(f"{name} ({SET_LABELS[name]})", fontsize=10)
        ax.legend(fontsize=7, ncol=4)
    fig.suptitle(f"{host['cpu']}, {host['simd_level']}, {host['threads']} threads", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="optrs bench optim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 rounds and short budgets (a smoke run)")
    parser.add_argument("--threads", type=int, default=optrs.get_num_threads(),
                        help="threads for optrs, torch and the C loop (default: optrs's default)")
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)}")
    parser.add_argument("--only", help="comma-separated optimizer names (default: all)")
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("--plot", type=Path, help="write a bar chart (PNG, needs matplotlib) here")
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args(argv)

    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    specs = SPECS
    if args.only:
        wanted = {n.strip().lower() for n in args.only.split(",")}
        specs = [s for s in SPECS if s.name.lower() in wanted]
        if len(specs) != len(wanted):
            names = ", ".join(s.name for s in SPECS)
            parser.error(f"--only names optimizers this bench does not run; choose from {names}")
    optrs.set_num_threads(args.threads)
    notes: list[str] = []
    torch = import_torch()
    if torch is None:
        notes.append("torch is not importable: no torch columns")
    else:
        torch.set_num_threads(args.threads)
    host: dict[str, Any] = {"cpu": cpu_model(), "cores": os.cpu_count(), "simd_level": optrs.simd_level(),
                            "threads": args.threads, "optrs": optrs.__version__,
                            "torch": None if torch is None else torch.__version__,
                            "transparent_hugepages": transparent_hugepages(),
                            "load_average": round(os.getloadavg()[0], 2)}
    ref: Yardsticks | None = None
    try:
        ref = Yardsticks(args.threads)
        host.update(ref.stream_GBps())
    except YARDSTICK_ERRORS as e:
        notes.append(yardstick_error(e))
    print("host: " + ", ".join(f"{k}={v}" for k, v in host.items()), flush=True)

    rounds, budget_s = (2, 0.3) if args.quick else (5, 2.0)
    rows: list[Row] = []
    for name in sets:
        set_rows, best = measure_set(name, specs, torch, ref, rounds, budget_s, notes)
        rows += set_rows
        if best is not None:
            host[f"best_ns_per_byte_{name}"] = best
    table = markdown(rows, host)
    print("\n" + table)
    for note in notes:
        print(f"note: {note}")
    if args.markdown:
        args.markdown.write_text(table)
    if args.plot:
        plot(rows, args.plot, host)
    if args.json:
        args.json.write_text(json.dumps({"host": host, "notes": notes, "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
