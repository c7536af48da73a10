"""Headless tests of every page with streamlit.testing.v1.AppTest, on tiny runs in a temp folder."""

import base64
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ..conftest import TINY, make_tiny_run

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")


def open_app(monkeypatch, checkpoints, runs=None) -> AppTest:
    monkeypatch.setenv("CHECKPOINT_DIR", str(checkpoints))
    monkeypatch.setenv("RUNS_DIR", str(runs or Path(checkpoints) / "_no_runs"))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def images(at: AppTest) -> list[str]:
    """URLs of every st.image on the page (content-addressed, so they change when the pixels do)."""
    return [img.url for el in at.get("image") for img in el.proto.imgs]


def charts(at: AppTest) -> list[dict]:
    """Each Plotly chart's spec as sent, numeric arrays decoded (plotly sends numpy arrays as base64 typed arrays)."""
    return [plain(json.loads(el.proto.spec)) for el in at.get("plotly_chart")]


def plain(spec):
    """A Plotly spec with every {"dtype", "bdata"} typed array turned back into a list of numbers."""
    if isinstance(spec, dict):
        if set(spec) >= {"dtype", "bdata"}:
            values = np.frombuffer(base64.b64decode(spec["bdata"]), dtype=spec["dtype"])
            return values.reshape(spec["shape"]).tolist() if "shape" in spec else values.tolist()
        return {k: plain(v) for k, v in spec.items()}
    return [plain(v) for v in spec] if isinstance(spec, list) else spec


@pytest.fixture
def app(monkeypatch, tiny_runs):
    return open_app(monkeypatch, tiny_runs)


def test_overview_shows_both_models(app):
    assert not app.exception
    assert [s.value for s in app.sidebar.selectbox] == ["mnist", str(tiny_runs_path(app, "vae")),
                                                       str(tiny_runs_path(app, "gan"))]
    assert len(images(app)) == 2 and len(app.table) == 2
    assert "Latent size" in str(app.table[0].value) and not app.error
    assert any("What differs" in h.value for h in app.subheader)


def tiny_runs_path(at, kind):
    return Path(at.session_state[f"pick_{kind}"])


def test_samples_page_reacts_to_seed_temperature_and_path(app):
    goto(app, "samples")
    before = images(app)
    assert len(before) >= 7  # 2 sample grids, 2 interpolations, reconstructions, 2 epoch grids
    app.number_input(key="gen_seed").set_value(5).run()
    after = images(app)
    assert after[0] != before[0] and after[1] != before[1]  # both generators get the new codes
    assert after[2:4] == before[2:4]  # interpolation untouched
    app.radio(key="int_mode").set_value("linear").run()
    assert images(app)[2:4] != after[2:4]
    app.slider(key="gen_temp").set_value(0.3).run()
    assert images(app)[0] != after[0]
    app.slider(key="epoch_vae").set_value(1).run()
    assert not app.exception


def test_latent_page_precomputed_then_pca(app):
    goto(app, "latent")
    tsne = charts(app)
    assert len(tsne) == 2 and len(tsne[0]["data"]) == 10  # one trace per class
    app.radio(key="map_method").set_value("PCA").run()
    pca = charts(app)
    assert pca[0]["data"][0]["x"] != tsne[0]["data"][0]["x"]
    assert "test #" in pca[0]["data"][0]["hovertemplate"]


def test_latent_page_recompute_tsne(app):
    goto(app, "latent")
    app.radio(key="map_method").set_value("t-SNE (recompute)").run()
    assert not app.exception and len(charts(app)) == 2


def test_curves_page_per_step_and_per_epoch(app):
    goto(app, "curves")
    step = charts(app)
    assert len(step) == 5  # VAE: -ELBO, reconstruction, KL; GAN: losses, D outputs
    assert [t["name"] for t in step[3]["data"]] == ["mnist-gan D", "mnist-gan G"]
    app.radio(key="curve_view").set_value("per epoch").run()
    epoch = charts(app)
    assert {t["name"] for t in epoch[0]["data"]} == {"mnist-vae (train)", "mnist-vae (test)"}
    assert all("markers" in t["mode"] for c in epoch for t in c["data"])  # a 1-2 epoch run still shows points
    assert all(c["layout"]["legend"]["yref"] == "container" for c in epoch)  # legend below the axis title


def test_curves_overlay_several_runs(monkeypatch, tmp_path, tiny_runs, splits):
    from ..conftest import make_tiny_run

    root = tmp_path / "ck"
    shutil.copytree(tiny_runs, root)
    make_tiny_run("vae", root / "mnist-vae-seed1", splits, seed=1)
    at = goto(open_app(monkeypatch, root), "curves")
    at.multiselect(key="overlay_vae").set_value([str(root / "mnist-vae"), str(root / "mnist-vae-seed1")]).run()
    assert {t["name"] for t in charts(at)[0]["data"]} == {"mnist-vae", "mnist-vae-seed1"}


def balance_path(run: Path) -> list[str]:
    """The "D(x) / D(G(z)) (epoch N)" pairs the Concepts page must quote: first, middle and last epoch."""
    e = json.loads((run / "history.json").read_text())["epochs"]
    picks = sorted({0, (len(e["epoch"]) - 1) // 2, len(e["epoch"]) - 1})
    return [f"{e['train/d_real'][i]:.2f} / {e['train/d_fake'][i]:.2f} (epoch {e['epoch'][i]})" for i in picks]


def test_concepts_page_has_the_papers_math(app, tiny_runs):
    goto(app, "concepts")
    latex = " ".join(el.value for el in app.latex)
    assert r"\log D(x)" in latex and r"\log\big(1 - D(G(z))\big)" in latex
    assert r"D_{\mathrm{KL}}" in latex and r"\varepsilon \sim \mathcal{N}(0, I)" in latex
    assert any("Common misreadings" in h.value for h in app.header)
    text = " ".join(m.value for m in app.markdown)
    assert "drift towards each other" not in text
    assert " → ".join(balance_path(tiny_runs / "mnist-gan")) in text  # what this run's history says
    assert "latent **20 Gaussian modes**" in text  # the conv default
    assert "Bernoulli means" in text
    warning = app.warning[0].value
    assert "does not minimise" in warning and r"$\mathrm{KL} + \mathbb{E}_q[\log p(x\mid z)]$" in warning
    assert "their sum" not in warning


def test_concepts_page_names_a_mixture_latent(monkeypatch, tmp_path, tiny_runs, splits):
    root = tmp_path / "ck"
    shutil.copytree(tiny_runs, root, ignore=shutil.ignore_patterns("mnist-gan"))
    make_tiny_run("gan", root / "mnist-gan", splits, epochs=1, latent_modes=3)
    at = goto(open_app(monkeypatch, root), "concepts")
    assert not at.exception
    assert "latent **3 Gaussian modes**" in " ".join(m.value for m in at.markdown)
    for page in ("samples", "explore"):  # interpolations and traversals decode the mixture's codes
        assert not goto(at, page).exception


def test_a_mixture_gans_codes_decode_to_its_samples(tmp_path, splits):
    from dashboard import sampling

    path = str(make_tiny_run("gan", tmp_path / "mnist-gan", splits, epochs=1, latent_modes=3))
    z = sampling.latent_codes(0, 4, TINY["gan"]["latent_dim"])
    codes = sampling.codes_of(path, z)
    assert not np.allclose(codes, z)  # the mixture's draws, mu_k + z
    assert np.array_equal(sampling.render(path, codes), sampling.generate(path, z))


def test_metrics_page_without_evaluation_says_how(app):
    goto(app, "metrics")
    assert any("python -m core evaluate" in i.value for i in app.info)


def test_broken_gan_run_shows_error_card_and_vae_still_works(monkeypatch, tmp_path, tiny_runs):
    root = tmp_path / "ck"
    shutil.copytree(tiny_runs, root)
    (root / "mnist-gan" / "model.safetensors").write_bytes(b"truncated")
    at = open_app(monkeypatch, root)
    assert not at.exception
    assert len(at.error) == 1 and "mnist-gan" in at.error[0].value and "model.safetensors" in at.error[0].value
    assert str(root) not in at.error[0].value  # no machine paths on screen
    assert len(images(at)) == 1  # the VAE's grid
    for page in ("samples", "latent", "curves", "metrics", "concepts"):
        goto(at, page)


def test_unreadable_config_is_listed_with_its_error(monkeypatch, tmp_path, tiny_runs):
    root = tmp_path / "ck"
    shutil.copytree(tiny_runs, root)
    (root / "mnist-vae" / "config.json").write_text("{oops")
    at = open_app(monkeypatch, root)
    assert not at.exception
    assert any("config.json" in e.value and "not valid JSON" in e.value for e in at.error)


def test_no_checkpoints_page(monkeypatch, tmp_path):
    at = open_app(monkeypatch, tmp_path / "empty")
    assert not at.exception
    assert at.title[0].value == "No runs found"
    assert "python -m core train" in " ".join(m.value for m in at.markdown)
    assert str(tmp_path) not in at.warning[0].value and "empty" in at.warning[0].value  # no machine path
    goto(at, "concepts")


def test_committed_checkpoints(monkeypatch):
    root = REPO / "checkpoints"
    assert (root / "mnist-vae" / "model.safetensors").is_file() and (root / "mnist-gan" / "model.safetensors").is_file()
    at = open_app(monkeypatch, root, runs=root / "_none")
    assert not at.exception and not at.error
    for page in ("samples", "latent", "curves", "metrics", "concepts"):
        goto(at, page)
        assert not at.error
    goto(at, "overview")
    at.selectbox(key="dataset").set_value("fashion-mnist").run()
    assert not at.exception and not at.error
    assert Path(at.session_state["pick_vae"]).name == "fashion-mnist-vae"
    assert Path(at.session_state["pick_gan"]).name == "fashion-mnist-gan"
    goto(at, "concepts")  # the statement about D(x) and D(G(z)) is the committed run's own numbers
    assert " → ".join(balance_path(root / "fashion-mnist-gan")) in " ".join(m.value for m in at.markdown)


def test_no_page_computes_tsne_on_load(monkeypatch, tiny_runs):
    from core import embed

    def forbidden(*a, **k):
        raise AssertionError("t-SNE computed on page load")

    monkeypatch.setattr(embed, "tsne", forbidden)
    at = open_app(monkeypatch, tiny_runs)
    for page in ("samples", "latent", "curves", "metrics", "concepts", "explore"):
        goto(at, page)
    from .test_explore_page import one, upload

    upload(at, one()).radio(key="ex_map").set_value("t-SNE").run()  # Explore places a drawing on the stored map
    assert not at.exception


@pytest.fixture(scope="module")
def evaluated_runs(tmp_path_factory, tiny_runs, splits) -> Path:
    """tiny_runs plus a tiny classifier, both models evaluated on synthetic data."""
    from core.evaluate import evaluate_run

    from ..conftest import make_tiny_run
    from ..core.test_metrics import SMALL

    root = tmp_path_factory.mktemp("evaluated") / "ck"
    shutil.copytree(tiny_runs, root)
    clf = make_tiny_run("classifier", root / "mnist-classifier", splits, width=4, feature_dim=8)
    for kind in ("vae", "gan"):
        evaluate_run(root / f"mnist-{kind}", clf, splits=splits, **SMALL)
    return root


RAW_KEYS = ("frechet_distance", "class_kl_to_uniform", "nn_dist", "mean_confidence", "neg_iwae", "_mse")


def test_metrics_page_shows_the_evaluation(monkeypatch, evaluated_runs):
    at = goto(open_app(monkeypatch, evaluated_runs), "metrics")
    table = at.table[0].value
    names = set(table["metric"])
    assert {"Fréchet distance (classifier features)", "Precision (fidelity)", "Recall (coverage)",
            "Class balance: KL to uniform (nats)", "−log p(x), IWAE bound (nats per image)",
            "Legible share (confidence > 0.9)"} <= names
    assert not any(k in table.to_csv() for k in RAW_KEYS)  # human names only
    nn = table[table["metric"].str.startswith("Distance to nearest training digit")].iloc[0]
    assert nn["better"] == "≈ real data" and "✓" not in nn["VAE"] + nn["GAN"]  # a check, not a contest
    fd = table[table["metric"] == "Fréchet distance (classifier features)"].iloc[0]
    # the tiny models collapse (every sample read as one class): named so, and neither is ranked better
    assert sum("mode collapse" in e.value for e in at.error) == 2
    assert fd["better"] == "↓ lower" and "±" in fd["VAE"] and "✓" not in fd["VAE"] + fd["GAN"]
    captions = " ".join(c.value for c in at.caption)
    assert "training** digits" in captions and "generator seeds (0, 1)" in captions
    assert len(charts(at)) == 2 and len(images(at)) == 2  # coverage + PR; two nearest-neighbour galleries
    coverage = charts(at)[0]
    assert coverage["layout"]["xaxis"]["ticktext"] == [str(d) for d in range(10)]  # every class labelled
    pr = charts(at)[1]
    assert all(t["mode"] == "markers" for t in pr["data"])  # names in the legend, no text labels to collide
    goto(at, "overview")
    assert any(m.label == "Fréchet distance ↓" for m in at.metric)
    legible = [m for m in at.metric if m.label == "Legible ↑"]  # real images' share: in the help
    assert len(legible) == 2 and all(m.value.endswith("%") and "Real test images: " in m.help for m in legible)


def test_metrics_page_names_classes_and_explains_a_negative_kid_floor(monkeypatch, tmp_path, evaluated_runs):
    root = tmp_path / "ck"
    shutil.copytree(evaluated_runs, root)
    for run in ("mnist-vae", "mnist-gan", "mnist-classifier"):  # file them under Fashion-MNIST
        cfg = json.loads((root / run / "config.json").read_text())
        cfg["dataset"]["name"] = "fashion-mnist"
        (root / run / "config.json").write_text(json.dumps(cfg))
    metrics = json.loads((root / "mnist-gan" / "metrics.json").read_text())
    ev = metrics["evaluation"]
    ev["class_histogram"] = [0.12, 0.12, 0.12, 0.12, 0.005, 0.12, 0.03, 0.125, 0.125, 0.125]
    ev["missing_classes"], ev["starved_classes"] = [4], [4, 6]
    ev["reference"]["kid"] = {"mean": -1.19, "std": 0.0, "values": [-1.19]}
    (root / "mnist-gan" / "metrics.json").write_text(json.dumps(metrics))
    at = goto(open_app(monkeypatch, root), "metrics")
    warning = " ".join(w.value for w in at.warning)
    assert "Coat 0.5%" in warning and "Shirt 3.0%" in warning and "[4" not in warning
    kid = at.table[0].value.iloc[1]
    assert kid["metric"].startswith("Kernel distance") and kid["real data (floor)"].startswith("≈ 0 (-")
    assert "slightly negative" in " ".join(c.value for c in at.caption)
    assert "T-shirt/top" in charts(at)[0]["layout"]["xaxis"]["ticktext"]


def test_a_run_has_one_name_everywhere_and_the_visitors_own_are_marked(monkeypatch, tmp_path, tiny_runs):
    """The sidebar, the overlays, the Overview and the Runs table name a run by its folder name, whole; what it
    is (model, data set, epochs, start) and its folder are the picker's help; this visitor's runs say "(yours)"."""
    from dashboard import jobs_client

    runs = tmp_path / "runs"
    for stamp in ("011500-123", "011512-456"):  # two visitors' runs, seconds apart
        shutil.copytree(tiny_runs / "mnist-gan", runs / f"ui-gan-mnist-20261126-{stamp}")
    monkeypatch.setattr(jobs_client, "my_runs", lambda: frozenset({"ui-gan-mnist-20261126-011500-123"}))
    at = open_app(monkeypatch, tiny_runs, runs=runs)
    picker = at.selectbox(key="pick_gan")
    options = [o for o in picker.options if o.startswith("ui-gan")]
    assert options == ["ui-gan-mnist-20261126-011500-123 (yours)", "ui-gan-mnist-20261126-011512-456"] or \
        options == ["ui-gan-mnist-20261126-011512-456", "ui-gan-mnist-20261126-011500-123 (yours)"]
    assert not any("/" in o for o in picker.options)  # no folder paths in the picker
    picker.set_value(str(runs / "ui-gan-mnist-20261126-011500-123")).run()
    assert not at.exception
    help_text = at.selectbox(key="pick_gan").help
    assert "runs/ui-gan-mnist-20261126-011500-123" in help_text
    assert re.search(r"GAN · mnist · 2 epochs · \d\d \w{3} \d\d\\?:\d\d", help_text)  # ":" escaped for Markdown
    assert any(h.value.replace("\\", "").endswith("ui-gan-mnist-20261126-011500-123 (yours)")  # Overview
               for h in at.subheader)  # (Markdown-escaped)
    goto(at, "curves")
    assert "ui-gan-mnist-20261126-011500-123 (yours)" in at.multiselect(key="overlay_gan").options
    goto(at, "runs")
    assert "ui-gan-mnist-20261126-011500-123 (yours)" in list(at.dataframe[0].value["run"])


def test_latent_selection_maps_points_back_to_rows():
    """Box/lasso selections come back as (trace, index in trace); customdata's shape must not matter."""
    from dashboard.components import latent_scatter, selected_rows

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 300)
    coords, indices = rng.normal(size=(300, 2)), rng.permutation(10_000)[:300]
    fig = latent_scatter(coords, labels, indices, [str(d) for d in range(10)], "t")
    points = [{"curve_number": k, "point_index": i, "point_number": i, "customdata": {"0": 1, "1": 2}}
              for k in (3, 7) for i in (0, 2, 4)]
    rows = selected_rows(points, labels)
    assert len(rows) == 6 and set(labels[rows]) == {3, 7}
    for p in points:
        row = next(r for r in rows if coords[r, 0] == fig.data[p["curve_number"]].x[p["point_index"]])
        assert indices[row] == fig.data[p["curve_number"]].customdata[p["point_index"]]
    assert selected_rows([{"curve_number": 1, "point_index": 10_000}, {"x": 0.1}], labels) == []
