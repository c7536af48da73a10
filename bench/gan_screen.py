"""GAN variant screen: what moves precision at equal training minutes, read off the per-epoch quality log.

    python -m bench.gan_screen --data-dir ../shared/data --out screen --budget-min 8 --at 4 8 --threads 1

Each variant trains on MNIST (seed 0) for --budget-min minutes with the per-epoch quality check (2,000
samples against 2,000 training digits, in the evaluation classifier's features), and the table shows that
check at the last epoch finished by each --at minute: Frechet distance, precision, recall, class KL to
uniform and the legible share. With `--clock process` (the default) minutes are this process's CPU
minutes, so variants trained while the machine was shared still compare at equal work; on one thread
that is the training time of a quiet machine. A variant already under --out is read, not retrained.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from core.run.schemas import read_config, read_history
from core.runner import train_run
from core.train import TrainConfig

COMMITTED = {"preset": "conv", "width": 32, "latent_dim": 32, "loss": "non-saturating", "d_norm": "spectral",
             "ema": 0.999, "mbstd": True, "latent_modes": 0}
# name -> (description, model config, train config overrides). The encoder is trained for one epoch only:
# it plays no part in the samples the table scores.
VARIANTS = {
    "a": ("width 64, batch-norm D, EMA", {**COMMITTED, "width": 64, "d_norm": "batch"}, {}),
    "b": ("width 64, R1 (gamma 2.5, every 4th D step), no D normalisation",
          {**COMMITTED, "width": 64, "d_norm": "none", "r1_gamma": 2.5, "r1_every": 4}, {}),
    "c": ("committed recipe: width 32, spectral-norm D, EMA, minibatch std", COMMITTED, {}),
    "d": ("pytorch/examples DCGAN at 28x28: width 64, batch-norm D, no EMA or minibatch std, z 100, batch 64",
          {**COMMITTED, "width": 64, "d_norm": "batch", "ema": 0.0, "mbstd": False, "latent_dim": 100},
          {"batch_size": 64}),
    "e": ("committed recipe + two D steps per G step", {**COMMITTED, "d_steps": 2}, {}),
    "f": ("width 64 batch-norm D + two D steps per G step", {**COMMITTED, "width": 64, "d_norm": "batch",
                                                             "d_steps": 2}, {}),
    "g": ("width 64 D, width 32 G, batch-norm D, EMA", {**COMMITTED, "width": 64, "g_width": 32,
                                                        "d_norm": "batch"}, {}),
    "h": ("committed recipe, G fed a mixture of 20 Gaussians (static GM-GAN)", {**COMMITTED, "latent_modes": 20}, {}),
}
KEYS = ("frechet_distance", "precision", "recall", "class_kl_to_uniform", "legible_share")


def rows_at(run: Path, minutes: list[float]) -> list[dict]:
    """The quality check at the last epoch finished within each of `minutes` (training minutes)."""
    h = read_history(run)["epochs"]
    out = []
    for m in minutes:
        done = [i for i, t in enumerate(h["time_s"]) if t <= m * 60 + 1]
        if not done or m * 60 > h["time_s"][-1] + h["time_s"][0]:  # before the 1st epoch, or past the run
            continue
        i = done[-1]
        out.append({"minutes": m, "epoch": h["epoch"][i], "time_s": h["time_s"][i],
                    **{k: h[f"quality/{k}"][i] for k in KEYS if f"quality/{k}" in h}})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or ./data)")
    p.add_argument("--out", default="screen", help="folder for the variants' runs (default: screen/)")
    p.add_argument("--budget-min", type=float, default=8.0, help="training minutes per variant (default: 8)")
    p.add_argument("--at", type=float, nargs="+", default=[4.0, 8.0], help="minutes to read the log at")
    p.add_argument("--clock", choices=["process", "wall"], default="process", help="what a minute counts")
    p.add_argument("--classifier", default="checkpoints/mnist-classifier", help="evaluation classifier")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    p.add_argument("--only", nargs="*", default=None, help=f"variants to run, in order (default: all of "
                                                          f"{' '.join(VARIANTS)})")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for key in args.only or list(VARIANTS):
        name, model_config, train_overrides = VARIANTS[key]
        run = out / f"variant-{key}"
        if not run.exists():
            cfg = TrainConfig(epochs=10_000, seed=0, time_budget_s=args.budget_min * 60, clock=args.clock,
                              **train_overrides)
            train_run("gan", run, {**model_config, "encoder_epochs": 1}, cfg, dataset="mnist",
                      data_dir=args.data_dir, quality_classifier=args.classifier, embed_size=500)
        config = read_config(run)
        epochs = read_history(run)["epochs"]
        s_per_epoch = epochs["time_s"][0] if len(epochs["time_s"]) else float("nan")
        for row in rows_at(run, args.at):
            table.append({"variant": key, "name": name, "s_per_epoch": s_per_epoch,
                          "precision_mode": config["train_config"].get("precision", "fp32"),
                          "clock": config["train_config"].get("clock", "wall"), **row})
            print(json.dumps(table[-1]), flush=True)
    (out / "screen.json").write_text(json.dumps(table, indent=1) + "\n")
    print(f"\nMNIST, seed 0, {args.threads} thread(s); the per-epoch quality check (2,000 samples, "
          f"{Path(args.classifier).name}); minutes on the {args.clock} clock")
    print("| variant | min | epoch | Fréchet distance ↓ | precision ↑ | recall ↑ | class KL ↓ | legible ↑ | s/epoch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in table:
        legible = f"{r['legible_share']:.3f}" if "legible_share" in r else "-"
        print(f"| {r['variant']}: {r['name']} | {r['minutes']:g} | {r['epoch']} | {r['frechet_distance']:.1f} | "
              f"{r['precision']:.3f} | {r['recall']:.3f} | {r['class_kl_to_uniform']:.3f} | {legible} | "
              f"{r['s_per_epoch']:.0f} |")


if __name__ == "__main__":
    main()
