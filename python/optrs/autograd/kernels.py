"""The heavy kernels behind the autograd layer's nn ops (`nn_ops`): the only place it computes convolutions,
pools, softmaxes, the losses, relu and the linear layers' products. All are the Rust core's
(``rust/core/src/nn``, bound in ``rust/py/src/nn``; GIL released, thread-count independent).

The contract (``CONTRACT``) was fixed before the kernels were written: float32 or float64 arrays
(one dtype per call), C-contiguous; int64 targets and indices; every function returns new arrays
and never writes its inputs. ``matmul(a, b, transpose_a, transpose_b)`` multiplies 2-D arrays on
the ``gemm`` crate and optrs's thread pool rather than NumPy's BLAS, whose own threads compete
with the pool's.
"""

from __future__ import annotations

from .._core import (
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    conv2d_backward,
    cross_entropy,
    cross_entropy_backward,
    log_softmax,
    log_softmax_backward,
    matmul,
    max_pool2d,
    max_pool2d_backward,
    nll_loss,
    nll_loss_backward,
    relu,
    relu_backward,
    softmax,
    softmax_backward,
)

CONTRACT = (
    "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "log_softmax", "log_softmax_backward", "softmax", "softmax_backward", "nll_loss", "nll_loss_backward",
    "cross_entropy", "cross_entropy_backward", "relu", "relu_backward",
)
# Every name of the contract is the Rust core's (the NumPy stand-ins that preceded them are gone).
NATIVE: frozenset[str] = frozenset(CONTRACT)

__all__ = [
    "CONTRACT", "NATIVE", "avg_pool2d", "avg_pool2d_backward", "conv2d", "conv2d_backward", "cross_entropy",
    "cross_entropy_backward", "log_softmax", "log_softmax_backward", "matmul", "max_pool2d",
    "max_pool2d_backward", "nll_loss", "nll_loss_backward", "relu", "relu_backward", "softmax", "softmax_backward",
]
