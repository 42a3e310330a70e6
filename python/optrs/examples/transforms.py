"""The few ``torchvision.transforms`` that MNIST scripts use, for images held as NumPy arrays
(optrs has no PIL dependency): ``Compose``, ``ToTensor``, ``Normalize``, ``Lambda``.

    from optrs.examples import datasets, transforms   # where a script had torchvision's
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..autograd import Tensor
from ..errors import InvalidHyperparameterError, ParamDTypeError

__all__ = ["Compose", "ToTensor", "Normalize", "Lambda"]


class Compose:
    """Applies ``transforms`` in order."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Any) -> Any:
        for transform in self.transforms:
            image = transform(image)
        return image

    def __repr__(self) -> str:
        return "Compose(" + "".join(f"\n    {t!r}" for t in self.transforms) + "\n)"


class ToTensor:
    """An (H, W) or (H, W, C) image array to a float32 (C, H, W) Tensor; uint8 pixels are scaled
    to [0, 1] as torchvision's ``ToTensor`` scales them, other dtypes are kept as values."""

    def __call__(self, image: Any) -> Tensor:
        array = np.asarray(image)
        if array.ndim not in (2, 3):
            raise ParamDTypeError(f"ToTensor expects an (H, W) or (H, W, C) image array, got shape {array.shape}")
        chw = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
        values = chw.astype(np.float32) / np.float32(255) if array.dtype == np.uint8 else chw.astype(np.float32)
        return Tensor(np.ascontiguousarray(values))

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """``(image - mean[c]) / std[c]`` per channel of a (C, H, W) Tensor, as torchvision's."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> None:
        if any(s == 0 for s in std):
            raise InvalidHyperparameterError(f"std evaluated to zero after conversion to float32: {tuple(std)}")
        self.mean, self.std, self.inplace = tuple(mean), tuple(std), inplace

    def __call__(self, image: Tensor) -> Tensor:
        data = image.data
        mean = np.asarray(self.mean, data.dtype).reshape(-1, 1, 1)
        std = np.asarray(self.std, data.dtype).reshape(-1, 1, 1)
        return Tensor((data - mean) / std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Lambda:
    """Applies a user function."""

    def __init__(self, lambd: Callable[[Any], Any]) -> None:
        self.lambd = lambd

    def __call__(self, image: Any) -> Any:
        return self.lambd(image)

    def __repr__(self) -> str:
        return "Lambda()"
