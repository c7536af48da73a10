"""The family and data-set records are the only lists: a third family and a third data set, registered here in
a few lines, reach the CLI, the checks, training, evaluation, the catalog, the run pickers and every page with
no other file edited; a family that offers the likelihood protocol gets the VAE's likelihood views."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest
from torch import nn

from core import datasets, families
from core.__main__ import build_parser, main
from core.data import synthetic_split
from core.evaluate import evaluate_run
from core.models.base import DiagonalGaussian, GenerativeModel, standard_normal_log_prob
from core.run.folder import load_run
from core.run.layout import CheckpointError
from core.run.schemas import read_config

from ..dashboard.test_dashboard import plain
from ..dashboard.test_runs_table import select

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


# --- a toy family: a linear autoencoder, in a few lines ------------------------------------------------
@dataclass
class ToyConfig:
    latent_dim: int = 4
    image_size: int = 28
    channels: int = 1


class ToyAE(nn.Module):
    default_lr, default_betas = 1e-2, (0.9, 0.999)

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config, side = config, config.image_size
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(side * side, config.latent_dim))
        self.dec = nn.Sequential(nn.Linear(config.latent_dim, side * side), nn.Sigmoid(),
                                 nn.Unflatten(1, (1, side, side)))

    latent_dim = property(lambda self: self.config.latent_dim)
    can_embed = True

    def configure_optimizers(self, lr, betas):
        self.optimizers = {"ae": torch.optim.Adam(self.parameters(), lr=lr, betas=betas)}
        return self.optimizers

    def loss(self, x):
        return {"mse": nn.functional.mse_loss(self.dec(self.enc(x)), x)}

    def step(self, x, labels=None):
        losses = self.loss(x)
        self.optimizers["ae"].zero_grad()
        next(iter(losses.values())).backward()
        self.optimizers["ae"].step()
        return {k: v.item() for k, v in losses.items()}

    @torch.no_grad()
    def evaluate(self, images, labels=None):
        return {k: v.item() for k, v in self.loss(images.float() / 255).items()}

    def fit_after(self, images, batch_size, generator):
        return None

    @torch.no_grad()
    def sample(self, z):
        return self.dec(z)

    def code(self, z, temperature=1.0):
        return z * temperature

    @torch.no_grad()
    def render(self, codes):
        return self.dec(codes)

    @torch.no_grad()
    def embed(self, x):
        return self.enc(x)

    @torch.no_grad()
    def reconstruct(self, x):
        return self.dec(self.enc(x))


def tiny16(root, train, download):  # 3 classes of 16x16 bars, made up on the spot
    return synthetic_split(96 if train else 64, seed=int(train), size=16, classes=3)


@pytest.fixture
def toy():
    families.register(families.Family(name="toy", label="Toy AE", model=ToyAE, config=ToyConfig, color="#16a34a",
                                      curves=(families.Curve("Reconstruction", "MSE", (("mse", ""),)),),
                                      live_losses=("mse",), held_out=(("mse", "Test MSE ↓", "{:.4f}", "pixels"),)))
    datasets.register(datasets.DataSet(name="tiny16", label="Tiny 16", class_names=("low", "mid", "high"),
                                       image_size=16, loader=tiny16))
    yield
    families.unregister("toy")
    datasets.unregister("tiny16")


def train(model: str, out: Path, *extra: str) -> Path:
    assert main(["train", "--model", model, "--dataset", "tiny16", "--epochs", "2", "--batch-size", "32",
                 "--device", "cpu", "--quality", "none", "--out", str(out), *extra]) == 0
    return out


def test_the_cli_lists_and_trains_a_registered_family_on_a_registered_data_set(toy, tmp_path, capsys):
    train_help = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "toy" in train_help and "tiny16" in train_help
    run = train("toy", tmp_path / "toy", "--latent-dim", "3")
    cfg = read_config(run)
    assert cfg["model"] == "toy" and cfg["class"] == "ToyAE" and cfg["format"] == 2
    # the image shape came from the data set's record; the data set is named, no path
    assert cfg["model_config"] == {"latent_dim": 3, "image_size": 16, "channels": 1}
    assert cfg["dataset"]["name"] == "tiny16" and "root" not in cfg["dataset"] and cfg["dataset"]["sha256"]
    loaded = load_run(run)
    assert isinstance(loaded.model, GenerativeModel)
    assert loaded.embeddings["codes"].shape[1] == 3 and loaded.embeddings["images"].shape[1:] == (16, 16)
    assert set(loaded.embeddings["labels"]) <= {0, 1, 2}
    assert loaded.grids, "a generative family gets per-epoch sample grids"
    # an option of another family is refused in words
    assert main(["train", "--model", "toy", "--dataset", "tiny16", "--loss", "hinge", "--out", str(tmp_path)]) == 2
    assert "--loss is not an option of the Toy AE (it is one of: GAN)" in capsys.readouterr().err


def test_evaluate_treats_a_family_by_its_capabilities(toy, tmp_path):
    clf = train("classifier", tmp_path / "clf")
    assert read_config(clf)["model_config"]["num_classes"] == 3  # from the data set's record
    run = train("toy", tmp_path / "toy")
    splits = (tiny16(None, True, False), tiny16(None, False, False))
    ev = evaluate_run(run, clf, samples=40, seeds=(0,), kid_subset_size=20, kid_subsets=5, nn_queries=20,
                      splits=splits)
    m = ev["metrics"]
    assert {"frechet_distance", "precision", "recall", "reconstruction_mse"} <= set(m)  # has an encoder
    assert "neg_iwae" not in m and "neg_elbo" not in m  # no likelihood in its record
    assert len(ev["class_histogram"]) == 3
    # the same family without an encoder: no reconstruction error is measured
    families.register(families.Family(name="toy", label="Toy AE", model=ToyAE, config=ToyConfig, has_encoder=False))
    assert "reconstruction_mse" not in evaluate_run(run, clf, samples=40, seeds=(0,), kid_subset_size=20,
                                                    kid_subsets=5, nn_queries=20, splits=splits, write=False)["metrics"]


def test_the_catalog_and_the_run_pickers_see_the_new_family(toy, tmp_path, monkeypatch):
    checkpoints = tmp_path / "checkpoints"
    train("toy", checkpoints / "tiny16-toy")
    train("vae", checkpoints / "tiny16-vae", "--preset", "seed", "--latent-dim", "4")
    monkeypatch.setenv("CHECKPOINT_DIR", str(checkpoints))
    monkeypatch.setenv("RUNS_DIR", str(tmp_path / "runs"))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    pickers = {s.label: s.value for s in at.sidebar.selectbox}
    assert pickers["Dataset"] == "tiny16"
    assert pickers["Toy AE run"] == str(checkpoints / "tiny16-toy")
    assert pickers["VAE run"] == str(checkpoints / "tiny16-vae")
    assert any("No GAN run for this dataset" in w.value for w in at.sidebar.warning)  # said, not silently dropped
    # Overview: one column per family, the toy family's held-out number from its record
    assert any(s.value.startswith("Toy AE · tiny16-toy") for s in at.subheader)
    assert "Test MSE ↓" in [m.label for m in at.metric]
    at.switch_page("views/curves.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Toy AE" in [h.value for h in at.header]
    spec = [plain(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]
    assert any(c["layout"]["title"]["text"] == "Reconstruction" for c in spec)


def test_a_run_of_an_unregistered_family_or_data_set_is_refused_by_name(toy, tmp_path):
    run = train("toy", tmp_path / "toy")
    families.unregister("toy")
    with pytest.raises(CheckpointError, match='unknown model "toy"'):
        read_config(run)
    families.register(families.Family(name="toy", label="Toy AE", model=ToyAE, config=ToyConfig))
    datasets.unregister("tiny16")
    with pytest.raises(CheckpointError, match='unknown dataset "tiny16"'):
        read_config(run)


def test_a_drawing_on_the_explore_page_takes_the_data_sets_image_size(toy, tmp_path, monkeypatch):
    import io

    import numpy as np
    from PIL import Image

    checkpoints = tmp_path / "checkpoints"
    train("vae", checkpoints / "tiny16-vae", "--preset", "seed", "--latent-dim", "4")
    monkeypatch.setenv("CHECKPOINT_DIR", str(checkpoints))
    monkeypatch.setenv("RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no-data"))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("views/explore.py")
    at.run()
    img = np.zeros((100, 100), np.uint8)
    img[20:80, 40:60] = 255
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    at.file_uploader(key="ex_upload").set_value(("bar.png", buf.getvalue(), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "your image, 16×16" in [i.caption for el in at.get("image") for i in el.proto.imgs]
    assert any("−ELBO of your image" in m.label for m in at.metric)


# --- every page takes a third family; a family with a likelihood gets the likelihood views --------------------
class ToyVAE(ToyAE):
    """The toy autoencoder made variational: a Gaussian q(z|x) and a Bernoulli p(x|z), offering the likelihood
    protocol (core.models.base.LikelihoodModel) with its own ELBO."""

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.to_logvar = nn.Sequential(nn.Flatten(), nn.Linear(config.image_size ** 2, config.latent_dim))

    def posterior(self, x):
        return DiagonalGaussian(self.enc(x), self.to_logvar(x))

    def _log_px_z(self, q, x, n, generator):
        z = q.sample(n, generator)
        b = x.shape[0]
        probs = self.dec(z.reshape(n * b, -1)).clamp(1e-6, 1 - 1e-6)
        target = x.expand(n, *x.shape).reshape(n * b, *x.shape[1:])
        return z, -nn.functional.binary_cross_entropy(probs, target, reduction="none").flatten(1).sum(1).view(n, b)

    def neg_elbo(self, x, samples=1, generator=None):
        q = self.posterior(x)
        reconstruction, kl = -self._log_px_z(q, x, samples, generator)[1].mean(0), q.kl()
        return {"neg_elbo": reconstruction + kl, "reconstruction": reconstruction, "kl": kl}

    def neg_iwae(self, x, k, generator=None):
        q = self.posterior(x)
        z, log_px_z = self._log_px_z(q, x, k, generator)
        log_w = (log_px_z + standard_normal_log_prob(z) - q.log_prob(z)).double()
        return {"neg_iwae": -(torch.logsumexp(log_w, 0) - math.log(k)), "neg_elbo": -log_px_z.double().mean(0) + q.kl()}

    def loss(self, x):
        return {"neg_elbo": self.neg_elbo(x)["neg_elbo"].mean()}


TOY_VAE = families.Family(name="toyvae", label="Toy VAE", model=ToyVAE, config=ToyConfig, color="#9333ea",
                          has_likelihood=True, curves=(families.Curve("−ELBO", "nats", (("neg_elbo", ""),)),),
                          live_losses=("neg_elbo",), held_out=(("neg_elbo", "Test −ELBO ↓", "{:.1f}", "nats"),))
PAGES = ["overview", "samples", "latent", "curves", "metrics", "runs", "explore", "retrain", "concepts"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """tiny16 runs of four families (the toy AE, the toy VAE, the VAE and the GAN), each evaluated, and the data
    set's classifier: trained once for the page tests below."""
    families.register(families.Family(name="toy", label="Toy AE", model=ToyAE, config=ToyConfig))
    families.register(TOY_VAE)
    datasets.register(datasets.DataSet(name="tiny16", label="Tiny 16", class_names=("low", "mid", "high"),
                                       image_size=16, loader=tiny16))
    try:
        ck = tmp_path_factory.mktemp("world") / "checkpoints"
        clf = train("classifier", ck / "tiny16-classifier")
        splits = (tiny16(None, True, False), tiny16(None, False, False))
        for kind, extra in (("toy", ()), ("toyvae", ()), ("vae", ("--preset", "seed", "--latent-dim", "4")),
                            ("gan", ("--preset", "seed", "--latent-dim", "4"))):
            run = train(kind, ck / f"tiny16-{kind}", *extra)
            evaluate_run(run, clf, samples=40, seeds=(0,), kid_subset_size=20, kid_subsets=5, nn_queries=20,
                         iwae_k=4, iwae_images=8, splits=splits)
    finally:
        families.unregister("toyvae")
    yield ck


@pytest.fixture
def app(world, toy, monkeypatch, tmp_path):
    families.register(TOY_VAE)
    monkeypatch.setenv("CHECKPOINT_DIR", str(world))
    monkeypatch.setenv("RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no-data"))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    yield at
    families.unregister("toyvae")


def visit(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, (page, [e.value for e in at.exception])
    return at


def upload_bar(at: AppTest) -> AppTest:
    import io

    import numpy as np
    from PIL import Image

    img = np.zeros((100, 100), np.uint8)
    img[20:80, 40:60] = 255
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    at.file_uploader(key="ex_upload").set_value(("bar.png", buf.getvalue(), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_four_families_on_every_page(app):
    """No page assumes two families: with four compared families each page shows all four, in its own way."""
    labels = ["Toy AE", "Toy VAE", "VAE", "GAN"]
    pickers = {s.label: s.value for s in app.sidebar.selectbox}
    assert {f"{label} run" for label in labels} <= set(pickers) and pickers["Dataset"] == "tiny16"
    for page in PAGES:
        at = visit(app, page)
        if page == "overview":
            assert set(labels) <= {s.value.split(" · ")[0] for s in at.subheader}
            assert "What differs, and why" in [s.value for s in at.subheader]  # the VAE and the GAN are compared
        elif page == "samples":
            assert all(f"**{label}**" in [m.value for m in at.markdown] for label in labels)
        elif page == "metrics":
            table = at.table[0].value
            assert set(labels) <= set(table.columns)
            assert all(v != "—" for v in table.iloc[0][labels])  # the first row (Fréchet distance) for all four
        elif page == "runs":
            assert set(labels) <= set(at.dataframe[0].value["family"])
            select(at, "tiny16-toy", "tiny16-toyvae", "tiny16-gan")  # three families of one data set: compared
            at.button(key="compare_picked").click().run()
            assert at.title[0].value != "Runs" and at.session_state["pick_toyvae"].endswith("tiny16-toyvae")
        elif page == "retrain":
            assert set(labels) <= set(at.radio(key="rt_model").options)
        elif page == "curves":
            assert set(labels) <= {h.value for h in at.header}
    at = upload_bar(visit(app, "explore"))
    captions = [i.caption for el in at.get("image") for i in el.proto.imgs]
    assert {"Toy AE: decoder(encoder(x))", "Toy VAE: decoder(encoder(x))", "VAE: decoder(μ(x))", "GAN: G(E(x))"
            } <= set(captions)


def test_a_family_with_a_likelihood_gets_the_likelihood_views_without_page_edits(app):
    """The Toy VAE offers the likelihood protocol and nothing else: Explore scores a drawing and shows its KL per
    dimension, and evaluation reported its bounds, as for the VAE; the Toy AE (no likelihood) gets none."""
    at = upload_bar(visit(app, "explore"))
    scored = [m.label for m in at.metric if "ELBO of your image" in m.label]
    assert len(scored) == 2  # the VAE and the Toy VAE
    kl = [c for c in at.get("plotly_chart") if "KL per dimension" in c.proto.spec]
    assert len(kl) == 2
    table = visit(app, "metrics").table[0].value.set_index("metric")
    elbo = next(i for i in table.index if "ELBO" in i)
    assert table.loc[elbo, "Toy VAE"] != "—" and table.loc[elbo, "VAE"] != "—"
    assert table.loc[elbo, "Toy AE"] == "—" and table.loc[elbo, "GAN"] == "—"
