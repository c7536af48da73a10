import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from core.models import build_model
from core.models.base import DiagonalGaussian
from core.models.gan import GAN, GANConfig
from core.models.vae import VAEConfig, bernoulli_nll


@pytest.mark.parametrize("kind", ["vae", "gan"])
@pytest.mark.parametrize("preset", ["conv", "seed"])
def test_shapes_and_finite_losses(kind, preset):
    torch.manual_seed(0)
    model = build_model(kind, {"preset": preset, "latent_dim": 8})
    model.configure_optimizers(1e-3, (0.9, 0.999))
    x = torch.rand(5, 1, 28, 28)
    losses = model.step(x)
    assert losses and all(math.isfinite(v) for v in losses.values())
    assert model.sample(torch.randn(5, 8)).shape == (5, 1, 28, 28)
    assert model.embed(x).shape == (5, 8)
    out = model.reconstruct(x)
    assert out.shape == (5, 1, 28, 28) and out.min() >= 0 and out.max() <= 1


def test_classifier_shapes():
    model = build_model("classifier")
    model.configure_optimizers(1e-3, (0.9, 0.999))
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    assert set(model.step(x, y)) == {"cross_entropy", "accuracy"}
    assert model.features(x).shape == (4, 128)
    assert torch.allclose(model.predict_proba(x).sum(1), torch.ones(4))


def test_mlp_classifier_is_a_dense_second_feature_space():
    model = build_model("classifier", {"arch": "mlp", "feature_dim": 64})
    assert not any(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    model.configure_optimizers(1e-3, (0.9, 0.999))
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    assert set(model.step(x, y)) == {"cross_entropy", "accuracy"}
    assert model.features(x).shape == (4, 64)
    assert torch.allclose(model.predict_proba(x).sum(1), torch.ones(4))
    with pytest.raises(ValueError, match="arch"):
        build_model("classifier", {"arch": "resnet"})


def test_seed_presets_follow_the_design_document():
    vae = build_model("vae", {"preset": "seed"})
    enc = [m.out_features for m in vae.encoder.modules() if isinstance(m, torch.nn.Linear)]
    dec = [m.out_features for m in vae.decoder.modules() if isinstance(m, torch.nn.Linear)]
    assert enc == [128, 64] and vae.to_mu.out_features == 32 and vae.to_logvar.out_features == 32
    assert dec == [256, 128, 784]
    gan = build_model("gan", {"preset": "seed"})
    gen = [m.out_features for m in gan.generator.modules() if isinstance(m, torch.nn.Linear)]
    assert gen == [128, 256, 784]


def test_vae_encoder_and_decoder_share_no_parameters():
    vae = build_model("vae")
    enc = {id(p) for p in [*vae.encoder.parameters(), *vae.to_mu.parameters(), *vae.to_logvar.parameters()]}
    assert enc.isdisjoint({id(p) for p in vae.decoder.parameters()})


def test_kl_closed_form_against_hand_value_and_torch():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)]])
    # dim 1: 0.5 * (1 + 1 - 1 - 0) = 0.5;  dim 2: 0.5 * (0 + 4 - 1 - log 4)
    hand = 0.5 + 0.5 * (4 - 1 - math.log(4))
    assert DiagonalGaussian(mu, logvar).kl().item() == pytest.approx(hand, rel=1e-6)
    mu, logvar = torch.randn(6, 5), torch.randn(6, 5)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(DiagonalGaussian(mu, logvar).kl(), ref, atol=1e-5)


def test_bernoulli_log_likelihood():
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    assert torch.allclose(bernoulli_nll(torch.zeros_like(x), x), torch.full((3,), 784 * math.log(2)))
    logits = torch.randn_like(x)
    p = torch.sigmoid(logits)
    hand = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    assert torch.allclose(bernoulli_nll(logits, x), hand, rtol=1e-4)


def test_neg_elbo_is_reconstruction_plus_kl():
    torch.manual_seed(0)
    vae = build_model("vae", {"latent_dim": 4, "width": 4, "hidden": 16})
    out = vae.loss(torch.bernoulli(torch.rand(8, 1, 28, 28)))
    assert out["neg_elbo"].item() == pytest.approx(out["reconstruction"].item() + out["kl"].item(), rel=1e-5)
    assert out["kl"].item() >= 0


def test_gan_losses_match_the_value_function():
    real, fake = torch.tensor([0.3, -1.2]), torch.tensor([0.5, 2.0])
    d = GAN(GANConfig(preset="seed")).discriminator_loss(real, fake)
    hand = -(torch.sigmoid(real).log().mean() + (1 - torch.sigmoid(fake)).log().mean())
    assert d.item() == pytest.approx(hand.item(), rel=1e-5)
    ns = GAN(GANConfig(preset="seed")).generator_loss(fake)
    assert ns.item() == pytest.approx(-torch.sigmoid(fake).log().mean().item(), rel=1e-5)
    mm = GAN(GANConfig(preset="seed", loss="minimax")).generator_loss(fake)
    assert mm.item() == pytest.approx((1 - torch.sigmoid(fake)).log().mean().item(), rel=1e-5)


def test_gan_step_leaves_generator_untouched_by_encoder_update():
    torch.manual_seed(0)
    gan = build_model("gan", {"preset": "seed", "latent_dim": 8})
    gan.configure_optimizers(1e-3, (0.5, 0.999))
    x = torch.rand(4, 1, 28, 28)
    z = torch.randn(4, 8)
    before = [p.clone() for p in gan.generator.parameters()]
    latent, recon = gan.encoder_losses(x, z, gan.generator(z).detach())
    (latent + recon).backward()
    assert all(p.grad is None for p in gan.generator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, gan.generator.parameters()))
    assert any(p.grad is not None for p in gan.encoder.parameters())


@pytest.mark.parametrize("bad", [{"latent_dim": 0}, {"preset": "huge"}, {"width": 10_000}, {"nope": 1}])
def test_out_of_range_configs_are_rejected(bad):
    with pytest.raises(ValueError):
        build_model("vae", bad)


def test_unknown_gan_loss_rejected():
    with pytest.raises(ValueError, match="loss"):
        GANConfig(loss="wasserstein")
    with pytest.raises(ValueError, match="latent_dim"):
        VAEConfig(latent_dim=-3)
