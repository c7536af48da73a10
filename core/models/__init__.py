"""Building models from their family records (core.families): `build_model("vae", {...})`."""

from __future__ import annotations

import dataclasses

from core import families


def build_model(kind: str, config: dict | None = None, saved: bool = False):
    """Instantiate a registered family's model from a plain dict; unknown keys or kinds are errors.

    `saved`: the dict comes from a config.json, where an option missing means the behaviour from before
    that option existed (a config class may say what that was with `from_saved`)."""
    family = families.get(kind)
    cls, cfg_cls = family.model_class(), family.config_class()
    config = dict(config or {})
    known = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{cfg_cls.__name__} has no field(s) {unknown}; known: {sorted(known)}")
    if saved and hasattr(cfg_cls, "from_saved"):
        return cls(cfg_cls.from_saved(config))
    return cls(cfg_cls(**config))


def kind_of(model) -> str:
    return families.family_of(model).name
