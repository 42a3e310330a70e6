"""`optrs.profiler`: where a training step's time goes, with ``torch.profiler``'s shape.

    from optrs.profiler import profile, record_function

    with profile(profile_memory=True) as prof:
        with record_function("train_step"):
            loss = F.nll_loss(model(x), y)
            loss.backward()
            opt.step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")     # chrome://tracing or ui.perfetto.dev

What is recorded, each as a `FunctionEvent` nested in the event open on its thread:

- every autograd op's forward, named by its ``Function`` class (``Conv2d``, ``Add``), and its
  backward, named by the node (``Conv2dBackward``); category ``cpu_op``;
- every Rust kernel call, named by its ``optrs._core`` function (``_core.conv2d``,
  ``_core.matmul``, ``_core.AdamEngine.step``); category ``kernel``. The kernels time themselves
  in Rust, around the section that runs without the GIL, so a kernel's time is the kernel alone
  and an op's self time is its Python overhead (argument checks, NumPy glue, the graph);
- optimizer steps and ``zero_grad`` calls, as torch names them (``Optimizer.step#Adam.step``),
  and ``record_function`` regions; category ``user_annotation``.

Times are CPU wall-clock microseconds on one clock (``_core.profiler_now_ns``): an event's total
is its duration, its self time the total less its children's. The "Kernel (Rust)" column is the
time of the kernels inside an event (a kernel's own row: its time). With
``profile_memory=True``, "bytes allocated" (``self_cpu_memory_usage``) is, for an op's forward,
the ``nbytes`` of the arrays it returns that are not views of its inputs (a reshape or transpose
allocates nothing), for a backward node likewise of the gradients it returns against the
gradients it received; ``cpu_memory_usage`` adds the events nested inside. Temporaries freed
before the op returns, and kernels on their own, are not counted (their outputs are their op's).

While no profiler records, the hooks cost one global check per op, node and step, and the
kernels one relaxed atomic load. One profiler records at a time (every thread).
"""

from ._events import EventList, FunctionEvent, FunctionEventAvg
from .profiler import ProfilerAction, ProfilerActivity, profile, record_function, schedule, supported_activities

__all__ = [
    "EventList",
    "FunctionEvent",
    "FunctionEventAvg",
    "ProfilerAction",
    "ProfilerActivity",
    "profile",
    "record_function",
    "schedule",
    "supported_activities",
]
