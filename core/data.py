"""MNIST / Fashion-MNIST as whole-split uint8 tensors, and batches drawn from index permutations.

Holding a split as one (N, 1, 28, 28) uint8 tensor on the training device (47 MB for MNIST's
training set) replaces the usual DataLoader + PIL + ToTensor pipeline, whose per-image Python work
dominates an epoch of a small model on a CPU (see bench/train_speed.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch

from core import datasets, paths
from core.datasets import DATASETS  # noqa: F401  (re-exported: name -> DataSet record)

RAW_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


class DataMissingError(FileNotFoundError):
    """The data set is not under the data root and was not (or could not be) downloaded."""


def default_root() -> Path:
    """The data root: $DATA_DIR, else data/ in the project (core.paths)."""
    return paths.data_dir()


def class_names(name: str) -> list[str]:
    return list(datasets.get(name).class_names)


def is_available(name: str, root: str | os.PathLike | None = None) -> bool:
    """True when the data set can be read without a download: for torchvision's data sets, the four raw
    files (plain or .gz) under root/<folder>/raw; a data set with its own loader is always available."""
    ds = datasets.get(name)
    if ds.loader is not None:
        return True
    raw = Path(root or default_root()) / ds.folder / "raw"
    return all((raw / f).exists() or (raw / f"{f}.gz").exists() for f in RAW_FILES)


def load_split(
    name: str,
    root: str | os.PathLike | None = None,
    train: bool = True,
    download: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (images uint8 (N, C, H, W), labels int64 (N,)) of one split, on `device`.

    Reads torchvision's layout (root/MNIST/raw/...), or calls the data set's own loader. Downloads only
    when `download` is true; otherwise a missing data set raises DataMissingError saying where it looked.
    """
    import torchvision

    ds = datasets.get(name)
    root = Path(root or default_root())
    if ds.loader is not None:
        images, labels = ds.loader(root, train, download)
        return images.to(device), labels.to(device)
    cls_name, folder = ds.torchvision, ds.folder
    if not download and not is_available(name, root):
        raise DataMissingError(
            f"{name}: no data under {(root / folder / 'raw').resolve()} "
            f"(expected {', '.join(RAW_FILES)}). Point --data-dir or DATA_DIR at a folder holding "
            f"{folder}/raw/, or pass --download on a machine with internet access."
        )
    try:
        tv = getattr(torchvision.datasets, cls_name)(str(root), train=train, download=download)
    except (RuntimeError, OSError) as err:  # torchvision raises RuntimeError when a download fails
        raise DataMissingError(f"{name}: could not load or download into {root.resolve()}: {err}") from err
    images = tv.data.unsqueeze(1).contiguous()  # (N, 1, 28, 28) uint8
    labels = tv.targets.long()
    return images.to(device), labels.to(device)


def checksum(*splits: tuple[torch.Tensor, torch.Tensor]) -> str:
    """sha256 of the splits' images and labels as loaded: names the data by content, not by location."""
    import hashlib

    h = hashlib.sha256()
    for images, labels in splits:
        h.update(images.cpu().contiguous().numpy().tobytes())
        h.update(labels.cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [0, 1]."""
    return images.float().div_(255.0)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: each pixel ~ Bernoulli(intensity), redrawn every time it is seen.

    The standard protocol for a Bernoulli likelihood on MNIST (used by the IWAE paper, Burda et al.
    2016); it regularises better than a fixed threshold and keeps nats comparable to the literature.
    """
    return torch.bernoulli(x, generator=generator)


def batches(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (float images in [0, 1], labels) batches; shuffling draws one permutation per call."""
    n = images.shape[0]
    if shuffle:
        order = torch.randperm(n, generator=generator).to(images.device)
    else:
        order = torch.arange(n, device=images.device)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield to_float(images[idx]), labels[idx]


def synthetic_split(n: int = 256, seed: int = 0, size: int = 28, classes: int = 10
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Small fake data set for tests: class k is a bright bar at a k-dependent position."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    images = torch.randint(0, 40, (n, 1, size, size), generator=g, dtype=torch.uint8)
    step = max(1, (size - 6) // classes)
    for i, k in enumerate(labels.tolist()):
        images[i, 0, 2 + step * k: 5 + step * k, size // 7: size - size // 7] = 255
    return images, labels
