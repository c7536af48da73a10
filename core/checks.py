"""Argument checks shared by the config classes, the retrain jobs and the CLI: one wording for every range
error. Also the one range of the latent size, which every model, the CLI and the Retrain form use. Torch-free."""

from __future__ import annotations

LATENT_DIM_DEFAULT = 32  # size of z for the VAE and the GAN alike, so their latent spaces compare
LATENT_DIM_RANGE = (2, 512)


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")


def check_range(name: str, value, lo, hi) -> None:
    """A number (not a bool) in [lo, hi]."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in [{lo}, {hi}], got {value!r}")


def check_int(name: str, value, lo: int, hi: int) -> None:
    """A whole number (not a bool, not a float) in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number in [{lo}, {hi}], got {value!r}")
