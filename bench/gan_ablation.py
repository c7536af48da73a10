"""GAN recipe ablation: each stabiliser added in turn at one fixed training budget, then evaluated.

    python bench/gan_ablation.py --data-dir ../shared/data --epochs 3 --out /tmp/ablation

Trains every variant on MNIST for the same number of epochs and seed, with the per-epoch quality check,
then evaluates each with `core.evaluate.evaluate_run` (10,000 samples, one seed) and prints a Markdown
table: Frechet distance, precision, recall, class KL to uniform, smallest class share and training
minutes. Variants are cumulative, from DCGAN as this project first trained it to the committed recipe.
A variant already trained under --out is evaluated again, not retrained (delete it to retrain).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.checkpoint import read_config, read_history  # noqa: E402
from core.evaluate import evaluate_run  # noqa: E402
from core.runner import train_run  # noqa: E402
from core.train import TrainConfig  # noqa: E402

# (name, model config, Adam learning rate of G); each row adds one change to the row above
VARIANTS = [
    ("DCGAN (batch-norm D, non-saturating loss)", {"d_norm": "batch", "ema": 0.0}, None),
    ("+ EMA of G's weights", {"d_norm": "batch", "ema": 0.999}, None),
    ("+ spectral norm in D (instead of batch norm)", {"d_norm": "spectral", "ema": 0.999}, None),
    ("+ hinge loss", {"d_norm": "spectral", "ema": 0.999, "loss": "hinge"}, None),
    ("+ two time-scale rule (G 1e-4, D 4e-4)", {"d_norm": "spectral", "ema": 0.999, "loss": "hinge",
                                                 "d_lr_ratio": 4.0}, 1e-4),
    ("+ minibatch std in D", {"d_norm": "spectral", "ema": 0.999, "loss": "hinge", "d_lr_ratio": 4.0,
                              "mbstd": True}, 1e-4),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or ./data)")
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
            train_run("gan", run, {"preset": "conv", "width": 32, "latent_dim": 32, **model_config},
                      TrainConfig(epochs=args.epochs, lr=lr, seed=0), dataset="mnist", data_dir=args.data_dir,
                      quality_classifier=args.classifier)
        ev = evaluate_run(run, args.classifier, data_dir=args.data_dir, samples=10000, seeds=(0,), iwae_k=None,
                          write=False)
        m = ev["metrics"]
        cfg = read_config(run)
        hist = read_history(run)["epochs"]
        rows.append({"variant": i, "name": name, "frechet_distance": m["frechet_distance"]["mean"],
                     "precision": m["precision"]["mean"], "recall": m["recall"]["mean"],
                     "class_kl_to_uniform": m["class_kl_to_uniform"]["mean"],
                     "min_class_share": min(ev["class_histogram"]), "train_min": cfg["train_time_s"] / 60,
                     "epochs": cfg["epochs_completed"], "device": cfg["device"],
                     "quality_fd_by_epoch": hist.get("quality/frechet_distance")})
        print(json.dumps(rows[-1]), flush=True)
    (out / "ablation.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(f"\nMNIST, {args.epochs} epochs each, seed 0; evaluate_run with 10,000 samples, seed 0; "
          f"device {rows[0]['device'] if rows else '-'}")
    print("| # | change | Fréchet distance ↓ | precision ↑ | recall ↑ | class KL ↓ | smallest class | train min |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['name']} | {r['frechet_distance']:.1f} | {r['precision']:.3f} | "
              f"{r['recall']:.3f} | {r['class_kl_to_uniform']:.3f} | {r['min_class_share']:.1%} | "
              f"{r['train_min']:.1f} |")


if __name__ == "__main__":
    main()
