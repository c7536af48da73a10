"""What every model offers the trainer, the evaluator and the dashboard (checked with isinstance).

A family's capabilities live in its record (core.families: generative, has_encoder, has_likelihood); the
methods below are how the rest of the code uses them, so nothing asks `kind == "gan"` or probes with getattr.
A model with a likelihood owns its math (as diffusers' AutoencoderKL.encode returns a distribution): metrics
and pages ask it for its posterior and its bounds, and never rebuild a loss from encode/decode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

LOG_2PI = math.log(2 * math.pi)


@runtime_checkable
class Model(Protocol):
    """Anything the trainer can fit: the classifier as well as the generative models."""

    config: Any  # the family's config dataclass, saved as config.json's model_config
    default_lr: float
    default_betas: tuple[float, float]

    def configure_optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, torch.optim.Optimizer]:
        """Create the optimizers (one per player or network) and return, by name, those `fit` steps."""

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
        """Prior draws z ~ N(0, I) (B, latent_dim) -> images (B, C, H, W) in [0, 1]: render(code(z))."""

    def code(self, z: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Prior draws z -> the codes they decode from, in the space embed maps images into: t * z, except for a
        GAN whose G reads a mixture of Gaussians (there mu_k + t * z, the mode picked from z itself, so the
        temperature t narrows each mode without changing how often each is drawn)."""

    def render(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, latent_dim), as embed returns them or code(z) makes them -> images in [0, 1]."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] -> latent codes (B, latent_dim), which render decodes."""

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> the model's rendering of their latent codes."""


@dataclass
class DiagonalGaussian:
    """N(mean, diag(exp(logvar))): a recognition model's q(z|x) for a batch, each (B, D)."""

    mean: torch.Tensor
    logvar: torch.Tensor

    def sample(self, n: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """n reparameterised draws z = mean + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014, Sec. 2.4), as one
        (n, B, D) tensor: differentiable in mean and sigma."""
        eps = torch.randn((n, *self.mean.shape), generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + eps * (0.5 * self.logvar).exp()

    def kl_per_dim(self) -> torch.Tensor:
        """KL(q(z_j|x) || N(0, 1)) for each dimension j, (B, D), closed form (Kingma & Welling 2014, Appendix B):
        -1/2 (1 + logvar_j - mean_j^2 - exp(logvar_j))."""
        return -0.5 * (1 + self.logvar - self.mean.pow(2) - self.logvar.exp())

    def kl(self) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per row, (B,): the ELBO's KL term."""
        return self.kl_per_dim().sum(dim=-1)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) for codes z (..., B, D) -> (..., B)."""
        return -0.5 * ((z - self.mean).square() / self.logvar.exp() + self.logvar + LOG_2PI).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log p(z) under the prior N(0, I), (..., D) -> (...)."""
    return -0.5 * (z.square() + LOG_2PI).sum(-1)


@runtime_checkable
class LikelihoodModel(GenerativeModel, Protocol):
    """A generative model with a recognition model q(z|x) and a likelihood p(x|z), hence bounds on log p(x)
    (the VAE). Every number is per image, in nats; images are (B, C, H, W) in [0, 1]: binary digits, or grey
    levels read as the probability that a pixel is on (the Bernoulli log-likelihood is linear in its target)."""

    def posterior(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x) for a batch of images."""

    def neg_elbo(self, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None
                 ) -> dict[str, torch.Tensor]:
        """-ELBO = reconstruction + kl, each (B,): reconstruction = -E_q[log p(x|z)] over `samples` draws of z,
        kl = KL(q(z|x) || p(z))."""

    def neg_iwae(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """-L_k, the importance weighted bound (Burda et al. 2016, eq. 8) from k draws of z, and the -ELBO from the
        same draws, each (B,)."""
