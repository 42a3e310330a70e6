"""``torch.autograd.profiler``'s path: the legacy ``profile`` and ``record_function`` of
`optrs.profiler.legacy`. Nothing in autograd imports this module (the profiler sits above
autograd and installs itself in ``optrs._plumbing.hooks``); it exists so that
``import optrs.autograd.profiler as profiler`` works where a torch script had torch's."""

from ..profiler.legacy import profile, record_function

__all__ = ["profile", "record_function"]
