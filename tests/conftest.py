"""Shared fixtures: synthetic data and tiny run folders built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from core.data import is_available, synthetic_split
from core.runner import train_run
from core.train import TrainConfig

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "vae": {"preset": "conv", "latent_dim": 8, "width": 4, "hidden": 16},
    "gan": {"preset": "conv", "latent_dim": 8, "width": 4},
}


def data_root() -> Path:
    return Path(os.environ.get("DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture
def real_data_root() -> Path:
    root = data_root()
    if not is_available("mnist", root):
        pytest.skip(f"MNIST not found under {root} (set DATA_DIR)")
    return root


@pytest.fixture(scope="session")
def splits():
    return synthetic_split(192, seed=1), synthetic_split(96, seed=2)


def make_tiny_run(kind: str, out: Path, splits, seed: int = 0, epochs: int = 2, **model_overrides) -> Path:
    cfg = TrainConfig(epochs=epochs, batch_size=64, seed=seed, device="cpu")
    return train_run(kind, out, {**TINY.get(kind, {}), **model_overrides}, cfg, splits=splits, embed_size=64)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, splits) -> Path:
    """A checkpoints folder holding mnist-vae and mnist-gan trained for 2 epochs on synthetic data."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("checkpoints")
    make_tiny_run("vae", root / "mnist-vae", splits)
    make_tiny_run("gan", root / "mnist-gan", splits)
    return root
