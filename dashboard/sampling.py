"""Generation for the pages: latent codes from a seed, interpolations, decoding them with a run's model, grids."""

from __future__ import annotations

import numpy as np
import torch

from core.images import make_grid
from dashboard.runs import model


def latent_codes(seed: int, n: int, dim: int) -> np.ndarray:
    """n draws z ~ N(0, I) from a seed: the same codes for every model of that latent size."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim)).astype(np.float32)


def interpolation(z0: np.ndarray, z1: np.ndarray, steps: int, mode: str = "spherical") -> np.ndarray:
    """Codes from z0 to z1. Spherical (slerp) keeps the norm typical of a Gaussian sample; linear
    passes through low-norm codes near the origin, which neither model saw much of in training."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    if mode == "linear":
        return (1 - t) * z0 + t * z1
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1) + 1e-8)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-4:
        return (1 - t) * z0 + t * z1
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def generate(path: str, z: np.ndarray) -> np.ndarray:
    """Decode latent codes with the run's generator: (n, 28, 28) floats in [0, 1]."""
    with torch.inference_mode():
        return model(path).sample(torch.from_numpy(np.ascontiguousarray(z)))[:, 0].numpy()


def codes_of(path: str, z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Prior draws z -> the codes the run's generator decodes them from (the space its encoder maps into),
    at a temperature: t * z, except for a GAN fed a mixture of Gaussians (there mu_k + t * z)."""
    with torch.inference_mode():
        return model(path).code(torch.from_numpy(np.ascontiguousarray(z)), temperature).numpy()


def render(path: str, codes: np.ndarray) -> np.ndarray:
    """Decode codes (from codes_of, or a model's encoder) with the run's generator: (n, 28, 28) in [0, 1]."""
    with torch.inference_mode():
        return model(path).render(torch.from_numpy(np.ascontiguousarray(codes)))[:, 0].numpy()


def reconstruct(path: str, images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> the model's reconstructions (VAE: decoder(mu); GAN: G(E(x)))."""
    x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
    with torch.inference_mode():
        return model(path).reconstruct(x)[:, 0].numpy()


def grid(images: np.ndarray, ncol: int | None = None, scale: int = 2) -> np.ndarray:
    """(n, H, W) floats in [0, 1] or uint8 -> one uint8 image, upscaled by an integer factor for crisp pixels."""
    return make_grid(images, nrow=ncol, scale=scale)
