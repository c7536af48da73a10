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

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.checks import LATENT_DIM_DEFAULT, LATENT_DIM_RANGE
from core.data import binarize, to_float
from core.models.base import DiagonalGaussian, standard_normal_log_prob
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

    # --- its likelihood (core.models.base.LikelihoodModel): the ELBO is written here, once ------------------
    def posterior(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x) = N(mu(x), diag(exp(logvar(x)))); float32 even under bf16 autocast, so the bounds stay fp32."""
        mu, logvar = self.encode(x)
        return DiagonalGaussian(mu.float(), logvar.float())

    def _log_likelihood(self, q: DiagonalGaussian, x: torch.Tensor, n: int, generator: torch.Generator | None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """n draws z ~ q (n, B, D) and log p(x|z) for each (n, B), decoded as one batch of n * B."""
        z = q.sample(n, generator)
        b = x.shape[0]
        x_n = x.expand(n, *x.shape).reshape(n * b, *x.shape[1:])
        return z, -bernoulli_nll(self.decode(z.reshape(n * b, -1)).float(), x_n).view(n, b)

    def _neg_elbo(self, q: DiagonalGaussian, log_px_z: torch.Tensor) -> dict[str, torch.Tensor]:
        reconstruction = -log_px_z.mean(0)  # -E_q[log p(x|z)], Monte Carlo over the draws
        kl = q.kl()  # closed form
        return {"neg_elbo": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}

    def neg_elbo(self, x: torch.Tensor, samples: int = 1, generator: torch.Generator | None = None
                 ) -> dict[str, torch.Tensor]:
        """Per image: -ELBO = reconstruction + kl (nats), E_q over `samples` reparameterised draws of z."""
        q = self.posterior(x)
        return self._neg_elbo(q, self._log_likelihood(q, x, samples, generator)[1])

    def neg_iwae(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per image: -L_k = -log 1/k sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x) (Burda et al. 2016, eq. 8), with
        log p(x, z) = log p(x|z) + log p(z). L_1 is the ELBO and L_k rises with k towards log p(x) (Theorem 1),
        so -IWAE <= -ELBO; the -ELBO from the same k draws comes with it. Summed in float64."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = self.posterior(x)
        z, log_px_z = self._log_likelihood(q, x, k, generator)
        log_w = (log_px_z + standard_normal_log_prob(z) - q.log_prob(z)).double()  # (k, B)
        return {"neg_iwae": -(torch.logsumexp(log_w, 0) - math.log(k)),
                "neg_elbo": self._neg_elbo(q, log_px_z.double())["neg_elbo"]}

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms for binary x (B, C, H, W), each a mean over the batch in nats per image (one draw of z)."""
        return {k: v.mean() for k, v in self.neg_elbo(x).items()}

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

    def code(self, z: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        return z * temperature  # the posterior means live in the prior's space

    @torch.no_grad()
    def render(self, codes: torch.Tensor) -> torch.Tensor:
        return self.sample(codes)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> latent codes: the posterior means mu(x)."""
        return self.encode(x)[0]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.render(self.embed(x))


__all__ = ["VAE", "VAEConfig", "bernoulli_nll"]
