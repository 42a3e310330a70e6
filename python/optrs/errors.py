"""The exceptions optrs raises. Each also inherits the builtin a NumPy or torch user would catch,
so ``except ValueError`` and ``except optrs.OptrsError`` both work."""

from __future__ import annotations


class OptrsError(Exception):
    """Base class of every error optrs raises on bad input."""


class InvalidParamError(OptrsError, ValueError):
    """A param, grad or state array that cannot be used as it is: wrong shape, not C-contiguous,
    read-only, sharing memory with another written array, or the wrong number of them; likewise
    an input to a tensor op or layer (shapes that do not match, targets out of range)."""


class ParamDTypeError(OptrsError, TypeError):
    """Not a NumPy array, or not of the dtype it must have (float32 or float64, as its param)."""


class InvalidHyperparameterError(OptrsError, ValueError):
    """A hyperparameter outside its domain: NaN, inf, negative, betas outside [0, 1) ..."""


class AutogradError(OptrsError, RuntimeError):
    """A misuse of the autograd graph: backward on a tensor that does not require grad, on a
    non-scalar without a gradient, a second time through freed buffers, an in-place change of a
    tensor the graph needs. A ``RuntimeError``, as torch raises."""


class DeviceError(OptrsError, RuntimeError):
    """A device optrs does not have: it computes on the CPU, so moving a tensor or module to
    ``"cuda"``, ``"mps"`` or any other device raises this (a ``RuntimeError``, as torch's "Torch
    not compiled with CUDA enabled"); likewise a malformed device string."""


class NotSupportedError(OptrsError, NotImplementedError):
    """A torch feature optrs does not have: sparse layouts, ``out=`` arguments, ... A
    ``NotImplementedError`` (so a ``RuntimeError``, as torch raises for what a build lacks)."""


class GradcheckError(AutogradError):
    """``optrs.autograd.gradcheck`` found analytical and numerical gradients that disagree."""


class AnomalyError(AutogradError):
    """A NaN or infinite value: produced by an op while ``optrs.autograd.detect_anomaly()`` is on
    (the message names the op and shows where it was created), or found by
    ``optrs.utils.check_finite``. A ``RuntimeError``, as torch's anomaly mode raises."""


class ScalarConversionError(OptrsError, RuntimeError, ValueError):
    """A tensor of no or several elements used as one value: ``bool(t)``, ``t.item()``,
    ``float(t)``. Both a ``RuntimeError`` (torch's ``bool`` and ``item``) and a ``ValueError``
    (torch's ``float``/``int``, and NumPy's truth value of an array)."""


class CheckpointError(OptrsError, ValueError):
    """A file ``optrs.load`` cannot read as a checkpoint (truncated, corrupt, not a checkpoint, a
    newer format version, arrays missing), or a value ``optrs.save`` cannot store."""


class InternalError(OptrsError, RuntimeError):
    """A bug in optrs: a Rust kernel panicked. Arguments are checked before any kernel runs, so
    this should never happen; please report the call. The arrays the kernel was writing may be
    partly updated. A ``RuntimeError``, so ``except Exception`` catches it (pyo3's own
    ``PanicException`` is a ``BaseException``)."""


__all__ = ["OptrsError", "InvalidParamError", "ParamDTypeError", "InvalidHyperparameterError", "AutogradError",
           "DeviceError", "NotSupportedError", "GradcheckError", "AnomalyError", "ScalarConversionError",
           "CheckpointError", "InternalError"]
