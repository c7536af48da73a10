"""Model registry: the names `vae` and `gan` are used for folders, the CLI and config.json alike."""

from __future__ import annotations

import dataclasses

from core.models.classifier import Classifier, ClassifierConfig
from core.models.gan import GAN, GANConfig
from core.models.vae import VAE, VAEConfig

REGISTRY = {
    "vae": (VAE, VAEConfig),
    "gan": (GAN, GANConfig),
    "classifier": (Classifier, ClassifierConfig),
}


def build_model(kind: str, config: dict | None = None, saved: bool = False):
    """Instantiate a registered model from a plain dict; unknown keys or kinds are errors.

    `saved`: the dict comes from a config.json, where an option missing means the behaviour from before
    that option existed (a config class may say what that was with `from_saved`)."""
    if kind not in REGISTRY:
        raise ValueError(f"unknown model {kind!r}; choose one of {sorted(REGISTRY)}")
    cls, cfg_cls = REGISTRY[kind]
    config = dict(config or {})
    known = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{cfg_cls.__name__} has no field(s) {unknown}; known: {sorted(known)}")
    if saved and hasattr(cfg_cls, "from_saved"):
        return cls(cfg_cls.from_saved(config))
    return cls(cfg_cls(**config))


def kind_of(model) -> str:
    for kind, (cls, _) in REGISTRY.items():
        if isinstance(model, cls):
            return kind
    raise TypeError(f"not a registered model: {type(model).__name__}")
