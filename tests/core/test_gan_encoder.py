"""A GAN's codes and its encoder: code/render (E inverts G after a latent mixture's mode pick) and
`python -m core encoder`, which trains E again against a run's saved generator."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from core.__main__ import main
from core.models import build_model
from core.run.folder import load_model
from core.run.schemas import read_config, read_history
from core.runner import retrain_encoder, train_run
from core.train import TrainConfig

from ..conftest import TINY, make_tiny_run


@pytest.mark.parametrize("kind,overrides", [("vae", {}), ("gan", {"latent_modes": 0}), ("gan", {"latent_modes": 3})])
def test_render_of_code_is_sample(kind, overrides):
    torch.manual_seed(0)
    model = build_model(kind, {**TINY[kind], **overrides}).eval()
    z = torch.randn(6, TINY[kind]["latent_dim"])
    assert torch.equal(model.render(model.code(z)), model.sample(z))
    if overrides.get("latent_modes"):  # a mode's mean plus z; a temperature narrows the mode, not the pick
        assert torch.equal(model.code(z), model.sampler[0](z)) and not torch.equal(model.code(z), z)
        assert torch.allclose(model.code(z, 0.5) - 0.5 * z, model.code(z) - z)
    else:
        assert torch.equal(model.code(z), z) and torch.equal(model.code(z, 0.5), 0.5 * z)


def test_mixture_encoder_regresses_the_mixture_code_and_decodes_without_the_mode_pick():
    torch.manual_seed(0)
    model = build_model("gan", {**TINY["gan"], "latent_modes": 3})
    model.eval()
    z, x = torch.randn(5, TINY["gan"]["latent_dim"]), torch.rand(5, 1, 28, 28)
    fake = model.sample(z)
    latent, recon = model.encoder_losses(x, z, fake)
    assert torch.allclose(latent, F.mse_loss(model.encoder(fake), model.code(z)))
    assert torch.allclose(recon, F.mse_loss(model.sampler[1:](model.encoder(x)), x))
    assert torch.equal(model.reconstruct(x), model.render(model.embed(x)))
    assert not model.generator_ema.training  # G_ema keeps its averaged batch-norm statistics
    assert all(p.requires_grad for p in model.generator.parameters())  # G's flags are restored


@pytest.mark.real_data
def test_retrain_encoder_changes_only_the_encoder_and_records_it(tmp_path, real_data_root):
    torch.set_num_threads(1)
    cfg = TrainConfig(epochs=1, batch_size=64, seed=3, device="cpu")
    run = train_run("gan", tmp_path / "mnist-gan", {**TINY["gan"], "latent_modes": 3}, cfg,
                    data_dir=real_data_root, limit=256, embed_size=64)
    before = load_file(run / "model.safetensors")
    retrain_encoder(run, real_data_root, epochs=1, device="cpu")
    after = load_file(run / "model.safetensors")
    assert (run / "model.safetensors").stat().st_mode & 0o777 == 0o644  # readable by whoever serves the run
    assert before.keys() == after.keys()
    for k in before:  # G, G_ema and D as they were; E trained again
        assert torch.equal(before[k], after[k]) != k.startswith("encoder.")
    config = read_config(run)
    assert config["encoder_retrained"]["epochs"] == 1 and config["model_config"]["encoder_epochs"] == 1
    assert read_history(run)["encoder"]["epoch"] == [1]
    metrics = json.loads((run / "metrics.json").read_text())
    model = load_model(run)
    x = torch.from_numpy(np.load(run / "embeddings.npz")["images"][:4]).float()[:, None] / 255
    assert metrics["held_out"]["e_recon"] > 0 and torch.isfinite(model.reconstruct(x)).all()


def test_retrain_encoder_refuses_what_it_cannot_do(tmp_path, splits, capsys):
    vae = make_tiny_run("vae", tmp_path / "mnist-vae", splits, epochs=1)
    gan = make_tiny_run("gan", tmp_path / "mnist-gan", splits, epochs=1)
    assert main(["encoder", str(vae)]) == 2
    assert "only a GAN's encoder" in capsys.readouterr().err
    assert main(["encoder", str(gan)]) == 2
    assert "synthetic data" in capsys.readouterr().err
    with pytest.raises(ValueError, match="epochs"):
        retrain_encoder(gan, epochs=0)
