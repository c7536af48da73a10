"""core.explore: MNIST-style preparation of drawings, per-dimension KL, active units, traversals, neighbours."""

import numpy as np
import pytest
import torch

from core import embed, explore
from core.models.base import DiagonalGaussian
from core.models.gan import GAN, GANConfig
from core.models.vae import VAE, VAEConfig


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return VAE(VAEConfig(latent_dim=6, width=4, hidden=16)).eval()


def ink_box(img: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(img > 0.05)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def test_prepare_fits_the_ink_into_20x20_and_centres_its_mass():
    canvas = np.zeros((280, 300), np.float32)
    canvas[30:230, 200:240] = 1.0  # a tall bar (200 x 40) in the top right corner
    out = explore.prepare(canvas)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() == pytest.approx(1.0)
    h, w = ink_box(out)
    assert h in (20, 21) and w in (4, 5, 6)  # aspect ratio kept: 200 x 40 -> 20 x 4 (+ anti-aliasing)
    cy, cx = explore.centre_of_mass(out)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5
    assert len(np.unique(out)) > 2  # grey levels from anti-aliasing, as in MNIST


def test_prepare_wide_strokes_and_off_centre_mass():
    canvas = np.zeros((100, 100), np.float32)
    canvas[10:20, 5:95] = 1.0  # a wide bar: 90 x 10 -> 20 x 2
    canvas[20:90, 85:95] = 1.0  # and a long leg on the right: the mass is not at the box centre
    out = explore.prepare(canvas)
    h, w = ink_box(out)
    assert max(h, w) in (20, 21)
    cy, cx = explore.centre_of_mass(out)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5


def test_blank_canvas_is_none_and_bad_shapes_are_refused():
    assert explore.prepare(np.zeros((50, 50))) is None
    with pytest.raises(ValueError, match="grey image"):
        explore.prepare(np.zeros((5, 5, 3)))
    with pytest.raises(ValueError, match="expected"):
        explore.to_grey(np.zeros((5, 5, 2)))


def test_to_grey_canvas_rgba_and_dark_ink_on_paper():
    rgba = np.zeros((40, 40, 4), np.uint8)  # untouched canvas: transparent
    rgba[10:30, 18:22] = [255, 255, 255, 255]  # a white stroke
    g = explore.to_grey(rgba)
    assert g.max() == pytest.approx(1.0) and g[0, 0] == 0.0
    paper = np.full((40, 40, 3), 250, np.uint8)
    paper[10:30, 18:22] = 10  # dark ink on white paper: inverted to white on black
    g2 = explore.to_grey(paper)
    assert g2[20, 20] > 0.9 and g2[0, 0] < 0.05
    assert np.array_equal(explore.prepare(g2) > 0.5, explore.prepare(g) > 0.5)


def test_per_dim_kl_sums_to_the_models_kl_and_shows_collapse(vae):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    mu, logvar = explore.posterior(vae, images)
    assert mu.shape == (40, 6) and logvar.shape == (40, 6)
    kl = explore.per_dim_kl(mu, logvar)
    total = DiagonalGaussian(torch.from_numpy(mu), torch.from_numpy(logvar)).kl().mean().item()
    assert kl.sum() == pytest.approx(total, rel=1e-4)
    # a collapsed dimension: q(z_j|x) = N(0, 1) for every x -> 0 nats and inactive
    mu[:, 2], logvar[:, 2] = 0.0, 0.0
    mu[:, 4] = rng.normal(0, 2.0, 40)  # a very active one
    kl = explore.per_dim_kl(mu, logvar)
    assert kl[2] == pytest.approx(0.0, abs=1e-9)
    active = explore.active_units(mu)
    assert active[0] == 4 and 2 not in active
    assert np.allclose(explore.activity(mu), mu.var(axis=0))


def test_active_units_threshold_is_burdas():
    mu = np.zeros((1000, 3))
    mu[:, 0] = np.linspace(-1, 1, 1000)  # variance 1/3
    mu[:, 1] = np.linspace(-0.15, 0.15, 1000)  # variance 0.0075: below 0.01
    mu[:, 2] = np.linspace(-0.2, 0.2, 1000)  # variance 0.0134: above
    assert list(explore.active_units(mu)) == [0, 2]


def test_neg_elbo_is_reconstruction_plus_kl_and_prefers_likely_images(vae):
    x = np.zeros((3, 28, 28), np.float32)
    x[1, 8:20, 12:16] = 1.0
    x[2] = np.random.default_rng(0).random((28, 28))
    out = explore.neg_elbo(vae, x, samples=4)
    assert np.allclose(out["neg_elbo"], out["reconstruction"] + out["kl"])
    assert (out["kl"] >= 0).all() and (out["reconstruction"] > 0).all()
    again = explore.neg_elbo(vae, x, samples=4)
    assert np.array_equal(out["neg_elbo"], again["neg_elbo"])  # fixed seed: the same number on every rerun
    with torch.no_grad():  # one sample, z = mu: the reconstruction term is the cross-entropy against grey levels
        mu, _ = vae.encode(torch.from_numpy(x[:, None]))
        bce = torch.nn.functional.binary_cross_entropy_with_logits(vae.decode(mu), torch.from_numpy(x[:, None]),
                                                                   reduction="none").flatten(1).sum(1)
    assert np.all(np.abs(bce.numpy() - out["reconstruction"]) < 0.2 * out["reconstruction"])


def test_principal_directions_match_the_pca_map_and_project_exactly():
    rng = np.random.default_rng(0)
    codes = (rng.standard_normal((300, 5)) * [3, 2, 1, 0.5, 0.1]).astype(np.float32)
    pca = explore.principal_directions(codes)
    assert np.allclose(explore.project(codes, pca), embed.pca(codes), atol=1e-4)
    assert np.allclose(np.linalg.norm(pca["directions"], axis=1), 1.0, atol=1e-5)
    assert np.all(np.diff(pca["std"]) <= 0) and pca["std"][0] == pytest.approx(3, rel=0.15)
    assert pca["explained"].sum() == pytest.approx(1.0)
    assert np.allclose(explore.project(codes, pca, k=5).std(axis=0), pca["std"], rtol=1e-3)


def test_traversal_moves_only_along_the_direction():
    z0 = np.array([0.5, -1.0, 2.0, 0.3], np.float32)
    dirs = explore.axis_directions([2, 0], 4)
    codes = explore.traversal_codes(z0, dirs, centres=[0.0, 1.0], scales=[1.0, 0.5], steps=7)
    assert codes.shape == (14, 4)
    assert np.allclose(codes[:7, 2], np.linspace(-3, 3, 7)) and np.allclose(codes[:7, [0, 1, 3]], z0[[0, 1, 3]])
    assert np.allclose(codes[7:, 0], 1.0 + 0.5 * np.linspace(-3, 3, 7)) and np.allclose(codes[7:, 1:], z0[1:])
    u = np.array([[0.6, 0.8, 0, 0]], np.float32)  # an oblique direction: the orthogonal part of z0 is kept
    c = explore.traversal_codes(z0, u, [0.0], [1.0], steps=5)
    assert np.allclose(c @ u[0], np.linspace(-3, 3, 5), atol=1e-5)
    rest = c - (c @ u[0])[:, None] * u
    assert np.allclose(rest, z0 - (z0 @ u[0]) * u[0], atol=1e-5)


def test_nearest_and_placement_by_neighbours():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (500, 28, 28), dtype=np.uint8)
    idx, d = explore.nearest(ref[123], ref, k=3, chunk=64)
    assert idx[0] == 123 and d[0] == 0.0 and np.all(np.diff(d) >= 0) and len(idx) == 3
    brute = np.sqrt(((ref.reshape(500, -1) / 255.0 - ref[123].reshape(-1) / 255.0) ** 2).sum(1))
    assert np.allclose(np.sort(brute)[:3], d, atol=1e-4)
    fast, fd = explore.nearest(ref[7], ref, k=4, chunk=64, ref_sq=explore.squared_norms(ref, chunk=100))
    slow, sd = explore.nearest(ref[7], ref, k=4)
    assert list(fast) == list(slow) and np.allclose(fd, sd, atol=1e-3) and fast[0] == 7
    codes = np.array([[0, 0], [0, 1], [10, 10], [10, 11]], np.float32)
    coords = np.array([[1, 1], [3, 3], [-5, -5], [-7, -7]], np.float32)
    pos, nb = explore.place_by_neighbours(np.array([0, 0.4], np.float32), codes, coords, k=2)
    assert sorted(nb) == [0, 1] and np.allclose(pos, [2, 2])


def test_capabilities():
    vae = VAE(VAEConfig(latent_dim=4, width=4, hidden=16))
    gan = GAN(GANConfig(latent_dim=4, width=4))
    assert explore.has_posterior(vae) and not explore.has_posterior(gan)
    assert explore.has_encoder(vae) and explore.has_encoder(gan)
    gan.encoder_trained = False  # training started, E not trained yet
    assert not explore.has_encoder(gan)


def test_a_photo_on_grey_paper_is_cropped_to_its_ink_like_a_clean_scan():
    photo = np.full((300, 200), 200, np.uint8)  # paper as a camera sees it: light grey, not white
    photo[50:250, 90:110] = 40  # a "1" in dark ink
    scan = np.where(photo == 200, 255, 0).astype(np.uint8)
    out, clean = explore.prepare(explore.to_grey(photo)), explore.prepare(explore.to_grey(scan))
    assert ink_box(out) == ink_box(clean) and ink_box(out)[0] in (20, 21)  # the stroke, not the whole sheet
    assert out[0, 0] == 0.0 and (out > 0.05).sum() == (clean > 0.05).sum()
    assert explore.prepare(explore.to_grey(np.full((40, 40), 128, np.uint8))) is None  # one grey: no ink
