import math
import warnings

import pytest
import torch

from core.models import build_model
from core.run.folder import load_model
from core.runner import train_run
from core.train import TrainConfig, TrainingDiverged, fit, make_grid, resolve_precision

from ..conftest import TINY, make_tiny_run


@pytest.mark.parametrize("kind", ["vae", "gan", "classifier"])
def test_one_tiny_epoch(kind, splits):
    torch.manual_seed(0)
    model = build_model(kind, TINY.get(kind, {"width": 4, "feature_dim": 8}))
    result = fit(model, *splits, TrainConfig(epochs=1, batch_size=64, device="cpu"))
    steps, epochs = result["history"]["steps"], result["history"]["epochs"]
    assert steps["step"] == [1, 2, 3]  # 192 images / 64
    assert epochs["epoch"] == [1]
    expected = {"vae": "test/neg_elbo", "gan": "test/d_real", "classifier": "test/accuracy"}[kind]
    assert math.isfinite(epochs[expected][0])
    if kind == "gan":
        assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(steps)
    if kind != "classifier":
        assert result["grids"][1].shape == (8 * 30 + 2, 8 * 30 + 2)


def test_vae_learns_on_synthetic_data(splits):
    torch.manual_seed(0)
    model = build_model("vae", TINY["vae"])
    epochs = fit(model, *splits, TrainConfig(epochs=4, batch_size=32, device="cpu"))["history"]["epochs"]
    assert epochs["test/neg_elbo"][-1] < epochs["test/neg_elbo"][0]


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, splits):
    a = load_model(make_tiny_run("gan", tmp_path / "a", splits, seed=3, epochs=1))
    b = load_model(make_tiny_run("gan", tmp_path / "b", splits, seed=3, epochs=1))
    c = load_model(make_tiny_run("gan", tmp_path / "c", splits, seed=4, epochs=1))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_nan_loss_stops_training_and_writes_nothing(tmp_path, splits, monkeypatch):
    from core.models.vae import VAE

    calls = {"n": 0}
    real_step = VAE.step

    def flaky(self, x, labels=None):
        calls["n"] += 1
        out = real_step(self, x, labels)
        return {**out, "neg_elbo": float("nan")} if calls["n"] == 2 else out

    monkeypatch.setattr(VAE, "step", flaky)
    with pytest.raises(TrainingDiverged, match=r"neg_elbo became nan at epoch 1, step 2.*nothing was written"):
        make_tiny_run("vae", tmp_path / "run", splits)
    assert list(tmp_path.iterdir()) == []


def test_huge_learning_rate_diverges_cleanly(tmp_path, splits):
    cfg = TrainConfig(epochs=3, batch_size=32, lr=1.0, device="cpu")
    with pytest.raises(TrainingDiverged):
        train_run("vae", tmp_path / "run", {"preset": "seed", "latent_dim": 4}, cfg, splits=splits, embed_size=32)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("clock", ["wall", "process"])
def test_time_budget_stops_early(splits, clock):
    model = build_model("vae", TINY["vae"])
    result = fit(model, *splits, TrainConfig(epochs=50, batch_size=16, time_budget_s=1e-9, device="cpu", clock=clock))
    assert result["stopped_early"] and result["history"]["steps"]["step"] == [1]
    assert result["history"]["epochs"]["time_s"][0] > 0


@pytest.mark.parametrize("field,value", [("epochs", 0), ("batch_size", 0), ("lr", -1.0), ("lr", 5.0),
                                         ("beta1", 1.5), ("device", "tpu"),
                                         ("lr_schedule", "step"), ("precision", "fp16"),
                                         ("clock", "cpu")])
def test_train_config_bounds(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_make_grid_layout():
    imgs = torch.zeros(3, 1, 28, 28)
    imgs[1] = 1.0
    grid = make_grid(imgs, nrow=2, pad=2)
    assert grid.shape == (2 * 30 + 2, 2 * 30 + 2)
    assert grid[2:30, 32:60].min() == 255 and grid[2:30, 2:30].max() == 0


def test_cosine_schedule_anneals_to_zero(splits):
    model = build_model("vae", TINY["vae"])
    fit(model, *splits, TrainConfig(epochs=2, batch_size=64, lr=1e-3, lr_schedule="cosine", device="cpu"))
    assert model.optimizers["vae"].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_cosine_schedule_anneals_only_the_gan_players_that_step(splits):
    # E trains after the GAN here: it has no step to schedule, so no "scheduler before optimizer" warning
    model = build_model("gan", {**TINY["gan"], "encoder_epochs": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit(model, *splits, TrainConfig(epochs=2, batch_size=64, lr=1e-3, lr_schedule="cosine", device="cpu"))
    assert model.optimizers["g"].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert model.optimizers["d"].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert model.optimizers["e"].param_groups[0]["lr"] == pytest.approx(1e-3)


@pytest.mark.parametrize("kind", ["vae", "gan", "classifier"])
def test_bf16_autocast_trains_finitely_and_differs_from_fp32(kind, splits):
    weights = {}
    for precision in ("bf16", "fp32", "bf16"):
        torch.manual_seed(0)
        model = build_model(kind, TINY.get(kind, {"width": 4, "feature_dim": 8}))
        result = fit(model, *splits, TrainConfig(epochs=1, batch_size=64, device="cpu", precision=precision))
        losses = [v for k, vs in result["history"]["steps"].items() if k not in ("step", "epoch") for v in vs]
        assert losses and all(math.isfinite(v) for v in losses)
        state = model.state_dict()
        assert all(v.dtype != torch.bfloat16 for v in state.values())  # weights stay fp32
        weights.setdefault(precision, []).append(state)
    a, b = weights["bf16"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed, same device: the same weights
    fp32 = weights["fp32"][0]
    assert not all(torch.equal(a[k], fp32[k]) for k in a if a[k].dtype.is_floating_point)  # autocast did act


def test_auto_precision_follows_the_cpu(monkeypatch):
    monkeypatch.setattr("core.train.cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", torch.device("cpu")) == "bf16"
    assert resolve_precision("auto", torch.device("cuda")) == "fp32"
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    monkeypatch.setattr("core.train.cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"


@pytest.mark.parametrize("asked", ["auto", "fp32", "bf16"])
def test_config_records_the_precision_that_ran(asked, tmp_path, splits):
    from core.run.schemas import read_config

    run = train_run("gan", tmp_path / "run", TINY["gan"],
                    TrainConfig(epochs=1, batch_size=64, device="cpu", precision=asked), splits=splits, embed_size=32)
    recorded = read_config(run)["train_config"]["precision"]
    assert recorded == resolve_precision(asked, torch.device("cpu")) and recorded in ("fp32", "bf16")
