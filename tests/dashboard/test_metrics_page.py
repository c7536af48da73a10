"""The Metrics and Overview pages read each run's evaluation settings: a quick evaluation of a collapsed GAN
(2,000 samples, one seed, nearly every sample one class) next to the committed VAE's full one."""

import json
import shutil

import pytest

from dashboard import evaluation

from .test_dashboard import REPO, charts, goto, open_app

COMMITTED = REPO / "checkpoints"


@pytest.fixture
def collapsed_pair(tmp_path):
    """checkpoints/: the committed MNIST VAE, and the committed GAN with a quick evaluation of a collapsed model."""
    ck = tmp_path / "checkpoints"
    for run in ("mnist-vae", "mnist-gan"):
        shutil.copytree(COMMITTED / run, ck / run)
    path = ck / "mnist-gan" / "metrics.json"
    m = json.loads(path.read_text())
    ev = m["evaluation"]
    ev["settings"].update(samples=2000, seeds=[0], train_images=2000, test_images=2000)
    hist = [0.0] * 10
    hist[8] = 1.0
    ev["class_histogram"], ev["missing_classes"], ev["starved_classes"] = hist, [0, 1, 2, 3, 4, 5, 6, 7, 9], []
    one = {"precision": 1.0, "recall": 0.0, "mean_confidence": 0.99, "frechet_distance": 900.0}
    for key, value in one.items():
        ev["metrics"][key] = {"mean": value, "std": 0.0, "values": [value]}
    path.write_text(json.dumps(m))
    return ck


def text_of(at) -> str:
    parts = [e.value for kind in ("markdown", "caption", "warning", "error", "info", "subheader") for e in at.get(kind)]
    return "\n".join(map(str, parts))


def test_a_quick_evaluation_of_a_collapsed_gan_reads_as_such(monkeypatch, tmp_path, collapsed_pair):
    at = goto(open_app(monkeypatch, collapsed_pair, tmp_path / "runs"), "metrics")
    text = text_of(at)
    # each run's own settings, never the VAE's assumed for both
    assert "GAN (mnist-gan): 2,000 samples, seed 0" in text and "10,000 samples per seed, seeds 0, 1, 2" in text
    assert "evaluated with different settings" in text
    assert "Predicted class of 10,000 samples" not in json.dumps(charts(at))
    # no ✓ between evaluations that differ, none for the collapsed model
    table = at.table[0].value
    assert not table.apply(lambda col: col.astype(str).str.contains("✓")).any().any()
    # 9 of 10 classes missing is mode collapse
    assert "9 of 10 classes missing" in text and "mode collapse" in text and "partial mode dropping" not in text
    # the collapsed GAN's (recall 0, precision 1) dot lies inside the axes, drawn unclipped
    pr = next(c for c in charts(at) if "Precision (fidelity) vs recall" in c["layout"]["title"]["text"])
    assert pr["layout"]["xaxis"]["range"][0] < 0 and pr["layout"]["yaxis"]["range"][1] > 1.05
    assert all(t.get("cliponaxis") is False for t in pr["data"])
    # "What each row measures" covers every row of the table
    rows = [str(r) for r in table["metric"]]
    measured = next(e.value for e in at.markdown if "is better" in e.value)
    assert all(f"**{r.replace(' × 10³', '')}**" in measured for r in rows), rows


def test_no_tick_for_a_collapsed_model_evaluated_alike(monkeypatch, tmp_path, collapsed_pair):
    """Same settings, but one model collapsed: nothing ranks the pair (the collapsed GAN's precision 1.0 is
    not "better")."""
    gan = collapsed_pair / "mnist-gan" / "metrics.json"
    m = json.loads(gan.read_text())
    vae = json.loads((collapsed_pair / "mnist-vae" / "metrics.json").read_text())
    m["evaluation"]["settings"] = vae["evaluation"]["settings"]
    gan.write_text(json.dumps(m))
    at = goto(open_app(monkeypatch, collapsed_pair, tmp_path / "runs"), "metrics")
    table = at.table[0].value
    assert not table.apply(lambda col: col.astype(str).str.contains("✓")).any().any()
    assert "did not collapse (GAN did)" in text_of(at)


def test_the_same_statistic_reads_the_same_on_overview_and_metrics(monkeypatch, tmp_path):
    ck = tmp_path / "checkpoints"
    for run in ("mnist-vae", "mnist-gan"):
        shutil.copytree(COMMITTED / run, ck / run)
    at = open_app(monkeypatch, ck, tmp_path / "runs")
    cards = {}
    for m in at.metric:  # the VAE's cards come first
        cards.setdefault(m.label, m.value)
    at = goto(at, "metrics")
    table = at.table[0].value.set_index("metric")
    ev = json.loads((ck / "mnist-vae" / "metrics.json").read_text())["evaluation"]["metrics"]
    elbo = evaluation.number("neg_elbo", ev["neg_elbo"]["mean"])
    assert cards["Test −ELBO ↓"] == elbo and table.loc["−ELBO (nats per image)", "VAE"].startswith(elbo + " ±")
    fd = evaluation.number("frechet_distance", ev["frechet_distance"]["mean"])
    assert cards["Fréchet distance ↓"] == fd
    assert table.loc["Fréchet distance (classifier features)", "VAE"].startswith(fd + " ±")
