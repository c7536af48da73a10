"""Evaluate a trained VAE or GAN run: measured answers to "which model is better at what".

Samples are compared with the training set in the evaluation classifier's feature space (Frechet
distance, KID, precision/recall), by the classes the classifier sees in them (coverage), in pixel space
(nearest training image: memorization) and, for the VAE, by a likelihood bound (IWAE). The same
metrics on real test images against the training set give the floor ("reference"). Results go into the
run's metrics.json under "evaluation", next to what training wrote there.

Defaults are sized to finish one run in under a minute on a 2-core CPU (about 20-30 s measured): the
classifier's forward pass over ~50k images dominates, so the pixel nearest-neighbour search (against
the whole training set) uses 1000 queries per seed and the IWAE bound (k decoder passes per image)
500 test images per seed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core import data, families, metrics
from core.data import to_float
from core.models.layers import evaluating
from core.run import folder, layout, schemas

NEAREST_PNG = "nearest.png"
NEAREST_COUNT = 8
# True where a lower value is better. nn_dist_*: larger means further from copying training images,
# but the healthy value is that of unseen real digits (nn_dist_test_to_train), not "as large as possible".
LOWER_IS_BETTER = {
    "frechet_distance": True, "kid": True, "precision": False, "recall": False, "class_kl_to_uniform": True,
    "mean_confidence": False, "legible_share": False, "reconstruction_mse": True, "nn_dist_samples_to_train": False,
    "nn_dist_test_to_train": False, "neg_elbo": True, "neg_iwae": True,
}


def load_classifier(path: str | os.PathLike):
    """The evaluation classifier, loaded strictly; errors name the classifier so they are not mistaken
    for problems of the run being evaluated. The weights are made channels_last: the same numbers (to
    ~1e-5), about 1.5-2x faster with oneDNN's CPU convolutions."""
    path = Path(path)
    try:
        model = folder.load_model(path)
        config = schemas.read_config(path)
    except layout.CheckpointError as err:
        raise layout.CheckpointError(f"evaluation classifier {path}: {err}") from err
    if config["model"] != "classifier":
        raise layout.CheckpointError(f"evaluation classifier {path}: is a {config['model']} run, not a classifier "
                                         "(train one with: python -m core train --model classifier)")
    return model.to(memory_format=torch.channels_last), config


@torch.no_grad()
def classify(clf, images: torch.Tensor, batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images -> (penultimate features (N, F), class probabilities (N, K)) in one pass.

    Batches of 128 are about twice as fast on CPU as 1000 (they stay in cache)."""
    device = next(clf.parameters()).device
    feats, probs = [], []
    for i in range(0, len(images), batch_size):
        f, p = clf.features_and_proba(to_float(images[i:i + batch_size].to(device)))
        feats.append(f.cpu())
        probs.append(p.cpu())
    return torch.cat(feats), torch.cat(probs)


@torch.no_grad()
def generate(model, n: int, seed: int, batch_size: int = 256, temperature: float = 1.0) -> torch.Tensor:
    """n samples from z ~ N(0, temperature^2 I) seeded by `seed`, as uint8 (N, 1, 28, 28).

    Quantized like the real digits, so 8-bit rounding is not a cue that separates real from fake."""
    device = next(model.parameters()).device
    z = torch.randn(n, model.config.latent_dim, generator=torch.Generator().manual_seed(seed))
    out = [model.render(model.code(z[i:i + batch_size].to(device), temperature)).cpu() for i in range(0, n, batch_size)]
    return torch.cat(out).clamp(0, 1).mul(255).round().to(torch.uint8)


@torch.no_grad()
def reconstruction_mse(model, images: torch.Tensor, batch_size: int = 256) -> float:
    """Mean per-pixel squared error of model.reconstruct (the VAE's posterior mean, the GAN's G(E(x)))."""
    device = next(model.parameters()).device
    total = 0.0
    for i in range(0, len(images), batch_size):
        x = to_float(images[i:i + batch_size].to(device))
        total += F.mse_loss(model.reconstruct(x), x, reduction="none").flatten(1).mean(1).sum().item()
    return total / len(images)


def sample_scores(real_feats, real_radii, fake_feats, fake_probs, knn_k: int) -> tuple[dict[str, float], dict]:
    """Frechet distance, precision, recall and class KL of one sample set (and its class coverage), the
    scores evaluate_run reports per seed and QualityProbe after every epoch."""
    p, r = metrics.precision_recall(real_feats, fake_feats, knn_k, real_radii=real_radii)
    cov = metrics.class_coverage(fake_probs)
    return ({"frechet_distance": metrics.frechet_distance(real_feats, fake_feats), "precision": p, "recall": r,
             "class_kl_to_uniform": cov["kl_to_uniform"], "legible_share": cov["legible_share"]}, cov)


def summary(values: list[float]) -> dict:
    """{"mean", "std", "values"}; std is the sample std over seeds (0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "values": [float(x) for x in v]}


def _subset(n: int, size: int | None, seed: int) -> torch.Tensor:
    """Fixed random indices (sorted) of `size` out of n, or all of them."""
    if size is None or size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def evaluate_run(
    run_path: str | os.PathLike,
    classifier_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    samples: int = 10000,
    seeds: tuple[int, ...] = (0, 1, 2),
    iwae_k: int | None = 100,
    iwae_images: int = 500,
    knn_k: int = 3,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    nn_train_images: int | None = None,
    nn_queries: int = 1000,
    splits=None,
    write: bool = True,
    progress=None,
) -> dict:
    """Evaluate the VAE or GAN run at `run_path`; returns the "evaluation" dict and, if `write`, stores it
    in the run's metrics.json (other keys kept) and writes nearest.png.

    Per seed: `samples` generated images against the same number of training images (a fixed random
    subset) in classifier features; the reference row uses as many test images. `splits` =
    ((train_images, train_labels), (test_images, test_labels)) bypasses data_dir (tests use synthetic data).
    `iwae_k` None skips the VAE's likelihood bound. `progress(stage)` is called as each stage starts (the CLI's bar).
    """
    step = progress or (lambda stage: None)
    step("load")
    start = time.perf_counter()
    run_path = Path(run_path)
    if samples <= knn_k or not seeds:
        raise ValueError(f"need samples > knn_k ({knn_k}) and at least one seed, got {samples} and {list(seeds)}")
    if iwae_k is not None and iwae_k < 1:
        raise ValueError(f"iwae_k must be >= 1 or None, got {iwae_k}")
    cfg = folder.check_run(run_path).config  # the whole folder, as show and the dashboard check it
    family = families.get(cfg["model"])
    if not family.generative:
        kinds = " or ".join(f.name for f in families.generative())
        raise ValueError(f"{run_path}: evaluate needs a {kinds} run, this is a {cfg['model']} run")
    model = folder.load_model(run_path).to(memory_format=torch.channels_last)  # see load_classifier
    clf, clf_cfg = load_classifier(classifier_path)
    dataset, clf_dataset = cfg["dataset"]["name"], clf_cfg["dataset"]["name"]
    if dataset != clf_dataset:
        raise ValueError(f"{run_path.name} was trained on {dataset} but the classifier {Path(classifier_path).name} "
                         f"on {clf_dataset}: pass --classifier for {dataset}")
    if splits is None:
        splits = (data.load_split(dataset, data_dir, train=True), data.load_split(dataset, data_dir, train=False))
    (train_images, _), (test_images, test_labels) = ((x.cpu(), y.cpu()) for x, y in splits)
    times = {"load": time.perf_counter() - start}

    # the real sets: a fixed training subset as large as each generated set, and as many test images
    step("real features")
    t = time.perf_counter()
    real_feats, _ = classify(clf, train_images[_subset(len(train_images), samples, seed=0)])
    n_test = min(samples, len(test_images))
    test_feats, test_probs = classify(clf, test_images[:n_test])
    real_radii = metrics.knn_radii(real_feats, knn_k)
    clf_accuracy = (test_probs.argmax(1) == test_labels[:n_test]).double().mean().item()
    nn_train = train_images[_subset(len(train_images), nn_train_images, seed=1)]
    times["real"] = time.perf_counter() - t

    t = time.perf_counter()
    names = ["frechet_distance", "kid", "precision", "recall", "class_kl_to_uniform", "legible_share",
             "mean_confidence", "nn_dist_samples_to_train"]
    per_seed: dict[str, list[float]] = {k: [] for k in names}
    hists, sample_nn = [], []
    for seed in seeds:
        step(f"samples, seed {seed}")
        fake = generate(model, samples, seed)
        fake_feats, fake_probs = classify(clf, fake)
        scores, cov = sample_scores(real_feats, real_radii, fake_feats, fake_probs, knn_k)
        for k, v in scores.items():
            per_seed[k].append(v)
        per_seed["kid"].append(metrics.kid(real_feats, fake_feats, kid_subsets, kid_subset_size, seed=seed)[0])
        per_seed["mean_confidence"].append(cov["mean_confidence"])
        hists.append(cov["histogram"])
        queries = fake[:nn_queries]
        d, j = metrics.nearest_neighbours(queries, nn_train)
        per_seed["nn_dist_samples_to_train"].append(d.mean().item())
        sample_nn.append(d)
        if seed == seeds[0]:  # typical samples; the closest ones would be all 1s, the simplest digit
            nearest_grid = torch.cat([queries[:NEAREST_COUNT], nn_train[j[:NEAREST_COUNT]]])
    times["samples"] = time.perf_counter() - t

    step("reconstruction")
    t = time.perf_counter()
    out = {k: summary(v) for k, v in per_seed.items()}
    test_nn, _ = metrics.nearest_neighbours(test_images[:nn_queries], nn_train)
    out["nn_dist_test_to_train"] = summary([test_nn.mean().item()])
    if family.has_encoder:
        out["reconstruction_mse"] = summary([reconstruction_mse(model, test_images[:n_test])])
    times["reconstruction"] = time.perf_counter() - t
    n_iwae = None
    if family.has_likelihood and iwae_k is not None:
        step("IWAE bound")
        t = time.perf_counter()
        # other test images for each seed, so the spread over seeds includes which images were drawn
        n_iwae = min(iwae_images, len(test_images))
        bounds = []
        for i, seed in enumerate(seeds):
            idx = torch.arange(i * n_iwae, (i + 1) * n_iwae) % len(test_images)
            bounds.append(metrics.iwae_bound(model, test_images[idx], iwae_k, seed=seed))
        out["neg_elbo"] = summary([b["neg_elbo"] for b in bounds])
        out["neg_iwae"] = summary([b["neg_iwae"] for b in bounds])
        times["iwae"] = time.perf_counter() - t

    step("reference")
    t = time.perf_counter()
    ref_p, ref_r = metrics.precision_recall(real_feats, test_feats, knn_k, real_radii=real_radii)
    ref_cov = metrics.class_coverage(test_probs)
    reference = {
        "frechet_distance": summary([metrics.frechet_distance(real_feats, test_feats)]),
        "kid": summary([metrics.kid(real_feats, test_feats, kid_subsets, kid_subset_size, seed=seeds[0])[0]]),
        "precision": summary([ref_p]),
        "recall": summary([ref_r]),
        "class_kl_to_uniform": summary([ref_cov["kl_to_uniform"]]),
        "legible_share": summary([ref_cov["legible_share"]]),
        "mean_confidence": summary([ref_cov["mean_confidence"]]),
    }
    times["reference"] = time.perf_counter() - t
    hist = np.mean(hists, axis=0)
    missing, starved = metrics.flagged_classes(hist)
    # the fraction of samples closer to a training image than all but 1% of unseen test digits are
    test_p1 = torch.quantile(test_nn, 0.01).item()
    all_nn = torch.cat(sample_nn)
    evaluation = {
        "settings": {
            "samples": samples, "seeds": list(seeds), "classifier": Path(classifier_path).resolve().name,
            "classifier_test_accuracy": clf_accuracy, "test_images": n_test,
            "train_images": min(samples, len(train_images)), "iwae_k": iwae_k if n_iwae else None,
            "iwae_images": n_iwae, "iwae_test_images": (None if not n_iwae else "the whole test set, every seed"
                                  if n_iwae >= len(test_images) else "a different slice of the test set per seed"),
            "binarization": "dynamic, seeded per seed" if n_iwae else None,
            "knn_k": knn_k, "kid_subsets": kid_subsets, "kid_subset_size": min(kid_subset_size, samples, n_test),
            "nn_train_images": len(nn_train), "nn_queries": min(nn_queries, samples),
            "nearest_png": f"the first {NEAREST_COUNT} samples of seed {seeds[0]} above their nearest training images",
            "features": f"classifier penultimate layer ({real_feats.shape[1]}-d)",
            "single_value_metrics": "the reference rows, reconstruction_mse and nn_dist_test_to_train do not "
                                    "depend on the seed: one value, std 0",
            "time_s_by_stage": {s: round(v, 2) for s, v in times.items()},
            "wall_time_s": round(time.perf_counter() - start, 2), "git_commit": folder.git_commit(),
        },
        "metrics": out,
        "reference": reference,
        "memorization": {
            "median_nn_dist_samples_to_train": all_nn.median().item(),
            "median_nn_dist_test_to_train": test_nn.median().item(),
            "fraction_samples_below_test_p1": (all_nn < test_p1).float().mean().item(),
        },
        "class_histogram": hist.tolist(),
        "missing_classes": missing,
        "starved_classes": starved,
        "lower_is_better": {name: LOWER_IS_BETTER[name] for name in out},
    }
    if write:
        from core.images import make_grid

        folder.write_png(run_path / NEAREST_PNG, make_grid(nearest_grid.numpy(), nrow=NEAREST_COUNT))
        stored = schemas.read_metrics(run_path) or {}
        folder.write_metrics(run_path, {**stored, "evaluation": evaluation})
    return evaluation


class QualityProbe:
    """A quick quality check of a generator during training: `samples` images from fixed seed-0 codes
    against a fixed training subset of the same size, in the evaluation classifier's features.

    Called after every epoch by core.train.fit; returns Frechet distance, precision, recall, class KL to
    uniform and the smallest/largest class share, plus "score" (= Frechet distance, lower is better) by
    which `keep_best` picks the epoch. 2,000 samples take about a second on a 2-core CPU; the values are
    noisier than `evaluate_run`'s 10,000-sample ones and higher for Frechet distance (its bias grows as
    the sample shrinks), so compare them with each other, not with the final evaluation.
    """

    def __init__(self, classifier_path: str | os.PathLike, train_images: torch.Tensor, samples: int = 2000,
                 knn_k: int = 3):
        self.clf, self.clf_config = load_classifier(classifier_path)
        self.samples, self.knn_k = samples, knn_k
        self.real_feats, _ = classify(self.clf, train_images.cpu()[_subset(len(train_images), samples, seed=0)])
        self.real_radii = metrics.knn_radii(self.real_feats, knn_k)

    @torch.no_grad()
    def __call__(self, model) -> dict[str, float]:
        with evaluating(model):
            fake = generate(model, self.samples, seed=0)
        scores, cov = sample_scores(self.real_feats, self.real_radii, *classify(self.clf, fake), self.knn_k)
        return {**scores, "min_class_share": min(cov["histogram"]), "max_class_share": max(cov["histogram"]),
                "score": scores["frechet_distance"]}


# --- command line ------------------------------------------------------------------------------------
def format_table(name: str, ev: dict) -> str:
    s = ev["settings"]
    lines = [f"{name}: {s['samples']} samples x seeds {s['seeds']}; classifier {s['classifier']} "
             f"(test accuracy {s['classifier_test_accuracy']:.2%}); {s['features']}",
             f"{'metric':26s} {'model (mean ± std)':>22s} {'real test (floor)':>22s}  better"]
    for metric, m in ev["metrics"].items():
        ref = ev["reference"].get(metric)
        ref_s = f"{ref['mean']:.4g} ± {ref['std']:.2g}" if ref else "-"
        better = "lower" if ev["lower_is_better"][metric] else "higher"
        lines.append(f"{metric:26s} {m['mean']:>12.4g} ± {m['std']:<7.2g} {ref_s:>22s}  {better}")
    mem = ev["memorization"]
    lines.append(f"classes: missing {ev['missing_classes'] or 'none'}, starved {ev['starved_classes'] or 'none'}; "
                 f"histogram {[round(h, 3) for h in ev['class_histogram']]}")
    lines.append(f"memorization: median NN distance samples {mem['median_nn_dist_samples_to_train']:.3f} vs test "
                 f"{mem['median_nn_dist_test_to_train']:.3f}; {mem['fraction_samples_below_test_p1']:.2%} of "
                 "samples closer than 99% of test digits")
    stages = ", ".join(f"{k} {v:.1f}" for k, v in s["time_s_by_stage"].items())
    lines.append(f"wall time {s['wall_time_s']:.1f} s ({stages})")
    return "\n".join(lines)
