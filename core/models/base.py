"""What every model offers the trainer, the evaluator and the dashboard (checked with isinstance).

A family's capabilities live in its record (core.families: generative, has_encoder, has_likelihood); the
methods below are how the rest of the code uses them, so nothing asks `kind == "gan"` or probes with getattr.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Model(Protocol):
    """Anything the trainer can fit: the classifier as well as the generative models."""

    config: Any  # the family's config dataclass, saved as config.json's model_config
    default_lr: float
    default_betas: tuple[float, float]

    def configure_optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, torch.optim.Optimizer]:
        """Create the optimizers (one per player or network) and return them by name."""

    def step(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        """One training update on a batch of [0, 1] images; the losses it logs."""

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        """Mean held-out numbers over uint8 images (history.json's test/ columns, metrics.json's held_out)."""

    def fit_after(self, images: torch.Tensor, batch_size: int, generator: torch.Generator) -> dict | None:
        """Training that follows the main loop (a GAN's encoder); its per-epoch history, or None."""


@runtime_checkable
class GenerativeModel(Model, Protocol):
    """Images from latent codes z ~ N(0, I), and codes from images."""

    @property
    def latent_dim(self) -> int: ...

    @property
    def can_embed(self) -> bool:
        """Whether embed/reconstruct mean something yet (a GAN's encoder may still be untrained)."""

    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (B, latent_dim) -> images (B, C, H, W) in [0, 1]."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> latent codes (B, latent_dim)."""

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> the model's rendering of their latent codes."""
