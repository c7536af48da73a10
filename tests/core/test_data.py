import pytest
import torch

from core.__main__ import main
from core.data import DataMissingError, batches, binarize, load_split, synthetic_split

MNIST_TRAIN = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.real_data
def test_mnist_from_shared_data(real_data_root):
    images, labels = load_split("mnist", real_data_root, train=True)
    assert images.shape == (60_000, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == MNIST_TRAIN
    images, labels = load_split("mnist", real_data_root, train=False)
    assert images.shape[0] == 10_000 and torch.bincount(labels).tolist() == MNIST_TEST


@pytest.mark.real_data
def test_fashion_mnist_from_shared_data(real_data_root):
    _, labels = load_split("fashion-mnist", real_data_root, train=False)
    assert torch.bincount(labels).tolist() == [1000] * 10


def test_missing_data_says_where_and_what_to_do(tmp_path):
    with pytest.raises(DataMissingError) as err:
        load_split("mnist", tmp_path / "nowhere")
    msg = str(err.value)
    assert str((tmp_path / "nowhere" / "MNIST" / "raw").resolve()) in msg
    assert "--data-dir" in msg and "DATA_DIR" in msg and "--download" in msg


def test_missing_data_via_cli(tmp_path, capsys):
    assert main(["train", "--model", "vae", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "no data under" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_split("cifar", "x")


def test_batches_cover_every_image_once():
    images, labels = synthetic_split(50)
    seen = torch.cat([y for _, y in batches(images, labels, 16, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == sorted(labels.tolist())
    x, _ = next(batches(images, labels, 16))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1


def test_dynamic_binarization_is_redrawn():
    x = torch.full((1, 1, 28, 28), 0.5)
    a, b = binarize(x), binarize(x)
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, b)
    assert abs(a.mean().item() - 0.5) < 0.1
