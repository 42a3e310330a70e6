"""Shared plumbing: the leaf layer that every other Python layer may use and that uses none of them.

- `params`: what a "param" is to optim and the tools (an ndarray, or an object with an ndarray
  ``.data``), and the counter of ``.data`` replacements that lets optimizers skip re-reading params.
- `hooks`: the profiler's slot. Autograd and optim check it on each op and step; the profiler
  (a tool, higher up) installs its recorder there, so no lower layer imports the profiler.
"""
