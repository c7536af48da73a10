"""Model families: one record per family says everything the rest of the code needs to know about it.

The CLI's choices, the retrain jobs' checks and run names, the Hub model card, the dashboard's labels,
colours, plots and Retrain form all read these records; nothing else lists the families. This module
imports no torch (the CLI's --help and the jobs dispatcher read it): a record names its model and config
classes by import path, and `model_class()` / `config_class()` import them when first needed.

Adding a family: a model module (a class with the contract in core.models.base) and one `register(...)`
call, here for the built-in ones or anywhere before use for a plug-in (tests/core/test_families.py does it).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from core.registry import Registry


class Curve(NamedTuple):
    """One panel of the Training curves page: history.json columns drawn together."""

    title: str
    y_title: str
    series: tuple[tuple[str, str], ...]  # (history key, suffix in the legend)


@dataclass(frozen=True)
class Family:
    name: str  # folder names, the CLI, config.json's "model"
    label: str  # shown to people
    model: str | type  # the nn.Module, or "module:Class"
    config: str | type  # its config dataclass, or "module:Class"
    paper: str = ""  # the citation for the model card and the Concepts page
    color: str = "#6b7280"  # its colour in every chart
    presets: tuple[str, ...] = ()  # architectures its config's `preset` accepts
    generative: bool = True  # draws images from z ~ N(0, I): the dashboard compares these families
    has_encoder: bool = True  # images -> latent codes (embed, reconstruct, the latent map)
    has_likelihood: bool = False  # a bound on log p(x) (-ELBO, IWAE) that evaluation can report
    code_label: str = "encoder(x)"  # how the pages write its code of an image
    reconstruction_label: str = "decoder(encoder(x))"  # ... and its reconstruction of one
    curves: tuple[Curve, ...] = ()  # Training curves page
    live_losses: tuple[str, ...] = ()  # step losses plotted while a retrain job runs
    held_out: tuple[tuple[str, str, str, str], ...] = ()  # (metrics.json held_out key, label, format, help): Overview
    epoch_s: dict[str, float] = field(default_factory=dict)  # preset -> rough seconds per epoch, 1 CPU core

    def model_class(self) -> type:
        return _resolve(self.model)

    def config_class(self) -> type:
        return _resolve(self.config)

    def config_fields(self) -> set[str]:
        return {f.name for f in dataclasses.fields(self.config_class())}


def _resolve(target: str | type) -> type:
    if not isinstance(target, str):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


FAMILIES = Registry("model")
register, unregister, get, names = FAMILIES.register, FAMILIES.unregister, FAMILIES.record, FAMILIES.names


def generative() -> list[Family]:
    """The families the dashboard compares, in registration order (VAE first, then GAN)."""
    return [f for f in FAMILIES.values() if f.generative]


def family_of(model) -> Family:
    """The record of a model instance (by its class)."""
    for f in FAMILIES.values():
        if isinstance(model, f.model_class()):
            return f
    raise TypeError(f"not a registered model: {type(model).__name__}")


class Attr(Mapping):
    """name -> one attribute of the registered records, read at each lookup: Attr("label")["vae"] == "VAE"."""

    def __init__(self, attr: str):
        self.attr = attr

    def __getitem__(self, name: str):
        if name not in FAMILIES:
            raise KeyError(name)
        return getattr(FAMILIES[name], self.attr)

    def __iter__(self):
        return iter(FAMILIES)

    def __len__(self) -> int:
        return len(FAMILIES)


# --- the built-in families -------------------------------------------------------------------------
register(Family(
    name="vae", label="VAE", model="core.models.vae:VAE", config="core.models.vae:VAEConfig",
    paper='Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014. https://arxiv.org/abs/1312.6114',
    color="#2563eb", presets=("conv", "seed"), has_likelihood=True, code_label="μ(x)",
    reconstruction_label="decoder(μ(x))",
    curves=(Curve("−ELBO (loss)", "nats / image", (("neg_elbo", ""),)),
            Curve("Reconstruction −log p(x|z)", "nats / image", (("reconstruction", ""),)),
            Curve("KL(q(z|x) ‖ p(z))", "nats / image", (("kl", ""),))),
    live_losses=("neg_elbo", "reconstruction", "kl"),
    held_out=(("neg_elbo", "Test −ELBO ↓", "{:.1f}",
               "Negative evidence lower bound in nats per image on the whole test set: an upper bound on "
               "−log p(x). Lower is better."),),
    epoch_s={"seed": 3.0, "conv": 20.0},
))
register(Family(
    name="gan", label="GAN", model="core.models.gan:GAN", config="core.models.gan:GANConfig",
    paper='Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014. https://arxiv.org/abs/1406.2661',
    color="#dc2626", presets=("conv", "seed"), code_label="E(x)", reconstruction_label="G(E(x))",
    curves=(Curve("Discriminator and generator losses", "loss", (("d_loss", " D"), ("g_loss", " G"))),
            Curve("Mean D(x) and D(G(z))", "probability", (("d_real", " D(x)"), ("d_fake", " D(G(z))")))),
    live_losses=("d_loss", "g_loss"),
    held_out=(("e_recon", "Recon. MSE ↓", "{:.4f}",
               "Pixel mean squared error of G(E(x)) on the test digits, E being the encoder trained to invert G. "
               "Lower is better."),),
    epoch_s={"seed": 10.0, "conv": 45.0},
))
register(Family(
    name="classifier", label="Classifier", model="core.models.classifier:Classifier",
    config="core.models.classifier:ClassifierConfig", generative=False, has_encoder=False,
))
