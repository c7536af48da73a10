"""Does a GAN's discriminator rank its samples by quality? Discriminator rejection sampling (Azadi et al.,
"Discriminator Rejection Sampling", ICLR 2019) in its simplest form: keep the samples D scores highest.

    python -m bench.d_rejection checkpoints/mnist-gan

Draws --samples samples (seed --seed), scores each by the run's D (logit) and by the evaluation classifier
(confidence), and prints their rank correlation and the legible share (confidence > 0.9) of all samples, of
the top 80/50/20 % by D and of the bottom 20 %. docs/gan.md quotes it.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from core.data import to_float
from core.evaluate import classify, generate, load_classifier
from core.metrics import LEGIBLE_CONFIDENCE
from core.run.folder import load_model
from core.run.layout import classifier_run
from core.run.schemas import read_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="GAN run folders")
    p.add_argument("--classifier", default=None, help="classifier run (default: checkpoints/DATASET-classifier)")
    p.add_argument("--samples", type=int, default=6000)
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args()
    for run in args.runs:
        dataset = read_config(run)["dataset"]["name"]
        clf, _ = load_classifier(args.classifier or f"checkpoints/{classifier_run(dataset)}")
        model = load_model(run)
        x = generate(model, args.samples, seed=args.seed)
        with torch.no_grad():
            d = torch.cat([model.discriminator(to_float(x[i:i + 500])).float()[:, 0] for i in range(0, len(x), 500)])
        conf = classify(clf, x)[1].max(1).values
        legible = (conf > LEGIBLE_CONFIDENCE).float()
        order = d.argsort(descending=True)
        rho = np.corrcoef(d.argsort().argsort().numpy(), conf.argsort().argsort().numpy())[0, 1]
        tops = " ".join(f"top {q} %: {legible[order[:len(x) * q // 100]].mean():.3f}" for q in (80, 50, 20))
        print(f"{run}: Spearman(D logit, confidence) {rho:.3f}; legible share: all {legible.mean():.3f}, {tops}, "
              f"bottom 20 %: {legible[order[-len(x) // 5:]].mean():.3f}")


if __name__ == "__main__":
    main()
