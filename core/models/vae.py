"""Variational autoencoder (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014).

Generative model p(z) = N(0, I), p(x|z) = Bernoulli(decoder(z)); recognition model
q(z|x) = N(mu(x), diag(exp(logvar(x)))). Encoder and decoder are separate networks with no shared
parameters. Training maximises the ELBO

    log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z)),

i.e. minimises  -ELBO = reconstruction + KL  with  reconstruction = -E_q[log p(x|z)]  estimated
with one reparameterised sample z = mu + sigma * eps (Sec. 2.4), and the KL in closed form
(Appendix B). All terms are in nats per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.checks import LATENT_DIM_DEFAULT, LATENT_DIM_RANGE
from core.data import binarize, to_float
from core.models.layers import check_choice, check_image, check_range, conv_features, conv_image_head, evaluating, mlp

PRESETS = ("conv", "seed")


@dataclass
class VAEConfig:
    preset: str = "conv"  # "conv": small conv nets; "seed": the dense nets of the original design document
    latent_dim: int = LATENT_DIM_DEFAULT  # size of z (the GAN uses the same, so the two latent spaces compare)
    width: int = 32  # conv preset: channels of the first conv layer (the second has twice as many)
    hidden: int = 256  # conv preset: dense layer between conv features and (mu, logvar)
    image_size: int = 28  # images are channels x image_size x image_size: the data set's (core.datasets)
    channels: int = 1

    def __post_init__(self):
        check_choice("preset", self.preset, PRESETS)
        check_image(self.channels, self.image_size)
        check_range("latent_dim", self.latent_dim, *LATENT_DIM_RANGE)
        check_range("width", self.width, 4, 256)
        check_range("hidden", self.hidden, 8, 4096)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, closed form (Kingma & Welling 2014, Appendix B):
    -1/2 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=1)


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) per image for a Bernoulli decoder given its logits: sum of per-pixel cross-entropies."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)


class VAE(nn.Module):
    default_lr = 1e-3
    default_betas = (0.9, 0.999)

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        c = config
        pixels, shape = c.channels * c.image_size ** 2, (c.channels, c.image_size, c.image_size)  # MNIST: 784
        if c.preset == "conv":
            self.encoder = nn.Sequential(conv_features(c.width, channels=c.channels),
                                         nn.Linear(2 * c.width * (c.image_size // 4) ** 2, c.hidden), nn.LeakyReLU(0.2))
            self.decoder = nn.Sequential(nn.Linear(c.latent_dim, c.hidden), nn.ReLU(),
                                         conv_image_head(c.hidden, c.width, channels=c.channels, size=c.image_size))
            enc_out = c.hidden
        else:  # the design document's dense nets: encoder 784-128-64, decoder 32-256-128-784
            self.encoder = nn.Sequential(nn.Flatten(), mlp([pixels, 128, 64]), nn.LeakyReLU(0.2))
            self.decoder = nn.Sequential(mlp([c.latent_dim, 256, 128, pixels]), nn.Unflatten(1, shape))
            enc_out = 64
        self.to_mu = nn.Linear(enc_out, c.latent_dim)
        self.to_logvar = nn.Linear(enc_out, c.latent_dim)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    can_embed = True  # the encoder is trained with the decoder, from the first step

    # --- the model -----------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) in [0, 1] -> mu, logvar, each (B, latent_dim)."""
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim) -> Bernoulli logits (B, C, H, W)."""
        return self.decoder(z)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014, Sec. 2.4): a sample that is
        differentiable in mu and sigma. (Not a concatenation of mu and logvar.)"""
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms for binary x (B, C, H, W), each a mean over the batch in nats per image."""
        mu, logvar = (t.float() for t in self.encode(x))  # under bf16 autocast the loss stays fp32
        z = self.reparameterize(mu, logvar)
        reconstruction = bernoulli_nll(self.decode(z).float(), x)  # -log p(x|z), one-sample estimate
        kl = kl_to_standard_normal(mu, logvar)
        return {"neg_elbo": (reconstruction + kl).mean(), "reconstruction": reconstruction.mean(), "kl": kl.mean()}

    # --- training ------------------------------------------------------------------------------
    def configure_optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, torch.optim.Optimizer]:
        self.optimizers = {"vae": torch.optim.Adam(self.parameters(), lr=lr, betas=betas)}
        return self.optimizers

    def fit_after(self, images: torch.Tensor, batch_size: int, generator: torch.Generator) -> None:
        return None  # encoder and decoder are trained together: nothing follows the main loop

    def step(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        """One gradient step on a batch of [0, 1] images (binarized afresh here)."""
        opt = self.optimizers["vae"]
        losses = self.loss(binarize(x))
        opt.zero_grad(set_to_none=True)
        losses["neg_elbo"].backward()
        opt.step()
        return {k: v.item() for k, v in losses.items()}

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 1000,
                 seed: int = 0) -> dict[str, float]:
        """Mean loss terms over uint8 images, binarized with a fixed seed so numbers are comparable."""
        with evaluating(self):
            g = torch.Generator(device=images.device).manual_seed(seed)
            totals: dict[str, float] = {}
            fork = [images.device] if images.device.type == "cuda" else []
            with torch.random.fork_rng(devices=fork):
                torch.manual_seed(seed)
                for start in range(0, images.shape[0], batch_size):
                    x = binarize(to_float(images[start:start + batch_size]), g)
                    for k, v in self.loss(x).items():
                        totals[k] = totals.get(k, 0.0) + v.item() * x.shape[0]
        return {k: v / images.shape[0] for k, v in totals.items()}

    # --- using it ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (B, latent_dim) -> images (B, C, H, W): the decoder's Bernoulli means."""
        return torch.sigmoid(self.decode(z))

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> latent codes: the posterior means mu(x)."""
        return self.encode(x)[0]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.sample(self.embed(x))


__all__ = ["VAE", "VAEConfig", "kl_to_standard_normal", "bernoulli_nll"]
