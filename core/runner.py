"""One training run from start to finished folder: data -> model -> fit -> embeddings -> save_run."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import torch

from core import data, datasets, embed, families
from core.checks import check_int
from core.models import build_model
from core.run import folder, layout
from core.run.config import DataRecord, RunConfig
from core.train import TrainConfig, fit, resolve_device, resolve_precision, seed_everything


def load_data(dataset: str, data_dir, device, download: bool = False, limit: int | None = None):
    """(train, test) pairs of (uint8 images, labels) on device; `limit` keeps the first N of each (smoke runs)."""
    train = data.load_split(dataset, data_dir, train=True, download=download, device=device)
    test = data.load_split(dataset, data_dir, train=False, download=download, device=device)
    if limit:
        train, test = tuple(t[:limit] for t in train), tuple(t[:limit] for t in test)
    return train, test


def train_run(
    kind: str,
    out: str | Path,
    model_config: dict | None = None,
    train_config: TrainConfig | None = None,
    dataset: str = "mnist",
    data_dir: str | Path | None = None,
    download: bool = False,
    limit: int | None = None,
    splits=None,
    embed_size: int = embed.SUBSET_SIZE,
    on_step: Callable[[dict], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    overwrite: bool = False,
    quality_classifier: str | Path | None = None,
) -> Path:
    """Train a model of family `kind` (core.families: "vae", "gan", "classifier", ...) and write its run
    folder to `out`. The model's image shape (and a classifier's class count) come from the data set's record.

    `splits` = ((train_images, train_labels), (test_images, test_labels)) bypasses the data root
    (tests pass synthetic data). Raises before any training if `out` exists (unless overwrite), if the
    data is missing or a config value is out of range; raises TrainingDiverged on NaN, writing nothing.
    `quality_classifier`: a classifier run of the same data set; with it a VAE or GAN is checked after every
    epoch (core.evaluate.QualityProbe, stored in history.json), and `train_config.keep_best` can use it.
    """
    cfg = train_config or TrainConfig()
    out = Path(out)
    if layout.name_problem(out.name):  # the folder's name is the run's name everywhere it is shown
        raise layout.CheckpointError(f"{out.name!r}: {layout.name_problem(out.name)}")
    if out.exists() and not overwrite:
        raise layout.CheckpointError(f"{out} exists; choose another --out or pass --overwrite")
    device = resolve_device(cfg.device)
    cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device))  # config.json: what ran
    seed_everything(cfg.seed)
    family = families.get(kind)
    model = build_model(kind, for_dataset(family, model_config, datasets.get(dataset))).to(device)
    if splits is None:
        train, test = load_data(dataset, data_dir, device, download, limit)
        # by name and content, never by where it sat on this machine (config.json is published)
        data_info = DataRecord(dataset, data.checksum(train, test), len(train[0]), len(test[0]))
    else:
        train, test = (tuple(t.to(device) for t in s) for s in splits)
        data_info = DataRecord(dataset, None, len(train[0]), len(test[0]), synthetic=True)
    probe = None
    if quality_classifier is not None and family.generative:
        from core.evaluate import QualityProbe

        probe = QualityProbe(quality_classifier, train[0])
        if probe.clf_config["dataset"]["name"] != dataset:
            raise ValueError(f"quality classifier {Path(quality_classifier).name} was trained on "
                             f"{probe.clf_config['dataset']['name']}, not {dataset}")
    if cfg.keep_best and probe is None:
        raise ValueError("keep_best needs a quality classifier (the per-epoch score it keeps the best of)")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    commit = folder.git_commit()  # the code that trains, read now: the tree may move on during a long run
    result = fit(model, train, test, cfg, on_step=on_step, on_epoch=on_epoch, quality=probe)
    # training after the main loop (a GAN's encoder, against the kept generator)
    t = time.perf_counter()
    after = model.fit_after(train[0], cfg.batch_size, torch.Generator().manual_seed(cfg.seed + 2))
    encoder_time = None
    if after is not None:
        result["history"]["encoder"] = after
        encoder_time = round(time.perf_counter() - t, 2)

    if not family.generative:
        embeddings, metrics = None, {"test": model.evaluate(*test)}
    else:
        embeddings = embed.compute_embeddings(model, *test, size=embed_size) if family.has_encoder else None
        # measured on the saved weights (the kept epoch's, with E trained), not read off the last epoch
        metrics = {"held_out": {k: round(v, 6) for k, v in model.evaluate(*test).items()},
                   "settings": {"split": "test", "images": len(test[0]), "seed": 0,
                                "binarization": "dynamic, fixed seed" if family.has_likelihood else None}}
    config = RunConfig(
        model=kind,
        model_class=type(model).__name__,
        model_config=dataclasses.asdict(model.config),
        train_config=dataclasses.asdict(cfg),
        parameters=sum(p.numel() for p in model.parameters()),
        dataset=data_info,
        seed=cfg.seed,
        device=folder.device_name(device),
        started=started,
        wall_time_s=result["wall_time_s"],
        train_time_s=result["train_time_s"],
        encoder_time_s=encoder_time,
        quality_check=({"classifier": Path(quality_classifier).name, "samples": probe.samples,
                        "score": "frechet_distance"} if probe else None),
        best_epoch=result["best_epoch"],
        latent_map=({"method": embed.TSNE_METHOD, "digits": len(embeddings["indices"]), "perplexity": 30.0}
                    if embeddings is not None else None),
        epochs_completed=len(result["history"]["epochs"]["epoch"]),
        stopped_early=result["stopped_early"],
        versions=folder.versions(),
        git_commit=commit,
    )
    return folder.save_run(out, model, config.to_dict(), result["history"], result["grids"], embeddings,
                               metrics, overwrite=overwrite)


def for_dataset(family: families.Family, model_config: dict | None, ds: datasets.DataSet) -> dict:
    """The model config with the data set's image shape (and, for a model with `num_classes`, its class count)
    filled in; a value given that contradicts the data set is an error."""
    config = dict(model_config or {})
    fields = family.config_fields()
    wanted = {"image_size": ds.image_size, "channels": ds.channels, "num_classes": ds.num_classes}
    for key, value in wanted.items():
        if key not in fields:
            continue
        if config.setdefault(key, value) != value:
            raise ValueError(f"{key}={config[key]} does not match data set {ds.name} ({key} {value})")
    return config




def retrain_encoder(path: str | Path, data_dir: str | Path | None = None, epochs: int | None = None,
                    device: str = "auto") -> Path:
    """Train a GAN's encoder again, from fresh weights, against the run's saved generator, as training ends
    (the run's seed, data set and batch size), and rewrite the run: weights, config (`encoder_epochs`,
    `encoder_time_s`, `encoder_retrained`), history's encoder part, embeddings, the held-out numbers and the
    evaluation's reconstruction error. For a run whose encoder an older version trained (a mixture GAN's
    inverted z instead of the mixture's code), or to give E more epochs. G and D are not touched."""
    from core.evaluate import reconstruction_mse, summary
    from core.models.gan import GAN

    run = folder.load_run(path)
    cfg = run.config
    if not isinstance(run.model, GAN):
        raise ValueError(f"{run.name} is a {cfg['model']} run: only a GAN's encoder is trained apart from its "
                         "generator")
    epochs = epochs if epochs is not None else (run.model.config.encoder_epochs or 2)
    check_int("epochs", epochs, 1, 100)
    if cfg["dataset"].get("synthetic"):
        raise ValueError(f"{run.name} was trained on synthetic data: there is no data set to train its encoder on")
    dev = resolve_device(device)
    model = run.model.to(dev)
    model.config = dataclasses.replace(model.config, encoder_epochs=epochs)
    ds = cfg["dataset"]
    # a run trained with --limit N recorded its train split as N images: the same first N of each split again
    train, test = load_data(ds["name"], data_dir, dev, limit=ds.get("train_size"))
    if ds.get("sha256") and data.checksum(train, test) != ds["sha256"]:
        raise ValueError(f"the {ds['name']} files under the data root differ from those {run.name} was trained on "
                         "(sha256)")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    commit = folder.git_commit()  # the code that trains, read now (as train_run does)
    seed_everything(cfg["seed"])
    model.reset_encoder()
    t = time.perf_counter()
    batch_size = (cfg.get("train_config") or {}).get("batch_size", 128)
    encoder_history = model.fit_after(train[0], batch_size, torch.Generator().manual_seed(cfg["seed"] + 2))
    model.eval()
    config = {**cfg, "model_config": dataclasses.asdict(model.config),
              "encoder_time_s": round(time.perf_counter() - t, 2),
              "encoder_retrained": {"started": started, "epochs": epochs, "device": folder.device_name(dev),
                                    "git_commit": commit, "versions": folder.versions()}}
    size = len(run.embeddings["indices"]) if run.embeddings else embed.SUBSET_SIZE
    embeddings = embed.compute_embeddings(model, *test, size=size)
    metrics = dict(run.metrics or {})
    metrics["held_out"] = {k: round(v, 6) for k, v in model.evaluate(*test).items()}
    evaluation = metrics.get("evaluation")
    if evaluation and "reconstruction_mse" in evaluation.get("metrics", {}):
        n = evaluation.get("settings", {}).get("test_images") or len(test[0])
        evaluation["metrics"]["reconstruction_mse"] = summary([reconstruction_mse(model, test[0][:n])])
    history = {**run.history, "encoder": encoder_history}
    return folder.rewrite_run(run.path, model.cpu(), config, history, embeddings, metrics)
