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

# name -> (torchvision class name, folder under the data root, class names)
DATASETS = {
    "mnist": ("MNIST", "MNIST", [str(d) for d in range(10)]),
    "fashion-mnist": (
        "FashionMNIST",
        "FashionMNIST",
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
}
RAW_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


class DataMissingError(FileNotFoundError):
    """The data set is not under the data root and was not (or could not be) downloaded."""


def default_root() -> Path:
    """The data root: $DATA_DIR if set, else ./data."""
    return Path(os.environ.get("DATA_DIR", "data"))


def class_names(name: str) -> list[str]:
    return DATASETS[_check_name(name)][2]


def _check_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return name


def is_available(name: str, root: str | os.PathLike | None = None) -> bool:
    """True when the four raw files (plain or .gz) are under root/<Folder>/raw."""
    raw = Path(root or default_root()) / DATASETS[_check_name(name)][1] / "raw"
    return all((raw / f).exists() or (raw / f"{f}.gz").exists() for f in RAW_FILES)


def load_split(
    name: str,
    root: str | os.PathLike | None = None,
    train: bool = True,
    download: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (images uint8 (N, 1, 28, 28), labels int64 (N,)) of one split, on `device`.

    Reads torchvision's layout (root/MNIST/raw/...). Downloads only when `download` is true;
    otherwise a missing data set raises DataMissingError saying where it looked.
    """
    import torchvision

    cls_name, folder, _ = DATASETS[_check_name(name)]
    root = Path(root or default_root())
    if not download and not is_available(name, root):
        raise DataMissingError(
            f"{name}: no data under {(root / folder / 'raw').resolve()} "
            f"(expected {', '.join(RAW_FILES)}). Point --data-dir or DATA_DIR at a folder holding "
            f"{folder}/raw/, or pass --download on a machine with internet access."
        )
    try:
        ds = getattr(torchvision.datasets, cls_name)(str(root), train=train, download=download)
    except (RuntimeError, OSError) as err:  # torchvision raises RuntimeError when a download fails
        raise DataMissingError(f"{name}: could not load or download into {root.resolve()}: {err}") from err
    images = ds.data.unsqueeze(1).contiguous()  # (N, 1, 28, 28) uint8
    labels = ds.targets.long()
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


def synthetic_split(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Small fake data set for tests: class k is a bright bar at a k-dependent position."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    images = torch.randint(0, 40, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    for i, k in enumerate(labels.tolist()):
        images[i, 0, 2 + 2 * k: 5 + 2 * k, 4:24] = 255
    return images, labels
