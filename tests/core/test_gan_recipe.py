"""The GAN recipe's options (EMA of G, spectral norm, hinge loss, TTUR, minibatch std) and the per-epoch
quality check that picks the kept epoch."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from core.models import build_model
from core.models.gan import GAN, LEGACY, GANConfig, LatentMixture, MinibatchStd
from core.run.folder import load_model
from core.run.schemas import read_config, read_history
from core.train import TrainConfig, fit

from ..conftest import REPO, TINY, make_tiny_run

CLASSIFIER = REPO / "checkpoints" / "mnist-classifier"


def _trained(splits, **overrides) -> GAN:
    torch.manual_seed(0)
    model = build_model("gan", {**TINY["gan"], **overrides})
    fit(model, *splits, TrainConfig(epochs=1, batch_size=64, device="cpu"))
    return model


def test_ema_generator_differs_from_raw_and_draws_the_samples(splits):
    model = _trained(splits, ema=0.9)
    raw, avg = model.generator.state_dict(), model.generator_ema.state_dict()
    assert raw.keys() == avg.keys()
    assert any(not torch.equal(raw[k], avg[k]) for k in raw if raw[k].dtype.is_floating_point)
    z = torch.randn(6, TINY["gan"]["latent_dim"])
    assert torch.equal(model.sample(z), model.generator_ema(z))
    assert not torch.allclose(model.sample(z), model.generator.eval()(z))
    model.train()
    assert not model.generator_ema.training  # G_ema always uses its averaged batch-norm statistics
    assert not any(p.requires_grad for p in model.generator_ema.parameters())


def test_ema_update_is_the_running_average():
    model = build_model("gan", {**TINY["gan"], "ema": 0.5})
    model.ema_updates = 1000  # past the warm-up: the decay is the configured 0.5
    first = next(model.generator.parameters())
    before = next(model.generator_ema.parameters()).clone()
    with torch.no_grad():
        first.add_(1.0)
    model.update_ema()
    assert torch.allclose(next(model.generator_ema.parameters()), 0.5 * before + 0.5 * first)


def test_ema_weights_are_saved_and_strictly_reloaded(tmp_path, splits):
    run = make_tiny_run("gan", tmp_path / "gan", splits, epochs=1, ema=0.9)
    tensors = load_file(str(run / "model.safetensors"))
    assert any(k.startswith("generator_ema.") for k in tensors)
    loaded = load_model(run)
    key = next(k for k in tensors if k.startswith("generator_ema.") and k.endswith(".weight"))
    assert torch.equal(loaded.state_dict()[key], tensors[key])
    z = torch.randn(4, TINY["gan"]["latent_dim"])
    assert torch.equal(loaded.sample(z), loaded.generator_ema(z))
    del tensors[key]  # a file without the average no longer matches its config
    from safetensors.torch import save_file

    save_file(tensors, str(run / "model.safetensors"))
    from core.run.layout import CheckpointError

    with pytest.raises(CheckpointError, match="generator_ema"):
        load_model(run)


def test_hinge_losses_on_a_tiny_case():
    model = build_model("gan", {**TINY["gan"], "loss": "hinge"})
    real, fake = torch.tensor([[2.0], [0.5]]), torch.tensor([[-2.0], [0.5]])
    # E[max(0, 1 - D(x))] = (0 + 0.5) / 2, E[max(0, 1 + D(G(z)))] = (0 + 1.5) / 2
    assert model.discriminator_loss(real, fake).item() == pytest.approx(1.0)
    assert model.generator_loss(fake).item() == pytest.approx(0.75)  # -E[D(G(z))]
    ns = build_model("gan", {**TINY["gan"], "loss": "non-saturating"})
    assert ns.generator_loss(torch.zeros(3, 1)).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())


def test_spectral_norm_bounds_every_discriminator_layer(splits):
    model = _trained(splits, d_norm="spectral")
    layers = [m for m in model.discriminator.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 3 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.discriminator.modules())
    model.eval()
    for m in layers:  # the normalised weight's largest singular value is ~1 (power iteration estimate)
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.15)
    batch = build_model("gan", {**TINY["gan"], "d_norm": "batch"})
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in batch.discriminator.modules())


@pytest.mark.parametrize("options", [{"d_norm": "spectral", "mbstd": True, "loss": "hinge"},
                                     {"d_norm": "none", "ema": 0.0}, {"d_norm": "batch", "d_lr_ratio": 4.0}])
def test_discriminator_options_save_and_reload(tmp_path, splits, options):
    run = make_tiny_run("gan", tmp_path / "gan", splits, epochs=1, **options)
    saved = read_config(run)["model_config"]
    assert {k: saved[k] for k in options} == options
    a, b = load_model(run), load_model(run)
    x = torch.rand(5, 1, 28, 28)
    assert torch.equal(a.discriminator(x), b.discriminator(x))
    assert torch.equal(a.sample(torch.zeros(2, 8)), b.sample(torch.zeros(2, 8)))


def test_two_time_scales_give_d_its_own_learning_rate():
    model = build_model("gan", {**TINY["gan"], "d_lr_ratio": 4.0})
    opts = model.configure_optimizers(1e-4, (0.5, 0.999))
    assert opts["d"].param_groups[0]["lr"] == pytest.approx(4e-4)
    assert opts["g"].param_groups[0]["lr"] == pytest.approx(1e-4)


def test_minibatch_std_sees_a_batch_without_variety():
    same = torch.ones(4, 3, 7, 7)
    assert MinibatchStd()(same)[:, -1].abs().max() == 0
    varied = torch.randn(4, 3, 7, 7)
    out = MinibatchStd()(varied)
    assert out.shape == (4, 4, 7, 7) and out[:, -1].min() > 0
    assert MinibatchStd()(varied[:1]).shape == (1, 4, 7, 7)  # one image: a zero map, not NaN


def test_config_without_the_new_options_loads_as_it_was_trained():
    old = {"preset": "conv", "latent_dim": 8, "width": 4, "loss": "non-saturating", "encoder_recon_weight": 1.0}
    model = build_model("gan", old, saved=True)
    assert model.generator_ema is None and model.config.d_norm == "batch" and not model.config.mbstd
    assert {k: getattr(model.config, k) for k in LEGACY} == LEGACY
    assert build_model("gan", old).generator_ema is not None  # a new run takes today's defaults
    # and D keeps the module layout those runs saved (conv_features, then the head), so their weights load
    d_keys = [k for k in model.state_dict() if k.startswith("discriminator.")]
    assert d_keys[:2] == ["discriminator.0.0.weight", "discriminator.0.0.bias"] and d_keys[-1] == "discriminator.1.bias"
    assert "legacy_layout" not in dataclasses.asdict(model.config)
    assert GANConfig().mbstd is True and GANConfig(preset="seed").mbstd is False  # the measured default, conv only
    with pytest.raises(ValueError, match="d_norm"):
        GANConfig(d_norm="layer")
    with pytest.raises(ValueError, match="ema"):
        GANConfig(ema=1.0)


def test_quality_is_logged_every_epoch_and_the_best_epoch_is_kept(tmp_path, splits, monkeypatch):
    from core import evaluate

    scores = iter([30.0, 10.0, 20.0])  # epoch 2 is best by the score
    real_call = evaluate.QualityProbe.__call__

    def scripted(self, model):
        out = real_call(self, model)
        return {**out, "score": next(scores)}

    monkeypatch.setattr(evaluate.QualityProbe, "__call__", scripted)
    from core.runner import train_run

    kept = {}
    original_fit = fit

    def spy_fit(model, *args, **kwargs):
        def on_epoch(p):
            kept[p["epoch"]] = {k: v.clone() for k, v in model.state_dict().items()}
        kwargs["on_epoch"] = on_epoch
        return original_fit(model, *args, **kwargs)

    monkeypatch.setattr("core.runner.fit", spy_fit)
    run = train_run("gan", tmp_path / "gan", TINY["gan"], TrainConfig(epochs=3, batch_size=64, device="cpu",
                                                                       keep_best=True),
                    splits=splits, embed_size=64, quality_classifier=CLASSIFIER)
    epochs = read_history(run)["epochs"]
    for key in ("frechet_distance", "precision", "recall", "class_kl_to_uniform", "min_class_share"):
        values = epochs[f"quality/{key}"]
        assert len(values) == 3 and all(isinstance(v, float) for v in values)
    assert all(0 <= v <= 1 for v in epochs["quality/precision"] + epochs["quality/recall"])
    cfg = read_config(run)
    assert cfg["best_epoch"] == 2 and cfg["quality_check"]["classifier"] == "mnist-classifier"
    loaded = load_model(run).state_dict()
    gan_keys = [k for k in loaded if loaded[k].dtype.is_floating_point and not k.startswith("encoder.")]
    assert all(torch.equal(loaded[k], kept[2][k]) for k in gan_keys)  # E is trained after, on the kept G
    assert "root" not in json.loads((run / "config.json").read_text())["dataset"]  # no machine path


def test_keep_best_without_a_quality_check_is_refused(tmp_path, splits):
    from core.runner import train_run

    with pytest.raises(ValueError, match="keep_best"):
        train_run("gan", tmp_path / "gan", TINY["gan"], TrainConfig(epochs=1, keep_best=True), splits=splits)
    assert not (tmp_path / "gan").exists()


def test_encoder_after_the_gan_inverts_the_fixed_generator(tmp_path, splits):
    run = make_tiny_run("gan", tmp_path / "after", splits, epochs=1, encoder_epochs=2)
    h = read_history(run)
    assert "e_loss" not in h["steps"]  # the GAN's own steps skip E
    assert h["encoder"]["epoch"] == [1, 2] and len(h["encoder"]["e_recon"]) == 2
    assert "e_recon" in json.loads((run / "metrics.json").read_text())["held_out"]

    torch.manual_seed(0)
    model = build_model("gan", {**TINY["gan"], "encoder_epochs": 1})
    model.configure_optimizers(1e-3, (0.5, 0.999))
    g_before = {k: v.clone() for k, v in model.generator_ema.state_dict().items()}
    e_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    assert "e_recon" not in model.evaluate(splits[1][0])  # an untrained E reports nothing
    model.fit_encoder(splits[0][0], 64, torch.Generator().manual_seed(0))
    assert all(torch.equal(v, model.generator_ema.state_dict()[k]) for k, v in g_before.items())
    assert any(not torch.equal(v, model.encoder.state_dict()[k]) for k, v in e_before.items())
    assert "e_recon" in model.evaluate(splits[1][0])


def test_encoder_alongside_steps_with_g():
    model = build_model("gan", {**TINY["gan"], "encoder_epochs": 0})
    model.configure_optimizers(1e-3, (0.5, 0.999))
    assert {"e_loss", "e_latent", "e_recon"} <= set(model.step(torch.rand(4, 1, 28, 28)))


def test_r1_penalty_is_the_squared_input_gradient_of_d():
    model = build_model("gan", {**TINY["gan"], "d_norm": "none", "mbstd": False, "r1_gamma": 1.0})
    x = torch.rand(5, 1, 28, 28)
    _, penalty = model.r1_penalty(x)
    xs = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.discriminator(xs).sum(), xs)
    assert penalty.item() == pytest.approx(grad.pow(2).flatten(1).sum(1).mean().item(), rel=1e-5)
    penalty.backward()  # create_graph: the penalty trains D (every weight; a bias shifts D, not its slope)
    weights = [p for n, p in model.discriminator.named_parameters() if n.endswith("weight")]
    assert weights and all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_lazy_r1_trains_and_reports_its_penalty(splits):
    torch.manual_seed(0)
    model = build_model("gan", {**TINY["gan"], "r1_gamma": 10.0, "r1_every": 2})
    steps = fit(model, *splits, TrainConfig(epochs=2, batch_size=32, device="cpu"))["history"]["steps"]
    assert len(steps["r1"]) == len(steps["step"]) == 12
    assert steps["r1"][0] == 0.0 and steps["r1"][1] > 0  # computed on the 2nd, 4th, ... D steps
    assert steps["r1"][2] == steps["r1"][1]  # a skipped step repeats the latest value
    plain = _trained(splits)
    penalised = _trained(splits, r1_gamma=10.0)
    assert any(not torch.equal(a, b) for a, b in zip(plain.discriminator.parameters(),
                                                      penalised.discriminator.parameters()))


def test_two_d_steps_per_g_step(splits, monkeypatch):
    torch.manual_seed(0)
    model = build_model("gan", {**TINY["gan"], "d_steps": 2})
    model.configure_optimizers(2e-4, (0.5, 0.999))
    counts = {"d": 0, "g": 0}
    for name in counts:
        real = model.optimizers[name].step

        def counting(*a, _real=real, _name=name, **k):
            counts[_name] += 1
            return _real(*a, **k)
        monkeypatch.setattr(model.optimizers[name], "step", counting)
    x = torch.rand(8, 1, 28, 28)
    out = [model.step(x) for _ in range(6)]
    assert counts == {"d": 6, "g": 3}
    assert all("g_loss" in o for o in out)


def test_separate_generator_width():
    model = build_model("gan", {**TINY["gan"], "g_width": 8})
    assert model.renderer[0][0].out_features == 4 * 8 * 7 * 7  # G: 4*g_width maps of 7x7, then 2*g_width
    assert build_model("gan", TINY["gan"]).renderer[0][0].out_features == 4 * TINY["gan"]["width"] * 7 * 7
    assert model.discriminator[0].out_channels == TINY["gan"]["width"]  # D keeps width
    assert model.sample(torch.randn(2, TINY["gan"]["latent_dim"])).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("field,value", [("r1_gamma", -1.0), ("r1_every", 0), ("d_steps", 0), ("d_steps", 1.5),
                                         ("g_width", 2), ("latent_modes", 1), ("latent_modes", -2),
                                         ("latent_modes", 2.5)])
def test_new_options_are_range_checked(field, value):
    with pytest.raises(ValueError, match=field):
        GANConfig(**{field: value})


def test_the_mixture_latent_is_the_conv_default():
    assert GANConfig().latent_modes == 20 and GANConfig(preset="seed", mbstd=False).latent_modes == 0
    assert GANConfig(latent_modes=0).latent_modes == 0


def test_runs_saved_before_the_new_options_keep_their_behaviour():
    cfg = GANConfig.from_saved({"d_norm": "spectral", "ema": 0.999, "mbstd": True, "encoder_epochs": 2})
    assert (cfg.r1_gamma, cfg.r1_every, cfg.d_steps, cfg.g_width, cfg.latent_modes) == (0.0, 1, 1, None, 0)


def test_latent_mixture_picks_each_mode_equally_often_and_adds_its_mean():
    mix = LatentMixture(latent_dim=4, modes=5)
    z = torch.randn(50_000, 4, generator=torch.Generator().manual_seed(0))
    offsets = mix(z) - z  # each row is the mean of the mode its first coordinate picked
    gaps = torch.cdist(offsets, mix.means)
    assert gaps.min(1).values.max() < 1e-3  # every offset is one of the means (they lie >= 0.5 apart)
    mode = gaps.argmin(1)
    assert torch.allclose(torch.bincount(mode, minlength=5) / len(z), torch.full((5,), 0.2), atol=0.01)
    assert (mode[z[:, 0].argsort()].diff() >= 0).all()  # a function of z_1 alone, monotone in it


@pytest.mark.parametrize("preset", ["conv", "seed"])
def test_mixture_latent_trains_saves_and_reloads(tmp_path, splits, preset):
    overrides = {"latent_modes": 3} if preset == "conv" else {"preset": "seed", "mbstd": False, "latent_modes": 3}
    run = make_tiny_run("gan", tmp_path / "gan", splits, epochs=1, **overrides)
    assert read_config(run)["model_config"]["latent_modes"] == 3
    weights = load_file(run / "model.safetensors")
    assert weights["generator.0.means"].shape == (3, TINY["gan"]["latent_dim"])
    assert torch.equal(weights["generator_ema.0.means"], weights["generator.0.means"])  # never averaged away
    a, b = load_model(run), load_model(run)
    z = torch.randn(4, TINY["gan"]["latent_dim"])
    assert torch.equal(a.sample(z), b.sample(z))
    plain = build_model("gan", {**TINY["gan"], **overrides, "latent_modes": 0})
    assert "generator.0.means" not in plain.state_dict()  # K = 0 keeps the one-Gaussian layout


def test_r1_penalty_stays_fp32_under_bf16_autocast():
    model = build_model("gan", {**TINY["gan"], "d_norm": "none", "r1_gamma": 1.0})
    x = torch.rand(5, 1, 28, 28)
    _, plain = model.r1_penalty(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, under_bf16 = model.r1_penalty(x)
    assert logits.dtype == torch.float32 and torch.equal(plain, under_bf16)
