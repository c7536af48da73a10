"""Command line: gan-vae train|list|show|embed|encoder|evaluate|push|pull ...   (gan-vae -h for help; `gan-vae` is
installed with the package and is the same program as `python -m core`).

Only argparse is imported up front, so `--help` answers at once; each command imports torch and the
library when it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core import paths
from core.run.layout import classifier_run

ROOT_HELP = "folder holding run folders (default: $CHECKPOINT_DIR or checkpoints/)"


class UsageError(Exception):
    """A bad command line the parser cannot see (a missing folder, an absent device): one line, exit 2."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends "(default: X)" to every option whose help does not say its default already."""

    def _get_help_string(self, action):
        text = action.help or ""
        silent = action.default is None or action.default is False or action.default == argparse.SUPPRESS
        if "default" in text or silent or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def find_run(root: str, name: str) -> Path:
    """A run folder given as a path, a name under `root`, or a name under the retrained runs' folder."""
    from core.run.layout import resolve_run

    path = resolve_run(root or paths.checkpoints_dir(), name)
    if path.is_dir():
        return path
    retrained = paths.runs_dir() / name
    if "/" not in name and "\\" not in name and retrained.is_dir():
        return retrained
    raise UsageError(f"no run {name!r}: looked in {path} and {retrained} "
                     "(`python -m core list` lists the runs; or pass a folder path)")


def check_device(name: str) -> None:
    """One-line error for a device torch cannot use here (instead of a traceback mid-training)."""
    import torch

    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: torch sees no CUDA GPU here (torch {torch.__version__}, "
                         f"CUDA build: {torch.version.cuda or 'none'}); use --device cpu or auto")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {name}: Apple's MPS backend is not available here; use --device cpu or auto")


def cmd_train(args) -> None:
    if args.backend == "hf-jobs":
        from core.jobs.backends import hf_cli

        sys.exit(hf_cli.train_from_cli(args, sys.argv[1:]))
    if args.flavor:
        raise UsageError("--flavor picks Hugging Face Jobs hardware: use it with --backend hf-jobs")
    check_device(args.device)
    from tqdm import tqdm

    from core import families, flags
    from core.runner import train_run
    from core.train import TrainConfig

    family = families.get(args.model)
    fields = family.config_fields()
    model_config = {"preset": args.preset} if "preset" in fields else {}
    for name in (o.name for o in flags.options()):  # None = the model's default; one its config lacks: an error
        value = getattr(args, name)
        if value is None:
            continue
        if name not in fields:
            owners = [f.label for f in families.FAMILIES.values() if name in f.config_fields()]
            raise UsageError(f"--{name.replace('_', '-')} is not an option of the {family.label} "
                             f"(it is one of: {', '.join(owners) or 'no model'})")
        model_config[name] = value
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      device=args.device, time_budget_s=args.time_budget, lr_schedule=args.lr_schedule,
                      keep_best=args.keep_best, precision=args.precision, clock=args.clock)
    quality = None
    if family.generative and args.quality != "none":
        quality = Path(args.quality or paths.checkpoints_dir() / classifier_run(args.dataset))
        if args.quality is None and not quality.is_dir():
            quality = None  # no committed classifier for this data set: train without the per-epoch check
    out = Path(args.out or paths.checkpoints_dir() / f"{args.dataset}-{args.model}")
    splits = None
    if args.synthetic:
        from core.data import synthetic_split

        splits = (synthetic_split(args.synthetic, seed=1), synthetic_split(max(16, args.synthetic // 4), seed=2))
    if args.progress == "json":  # one line a second for a log reader (a job's live charts), see core.jobs.progress
        from core.jobs.progress import LineReporter

        reporter = LineReporter(print)
        on_step, on_epoch, bar = reporter.on_step, reporter.on_epoch, None
    else:
        bar = tqdm(total=None, unit="step", dynamic_ncols=True)

        def on_step(p):
            bar.total = p["total_steps"]
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(p["losses"].items())[:4]}, refresh=False)

        def on_epoch(p):
            row = {k: round(v, 3) for k, v in p["row"].items() if k.startswith(("test/", "quality/"))}
            tqdm.write(f"epoch {p['epoch']}/{p['epochs']}: {row}")

    path = train_run(args.model, out, model_config, cfg, dataset=args.dataset, data_dir=args.data_dir,
                     download=args.download, limit=args.limit, splits=splits, on_step=on_step, on_epoch=on_epoch,
                     overwrite=args.overwrite, quality_classifier=quality)
    if bar is not None:
        bar.close()
    if args.marker:  # written last: a watcher of a bucket (no atomic rename) knows the run folder is complete
        from core.files import write_json

        write_json(Path(args.marker), {"run": path.name})
    print(f"wrote {path}")


def cmd_list(args) -> None:
    from core.run.layout import CheckpointError, list_runs
    from core.run.schemas import read_config

    roots = [Path(args.root or paths.checkpoints_dir())]
    if not roots[0].is_dir():
        raise UsageError(f"--root {roots[0]}: no such folder")
    if args.root is None and paths.runs_dir().is_dir():
        roots.append(paths.runs_dir())
    for root in roots:
        names = list_runs(root)
        print(f"{root}/: {len(names)} run(s)")
        for name in names:
            try:
                c = read_config(root / name)
                print(f"  {name:28s} {c['model']:10s} {c['dataset']['name']:14s} "
                      f"epochs={c.get('epochs_completed')} device={c.get('device')}")
            except CheckpointError as err:
                print(f"  {name:28s} BROKEN: {err}")


def cmd_show(args) -> None:
    from core.run.folder import load_run

    run = load_run(find_run(args.root, args.run))
    c = run.config
    print(f"{run.name}: {c['class']} on {c['dataset']['name']} ({c['parameters']:,} parameters)")
    print(f"  model_config: {json.dumps(c['model_config'])}")
    print(f"  trained {c['epochs_completed']} epochs in {c['wall_time_s']:.0f} s on {c['device']}, seed {c['seed']}, "
          f"commit {c['git_commit'][:12]}")
    last = {k: round(v[-1], 4) if v and v[-1] is not None else None  # null: no value that epoch
            for k, v in run.history["epochs"].items() if k != "epoch"}
    print(f"  last epoch: {json.dumps(last)}")
    if run.embeddings is not None:
        print(f"  embeddings: {len(run.embeddings['indices'])} test images, codes {run.embeddings['codes'].shape}")
    print(f"  sample grids: {len(run.grids)}; metrics: {'yes' if run.metrics else 'none'}")


def cmd_embed(args) -> None:
    from core import data, embed
    from core.run import folder, layout, schemas

    path = find_run(args.root, args.run)
    cfg = schemas.read_config(path)
    model = folder.load_model(path)
    test = data.load_split(cfg["dataset"]["name"], args.data_dir, train=False)
    folder.write_embeddings(path, embed.compute_embeddings(model, *test, size=args.size, perplexity=args.perplexity))
    print(f"wrote {path / layout.EMBEDDINGS}")


def cmd_encoder(args) -> None:
    from core import runner

    check_device(args.device)
    path = runner.retrain_encoder(find_run(args.root, args.run), args.data_dir, epochs=args.epochs, device=args.device)
    print(f"retrained the encoder of {path.name}: wrote its weights, embeddings, history, config and metrics")


def cmd_evaluate(args) -> None:
    from tqdm import tqdm

    from core import evaluate
    from core.run import layout, schemas

    run = find_run(args.root, args.run)
    cfg = schemas.read_config(run)
    clf = find_run(args.root, args.classifier or classifier_run(cfg["dataset"]["name"]))
    from core import families

    likelihood = families.get(cfg["model"]).has_likelihood and args.iwae_k > 0
    # stages: load, real features, one per seed, reconstruction, [IWAE], reference
    bar = tqdm(total=4 + len(args.seeds) + likelihood, unit="stage", dynamic_ncols=True, desc="load")
    started = []

    def progress(stage: str) -> None:
        if started:
            bar.update(1)
        started.append(stage)
        bar.set_description(stage)

    ev = evaluate.evaluate_run(run, clf, args.data_dir, samples=args.samples, seeds=tuple(args.seeds),
                               iwae_k=args.iwae_k or None, iwae_images=args.iwae_images, progress=progress)
    bar.update(bar.total - bar.n)
    bar.close()
    print(evaluate.format_table(run.name, ev))
    print(f"wrote {run / layout.METRICS} (key 'evaluation') and {run / evaluate.NEAREST_PNG}")
    if args.marker:
        from core.files import write_json

        write_json(Path(args.marker), {"run": run.name})


def cmd_push(args) -> None:
    from core.hub import push_run

    folder = find_run(args.root, args.run)
    print(f"pushed {folder} to {push_run(folder, args.repo, private=args.private, revision=args.revision)}")


def cmd_pull(args) -> None:
    from core.hub import pull_run

    path = pull_run(args.repo, args.root or paths.checkpoints_dir(), name=args.name, revision=args.revision,
                    overwrite=args.overwrite)
    print(f"pulled {args.repo} into {path}")


def build_parser() -> argparse.ArgumentParser:
    from core import datasets, families, flags  # torch-free records: --help stays quick

    prog = "gan-vae" if Path(sys.argv[0]).name == "gan-vae" else "python -m core"
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=HelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)

    t = command("train", "train a model and write a run folder")
    t.add_argument("--model", choices=families.names(), required=True, help="model family")
    t.add_argument("--dataset", choices=datasets.names(), default="mnist", help="data set")
    presets = sorted({p for f in families.FAMILIES.values() for p in f.presets})
    t.add_argument("--preset", choices=presets, default="conv",
                   help="architecture: conv (small conv nets) or seed (dense nets), where the family has presets")
    t.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    t.add_argument("--batch-size", type=int, default=128, help="images per step")
    t.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the model's)")
    t.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant", help="learning-rate schedule")
    t.add_argument("--seed", type=int, default=0, help="seed for weights, batches and the fixed sample noise")
    t.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda[:N] or mps")
    t.add_argument("--time-budget", type=float, default=None,
                   help="stop after this many seconds and save the run (default: no limit)")
    t.add_argument("--limit", type=int, default=None,
                   help="use only the first N images of each split (default: all)")
    t.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or data/)")
    t.add_argument("--download", action="store_true", help="download the data set if it is missing")
    t.add_argument("--out", default=None, help="run folder (default: checkpoints/DATASET-MODEL)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    for o in flags.options():  # every config field of every family (core.flags)
        if o.type is bool:
            t.add_argument(f"--{o.name.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=None,
                           help=flags.help_text(o))
        else:
            t.add_argument(f"--{o.name.replace('_', '-')}", type=o.type, default=None, help=flags.help_text(o))
    t.add_argument("--quality", default=None,
                   help="classifier run for the per-epoch quality check, or 'none' (default: "
                        "checkpoints/DATASET-classifier when it exists)")
    t.add_argument("--keep-best", action="store_true",
                   help="save the epoch with the best per-epoch Frechet distance, not the last (needs --quality)")
    t.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    t.add_argument("--backend", choices=["local", "hf-jobs"], default="local",
                   help="local: train here; hf-jobs: submit to Hugging Face Jobs and follow it (needs HF_TOKEN, "
                        "RETRAIN_HF_BUCKET and an image: docs/deploy.md)")
    t.add_argument("--flavor", default=None,
                   help="Hugging Face Jobs hardware with --backend hf-jobs, e.g. cpu-basic, t4-small, a10g-small "
                        "(default: the first of $RETRAIN_FLAVORS, else cpu-basic)")
    t.add_argument("--progress", choices=["bar", "json"], default="bar",
                   help="bar: a progress bar; json: one '@progress {...}' line a second, for a log reader")
    t.add_argument("--marker", default=None, metavar="PATH",
                   help="write PATH after the run is saved, last, so a watcher of a bucket sees a complete run "
                        "(default: none)")
    t.add_argument("--synthetic", type=int, default=None, metavar="N",
                   help="train on N generated images instead of the data set: a smoke test (default: the data set)")
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="training arithmetic: bf16 autocast, fp32, or auto = bf16 on a CPU with native "
                        "bfloat16 (AVX-512 BF16 / AMX), else fp32")
    t.add_argument("--clock", choices=["wall", "process"], default="wall",
                   help="what --time-budget and the epoch times count: wall seconds, or this process's CPU "
                        "seconds (fair on a shared machine)")
    t.set_defaults(func=cmd_train)

    ls = command("list", "list the runs under a folder (and under runs/, where retrained runs go)")
    ls.add_argument("--root", default=None, help=ROOT_HELP)
    ls.set_defaults(func=cmd_list)

    s = command("show", "load a run strictly and summarise it")
    s.add_argument("run", help="run name under --root or runs/, or a path to a run folder")
    s.add_argument("--root", default=None, help=ROOT_HELP)
    s.set_defaults(func=cmd_show)

    e = command("embed", "recompute a run's embeddings.npz (latent codes + t-SNE of the test subset)")
    e.add_argument("run", help="run name under --root or runs/, or a path to a run folder")
    e.add_argument("--root", default=None, help=ROOT_HELP)
    e.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or data/)")
    e.add_argument("--size", type=int, default=2000, help="test images in the subset")
    e.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity")
    e.set_defaults(func=cmd_embed)

    r = command("encoder", "train a GAN's encoder again, from fresh weights, against its saved generator")
    r.add_argument("run", help="run name under --root or runs/, or a path to a run folder")
    r.add_argument("--root", default=None, help=ROOT_HELP)
    r.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or data/)")
    r.add_argument("--epochs", type=int, default=None, help="encoder epochs (default: the run's encoder_epochs, or 2)")
    r.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda[:N] or mps")
    r.set_defaults(func=cmd_encoder)

    v = command("evaluate", "measure a vae/gan run against real data; writes metrics.json and nearest.png")
    v.add_argument("run", help="run name under --root or runs/, or a path to a run folder")
    v.add_argument("--root", default=None, help=ROOT_HELP)
    v.add_argument("--classifier", default=None,
                   help="classifier run name or path (default: DATASET-classifier under --root)")
    v.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or data/)")
    v.add_argument("--samples", type=int, default=10000, help="generated images per seed")
    v.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="generator seeds")
    v.add_argument("--iwae-k", type=int, default=100, help="importance samples for the VAE's IWAE bound, 0 skips it")
    v.add_argument("--iwae-images", type=int, default=500,
                   help="test digits per seed for the IWAE bound and -ELBO (10000 = the whole test set each seed)")
    v.add_argument("--marker", default=None, metavar="PATH",
                   help="write PATH after metrics.json is saved, last, so a watcher of a bucket sees it complete "
                        "(default: none)")
    v.set_defaults(func=cmd_evaluate)

    # tokens: HF_TOKEN or `hf auth login`, never a flag
    u = command("push", "upload a run folder and a model card to a Hugging Face model repo")
    u.add_argument("run", help="run name under --root or runs/, or a path to a run folder")
    u.add_argument("--repo", required=True, metavar="USER/NAME", help="model repo id (created if missing)")
    u.add_argument("--root", default=None, help=ROOT_HELP)
    u.add_argument("--private", action="store_true", help="create the repo private")
    u.add_argument("--revision", default=None, help="branch to push to (created if missing; default main)")
    u.set_defaults(func=cmd_push)

    q = command("pull", "download a run from a Hugging Face model repo and check it")
    q.add_argument("repo", metavar="USER/NAME", help="model repo id")
    q.add_argument("--root", default=None,
                   help="folder the run is written into (default: $CHECKPOINT_DIR or checkpoints/)")
    q.add_argument("--name", default=None, help="run folder name (default: the repo's name)")
    q.add_argument("--revision", default=None, help="branch, tag or commit (default main)")
    q.add_argument("--overwrite", action="store_true", help="replace an existing run of that name")
    q.set_defaults(func=cmd_pull)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        from core.data import DataMissingError
        from core.files import DiskFull
        from core.hub import HubError
        from core.run.layout import CheckpointError
        from core.train import TrainingDiverged

        if isinstance(err, (CheckpointError, DataMissingError, TrainingDiverged, HubError, ValueError, DiskFull)):
            print(f"error: {err}", file=sys.stderr)
            return 2
        raise
    return 0


def cli() -> None:
    """The `gan-vae` console script (pyproject.toml): the same program as `python -m core`."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
