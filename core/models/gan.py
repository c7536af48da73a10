"""Generative adversarial network (Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014),
with an encoder trained to invert the generator.

D and G play  min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]  (eq. 1).
D ascends V; G uses the non-saturating loss -log D(G(z)) by default (Sec. 3: "rather than training G
to minimize log(1 - D(G(z))) we can train G to maximize log D(G(z))"), since log(1 - D(G(z)))
saturates while D easily rejects early samples. `loss="minimax"` keeps eq. 1 as it is.

A GAN has no encoder. To embed and reconstruct real digits like the VAE does, E is trained after each
G update to invert the current G (it never changes G or D): a latent regression ||E(G(z)) - z||^2 on
fresh fakes, plus a pixel reconstruction ||G(E(x)) - x||^2 on real images so E also sees real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.models.layers import check_choice, check_range, conv_features, conv_image_head, evaluating, mlp

PRESETS = ("conv", "seed")
LOSSES = ("non-saturating", "minimax")


@dataclass
class GANConfig:
    preset: str = "conv"  # "conv": DCGAN-style nets; "seed": the dense nets of the original design document
    latent_dim: int = 32  # size of z ~ N(0, I), as the VAE's
    width: int = 32  # conv preset: channels of the first conv layer of D and E (G mirrors them)
    loss: str = "non-saturating"  # generator loss: "non-saturating" (-log D(G(z))) or "minimax" (eq. 1)
    encoder_recon_weight: float = 1.0  # weight of ||G(E(x)) - x||^2 against the latent regression

    def __post_init__(self):
        check_choice("preset", self.preset, PRESETS)
        check_choice("loss", self.loss, LOSSES)
        check_range("latent_dim", self.latent_dim, 2, 512)
        check_range("width", self.width, 4, 256)
        check_range("encoder_recon_weight", self.encoder_recon_weight, 0.0, 100.0)


class GAN(nn.Module):
    default_lr = 2e-4  # DCGAN's (Radford et al. 2016) Adam settings
    default_betas = (0.5, 0.999)

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        c = config
        if c.preset == "conv":  # DCGAN-style: batch norm in G and D, none on D's input or G's output
            self.generator = nn.Sequential(conv_image_head(c.latent_dim, 2 * c.width, norm=True), nn.Sigmoid())
            self.discriminator = nn.Sequential(conv_features(c.width, norm=True), nn.Linear(2 * c.width * 49, 1))
            self.encoder = nn.Sequential(conv_features(c.width), nn.Linear(2 * c.width * 49, c.latent_dim))
        else:  # the design document's generator z-128-256-784 (leaky ReLU, sigmoid); D and E mirror it
            self.generator = nn.Sequential(mlp([c.latent_dim, 128, 256, 784], out_act=nn.Sigmoid(), norm=True),
                                           nn.Unflatten(1, (1, 28, 28)))
            # dropout keeps this dense D from overpowering the small G within the first epoch (it collapsed without)
            self.discriminator = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), mlp([784, 256, 128, 1], dropout=0.3))
            self.encoder = nn.Sequential(nn.Flatten(), mlp([784, 256, 128, c.latent_dim]))
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # --- losses --------------------------------------------------------------------------------
    @staticmethod
    def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """-[log D(x) + log(1 - D(G(z)))], the negated value function D ascends (eq. 1)."""
        return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "non-saturating":  # -log D(G(z))
            return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        # minimax: log(1 - D(G(z))) = -BCE(logits, 0)
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))

    # --- training ------------------------------------------------------------------------------
    def configure_optimizers(self, lr: float, betas: tuple[float, float]) -> None:
        self.optimizers = {
            "d": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas),
            "g": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas),
            "e": torch.optim.Adam(self.encoder.parameters(), lr=lr, betas=betas),
        }

    def step(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        """One update of D (on detached fakes), then G, then E, on a batch of [0, 1] images."""
        opt = self.optimizers
        z = torch.randn(x.shape[0], self.config.latent_dim, device=x.device)
        fake = self.generator(z)  # (B, 1, 28, 28)

        real_logits = self.discriminator(x)
        fake_logits = self.discriminator(fake.detach())
        d_loss = self.discriminator_loss(real_logits, fake_logits)
        opt["d"].zero_grad(set_to_none=True)
        d_loss.backward()
        opt["d"].step()

        g_loss = self.generator_loss(self.discriminator(fake))
        opt["g"].zero_grad(set_to_none=True)
        g_loss.backward()
        opt["g"].step()

        e_latent, e_recon = self.encoder_losses(x, z, fake.detach())
        e_loss = e_latent + self.config.encoder_recon_weight * e_recon
        opt["e"].zero_grad(set_to_none=True)
        e_loss.backward()
        opt["e"].step()
        return {
            "d_loss": d_loss.item(),
            "g_loss": g_loss.item(),
            "d_real": torch.sigmoid(real_logits).mean().item(),  # mean D(x)
            "d_fake": torch.sigmoid(fake_logits).mean().item(),  # mean D(G(z)), before this step's update
            "e_loss": e_loss.item(),
            "e_latent": e_latent.item(),
            "e_recon": e_recon.item(),
        }

    def encoder_losses(self, x: torch.Tensor, z: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(||E(G(z)) - z||^2 per latent dim, ||G(E(x)) - x||^2 per pixel); gradients reach E only."""
        latent = F.mse_loss(self.encoder(fake), z)
        g_mode = self.generator.training
        self.generator.eval()  # use (and do not update) G's running batch-norm statistics
        for p in self.generator.parameters():
            p.requires_grad_(False)
        recon = F.mse_loss(self.generator(self.encoder(x)), x)
        for p in self.generator.parameters():
            p.requires_grad_(True)
        self.generator.train(g_mode)
        return latent, recon

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 1000,
                 seed: int = 0) -> dict[str, float]:
        """On held-out uint8 images: mean D(x), mean D(G(z)) for fixed z, and E's reconstruction error."""
        from core.data import to_float

        with evaluating(self):
            g = torch.Generator(device=images.device).manual_seed(seed)
            sums = {"d_real": 0.0, "d_fake": 0.0, "e_recon": 0.0}
            for start in range(0, images.shape[0], batch_size):
                x = to_float(images[start:start + batch_size])
                z = torch.randn(x.shape[0], self.config.latent_dim, generator=g, device=x.device)
                sums["d_real"] += torch.sigmoid(self.discriminator(x)).sum().item()
                sums["d_fake"] += torch.sigmoid(self.discriminator(self.generator(z))).sum().item()
                sums["e_recon"] += F.mse_loss(self.reconstruct(x), x, reduction="none").flatten(1).mean(1).sum().item()
        return {k: v / images.shape[0] for k, v in sums.items()}

    # --- using it ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (B, latent_dim) -> images (B, 1, 28, 28) in [0, 1]."""
        return self.generator(z)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> latent codes E(x)."""
        return self.encoder(x)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x))."""
        return self.generator(self.encoder(x))
