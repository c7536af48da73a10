"""The evaluation classifier: a small conv net trained on the data set itself.

Inception features mean nothing on 28x28 digits; a classifier trained on the same data set is the
accepted substitute. Its penultimate layer (`features`) is the space for Frechet distance, KID and
precision/recall; its softmax gives class coverage.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.models.layers import check_choice, check_image, check_range, evaluating

ARCHS = ("conv", "mlp")


@dataclass
class ClassifierConfig:
    arch: str = "conv"  # "conv": two conv blocks; "mlp": a dense net, a second feature space to check claims in
    width: int = 32  # conv: channels of the first conv block (the second has twice as many); mlp: hidden / 16
    feature_dim: int = 128  # size of the penultimate layer, the feature space of the metrics
    num_classes: int = 10  # the data set's (core.datasets), like the image shape
    image_size: int = 28
    channels: int = 1

    def __post_init__(self):
        check_choice("arch", self.arch, ARCHS)
        check_image(self.channels, self.image_size)
        check_range("width", self.width, 4, 256)
        check_range("feature_dim", self.feature_dim, 8, 4096)
        check_range("num_classes", self.num_classes, 2, 1000)


class Classifier(nn.Module):
    default_lr = 1e-3
    default_betas = (0.9, 0.999)

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        w = config.width
        if config.arch == "mlp":  # pixels -> 16w -> feature_dim: no convolution, no pooling
            self.body = nn.Sequential(
                nn.Flatten(),
                nn.Linear(config.channels * config.image_size ** 2, 16 * w), nn.ReLU(), nn.Dropout(0.2),
                nn.Linear(16 * w, config.feature_dim), nn.ReLU(),
            )
        else:
            self.body = self.conv_body(config)
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(config.feature_dim, config.num_classes))
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @staticmethod
    def conv_body(config: ClassifierConfig) -> nn.Sequential:
        w = config.width
        return nn.Sequential(
            nn.Conv2d(config.channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, w, 14, 14)
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(2 * w * (config.image_size // 4) ** 2, config.feature_dim), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def configure_optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, torch.optim.Optimizer]:
        self.optimizers = {"classifier": torch.optim.Adam(self.parameters(), lr=lr, betas=betas)}
        return self.optimizers

    def fit_after(self, images: torch.Tensor, batch_size: int, generator: torch.Generator) -> None:
        return None

    def step(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        opt = self.optimizers["classifier"]
        logits = self(x).float()  # under bf16 autocast the loss stays fp32
        loss = F.cross_entropy(logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"cross_entropy": loss.item(), "accuracy": (logits.argmax(1) == labels).float().mean().item()}

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> dict[str, float]:
        from core.data import to_float

        with evaluating(self):
            correct, ce = 0.0, 0.0
            for start in range(0, images.shape[0], batch_size):
                x, y = to_float(images[start:start + batch_size]), labels[start:start + batch_size]
                logits = self(x)
                ce += F.cross_entropy(logits, y, reduction="sum").item()
                correct += (logits.argmax(1) == y).sum().item()
        return {"cross_entropy": ce / images.shape[0], "accuracy": correct / images.shape[0]}

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (B, C, H, W) -> penultimate activations (B, feature_dim)."""
        return self.body(x)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self(x), dim=1)

    @torch.no_grad()
    def features_and_proba(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both of the above from one pass through the body (evaluation needs both for every image)."""
        f = self.body(x)
        return f, F.softmax(self.head(f), dim=1)
