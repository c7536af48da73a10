"""The Training curves page's "quality over training" charts, from the per-epoch quality check."""

import pytest
import torch

from core.runner import train_run
from core.train import TrainConfig

from ..conftest import REPO, TINY
from .test_dashboard import charts, goto, open_app

CLASSIFIER = REPO / "checkpoints" / "mnist-classifier"


@pytest.fixture(scope="module")
def checked_runs(tmp_path_factory, splits):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("quality-runs")
    for kind in ("vae", "gan"):
        train_run(kind, root / f"mnist-{kind}", TINY[kind], TrainConfig(epochs=2, batch_size=64, device="cpu"),
                  splits=splits, embed_size=64, quality_classifier=CLASSIFIER)
    return root


def _quality_charts(at) -> dict[str, dict]:
    return {c["layout"]["title"]["text"]: c for c in charts(at) if "↓" in c["layout"]["title"]["text"]
            or "↑" in c["layout"]["title"]["text"]}


def test_quality_over_training_shows_both_models_per_epoch_and_per_minute(monkeypatch, checked_runs):
    at = goto(open_app(monkeypatch, checked_runs), "curves")
    q = _quality_charts(at)
    assert {"Fréchet distance ↓", "Precision ↑", "Recall ↑", "Class balance: KL to uniform ↓"} <= set(q)
    traces = q["Fréchet distance ↓"]["data"]
    assert [t["name"].split(" ")[0] for t in traces] == ["VAE", "GAN"]
    assert all(list(t["x"]) == [1, 2] and len(t["y"]) == 2 for t in traces)
    assert all(t["mode"] == "lines+markers" for t in traces)  # two epochs still show
    at.radio(key="quality_axis").set_value("training minutes").run()
    minutes = _quality_charts(at)["Fréchet distance ↓"]["data"]
    assert all(0 < t["x"][0] < t["x"][1] < 1 for t in minutes)  # tiny runs: fractions of a minute, rising


def test_runs_without_a_quality_log_are_named_not_dropped(monkeypatch, tiny_runs):
    at = goto(open_app(monkeypatch, tiny_runs), "curves")
    assert not _quality_charts(at)
    assert sum("no per-epoch quality log" in c.value for c in at.caption) == 2


def test_a_shorter_run_stays_in_view_beside_a_long_one():
    """The y range frames a long series without its opening drop, and every point of a shorter one: a
    50-epoch VAE overlaid on an 86-epoch GAN was cut off the Precision chart."""
    import numpy as np

    from dashboard import components as ui

    gan = [0.95] + list(np.linspace(0.55, 0.66, 85))  # 86 epochs; epoch 1 is the opening outlier
    vae = list(np.linspace(0.72, 0.80, 49)) + [None]  # 50 epochs, a gap at the end
    lo, hi = ui.line_chart([{"x": list(range(1, 87)), "y": gan, "name": "GAN"},
                            {"x": list(range(1, 51)), "y": vae, "name": "VAE"}], "Precision ↑", "epoch",
                           "fraction").layout.yaxis.range
    assert lo < 0.55 and 0.80 < hi < 0.95
