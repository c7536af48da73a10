"""What sampling closer to the latent mode buys: precision against recall, by temperature.

    python -m bench.gan_temperature --data-dir ../shared/data [--run checkpoints/mnist-gan] [--dataset mnist]

Draws z ~ N(0, t^2 I) instead of N(0, I) (a GAN fed a latent mixture: mu_k + t z, each mode narrowed and the
modes' shares kept; t = 1 is the model as trained; t < 1 is the "truncation trick"
in its simplest form: BigGAN, Brock et al. 2019, resamples |z| above a threshold instead) and scores the
samples with the per-epoch quality check (2,000 samples against a fixed 2,000-image training subset) in
every classifier's features (default: the committed conv classifier and, where it exists, the dense one).
Nothing is retrained: t only changes which samples are drawn, so it shows how much of a precision gap is a
trade against recall rather than a better generator.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core import data, datasets
from core.evaluate import QualityProbe, classify, generate, sample_scores
from core.run.folder import load_model

TEMPERATURES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or data/)")
    p.add_argument("--dataset", default="mnist", choices=datasets.names(), help="data set (default: mnist)")
    p.add_argument("--run", default=None, help="GAN run (default: checkpoints/DATASET-gan)")
    p.add_argument("--root", default="checkpoints", help="folder of the classifiers (default: checkpoints)")
    p.add_argument("--temperatures", type=float, nargs="+", default=list(TEMPERATURES))
    args = p.parse_args()
    root = Path(args.root)
    names = [n for n in (f"{args.dataset}-classifier", f"{args.dataset}-classifier-mlp") if (root / n).is_dir()]
    model = load_model(args.run or root / f"{args.dataset}-gan").eval()
    train = data.load_split(args.dataset, args.data_dir)[0]
    print("| feature space | temperature | Fréchet distance ↓ | precision ↑ | recall ↑ | class KL ↓ | legible ↑ |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        probe = QualityProbe(root / name, train)
        for t in args.temperatures:
            samples = generate(model, probe.samples, seed=0, temperature=t)
            s, _ = sample_scores(probe.real_feats, probe.real_radii, *classify(probe.clf, samples), probe.knn_k)
            print(f"| {name} | {t:g} | {s['frechet_distance']:.1f} | {s['precision']:.3f} | {s['recall']:.3f} | "
                  f"{s['class_kl_to_uniform']:.3f} | {s['legible_share']:.3f} |", flush=True)
    print(f"\n{args.dataset}: {probe.samples:,} samples per row against {probe.samples:,} training images")


if __name__ == "__main__":
    main()
