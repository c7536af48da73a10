"""Generative adversarial network (Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014),
with the stabilisers later papers added, and an encoder trained to invert the generator.

D and G play  min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]  (eq. 1).
D ascends V; G uses the non-saturating loss -log D(G(z)) (Sec. 3: "rather than training G to minimize
log(1 - D(G(z))) we can train G to maximize log D(G(z))"), since log(1 - D(G(z))) saturates while D
easily rejects early samples. `loss="minimax"` keeps eq. 1 as it is. `loss="hinge"` is the hinge
version of the adversarial loss (Lim & Ye 2017; Miyato et al. 2018, eq. 16-17):
D minimises E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))], G minimises -E[D(G(z))].

Options measured in the README's ablation (each recorded in config.json):
- `d_norm="spectral"`: spectral normalisation of every D layer (Miyato et al. 2018), which bounds D's
  Lipschitz constant instead of normalising batches; "batch" is DCGAN's batch norm.
- `ema`: G's weights averaged over training, G_ema <- ema * G_ema + (1 - ema) * G after each G step
  (Yazici et al. 2019). G_ema draws every sample, grid and evaluation and is E's target; the raw G only
  trains. Saved beside G in model.safetensors.
- `d_lr_ratio`: D's learning rate over G's, the two time-scale update rule (Heusel et al. 2017).
- `mbstd`: a minibatch standard-deviation feature map appended before D's last layer (Karras et al.
  2018), so D can see a batch that lacks variety.
- `r1_gamma`: the R1 gradient penalty on real images (Mescheder et al., "Which Training Methods for GANs
  do actually Converge?", ICML 2018, eq. 9): D's loss gains gamma/2 * E_x[||grad_x D(x)||^2]. With
  `r1_every` = N > 1 it is applied lazily, every N-th D step with weight N (Karras et al. 2020, Sec. 4).
- `d_steps`: D updates per G update (WGAN's n_critic, Arjovsky et al. 2017); each D update takes its own
  real batch, so G takes 1/d_steps as many steps per epoch.
- `g_width`: G's channels, when they should differ from D's (`width`); None = the same.
- `latent_modes`: K >= 2 feeds G a mixture of K Gaussians instead of one (the static GM-GAN of Ben-Yosef &
  Weinshall 2018; DeLiGAN, Gurumurthy et al. 2017, learns the means). A continuous G maps a connected
  latent space onto digits that fall apart into ten classes, so some mass must land between classes
  (hybrids); with K modes the class boundaries can fall in the gaps between them. z ~ N(0, I) still goes in:
  `LatentMixture` picks mode k = floor(Phi(z_1) * K) (uniform) and returns the code w = mu_k + z, so sampling
  is unchanged. E inverts G after the mixture (E(G(z)) ~ w; `code`, `render`): the mode pick is a step in
  z_1, so a code in z would send a small error in E's z_1 to another mode's mean.

A GAN has no encoder. To embed and reconstruct real digits like the VAE does, an encoder E is trained to
invert the generator that samples (G_ema when `ema` > 0); it never changes G or D. Its loss is a latent
regression ||E(G(z)) - code(z)||^2 on fakes plus a pixel reconstruction ||G(E(x)) - x||^2 on real images, so E
also sees real data. With `encoder_epochs` = 0, E is trained alongside G: one E step after each G step, on
that batch's fakes and real images. With `encoder_epochs` = N > 0 (the default), E is trained after the
GAN, for N epochs against the final, fixed G: it then inverts exactly the generator that is saved, and
the GAN's own steps cost about 40 % less.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from core.checks import LATENT_DIM_DEFAULT, LATENT_DIM_RANGE
from core.models.layers import check_choice, check_image, check_range, conv_features, conv_image_head, evaluating, mlp

PRESETS = ("conv", "seed")
LOSSES = ("non-saturating", "minimax", "hinge")
D_NORMS = ("batch", "spectral", "none")
# What a config.json written before an option existed meant: loading it rebuilds that network.
LEGACY = {"d_norm": "batch", "ema": 0.0, "d_lr_ratio": 1.0, "mbstd": False, "encoder_epochs": 0, "latent_modes": 0}
DEFAULT_LATENT_MODES = 20


@dataclass
class GANConfig:
    preset: str = "conv"  # "conv": DCGAN-style nets; "seed": the dense nets of the original design document
    latent_dim: int = LATENT_DIM_DEFAULT  # size of z ~ N(0, I), as the VAE's
    width: int = 32  # conv preset: channels of the first conv layer of D and E (G mirrors them)
    loss: str = "non-saturating"  # "non-saturating" (-log D(G(z))), "minimax" (eq. 1) or "hinge"
    d_norm: str = "spectral"  # D's normalisation: "spectral" (Miyato 2018), "batch" (DCGAN) or "none"
    ema: float = 0.999  # decay of G's weight average used for sampling (Yazici 2019); 0 = no average
    d_lr_ratio: float = 1.0  # D's learning rate / G's (two time-scale update rule, Heusel 2017)
    mbstd: bool | None = None  # minibatch standard-deviation feature in D (Karras 2018); None = on for conv only
    r1_gamma: float = 0.0  # R1 penalty weight on real images (Mescheder 2018); 0 = none
    r1_every: int = 1  # apply R1 every N-th D step, weighted N (lazy regularisation)
    d_steps: int = 1  # D updates per G update
    g_width: int | None = None  # conv preset: G's width (maps 4*g_width -> 2*g_width -> image); None = width
    # 0: G reads z ~ N(0, I); K >= 2: a mixture of K Gaussians (Ben-Yosef & Weinshall 2018); None = 20 for conv
    latent_modes: int | None = None
    encoder_recon_weight: float = 1.0  # weight of ||G(E(x)) - x||^2 against the latent regression
    encoder_epochs: int = 2  # 0: train E alongside G, step by step; N: train E for N epochs after the GAN
    image_size: int = 28  # images are channels x image_size x image_size: the data set's (core.datasets)
    channels: int = 1

    def __post_init__(self):
        check_choice("preset", self.preset, PRESETS)
        check_image(self.channels, self.image_size)
        check_choice("loss", self.loss, LOSSES)
        check_choice("d_norm", self.d_norm, D_NORMS)
        if self.mbstd is None:
            self.mbstd = self.preset == "conv"
        check_choice("mbstd", self.mbstd, (True, False))
        check_range("latent_dim", self.latent_dim, *LATENT_DIM_RANGE)
        check_range("width", self.width, 4, 256)
        check_range("ema", self.ema, 0.0, 0.99999)
        check_range("d_lr_ratio", self.d_lr_ratio, 0.01, 100.0)
        check_range("r1_gamma", self.r1_gamma, 0.0, 1000.0)
        for name, hi in (("r1_every", 64), ("d_steps", 10)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
            check_range(name, value, 1, hi)
        if self.g_width is not None:
            if not isinstance(self.g_width, int) or isinstance(self.g_width, bool):
                raise ValueError(f"g_width must be a whole number or None, got {self.g_width!r}")
            check_range("g_width", self.g_width, 4, 256)
        if self.latent_modes is None:  # docs/gan.md: the mixture raised precision and FD at full length (conv)
            self.latent_modes = DEFAULT_LATENT_MODES if self.preset == "conv" else 0
        if not isinstance(self.latent_modes, int) or isinstance(self.latent_modes, bool) or self.latent_modes == 1:
            raise ValueError(f"latent_modes must be 0 (one Gaussian) or a whole number >= 2, got {self.latent_modes!r}")
        check_range("latent_modes", self.latent_modes, 0, 1000)
        check_range("encoder_recon_weight", self.encoder_recon_weight, 0.0, 100.0)
        if not isinstance(self.encoder_epochs, int) or isinstance(self.encoder_epochs, bool):
            raise ValueError(f"encoder_epochs must be a whole number, got {self.encoder_epochs!r}")
        check_range("encoder_epochs", self.encoder_epochs, 0, 100)

    legacy_layout = False  # not a field (never written to config.json): from_saved sets it for old runs

    @classmethod
    def from_saved(cls, saved: dict) -> GANConfig:
        """A config as read from config.json: options missing there take their pre-option behaviour, and a
        config from before the options existed also rebuilds D's old module layout, so its weights load."""
        cfg = cls(**{**LEGACY, **saved})
        cfg.legacy_layout = "d_norm" not in saved  # not a field: never written back to config.json
        return cfg


class LatentMixture(nn.Module):
    """z ~ N(0, I) (B, d) -> a draw from (1/K) sum_k N(mu_k, I): mode k = floor(Phi(z_1) K), uniform over the
    K modes, then mu_k + z (mu_k + t z at temperature t). The means are fixed, drawn once from
    U(-spread, spread)^d (a seeded generator of their own, so building the net leaves the global random stream
    alone) and saved with the weights."""

    def __init__(self, latent_dim: int, modes: int, spread: float = 1.5):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("means", (torch.rand(modes, latent_dim, generator=g) * 2 - 1) * spread)

    def forward(self, z: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        u = 0.5 * (1 + torch.erf(z[:, 0].float() / 2**0.5))  # Phi(z_1): uniform on (0, 1)
        k = (u * len(self.means)).long().clamp_(0, len(self.means) - 1)
        # a temperature narrows the mode, not the pick (scaling z_1 first would favour the middle modes)
        return self.means[k].to(z.dtype) + z * temperature


class MinibatchStd(nn.Module):
    """(B, C, H, W) -> (B, C+1, H, W): append the mean over features of the per-feature standard
    deviation across the batch (Karras et al. 2018, Sec. 3), one constant map for the whole batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the statistic in fp32 (under bf16 autocast x is bfloat16), the map in x's dtype
        std = x.float().std(dim=0, unbiased=False).mean().to(x.dtype) if x.shape[0] > 1 else x.new_zeros(())
        return torch.cat([x, std.expand(x.shape[0], 1, *x.shape[2:])], dim=1)


def conv_discriminator(width: int, norm: str, mbstd: bool, channels: int = 1, size: int = 28) -> nn.Sequential:
    """(B, C, S, S) -> (B, 1) logits: DCGAN's two stride-2 convs, optional minibatch std, a linear head."""
    wrap = spectral_norm if norm == "spectral" else (lambda m: m)
    layers = [
        wrap(nn.Conv2d(channels, width, 4, 2, 1)),  # (B, w, 14, 14)
        nn.LeakyReLU(0.2),
        wrap(nn.Conv2d(width, 2 * width, 4, 2, 1)),  # (B, 2w, 7, 7)
        nn.BatchNorm2d(2 * width) if norm == "batch" else nn.Identity(),
        nn.LeakyReLU(0.2),
    ]
    features = 2 * width
    if mbstd:
        layers.append(MinibatchStd())
        features += 1
    return nn.Sequential(*layers, nn.Flatten(), wrap(nn.Linear(features * (size // 4) ** 2, 1)))


class GAN(nn.Module):
    default_lr = 2e-4  # DCGAN's (Radford et al. 2016) Adam settings, for G (D: times d_lr_ratio)
    default_betas = (0.5, 0.999)

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        c = config
        ch, size = c.channels, c.image_size
        flat = 2 * c.width * (size // 4) ** 2  # conv features: 2w x 7 x 7 for MNIST
        pixels = ch * size * size  # 784 for MNIST
        if c.preset == "conv":  # DCGAN-style: batch norm in G, none on D's input or G's output
            head = conv_image_head(c.latent_dim, 2 * (c.g_width or c.width), norm=True, channels=ch, size=size)
            self.generator = nn.Sequential(head, nn.Sigmoid())
            if c.legacy_layout:  # a run saved before the recipe options: conv_features + head
                self.discriminator = nn.Sequential(conv_features(c.width, norm=True, channels=ch), nn.Linear(flat, 1))
            else:
                self.discriminator = conv_discriminator(c.width, c.d_norm, c.mbstd, channels=ch, size=size)
            self.encoder = nn.Sequential(conv_features(c.width, channels=ch), nn.Linear(flat, c.latent_dim))
        else:  # the design document's generator z-128-256-784 (leaky ReLU, sigmoid); D and E mirror it
            if c.mbstd:
                raise ValueError("mbstd needs the conv preset")
            self.generator = nn.Sequential(mlp([c.latent_dim, 128, 256, pixels], out_act=nn.Sigmoid(), norm=True),
                                           nn.Unflatten(1, (ch, size, size)))
            # dropout keeps this dense D from overpowering the small G within the first epoch (it collapsed without)
            self.discriminator = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), mlp([pixels, 256, 128, 1], dropout=0.3))
            if c.d_norm == "spectral":
                for m in self.discriminator.modules():
                    if isinstance(m, nn.Linear):
                        spectral_norm(m)
            self.encoder = nn.Sequential(nn.Flatten(), mlp([pixels, 256, 128, c.latent_dim]))
        if c.latent_modes:
            self.generator.insert(0, LatentMixture(c.latent_dim, c.latent_modes))
        # G_ema: never trained by gradients, always in eval mode (its batch norm uses averaged statistics)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False).eval() if c.ema > 0 else None
        self.ema_updates = 0
        self.d_updates = 0  # D steps taken: G steps every d_steps-th, R1 every r1_every-th
        self.last_g: dict[str, float] = {}  # G's losses at its last update, reported between G updates
        self.last_r1 = 0.0  # the latest R1 penalty, reported on the steps lazy R1 skips
        self.encoder_trained = True  # False only between the start of training and fit_encoder
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def train(self, mode: bool = True) -> GAN:
        super().train(mode)
        if self.generator_ema is not None:
            self.generator_ema.eval()
        return self

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def can_embed(self) -> bool:
        return self.encoder_trained

    @property
    def sampler(self) -> nn.Module:
        """The generator that draws samples and that E inverts: G_ema when averaging, else G."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @property
    def renderer(self) -> nn.Module:
        """The sampler from codes on: without the mixture's mode pick when G reads a mixture."""
        return self.sampler[1:] if self.config.latent_modes else self.sampler

    # --- losses --------------------------------------------------------------------------------
    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        real_logits, fake_logits = real_logits.float(), fake_logits.float()  # bf16 autocast: losses in fp32
        if self.config.loss == "hinge":  # E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]
            return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        # -[log D(x) + log(1 - D(G(z)))], the negated value function D ascends (eq. 1)
        return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        fake_logits = fake_logits.float()
        if self.config.loss == "non-saturating":  # -log D(G(z))
            return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        if self.config.loss == "hinge":  # -E[D(G(z))]
            return -fake_logits.mean()
        # minimax: log(1 - D(G(z))) = -BCE(logits, 0)
        return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))

    # --- training ------------------------------------------------------------------------------
    def configure_optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, torch.optim.Optimizer]:
        # training starts: with E trained after the GAN, E reports nothing until fit_encoder has run
        self.encoder_trained = self.config.encoder_epochs == 0
        self.optimizers = {
            "d": torch.optim.Adam(self.discriminator.parameters(), lr=lr * self.config.d_lr_ratio, betas=betas),
            "g": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas),
            "e": torch.optim.Adam(self.encoder.parameters(), lr=lr, betas=betas),
        }
        # the ones fit() steps (and its lr schedule anneals): E's only when E trains alongside G
        return {k: v for k, v in self.optimizers.items() if k != "e" or self.config.encoder_epochs == 0}

    @torch.no_grad()
    def update_ema(self) -> None:
        """G_ema <- d * G_ema + (1 - d) * G, weights and batch-norm statistics alike. The decay ramps up
        as (1 + t) / (10 + t) so the first steps are not dominated by G's random initialisation."""
        if self.generator_ema is None:
            return
        self.ema_updates += 1
        d = min(self.config.ema, (1 + self.ema_updates) / (10 + self.ema_updates))
        for avg, cur in zip(self.generator_ema.state_dict().values(), self.generator.state_dict().values()):
            if avg.dtype.is_floating_point:
                avg.lerp_(cur, 1 - d)
            else:
                avg.copy_(cur)

    def r1_penalty(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(D's logits on real x, E_x[||grad_x D(x)||^2]) (Mescheder et al. 2018, eq. 9), differentiable in D."""
        x = x.detach().float().requires_grad_(True)
        with torch.autocast(x.device.type, enabled=False):  # the double backward in fp32, also under bf16
            logits = self.discriminator(x)
            (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
            return logits, grad.pow(2).flatten(1).sum(1).mean()

    def step(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        """One update of D (on detached fakes), then (every d_steps-th call) G, then E, on a batch of [0, 1]
        images."""
        c, opt = self.config, self.optimizers
        z = torch.randn(x.shape[0], c.latent_dim, device=x.device)
        fake = self.generator(z)  # (B, C, H, W)

        self.d_updates += 1
        r1 = c.r1_gamma > 0 and self.d_updates % c.r1_every == 0
        if r1:
            real_logits, penalty = self.r1_penalty(x)
        else:
            real_logits = self.discriminator(x)
        fake_logits = self.discriminator(fake.detach())
        d_loss = self.discriminator_loss(real_logits, fake_logits)
        d_total = d_loss + (c.r1_gamma / 2 * c.r1_every) * penalty if r1 else d_loss
        opt["d"].zero_grad(set_to_none=True)
        d_total.backward()
        opt["d"].step()

        if (self.d_updates - 1) % c.d_steps == 0:  # G after the 1st, (k+1)-th, ... D step: k D steps per G step
            g_loss = self.generator_loss(self.discriminator(fake))
            opt["g"].zero_grad(set_to_none=True)
            g_loss.backward()
            opt["g"].step()
            self.update_ema()
            self.last_g = {"g_loss": g_loss.item()}
        out = {
            "d_loss": d_loss.item(),
            **self.last_g,
            # sigmoid of D's output: D's probability for the BCE losses; for hinge only a squashed score
            "d_real": torch.sigmoid(real_logits.float()).mean().item(),  # mean D(x)
            "d_fake": torch.sigmoid(fake_logits.float()).mean().item(),  # mean D(G(z)), before this step's update
        }
        if c.r1_gamma > 0:
            if r1:
                self.last_r1 = penalty.item()
            out["r1"] = self.last_r1
        if self.config.encoder_epochs == 0:
            target_fake = fake.detach() if self.generator_ema is None else self.generator_ema(z)
            out.update(self.encoder_step(x, z, target_fake))
        return out

    def encoder_step(self, x: torch.Tensor, z: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
        e_latent, e_recon = self.encoder_losses(x, z, fake)
        e_loss = e_latent + self.config.encoder_recon_weight * e_recon
        self.optimizers["e"].zero_grad(set_to_none=True)
        e_loss.backward()
        self.optimizers["e"].step()
        return {"e_loss": e_loss.item(), "e_latent": e_latent.item(), "e_recon": e_recon.item()}

    def fit_after(self, images: torch.Tensor, batch_size: int, generator: torch.Generator) -> dict | None:
        """With `encoder_epochs` > 0, E is trained now, against the final (kept) generator."""
        if not self.config.encoder_epochs:
            return None
        # fresh optimizers: a cosine schedule in fit has annealed E's learning rate to 0 with the others
        lr = self.optimizers["g"].defaults["lr"] if self.optimizers else self.default_lr
        self.configure_optimizers(lr, self.default_betas)
        return self.fit_encoder(images, batch_size, generator)

    def fit_encoder(self, images: torch.Tensor, batch_size: int, generator: torch.Generator,
                    on_epoch=None) -> dict[str, list[float]]:
        """Train E for `encoder_epochs` epochs against the fixed sampling generator, on uint8 `images`;
        returns the per-epoch mean losses {"epoch", "e_loss", "e_latent", "e_recon"}."""
        from core.data import batches

        history: dict[str, list] = {"epoch": []}
        g = self.sampler
        for epoch in range(1, self.config.encoder_epochs + 1):
            self.encoder.train()
            sums, seen = {}, 0
            for x, _ in batches(images, images.new_zeros(len(images)), batch_size, shuffle=True, generator=generator):
                z = torch.randn(x.shape[0], self.config.latent_dim, device=x.device)
                with torch.no_grad(), evaluating(g):
                    fake = g(z)
                for k, v in self.encoder_step(x, z, fake).items():
                    sums[k] = sums.get(k, 0.0) + v * x.shape[0]
                seen += x.shape[0]
            history["epoch"].append(epoch)
            for k, v in sums.items():
                history.setdefault(k, []).append(round(v / seen, 6))
            if on_epoch:
                on_epoch(epoch)
        self.encoder_trained = True
        self.eval()
        return history

    def reset_encoder(self) -> None:
        """E back to fresh weights (drawn from the global random stream), to be trained again by fit_after."""
        for m in self.encoder.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        self.encoder_trained = False

    def encoder_losses(self, x: torch.Tensor, z: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(||E(G(z)) - code(z)||^2 per latent dim, ||G(E(x)) - x||^2 per pixel); gradients reach E only.
        `fake` = G(z) from the sampling generator; G is that generator too (from codes on)."""
        latent = F.mse_loss(self.encoder(fake), self.code(z))
        g = self.sampler  # its mode is G's (a slice of it, the renderer, is a new module in train mode)
        g_mode = g.training
        g.eval()  # use (and do not update) G's running batch-norm statistics
        flags = [p.requires_grad for p in g.parameters()]
        for p in g.parameters():
            p.requires_grad_(False)
        recon = F.mse_loss(self.renderer(self.encoder(x)), x)
        for p, flag in zip(g.parameters(), flags):
            p.requires_grad_(flag)
        g.train(g_mode)
        return latent, recon

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 1000,
                 seed: int = 0) -> dict[str, float]:
        """On held-out uint8 images: mean D(x), mean D(G(z)) for fixed z, and E's reconstruction error
        (once E is trained)."""
        from core.data import to_float

        with evaluating(self):
            g = torch.Generator(device=images.device).manual_seed(seed)
            sums = {"d_real": 0.0, "d_fake": 0.0, **({"e_recon": 0.0} if self.encoder_trained else {})}
            for start in range(0, images.shape[0], batch_size):
                x = to_float(images[start:start + batch_size])
                z = torch.randn(x.shape[0], self.config.latent_dim, generator=g, device=x.device)
                sums["d_real"] += torch.sigmoid(self.discriminator(x)).sum().item()
                sums["d_fake"] += torch.sigmoid(self.discriminator(self.sample(z))).sum().item()
                if self.encoder_trained:
                    err = F.mse_loss(self.reconstruct(x), x, reduction="none")
                    sums["e_recon"] += err.flatten(1).mean(1).sum().item()
        return {k: v / images.shape[0] for k, v in sums.items()}

    # --- using it ------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (B, latent_dim) -> images (B, C, H, W) in [0, 1], from G_ema when averaging."""
        return self.sampler(z)

    def code(self, z: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """z -> the code G decodes: the mixture's w = mu_k + t z when G reads one (mode k from z), else t z."""
        return self.sampler[0](z, temperature) if self.config.latent_modes else z * temperature

    @torch.no_grad()
    def render(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (as embed returns them, or code(z)) -> images in [0, 1], from G_ema when averaging."""
        return self.renderer(codes)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> latent codes E(x)."""
        return self.encoder(x)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x)), with the sampling generator."""
        return self.render(self.encoder(x))
