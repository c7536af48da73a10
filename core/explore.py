"""Hands-on exploration of a trained model: a hand-drawn digit prepared as MNIST's digits were, the VAE's
per-dimension KL and active units, traversals of latent dimensions or principal directions, and the
nearest neighbours that place a new code on a precomputed map.

Images are floats in [0, 1] (white ink on black) unless said otherwise; latent codes are float32 numpy.
"""

from __future__ import annotations

import numpy as np
import torch

from core import families
from core.models.base import DiagonalGaussian, LikelihoodModel

SIDE = 28  # MNIST's field
BOX = 20  # the box the ink is fitted into (LeCun et al.: "normalized to fit in a 20x20 pixel box")
ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016, Sec. 5.2: unit j is active when Cov_x(E_q[z_j]) > 0.01


# --- preparing a drawing or an upload --------------------------------------------------------------
def to_grey(image: np.ndarray) -> np.ndarray:
    """An (H, W), (H, W, 3) or (H, W, 4) image (uint8 or floats in [0, 1]) -> (H, W) floats in [0, 1],
    white ink on black. RGBA is composited on black (a canvas' untouched pixels are transparent), or on white
    when its visible pixels are mostly dark (dark ink on a transparent sheet); an image whose border is mostly
    bright (dark ink on paper) is inverted; the border's median level (the paper's grey) becomes black."""
    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)) or min(a.shape[:2]) < 1:
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {a.shape}")
    a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0)
    if a.ndim == 3:
        alpha = a[..., 3] if a.shape[2] == 4 else 1.0
        rgb = a[..., :3] if a.shape[2] >= 3 else np.repeat(a[..., :1], 3, axis=2)
        lum = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        # composited on black, unless what is visible is dark ink (a drawing on a transparent sheet): then on white
        ink = float((lum * alpha).sum() / max(float(np.sum(alpha)), 1e-6)) if a.shape[2] == 4 else 1.0
        a = lum * alpha + (1.0 - alpha) * (ink < 0.5)
    a = np.clip(a, 0.0, 1.0)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if border.mean() > 0.5:
        a, border = 1.0 - a, 1.0 - border
    # the background to black: photographed paper is light grey, not white, and would otherwise count as ink
    background = float(np.median(border))
    return np.clip((a - background) / (1.0 - background), 0.0, 1.0) if background < 1.0 else np.zeros_like(a)


def prepare(grey: np.ndarray, ink: float = 0.1, side: int = SIDE, box: int = BOX) -> np.ndarray | None:
    """Prepare a digit as MNIST's were made (LeCun et al. 1998): the ink's bounding box fitted into 20x20
    pixels keeping its aspect ratio (anti-aliased, hence grey levels), then placed in a 28x28 field with
    its centre of mass at the field's centre. (H, W) floats in [0, 1], white on black -> (28, 28) floats
    with maximum 1, or None when there is no ink (no pixel above `ink` times the brightest). Another data
    set gives its own field `side` and `box` (Fashion-MNIST: 28 and 28, its images fill the field)."""
    import torch.nn.functional as F

    g = np.asarray(grey, dtype=np.float32)
    if g.ndim != 2:
        raise ValueError(f"expected an (H, W) grey image, got shape {g.shape}")
    peak = float(g.max()) if g.size else 0.0
    if peak <= 0.02:
        return None
    rows, cols = np.nonzero(g > ink * peak)
    crop = g[rows.min():rows.max() + 1, cols.min():cols.max() + 1] / peak
    h, w = crop.shape
    scale = box / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    patch = F.interpolate(torch.from_numpy(np.ascontiguousarray(crop))[None, None], size=size, mode="bilinear",
                          antialias=True, align_corners=False)[0, 0].clamp(0, 1).numpy()
    patch = patch / max(float(patch.max()), 1e-6)
    cy, cx = centre_of_mass(patch)
    centre = (side - 1) / 2
    top = int(np.clip(round(centre - cy), 0, side - patch.shape[0]))
    left = int(np.clip(round(centre - cx), 0, side - patch.shape[1]))
    out = np.zeros((side, side), np.float32)
    out[top:top + patch.shape[0], left:left + patch.shape[1]] = patch
    return out


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(image.shape)
    m = image.sum()
    return float((ys * image).sum() / m), float((xs * image).sum() / m)


# --- the VAE's posterior ---------------------------------------------------------------------------
def has_posterior(model) -> bool:
    """The model has a Gaussian recognition model q(z|x) and a likelihood bound: it offers the likelihood
    protocol (core.models.base.LikelihoodModel: the VAE, or any family that implements it)."""
    return isinstance(model, LikelihoodModel)


def has_encoder(model) -> bool:
    """The model maps images to codes with a trained encoder (a VAE; a GAN whose E was trained): its family
    record says has_encoder and the model says can_embed."""
    return families.family_of(model).has_encoder and model.can_embed


def _batches(images: np.ndarray, batch_size: int = 500):
    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    for start in range(0, len(x), batch_size):
        yield torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size]))[:, None]  # (B, 1, 28, 28)


@torch.no_grad()
def posterior(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) images (uint8, or floats in [0, 1]) -> mu, logvar of q(z|x), each (N, latent_dim)."""
    qs = [model.posterior(x) for x in _batches(images)]
    return torch.cat([q.mean for q in qs]).numpy(), torch.cat([q.logvar for q in qs]).numpy()


def per_dim_kl(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean over images of KL(q(z_j|x) || N(0, 1)) for each latent dimension j, in nats (the posterior's own
    closed form, in float64). Its sum is the KL term of the ELBO; a dimension near 0 nats carries no
    information about x (posterior collapse)."""
    q = DiagonalGaussian(torch.from_numpy(np.asarray(mu, np.float64)), torch.from_numpy(np.asarray(logvar, np.float64)))
    return q.kl_per_dim().mean(0).numpy()


def activity(mu: np.ndarray) -> np.ndarray:
    """Cov_x(E_q[z_j]) for each dimension: the variance over images of the posterior mean (Burda et al. 2016)."""
    return np.asarray(mu, np.float64).var(axis=0)


def active_units(mu: np.ndarray, threshold: float = ACTIVE_THRESHOLD) -> np.ndarray:
    """Indices of the active units, most active first (Burda et al. 2016: Cov_x(E_q[z_j]) > 0.01)."""
    a = activity(mu)
    order = np.argsort(-a, kind="stable")
    return order[a[order] > threshold]


@torch.no_grad()
def neg_elbo(model, images: np.ndarray, samples: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """Per-image -ELBO = reconstruction + KL in nats, for (N, 28, 28) grey images in [0, 1] (or uint8).

    The VAE was trained on digits binarized afresh each time (pixel i is 1 with probability x_i). The
    Bernoulli log-likelihood is linear in its target, so the cross-entropy against the grey levels is exactly
    the expected -log p(b|z) over those binarizations: the number is comparable with the test set's -ELBO.
    E_q[-log p(x|z)] is averaged over `samples` draws of z (fixed seed); the KL is in closed form. The model
    computes it (core.models.base.LikelihoodModel.neg_elbo)."""
    g = torch.Generator().manual_seed(seed)
    parts = [model.neg_elbo(x, samples, g) for x in _batches(images)]
    res = {k: torch.cat([p[k] for p in parts]).numpy().astype(np.float64) for k in ("reconstruction", "kl")}
    res["neg_elbo"] = res["reconstruction"] + res["kl"]
    return res


# --- principal directions and traversals ---------------------------------------------------------------
def principal_directions(codes: np.ndarray, k: int | None = None) -> dict[str, np.ndarray]:
    """PCA of latent codes: mean (D,), unit directions (k, D), the codes' standard deviation along each (k,)
    and the fraction of variance each explains (k,). The same SVD as core.embed.pca, so projecting a new code
    with `project` lands exactly where the PCA map puts the codes it was fitted on."""
    codes = np.asarray(codes, np.float32)
    mean = codes.mean(axis=0, keepdims=True)
    centred = codes - mean
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = len(s) if k is None else min(k, len(s))
    var = s ** 2 / len(codes)
    return {"mean": mean[0], "directions": vt[:k], "std": np.sqrt(var[:k]),
            "explained": var[:k] / max(var.sum(), 1e-12)}


def project(codes: np.ndarray, pca: dict[str, np.ndarray], k: int = 2) -> np.ndarray:
    """Coordinates of codes (N, D) on the first k principal directions (the PCA map's axes)."""
    return ((np.asarray(codes, np.float32) - pca["mean"]) @ pca["directions"][:k].T).astype(np.float32)


def traversal_codes(z0: np.ndarray, directions: np.ndarray, centres: np.ndarray, scales: np.ndarray,
                    steps: int = 9, span: float = 3.0) -> np.ndarray:
    """One row per direction u_r (unit vectors, (R, D)): the code z0 with its component along u_r replaced by
    centre_r + t * scale_r for t from -span to +span in `steps` steps. Latent dimension j is u = e_j.
    Returns (R * steps, D) codes, row by row."""
    z0 = np.asarray(z0, np.float32)
    u = np.asarray(directions, np.float32)
    t = np.linspace(-span, span, steps, dtype=np.float32)
    along = np.asarray(centres, np.float32)[:, None] + t[None, :] * np.asarray(scales, np.float32)[:, None]  # (R, S)
    base = z0[None, :] - (u @ z0)[:, None] * u  # z0 without its component along u_r, (R, D)
    return (base[:, None, :] + along[:, :, None] * u[:, None, :]).reshape(-1, z0.shape[0])


def axis_directions(dims: np.ndarray, latent_dim: int) -> np.ndarray:
    """Unit vectors e_j for the given dimensions, (len(dims), latent_dim)."""
    return np.eye(latent_dim, dtype=np.float32)[np.asarray(dims, dtype=int)]


# --- neighbours ------------------------------------------------------------------------------------
def squared_norms(reference: np.ndarray, chunk: int = 10_000) -> np.ndarray:
    """|r|^2 of each row of `reference` (uint8 read as /255), to pass to `nearest` for repeated searches."""
    out = np.empty(len(reference), np.float32)
    for start in range(0, len(reference), chunk):
        r = np.asarray(reference[start:start + chunk])
        rf = r.reshape(len(r), -1).astype(np.float32) / (255.0 if r.dtype == np.uint8 else 1.0)
        out[start:start + len(r)] = np.einsum("ij,ij->i", rf, rf)
    return out


def nearest(query: np.ndarray, reference: np.ndarray, k: int = 8, chunk: int = 10_000,
            ref_sq: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of `reference` closest to `query` in Euclidean distance, nearest first: (indices, distances).
    Works for images ((28, 28) query, (N, 28, 28) reference; uint8 is read as /255) and codes ((D,), (N, D)).
    `ref_sq` (from `squared_norms`) saves a pass over the reference: |r - q|^2 = |r|^2 - 2 r.q + |q|^2."""
    q = np.asarray(query, np.float32)
    q = (q / 255.0 if np.asarray(query).dtype == np.uint8 else q).reshape(-1)
    k = min(k, len(reference))
    dists = np.empty(len(reference), np.float32)
    for start in range(0, len(reference), chunk):
        r = np.asarray(reference[start:start + chunk])
        scale = 255.0 if r.dtype == np.uint8 else 1.0
        flat = r.reshape(len(r), -1)
        if ref_sq is None:
            rf = flat.astype(np.float32) / scale
            d2 = ((rf - q) ** 2).sum(axis=1)
        else:
            d2 = ref_sq[start:start + len(r)] - 2.0 * (flat @ (q / scale)) + q @ q
        dists[start:start + len(r)] = np.sqrt(np.maximum(d2, 0.0))
    idx = np.argpartition(dists, k - 1)[:k] if k < len(dists) else np.arange(len(dists))
    idx = idx[np.argsort(dists[idx], kind="stable")]
    return idx, dists[idx]


def place_by_neighbours(code: np.ndarray, codes: np.ndarray, coords: np.ndarray,
                        k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Where a new code goes on a map that cannot place new points (t-SNE): the mean map position of its k
    nearest codes in latent space. Returns ((2,) position, the neighbours' row indices)."""
    idx, _ = nearest(code, codes, k)
    return np.asarray(coords, np.float32)[idx].mean(axis=0), idx


__all__ = ["to_grey", "prepare", "posterior", "per_dim_kl", "activity", "active_units", "neg_elbo",
           "principal_directions", "project", "traversal_codes", "axis_directions", "nearest", "squared_norms",
           "place_by_neighbours", "has_posterior", "has_encoder", "ACTIVE_THRESHOLD"]
