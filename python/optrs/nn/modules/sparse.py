"""`Embedding`."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ...autograd import grad_mode
from ...autograd.tensor import Tensor
from ...errors import InvalidHyperparameterError, InvalidParamError
from ...parameter import Parameter
from .. import functional as F
from .. import init
from ._util import float_dtype, positive
from .module import Module


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``, initialised from
    N(0, 1) (the ``padding_idx`` row zeroed, and left without gradient)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight: ArrayLike | None = None, _freeze: bool = False, device: Any = None,
                 dtype: DTypeLike | None = None) -> None:
        super().__init__()
        self.num_embeddings = positive("num_embeddings", num_embeddings)
        self.embedding_dim = positive("embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise InvalidHyperparameterError("padding_idx must be within num_embeddings")
            padding_idx %= num_embeddings
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(np.empty((num_embeddings, embedding_dim), float_dtype(dtype, device)),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            array = np.asarray(_weight.data if isinstance(_weight, Tensor) else _weight)
            if array.shape != (num_embeddings, embedding_dim):
                raise InvalidParamError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(array, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with grad_mode.no_grad():
                self.weight.data[self.padding_idx] = 0

    def forward(self, input: Tensor | ArrayLike) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor | ArrayLike, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        array = np.asarray(embeddings.data if isinstance(embeddings, Tensor) else embeddings)
        if array.ndim != 2:
            raise InvalidParamError("Embeddings parameter is expected to be 2-dimensional")
        return cls(array.shape[0], array.shape[1], padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=array, _freeze=freeze)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        return text


__all__ = ["Embedding"]
