"""Evaluation metrics: pure functions on feature arrays, class probabilities, images and a VAE.

Features come from the evaluation classifier's penultimate layer (core.models.classifier): Inception
features mean nothing on 28x28 digits. Everything here is computed in float64 where sums of many
terms meet, and batched so no distance matrix larger than `batch_size` rows is held at once.
"""

from __future__ import annotations

import numpy as np
import torch

from core.data import binarize, to_float
from core.models.layers import evaluating


def _f64(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().cpu().double()


# --- distribution distances in feature space ------------------------------------------------------
def frechet_distance(feats_a, feats_b) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D) (Heusel et al. 2017, FID):

        ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

    Tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of S_a S_b (real and >= 0 for
    covariance matrices), as torchmetrics computes it; this avoids scipy's sqrtm and its complex parts.
    """
    a, b = _f64(feats_a), _f64(feats_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two (N>=2, D) feature sets of the same D, got {tuple(a.shape)} and {tuple(b.shape)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    sqrt_trace = torch.linalg.eigvals(cov_a @ cov_b).sqrt().real.sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * sqrt_trace)


def kid(feats_real, feats_fake, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): the unbiased MMD^2 with the polynomial kernel
    k(x, y) = (x.y / D + 1)^3, averaged over random subsets. Returns (mean, std) over the subsets.

    The kernel and the unbiased estimator are torchmetrics'; the subset loop is ours so it is seeded.
    Unlike FID it has no bias from the sample size, so it may come out slightly negative.
    """
    from torchmetrics.image.kid import poly_mmd

    real, fake = _f64(feats_real), _f64(feats_fake)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(real)} and {len(fake)}")
    g = torch.Generator().manual_seed(seed)
    values = torch.stack([
        poly_mmd(real[torch.randperm(len(real), generator=g)[:m]], fake[torch.randperm(len(fake), generator=g)[:m]])
        for _ in range(subsets)
    ])
    return float(values.mean()), float(values.std()) if subsets > 1 else 0.0


# --- precision and recall (Kynkaanniemi et al. 2019) ------------------------------------------------
def knn_radii(feats: torch.Tensor, k: int = 3, batch_size: int = 2048) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row: the radius of its ball in the manifold estimate."""
    if len(feats) <= k:
        raise ValueError(f"need more than k={k} points for k-NN radii, got {len(feats)}")
    # column k of the k+1 smallest distances: column 0 is the point itself
    return torch.cat([torch.cdist(feats[i:i + batch_size], feats).topk(k + 1, largest=False).values[:, k]
                      for i in range(0, len(feats), batch_size)])


def precision_recall(feats_real, feats_fake, k: int = 3, batch_size: int = 1024,
                     real_radii: torch.Tensor | None = None) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., NeurIPS 2019, Sec. 2).

    Each set's manifold is the union of balls around its points with radius = distance to the k-th
    nearest neighbour. Precision: fraction of fake samples inside the real manifold (quality).
    Recall: fraction of real samples inside the fake manifold (coverage of the real distribution).
    `real_radii` = knn_radii(feats_real, k) may be passed in when one real set meets several fake ones.
    """
    real, fake = (torch.as_tensor(np.asarray(f) if not isinstance(f, torch.Tensor) else f).float().cpu()
                  for f in (feats_real, feats_fake))
    r_real = knn_radii(real, k, batch_size) if real_radii is None else real_radii
    r_fake = knn_radii(fake, k, batch_size)
    fake_inside = torch.zeros(len(fake), dtype=torch.bool)
    real_covered = torch.zeros(len(real), dtype=torch.bool)
    for i in range(0, len(fake), batch_size):  # one pass over the fake x real distances serves both
        d = torch.cdist(fake[i:i + batch_size], real)  # (b, N_real)
        fake_inside[i:i + batch_size] = (d <= r_real[None, :]).any(1)
        real_covered |= (d <= r_fake[i:i + batch_size, None]).any(0)
    return fake_inside.float().mean().item(), real_covered.float().mean().item()


# --- class coverage ---------------------------------------------------------------------------------
MISSING_FRACTION, STARVED_FRACTION = 0.1, 0.5  # of the uniform share 1/K


def flagged_classes(histogram) -> tuple[list[int], list[int]]:
    """(missing, starved): classes below 0.1/K and below 0.5/K of the samples."""
    k = len(histogram)
    return ([c for c in range(k) if histogram[c] < MISSING_FRACTION / k],
            [c for c in range(k) if histogram[c] < STARVED_FRACTION / k])


LEGIBLE_CONFIDENCE = 0.9  # the classifier's top probability above which a sample counts as legible


def class_coverage(probs) -> dict:
    """Class statistics of samples from the classifier's probabilities (N, K).

    histogram: fraction of samples per predicted class; kl_to_uniform: KL(histogram || uniform) in nats
    (0 = balanced, log K = one class only); missing: classes below 0.1/K of the samples (a dropped
    mode); starved: below 0.5/K; coverage: fraction of classes not missing; mean_confidence: mean
    max-probability (low = ambiguous digits); legible_share: fraction read with confidence above
    LEGIBLE_CONFIDENCE (a digit a reader would name at once).
    """
    p = _f64(probs)
    n, k = p.shape
    hist = torch.bincount(p.argmax(1), minlength=k).double() / n
    nz = hist > 0
    kl = float((hist[nz] * (hist[nz] * k).log()).sum())  # 0 log 0 = 0
    missing, starved = flagged_classes(hist.tolist())
    return {
        "histogram": hist.tolist(),
        "kl_to_uniform": kl,
        "missing": missing,
        "starved": starved,
        "coverage": 1 - len(missing) / k,
        "collapsed": bool(missing),
        "mean_confidence": float(p.max(1).values.mean()),
        "legible_share": float((p.max(1).values > LEGIBLE_CONFIDENCE).double().mean()),
    }


# --- memorization -----------------------------------------------------------------------------------
def nearest_neighbours(queries: torch.Tensor, reference: torch.Tensor,
                       batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel L2 distance from each query image to its nearest reference image, and that image's index.

    Images are (N, 1, 28, 28), uint8 or floats in [0, 1]; distances are in [0, 1]-pixel units.
    """
    def flat(x, lo, hi):
        x = x[lo:hi]
        return (to_float(x) if x.dtype == torch.uint8 else x.float()).flatten(1)

    ref = flat(reference, 0, len(reference))
    dists, idx = [], []
    for i in range(0, len(queries), batch_size):
        q = flat(queries, i, i + batch_size)
        j = torch.cdist(q, ref).argmin(1)
        # cdist's matrix-product shortcut loses ~1e-2 near 0; the distance to the chosen image is recomputed exactly
        dists.append((q - ref[j]).norm(dim=1))
        idx.append(j)
    return torch.cat(dists), torch.cat(idx)


# --- a likelihood bound ---------------------------------------------------------------------------------
@torch.no_grad()
def iwae_bound(model, images: torch.Tensor, k: int = 100, seed: int = 0, batch_size: int = 8) -> dict[str, float]:
    """-IWAE and -ELBO in nats per image on dynamically binarized uint8 images (Burda et al. 2016), from a model
    with a likelihood (core.models.base.LikelihoodModel.neg_iwae: the ELBO reported the way the loss computes
    it, analytic KL, the reconstruction term averaged over the same k draws). Binarization and the draws come
    from a forked RNG seeded with `seed`, so results repeat exactly."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    with evaluating(model):
        neg_iwae = neg_elbo = 0.0
        fork = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=fork):
            torch.manual_seed(seed)
            for start in range(0, len(images), batch_size):
                x = binarize(to_float(images[start:start + batch_size]))  # (B, 1, 28, 28)
                bounds = model.neg_iwae(x, k)
                neg_iwae += bounds["neg_iwae"].sum().item()
                neg_elbo += bounds["neg_elbo"].sum().item()
    return {"neg_iwae": neg_iwae / len(images), "neg_elbo": neg_elbo / len(images)}
