import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from core import metrics
from core.evaluate import LOWER_IS_BETTER, evaluate_run
from core.models import build_model
from core.models.vae import bernoulli_nll
from core.run.folder import load_model
from core.run.layout import CheckpointError
from core.run.schemas import read_metrics

from ..conftest import TINY, make_tiny_run


def gaussian(n, d=8, seed=0, shift=0.0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * scale + shift


# --- Frechet distance and KID ---------------------------------------------------------------------
def test_frechet_distance_is_zero_to_itself_and_grows_with_a_mean_shift():
    a = gaussian(500)
    assert abs(metrics.frechet_distance(a, a)) < 1e-6
    # shifting every feature by s leaves the covariance alone and adds ||s||^2 = d * s^2
    for s in (0.5, 1.0, 2.0):
        assert metrics.frechet_distance(a, a + s) == pytest.approx(8 * s**2, rel=1e-6)


def test_frechet_distance_matches_scipy_sqrtm():
    from scipy import linalg

    a = gaussian(400, d=6, seed=1).numpy().astype(np.float64)
    b = (gaussian(300, d=6, seed=2) @ torch.randn(6, 6, generator=torch.Generator().manual_seed(3)) + 0.3).numpy()
    b = b.astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b).real)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_rejects_mismatched_features():
    with pytest.raises(ValueError, match="same D"):
        metrics.frechet_distance(gaussian(10, d=4), gaussian(10, d=5))


def test_kid_near_zero_for_the_same_distribution_and_larger_when_shifted():
    real, same, shifted = gaussian(600, seed=0), gaussian(600, seed=1), gaussian(600, seed=2, shift=0.5)
    same_mean, same_std = metrics.kid(real, same, subsets=20, subset_size=200)
    shifted_mean, _ = metrics.kid(real, shifted, subsets=20, subset_size=200)
    assert abs(same_mean) < 0.01
    assert shifted_mean > 10 * max(abs(same_mean), same_std)
    assert metrics.kid(real, shifted, subsets=5, subset_size=100, seed=7) == metrics.kid(
        real, shifted, subsets=5, subset_size=100, seed=7)


# --- precision and recall -------------------------------------------------------------------------
def test_knn_radius_is_the_distance_to_the_kth_other_point():
    line = torch.arange(10.0)[:, None]  # 0, 1, ..., 9 on a line
    r = metrics.knn_radii(line, k=3, batch_size=4)
    assert r[0] == 3 and r[5] == 2  # 0: neighbours 1, 2, 3;  5: neighbours 4, 6, then 3 or 7


def test_precision_recall_of_a_corner_of_the_reference():
    real = gaussian(1000, d=2)
    corner = real[real[:, 0] < real[:, 0].quantile(0.1)]  # real points, but only one tenth of the manifold
    p, r = metrics.precision_recall(real, corner, k=3)
    assert p == 1.0
    assert r < 0.3
    p_same, r_same = metrics.precision_recall(real, gaussian(1000, d=2, seed=5), k=3)
    assert p_same > 0.8 and r_same > 0.8
    p_far, _ = metrics.precision_recall(real, gaussian(1000, d=2, seed=6, shift=10.0), k=3)
    assert p_far == 0.0


# --- class coverage -------------------------------------------------------------------------------
def test_one_class_generator_is_flagged_collapsed():
    probs = torch.full((500, 10), 0.01)
    probs[:, 3] = 0.91
    cov = metrics.class_coverage(probs)
    assert cov["collapsed"]
    assert cov["coverage"] == pytest.approx(0.1)
    assert cov["missing"] == [c for c in range(10) if c != 3]
    assert cov["kl_to_uniform"] == pytest.approx(math.log(10))
    assert cov["mean_confidence"] == pytest.approx(0.91)
    assert cov["legible_share"] == 1.0  # 0.91 > 0.9: every sample reads as a 3 at once


def test_legible_share_counts_confident_samples_only():
    probs = torch.full((4, 10), 0.0)
    probs[0, 1], probs[1, 2] = 0.95, 0.9  # confident; exactly at the threshold (not counted)
    probs[2, :2] = 0.5  # a 0/1 hybrid
    probs[3, 5] = 0.99
    probs[:2, 0] += 1 - probs[:2].sum(1)
    cov = metrics.class_coverage(probs)
    assert cov["legible_share"] == pytest.approx(0.5)


def test_balanced_classes_with_one_starved_one():
    labels = torch.arange(1000) % 10
    labels[labels == 7] = torch.tensor([7] * 40 + [0] * 60)  # class 7: 4% of the samples (starved, not missing)
    probs = torch.nn.functional.one_hot(labels, 10).double()
    cov = metrics.class_coverage(probs)
    assert not cov["collapsed"] and cov["coverage"] == 1.0
    assert cov["starved"] == [7] and cov["missing"] == []
    assert 0 < cov["kl_to_uniform"] < 0.1
    assert sum(cov["histogram"]) == pytest.approx(1.0)


# --- memorization ---------------------------------------------------------------------------------
def test_nearest_neighbours_finds_copies():
    g = torch.Generator().manual_seed(0)
    reference = torch.randint(0, 256, (300, 1, 28, 28), generator=g, dtype=torch.uint8)
    queries = torch.cat([reference[[5, 123]].float() / 255, torch.rand(3, 1, 28, 28, generator=g)])
    d, j = metrics.nearest_neighbours(queries, reference, batch_size=2)
    assert j[:2].tolist() == [5, 123]
    assert d[:2].max() < 1e-3 and d[2:].min() > 5


# --- IWAE -----------------------------------------------------------------------------------------
def test_iwae_matches_log_likelihood_when_the_decoder_ignores_z():
    # With p(x|z) independent of z, log p(x) = log p(x|z) exactly; with q(z|x) = N(0.3, I), the ELBO is
    # log p(x) - KL = log p(x) - 0.5 * 8 * 0.3^2, while IWAE_100 is log p(x) up to O(var(w) / k).
    torch.manual_seed(0)
    vae = build_model("vae", TINY["vae"]).eval()
    with torch.no_grad():
        vae.decoder[0].weight.zero_()
        for layer in (vae.to_mu, vae.to_logvar):
            layer.weight.zero_()
        vae.to_mu.bias.fill_(0.3)
        vae.to_logvar.bias.zero_()
    x = (torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(1)) > 0.5).to(torch.uint8) * 255
    with torch.no_grad():  # binary images stay as they are under dynamic binarization
        neg_log_px = bernoulli_nll(vae.decode(torch.zeros(16, 8)), x.float() / 255).mean().item()
    b = metrics.iwae_bound(vae, x, k=100, seed=0)
    assert b["neg_elbo"] == pytest.approx(neg_log_px + 0.36, abs=1e-3)
    assert b["neg_iwae"] == pytest.approx(neg_log_px, abs=0.05)


def test_iwae_bound_is_tighter_than_the_elbo(tiny_runs, splits):
    vae = load_model(tiny_runs / "mnist-vae")
    test = splits[1][0][:32]
    runs = [metrics.iwae_bound(vae, test, k=100, seed=s) for s in (0, 1, 2)]
    neg_iwae, neg_elbo = np.mean([r["neg_iwae"] for r in runs]), np.mean([r["neg_elbo"] for r in runs])
    assert neg_iwae <= neg_elbo
    # the model's own ELBO (another code path, other binarization draws) agrees with ours
    assert vae.evaluate(test)["neg_elbo"] == pytest.approx(neg_elbo, rel=0.05)
    assert metrics.iwae_bound(vae, test, k=100, seed=0) == runs[0]  # seeded: repeats exactly


# --- evaluate_run end to end ----------------------------------------------------------------------
SMALL = {"samples": 64, "seeds": (0, 1), "iwae_k": 100, "iwae_images": 8, "kid_subsets": 5,
         "kid_subset_size": 32, "nn_queries": 32, "nn_train_images": 100}


@pytest.fixture(scope="module")
def eval_setup(tiny_runs, splits, tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    for name in ("mnist-vae", "mnist-gan"):
        shutil.copytree(tiny_runs / name, root / name)  # evaluation writes into the run; keep the shared ones
    clf = make_tiny_run("classifier", root / "mnist-classifier", splits, width=4, feature_dim=8)
    return root, clf


@pytest.mark.parametrize("name", ["mnist-vae", "mnist-gan"])
def test_evaluate_run_writes_evaluation_and_keeps_other_keys(eval_setup, splits, name):
    root, clf = eval_setup
    run = root / name
    before = read_metrics(run)
    assert "held_out" in before
    ev = evaluate_run(run, clf, splits=splits, **SMALL)
    stored = read_metrics(run)
    assert stored["held_out"] == before["held_out"] and stored["settings"] == before["settings"]
    assert stored["evaluation"] == json.loads(json.dumps(ev))

    expected = {"frechet_distance", "kid", "precision", "recall", "class_kl_to_uniform", "mean_confidence",
                "legible_share", "reconstruction_mse", "nn_dist_samples_to_train", "nn_dist_test_to_train"}
    if name == "mnist-vae":
        expected |= {"neg_elbo", "neg_iwae"}
    assert set(ev["metrics"]) == expected
    assert set(ev["lower_is_better"]) == expected
    assert set(ev["reference"]) == {"frechet_distance", "kid", "precision", "recall", "class_kl_to_uniform",
                                    "legible_share", "mean_confidence"}
    assert 0 <= ev["metrics"]["legible_share"]["mean"] <= 1
    for m in ev["metrics"].values():
        assert len(m["values"]) in (1, 2) and all(math.isfinite(v) for v in m["values"])
        assert m["mean"] == pytest.approx(np.mean(m["values"]))
    assert len(ev["metrics"]["frechet_distance"]["values"]) == 2  # one per seed
    assert 0 <= ev["metrics"]["precision"]["mean"] <= 1 and 0 <= ev["metrics"]["recall"]["mean"] <= 1
    assert len(ev["class_histogram"]) == 10 and sum(ev["class_histogram"]) == pytest.approx(1.0)
    if name == "mnist-vae":
        assert ev["metrics"]["neg_iwae"]["mean"] <= ev["metrics"]["neg_elbo"]["mean"]
        assert ev["settings"]["iwae_k"] == 100
    else:
        assert ev["settings"]["iwae_k"] is None
    s = ev["settings"]
    assert s["samples"] == 64 and s["seeds"] == [0, 1] and s["classifier"] == "mnist-classifier"
    assert s["knn_k"] == 3 and s["features"] == "classifier penultimate layer (8-d)"
    assert 0 <= s["classifier_test_accuracy"] <= 1 and s["wall_time_s"] > 0

    grid = np.asarray(Image.open(run / "nearest.png"))
    assert grid.dtype == np.uint8 and grid.shape == (2 * 30 + 2, 8 * 30 + 2)
    assert not list(run.glob(".*"))  # no temporary files left behind


def test_evaluate_run_is_seeded(eval_setup, splits):
    root, clf = eval_setup
    a = evaluate_run(root / "mnist-gan", clf, splits=splits, write=False, **SMALL)
    b = evaluate_run(root / "mnist-gan", clf, splits=splits, write=False, **SMALL)
    assert a["metrics"] == b["metrics"] and a["reference"] == b["reference"]


def test_reference_row_is_the_floor(eval_setup, splits):
    # a GAN trained for 2 epochs makes noise: further from the training digits than held-out real ones
    root, clf = eval_setup
    ev = evaluate_run(root / "mnist-gan", clf, splits=splits, write=False, **SMALL)
    assert ev["reference"]["frechet_distance"]["mean"] < ev["metrics"]["frechet_distance"]["mean"]
    assert set(LOWER_IS_BETTER) >= set(ev["metrics"])


def test_classifier_that_fails_strict_loading_is_a_clear_error(eval_setup, splits):
    root, clf = eval_setup
    bad = root / "bad-classifier"
    shutil.copytree(clf, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model_config"]["feature_dim"] = 16  # the weights are for 8
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="evaluation classifier .*bad-classifier.*does not match"):
        evaluate_run(root / "mnist-vae", bad, splits=splits, write=False, **SMALL)
    with pytest.raises(CheckpointError, match="is a vae run, not a classifier"):
        evaluate_run(root / "mnist-gan", root / "mnist-vae", splits=splits, write=False, **SMALL)
    with pytest.raises(ValueError, match="needs a vae or gan run"):
        evaluate_run(clf, clf, splits=splits, write=False, **SMALL)
