"""What a torch run of the scripts here takes in place of torchvision (not installed): the optrs
MNIST Dataset's images and labels, with transforms that make torch tensors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from optrs.examples import datasets as _datasets


class Compose:
    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: Any) -> Any:
        for t in self.transforms:
            image = t(image)
        return image


class ToTensor:
    def __call__(self, image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image[None].astype(np.float32) / np.float32(255))


class Normalize:
    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean, self.std = torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean) / self.std


transforms = SimpleNamespace(Compose=Compose, ToTensor=ToTensor, Normalize=Normalize)
datasets = SimpleNamespace(MNIST=_datasets.MNIST)


def torch_source(path: str) -> str:
    """The script at ``path`` with its optrs imports swapped back to torch's."""
    lines = []
    for line in open(path).read().splitlines():
        if line.startswith("from optrs.examples import"):
            line = "from torch_shim import datasets, transforms"
        elif line.startswith(("import optrs", "from optrs")):
            line = line.replace("optrs", "torch").replace("import torch as torch", "import torch")
        lines.append(line)
    return "\n".join(lines) + "\n"
