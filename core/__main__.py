"""Command line: python -m core train|list|show ...   (python -m core -h for help)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_ROOT = "checkpoints"


def cmd_train(args) -> None:
    from tqdm import tqdm

    from core.runner import train_run
    from core.train import TrainConfig

    model_config = {"preset": args.preset} if args.model != "classifier" else {}
    if args.latent_dim is not None:
        model_config["latent_dim"] = args.latent_dim
    if args.width is not None:
        model_config["width"] = args.width
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      device=args.device, time_budget_s=args.time_budget, lr_schedule=args.lr_schedule)
    out = Path(args.out or Path(DEFAULT_ROOT) / f"{args.dataset}-{args.model}")
    bar = tqdm(total=None, unit="step", dynamic_ncols=True)

    def on_step(p):
        bar.total = p["total_steps"]
        bar.update(1)
        bar.set_postfix({k: f"{v:.3g}" for k, v in list(p["losses"].items())[:4]}, refresh=False)

    def on_epoch(p):
        row = {k: round(v, 3) for k, v in p["row"].items() if k.startswith("test/")}
        tqdm.write(f"epoch {p['epoch']}/{p['epochs']}: {row}")

    path = train_run(args.model, out, model_config, cfg, dataset=args.dataset, data_dir=args.data_dir,
                     download=args.download, limit=args.limit, on_step=on_step, on_epoch=on_epoch,
                     overwrite=args.overwrite)
    bar.close()
    print(f"wrote {path}")


def cmd_list(args) -> None:
    from core.checkpoint import CheckpointError, list_runs, read_config

    for name in list_runs(args.root):
        try:
            c = read_config(Path(args.root) / name)
            print(f"{name:28s} {c['model']:10s} {c['dataset']['name']:14s} epochs={c.get('epochs_completed')} "
                  f"device={c.get('device')}")
        except CheckpointError as err:
            print(f"{name:28s} BROKEN: {err}")


def cmd_show(args) -> None:
    from core.checkpoint import load_run, resolve_run

    path = resolve_run(args.root, args.run)
    run = load_run(path)
    c = run.config
    print(f"{run.name}: {c['class']} on {c['dataset']['name']} ({c['parameters']:,} parameters)")
    print(f"  model_config: {json.dumps(c['model_config'])}")
    print(f"  trained {c['epochs_completed']} epochs in {c['wall_time_s']:.0f} s on {c['device']}, seed {c['seed']}, "
          f"commit {c['git_commit'][:12]}")
    last = {k: round(v[-1], 4) for k, v in run.history["epochs"].items() if k != "epoch"}
    print(f"  last epoch: {json.dumps(last)}")
    if run.embeddings is not None:
        print(f"  embeddings: {len(run.embeddings['indices'])} test images, codes {run.embeddings['codes'].shape}")
    print(f"  sample grids: {len(run.grids)}; metrics: {'yes' if run.metrics else 'none'}")


def cmd_embed(args) -> None:
    from core import checkpoint, data, embed

    path = checkpoint.resolve_run(args.root, args.run)
    cfg = checkpoint.read_config(path)
    model = checkpoint.load_model(path)
    test = data.load_split(cfg["dataset"]["name"], args.data_dir, train=False)
    checkpoint.write_embeddings(path, embed.compute_embeddings(model, *test, size=args.size,
                                                               perplexity=args.perplexity))
    print(f"wrote {path / checkpoint.EMBEDDINGS}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m core", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train a model and write a run folder")
    t.add_argument("--model", choices=["vae", "gan", "classifier"], required=True)
    t.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    t.add_argument("--preset", choices=["conv", "seed"], default="conv")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the model's)")
    t.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant")
    t.add_argument("--latent-dim", type=int, default=None)
    t.add_argument("--width", type=int, default=None, help="conv channels (default: the model's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    t.add_argument("--time-budget", type=float, default=None, help="stop after this many seconds")
    t.add_argument("--limit", type=int, default=None, help="use only the first N images of each split")
    t.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or ./data)")
    t.add_argument("--download", action="store_true", help="download the data set if it is missing")
    t.add_argument("--out", default=None, help="run folder (default: checkpoints/DATASET-MODEL)")
    t.add_argument("--overwrite", action="store_true")
    t.set_defaults(func=cmd_train)

    ls = sub.add_parser("list", help="list the runs under a folder")
    ls.add_argument("--root", default=DEFAULT_ROOT)
    ls.set_defaults(func=cmd_list)

    s = sub.add_parser("show", help="load a run strictly and summarise it")
    s.add_argument("run", help="run name under --root, or a path to a run folder")
    s.add_argument("--root", default=DEFAULT_ROOT)
    s.set_defaults(func=cmd_show)

    e = sub.add_parser("embed", help="recompute a run's embeddings.npz (latent codes + t-SNE of the test subset)")
    e.add_argument("run", help="run name under --root, or a path to a run folder")
    e.add_argument("--root", default=DEFAULT_ROOT)
    e.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or ./data)")
    e.add_argument("--size", type=int, default=2000, help="test images in the subset")
    e.add_argument("--perplexity", type=float, default=30.0)
    e.set_defaults(func=cmd_embed)

    from core import evaluate, hub
    from core.hub import HubError

    evaluate.register_cli(sub)
    hub.register_cli(sub, DEFAULT_ROOT)

    args = p.parse_args(argv)
    from core.checkpoint import CheckpointError
    from core.data import DataMissingError
    from core.train import TrainingDiverged

    try:
        args.func(args)
    except (CheckpointError, DataMissingError, TrainingDiverged, HubError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
