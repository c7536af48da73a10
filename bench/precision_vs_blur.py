"""What precision rewards, checked in two feature spaces: does blur raise it?

    python -m bench.precision_vs_blur --data-dir ../shared/data [--dataset mnist]

Scores real test digits, and the committed GAN's and VAE's samples, with the per-epoch quality check
(2,000 images against a fixed 2,000-image training subset), each as it is and blurred by a Gaussian of
standard deviation sigma (a true Gaussian: kernel radius ceil(3 sigma)). It does so in the features of
every classifier given (default: the committed conv classifier and the dense one, mnist-classifier-mlp),
so a claim about what a metric rewards is checked in two independently trained feature spaces, not one.
If precision (Kynkaanniemi et al. 2019) measured only fidelity, blurring real digits could not raise it.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from core import data, datasets
from core.evaluate import QualityProbe, classify, generate, sample_scores
from core.run.folder import load_model

SIGMAS = (0.0, 0.5, 1.0, 1.5)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """The normalised 2-D Gaussian of standard deviation sigma, (2r+1) x (2r+1) with r = ceil(3 sigma)."""
    r = max(1, math.ceil(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32).square() / (2 * sigma**2))
    k = k / k.sum()
    return k[:, None] * k[None, :]


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """uint8 (N, C, H, W) -> the same, convolved per channel with a Gaussian of width sigma (zero padding,
    as the digits' background is 0)."""
    if sigma == 0:
        return images
    k = gaussian_kernel(sigma)
    c, r = images.shape[1], k.shape[0] // 2
    x = F.conv2d(data.to_float(images), k.expand(c, 1, *k.shape), padding=r, groups=c)
    return x.clamp(0, 1).mul(255).round().to(torch.uint8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or data/)")
    p.add_argument("--root", default="checkpoints", help="folder of the committed runs (default: checkpoints)")
    p.add_argument("--dataset", default="mnist", choices=datasets.names(), help="data set (default: mnist)")
    p.add_argument("--classifiers", nargs="+", default=None,
                   help="classifier run names under --root (default: DATASET-classifier and, where it exists, "
                        "DATASET-classifier-mlp)")
    args = p.parse_args()
    root = Path(args.root)
    names = args.classifiers or [n for n in (f"{args.dataset}-classifier", f"{args.dataset}-classifier-mlp")
                                 if (root / n).is_dir()]
    train = data.load_split(args.dataset, args.data_dir)[0]
    test = data.load_split(args.dataset, args.data_dir, train=False)[0]
    print("| feature space | images | blur σ | Fréchet distance ↓ | precision ↑ | recall ↑ | legible ↑ |")
    print("|---|---|---|---|---|---|---|")
    sets = None
    for name in names:
        probe = QualityProbe(root / name, train)
        if sets is None:
            sets = {"real test": test[:probe.samples]}
            for kind in ("gan", "vae"):
                sets[kind.upper()] = generate(load_model(root / f"{args.dataset}-{kind}"), probe.samples, seed=0)
        for label, images in sets.items():
            for sigma in SIGMAS:
                s, _ = sample_scores(probe.real_feats, probe.real_radii, *classify(probe.clf, blur(images, sigma)),
                                     probe.knn_k)
                print(f"| {name} | {label} | {sigma} | {s['frechet_distance']:.1f} | {s['precision']:.3f} | "
                      f"{s['recall']:.3f} | {s['legible_share']:.3f} |", flush=True)
    print(f"\n{args.dataset}: {probe.samples:,} images per row against {probe.samples:,} training images")


if __name__ == "__main__":
    main()
