"""GAN recipe ablation: each stabiliser added in turn at one fixed training budget, then evaluated.

    python bench/gan_ablation.py --data-dir ../shared/data --epochs 3 --out ablation

Trains every variant on MNIST with the same seed and the per-epoch quality check, and prints a Markdown
table of that check at epoch --epochs: Frechet distance, precision, recall, class KL to uniform, smallest
class share and training minutes. A variant already under --out (e.g. a longer run with the same settings,
linked there) is read, not retrained, so the table can also be read off the committed runs' logs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from core.run.schemas import read_config, read_history
from core.runner import train_run
from core.train import TrainConfig

# (name, model config, Adam learning rate of G). Rows 1-4 add one change each, ending at the committed
# recipe (row 4); rows 5-6 are changes tried on top of row 3 and not kept.
BASE = {"preset": "conv", "width": 32, "latent_dim": 32, "loss": "non-saturating", "d_lr_ratio": 1.0,
        "encoder_epochs": 2, "latent_modes": 0}
VARIANTS = [
    ("DCGAN (batch-norm D, non-saturating loss)", {"d_norm": "batch", "ema": 0.0, "mbstd": False}, None),
    ("+ EMA of G's weights", {"d_norm": "batch", "ema": 0.999, "mbstd": False}, None),
    ("+ spectral norm in D (instead of batch norm)", {"d_norm": "spectral", "ema": 0.999, "mbstd": False}, None),
    ("+ minibatch std in D", {"d_norm": "spectral", "ema": 0.999, "mbstd": True}, None),
    ("row 3 + hinge loss (not kept)", {"d_norm": "spectral", "ema": 0.999, "mbstd": False, "loss": "hinge"}, None),
    ("row 3 + two time-scale rule, G 1e-4 / D 4e-4 (not kept)",
     {"d_norm": "spectral", "ema": 0.999, "mbstd": False, "d_lr_ratio": 4.0}, 1e-4),
]
KEYS = ("frechet_distance", "precision", "recall", "class_kl_to_uniform", "min_class_share")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or data/)")
    p.add_argument("--epochs", type=int, default=3, help="training budget of every variant (default: 3)")
    p.add_argument("--out", default="ablation", help="folder for the variants' runs (default: ablation/)")
    p.add_argument("--classifier", default="checkpoints/mnist-classifier", help="evaluation classifier")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--only", type=int, nargs="*", default=None, help="variant numbers to run (default: all)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (name, model_config, lr) in enumerate(VARIANTS, 1):
        if args.only and i not in args.only:
            continue
        run = out / f"variant-{i}"
        if not run.exists():
            train_run("gan", run, {**BASE, **model_config}, TrainConfig(epochs=args.epochs, lr=lr, seed=0),
                      dataset="mnist", data_dir=args.data_dir, quality_classifier=args.classifier)
        h = read_history(run)["epochs"]
        at = min(args.epochs, len(h["epoch"])) - 1  # the budget epoch, read off the per-epoch quality log
        rows.append({"variant": i, "name": name, **{k: h[f"quality/{k}"][at] for k in KEYS},
                     "train_min": h["time_s"][at] / 60, "epoch": h["epoch"][at], "device": read_config(run)["device"]})
        print(json.dumps(rows[-1]), flush=True)
    (out / "ablation.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"\nMNIST, epoch {args.epochs} of each run, seed 0; the per-epoch quality check (2,000 samples against "
          f"2,000 training digits, {Path(args.classifier).name}); device {rows[0]['device'] if rows else '-'}")
    print("| # | change | Fréchet distance ↓ | precision ↑ | recall ↑ | class KL ↓ | smallest class | train min |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['name']} | {r['frechet_distance']:.1f} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {r['class_kl_to_uniform']:.3f} | {r['min_class_share']:.1%} | "
              f"{r['train_min']:.1f} |")


if __name__ == "__main__":
    main()
