"""Data sets: one record per data set, the only place that lists them, their image shape and class names.

Models take the image shape from their config (filled from this record when a run starts), the dashboard
takes class names from here, the Hub model card its dataset id. Torch-free, like core.families.

Adding a data set: one `register(DataSet(...))` with a loader, here or in a plug-in (tests/core/test_families.py
registers a 3-class 16x16 one). The built-in ones load torchvision's files (core.data.load_split).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.registry import Registry


@dataclass(frozen=True)
class DataSet:
    name: str  # the CLI's --dataset, config.json's dataset.name, run folder prefixes
    label: str  # shown to people
    class_names: tuple[str, ...]
    image_size: int = 28  # square images, `channels` x size x size
    channels: int = 1
    torchvision: str | None = None  # torchvision.datasets class that reads (and downloads) it
    folder: str | None = None  # its folder under the data root (torchvision's layout: <folder>/raw/...)
    hub_id: str | None = None  # the Hugging Face dataset id on a model card
    source: str = ""  # where it comes from, for people
    noun: str = "image"  # what one image shows, for people: "digit", "item"
    ink_box: int | None = None  # a drawing's ink is fitted into this square (MNIST: 20 of 28); None: the whole image
    # (root, train, download) -> (uint8 images (N, C, H, W), int64 labels (N,)); None: the torchvision reader
    loader: Callable | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)


DATASETS = Registry("dataset")
register, unregister, get, names = DATASETS.register, DATASETS.unregister, DATASETS.record, DATASETS.names


register(DataSet(
    name="mnist", label="MNIST", class_names=tuple(str(d) for d in range(10)), torchvision="MNIST",
    folder="MNIST", hub_id="ylecun/mnist", source="LeCun, Cortes & Burges: http://yann.lecun.com/exdb/mnist/",
    noun="digit", ink_box=20,  # "normalized to fit in a 20x20 pixel box" (LeCun et al.), centred in 28x28
))
register(DataSet(
    name="fashion-mnist", label="Fashion-MNIST",
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
    torchvision="FashionMNIST", folder="FashionMNIST", hub_id="zalando-datasets/fashion_mnist",
    source="Xiao, Rasul & Vollgraf 2017: https://github.com/zalandoresearch/fashion-mnist",
    noun="item",  # its images fill the field: the longest edge resized to 28 (Xiao et al. 2017, Sec. 2)
))
