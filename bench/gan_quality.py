"""Time to quality: training minutes until a GAN's samples beat the VAE's, from the per-epoch quality log.

    python bench/gan_quality.py --data-dir ../shared/data                       # committed recipe only
    python bench/gan_quality.py --data-dir ../shared/data --old ablation/variant-1
    python bench/gan_quality.py --data-dir ../shared/data --train-old 10         # train the old recipe 10 min
    python bench/gan_quality.py --data-dir ../shared/data --run "previous=runs/old-gan"  # any run, labelled

For each GAN run (the committed checkpoints/mnist-gan, and the plain DCGAN recipe this project first
used when --old or --train-old is given) it reads history.json's per-epoch quality check and prints the
training minutes (quality checks excluded) until the Frechet distance first drops below the VAE's and
until precision first reaches 0.85. The VAE's reference values come from the same check (2,000 samples,
the same classifier and training subset) run on the committed VAE now, so the numbers compare.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from core import data, datasets
from core.evaluate import QualityProbe
from core.models.gan import LEGACY
from core.run.folder import load_model
from core.run.schemas import read_config, read_history

PRECISION_GOAL = 0.85
# the recipe before the stabilisers existed: what a config.json without them means (core.models.gan.LEGACY)
OLD_RECIPE = {"preset": "conv", "width": 32, "latent_dim": 32, "loss": "non-saturating", **LEGACY}


def first_reach(values: list[float], minutes: list[float], ok) -> str:
    for epoch, (v, m) in enumerate(zip(values, minutes), 1):
        if v is not None and ok(v):
            return f"{m:6.1f} min (epoch {epoch})"
    return f"not reached in {minutes[-1]:.1f} min ({len(minutes)} epochs)"


def report(name: str, run: Path, vae_fd: float) -> None:
    h = read_history(run)["epochs"]
    if "quality/frechet_distance" not in h:
        print(f"{name:28s} {run.name}: no per-epoch quality log (trained before the check existed)")
        return
    minutes = [t / 60 for t in h["time_s"]]
    fd, precision = h["quality/frechet_distance"], h["quality/precision"]
    cfg = read_config(run)
    print(f"{name:28s} FD < VAE's: {first_reach(fd, minutes, lambda v: v < vae_fd):34s} "
          f"precision >= {PRECISION_GOAL}: {first_reach(precision, minutes, lambda v: v >= PRECISION_GOAL):34s} "
          f"best FD {min(fd):.1f}, best precision {max(precision):.3f}; device {cfg['device']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or data/)")
    p.add_argument("--root", default="checkpoints", help="folder of the committed runs (default: checkpoints)")
    p.add_argument("--dataset", default="mnist", choices=datasets.names(), help="data set (default: mnist)")
    p.add_argument("--old", default=None, help="a run of the old plain DCGAN recipe with a quality log")
    p.add_argument("--run", action="append", default=[], metavar="LABEL=PATH",
                   help="another GAN run with a quality log to report, under LABEL (repeatable)")
    p.add_argument("--train-old", type=float, default=None, metavar="MIN",
                   help="train the old recipe for this many minutes first (with the quality log)")
    args = p.parse_args()
    root = Path(args.root)
    clf = root / f"{args.dataset}-classifier"
    train_images = data.load_split(args.dataset, args.data_dir, train=True)[0]
    probe = QualityProbe(clf, train_images)
    vae = probe(load_model(root / f"{args.dataset}-vae"))
    print(f"{args.dataset}: VAE (committed) on the same check: FD {vae['frechet_distance']:.1f}, precision "
          f"{vae['precision']:.3f}, recall {vae['recall']:.3f}  [2,000 samples, {clf.name}]")
    runs = [("committed recipe", root / f"{args.dataset}-gan")]
    if args.train_old:
        from core.runner import train_run
        from core.train import TrainConfig

        old = Path(tempfile.mkdtemp(prefix="old-recipe-")) / "gan"
        train_run("gan", old, OLD_RECIPE, TrainConfig(epochs=10_000, time_budget_s=args.train_old * 60),
                  dataset=args.dataset, data_dir=args.data_dir, quality_classifier=clf)
        runs.append(("old plain DCGAN recipe", old))
    elif args.old:
        runs.append(("old plain DCGAN recipe", Path(args.old)))
    for spec in args.run:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            p.error(f"--run takes LABEL=PATH, got {spec!r}")
        runs.append((label, Path(path)))
    for name, run in runs:
        report(name, run, vae["frechet_distance"])


if __name__ == "__main__":
    main()
