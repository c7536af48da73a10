"""Reading a run's evaluation (metrics.json's "evaluation" section) for the pages: how each statistic is rounded,
what the settings were, whether two evaluations compare, whether a model collapsed. No disk access, no torch."""

from __future__ import annotations

# Decimals per statistic: one rounding wherever the number is shown (Overview cards, Metrics table, Runs table).
DECIMALS = {
    "frechet_distance": 1, "kid": 1, "precision": 3, "recall": 3, "class_kl_to_uniform": 4,
    "mean_confidence": 3, "reconstruction_mse": 4, "neg_elbo": 1, "neg_iwae": 1, "nn_dist_samples_to_train": 2,
    "nn_dist_test_to_train": 2, "reconstruction": 1, "kl": 1, "e_recon": 4, "d_real": 3, "d_fake": 3,
}
PERCENT = {"legible_share": 1}  # shares shown as percentages, with these decimals
# a family's held-out number (metrics.json "held_out", written at the end of training) that the evaluation
# measures again, on its own settings: pages show the evaluation's, as the Metrics page does
EVALUATED_AS = {"neg_elbo": "neg_elbo", "e_recon": "reconstruction_mse"}
# the settings that change what a number means: two evaluations that differ in one are not ranked against each other
COMPARED = {"samples": "samples per seed", "seeds": "seeds", "train_images": "training images",
            "test_images": "test images", "classifier": "classifier", "knn_k": "k of the k-NN manifolds",
            "kid_subsets": "KID subsets", "kid_subset_size": "KID subset size", "iwae_k": "IWAE samples"}
COLLAPSE_SHARE = 0.5  # half the classes or more missing: mode collapse, not partial mode dropping


def number(key: str, value: float, std: float | None = None, scale: float = 1.0) -> str:
    """A statistic as every page shows it: its decimals, and "± std" (two significant digits) when given."""
    if key in PERCENT:
        text = f"{value * 100:.{PERCENT[key]}f}%"
        return text if std is None else f"{text} ± {std * 100:.2g}%"
    v, decimals = value * scale, DECIMALS.get(key, 3)
    small = v != 0 and abs(v) < 10 ** -decimals  # would read as 0: three significant digits instead
    text = f"{v:.3g}" if small or abs(v) >= 1e6 else f"{v:,.{decimals}f}"
    return text if std is None else f"{text} ± {std * scale:.2g}"


def spread(stat: dict) -> float | None:
    """The std over seeds, or None when there was one seed (or the statistic does not depend on the seed)."""
    return stat.get("std") if len(stat.get("values", [])) > 1 else None


def settings_text(settings: dict) -> str:
    """ "10,000 samples per seed, seeds 0, 1, 2" from an evaluation's settings, never assumed."""
    seeds = settings.get("seeds") or []
    samples = settings.get("samples")
    count = f"{samples:,} samples" if isinstance(samples, int) else "an unrecorded number of samples"
    if len(seeds) == 1:
        return f"{count}, seed {seeds[0]}"
    return f"{count} per seed, seeds {', '.join(map(str, seeds))}" if seeds else count


def differing(evals: dict) -> list[str]:
    """Names of the compared settings on which the evaluations (family -> evaluation) disagree."""
    out = []
    for key, name in COMPARED.items():
        values = {repr(ev.get("settings", {}).get(key)) for ev in evals.values()
                  if ev.get("settings", {}).get(key) is not None}
        if len(values) > 1:
            out.append(name)
    return out


def missing(ev: dict) -> list[int]:
    return list(ev.get("missing_classes", []))


def collapsed(ev: dict) -> bool:
    """Mode collapse: at least half the classes missing from the samples (e.g. nearly every sample an "8")."""
    n = len(ev.get("class_histogram", [])) or 1
    return len(missing(ev)) >= COLLAPSE_SHARE * n
