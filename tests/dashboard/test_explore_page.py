"""The Explore page under AppTest, on tiny runs: a drawing (uploaded, as AppTest cannot move a mouse), the
latent dimensions and the interpolation of real digits react to their widgets; missing pieces are messages."""

import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from ..conftest import REPO, make_tiny_run
from .test_dashboard import charts, goto, images, open_app


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def one() -> bytes:
    """A dark vertical stroke on white paper, as a photographed "1"."""
    img = np.full((200, 160), 255, np.uint8)
    img[30:170, 70:90] = 0
    return png(img)


def seven() -> bytes:
    """A white "7" on black, as the canvas draws."""
    img = np.zeros((200, 200), np.uint8)
    img[30:50, 40:160] = 255
    for y in range(50, 180):
        x = int(160 - (y - 50) * 0.6)
        img[y, x - 10:x + 10] = 255
    return png(img)


@pytest.fixture
def explore(monkeypatch, tiny_runs, tmp_path):
    torch.set_num_threads(1)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no-data"))  # no training set on this "server"
    return goto(open_app(monkeypatch, tiny_runs), "explore")


def upload(at, content: bytes, name: str = "digit.png"):
    at.file_uploader(key="ex_upload").set_value((name, content, "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def star(chart: dict) -> tuple[float, float]:
    trace = next(t for t in chart["data"] if t.get("name") == "your digit")
    return trace["x"][0], trace["y"][0]


def test_an_uploaded_digit_is_read_reconstructed_scored_and_placed(explore):
    at = explore
    assert any("Draw a digit" in i.value for i in at.info)  # nothing drawn yet: says what to do
    before = images(at)
    assert len(before) == 4  # traversal grids (VAE, GAN) and interpolation rows (VAE, GAN)
    upload(at, one())
    shown = images(at)
    assert len(shown) == 4 + 4  # + your digit, VAE decoder(mu(x)), GAN G(E(x)), nearest digits
    captions = [c.value for c in at.caption]
    assert {"your digit, 28×28", "VAE: decoder(μ(x))", "GAN: G(E(x))"} <= {
        cap for el in at.get("image") for cap in [i.caption for i in el.proto.imgs]}
    assert any("No classifier for MNIST" in i.value for i in at.info)  # tiny runs have no classifier
    nats = [m for m in at.metric if "ELBO" in m.label]
    assert len(nats) == 1 and nats[0].value.endswith("nats") and float(nats[0].value.split()[0]) > 0
    assert any("test digits: median" in c for c in captions)
    assert any("training set is not on this server" in c for c in [
        i.caption for el in at.get("image") for i in el.proto.imgs])  # the fallback says so
    maps = [c for c in charts(at) if any(t.get("name") == "your digit" for t in c["data"])]
    assert len(maps) == 2  # the star on the VAE's and the GAN's map
    pca = [star(c) for c in maps]

    at.radio(key="ex_map").set_value("t-SNE").run()
    maps = [c for c in charts(at) if any(t.get("name") == "your digit" for t in c["data"])]
    assert [star(c) for c in maps] != pca
    assert all(any(t.get("name") == "its neighbours" for t in c["data"]) for c in maps)
    assert any("nearest to your digit's code" in c.value for c in at.caption)

    first = images(at)
    upload(at, seven(), "seven.png")
    second = images(at)
    assert second[0] != first[0] and second[1] != first[1] and second[2] != first[2]  # input and both readings
    assert second[4:] == first[4:]  # the other sections did not change


def test_drawing_is_prepared_like_mnist_and_its_nats_match_core(explore, tiny_runs):
    from core.explore import neg_elbo, prepare, to_grey
    from dashboard import runs

    at = upload(explore, one())
    digit = np.round(prepare(to_grey(np.asarray(Image.open(io.BytesIO(one())).convert("RGBA")))) * 255)
    expect = neg_elbo(runs.model(str(tiny_runs / "mnist-vae")), digit[None].astype(np.uint8), samples=4)
    shown = float(next(m for m in at.metric if "ELBO" in m.label).value.split()[0])
    assert shown == pytest.approx(expect["neg_elbo"][0], abs=0.051)


def test_a_file_that_is_not_an_image_is_a_message(explore):
    at = upload(explore, b"not a picture at all", "notes.png")
    assert any("could not be read" in e.value and "notes.png" in e.value for e in at.error)
    assert len(images(at)) == 4  # the rest of the page still works


def test_latent_dimensions_chart_and_traversals_follow_their_widgets(explore, tiny_runs):
    at = explore
    kl = [c for c in charts(at) if c["layout"]["title"]["text"].startswith("KL per dimension")]
    assert len(kl) == 1 and len(kl[0]["data"][0]["x"]) == 8  # the tiny VAE's 8 dimensions
    assert "units active" in kl[0]["layout"]["title"]["text"]
    assert any("Burda" in c.value and "0.01" in c.value for c in at.caption)
    grid_captions = [i.caption for el in at.get("image") for i in el.proto.imgs][:2]
    assert grid_captions[0].startswith("rows: z") and grid_captions[1].startswith("rows: PC1")
    assert any("principal directions" in c.value and "not latent dimensions" in c.value for c in at.caption)
    before = images(at)
    at.number_input(key="ex_seed").set_value(3).run()
    after = images(at)
    assert after[0] != before[0] and after[1] != before[1] and after[2:] == before[2:]
    at.slider(key="ex_rows").set_value(2).run()
    captions = [i.caption for el in at.get("image") for i in el.proto.imgs][:2]
    assert captions[0].count("z") == 2 and captions[1].count("PC") == 2
    at.slider(key="ex_steps").set_value(5).run()
    assert images(at)[0] != after[0] and not at.exception


def test_interpolation_by_class_and_by_index(explore):
    at = explore
    before = images(at)
    at.selectbox(key="ex_class_b").set_value(3).run()
    after = images(at)
    assert after[2] != before[2] and after[3] != before[3] and after[:2] == before[:2]
    assert any("(3). First and last columns" in c.value for c in at.caption)
    at.radio(key="ex_int_mode").set_value("linear").run()
    assert images(at)[2:4] != after[2:4]
    at.radio(key="ex_pick").set_value("by test-set index").run()
    at.number_input(key="ex_index_a").set_value(5).run()  # probably not among the tiny runs' 64 digits
    assert not at.exception
    at.slider(key="ex_int_steps").set_value(4).run()
    assert not at.exception and images(at)[2] != after[2]


def test_a_run_without_a_trained_encoder_is_left_out_with_a_message(monkeypatch, explore):
    import core.explore

    real = core.explore.has_encoder
    monkeypatch.setattr(core.explore, "has_encoder", lambda m: real(m) and core.explore.has_posterior(m))
    at = explore
    at.run()
    assert any("GAN run `mnist-gan` has no trained encoder" in w.value for w in at.warning)
    assert any("No trained encoder" in i.value for i in at.info)  # instead of the GAN's traversal grid
    upload(at, one())
    shown = [i.caption for el in at.get("image") for i in el.proto.imgs]
    assert "VAE: decoder(μ(x))" in shown and "GAN: G(E(x))" not in shown
    assert not at.exception


def test_with_a_classifier_the_reading_and_its_probabilities(monkeypatch, tmp_path, tiny_runs, splits):
    root = tmp_path / "ck"
    shutil.copytree(tiny_runs, root)
    make_tiny_run("classifier", root / "mnist-classifier", splits, width=4, feature_dim=8, epochs=1)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no-data"))
    at = upload(goto(open_app(monkeypatch, root), "explore"), one())
    assert any(m.value.startswith("The MNIST classifier reads **") for m in at.markdown)
    probs = [c for c in charts(at) if c["layout"]["title"]["text"] == "Classifier's reading"]
    assert len(probs) == 1 and sum(probs[0]["data"][0]["y"]) == pytest.approx(1.0, abs=1e-4)
    assert not any("No classifier" in i.value for i in at.info)


@pytest.mark.real_data
def test_committed_runs_both_data_sets_and_nearest_training_digits(monkeypatch, real_data_root):
    monkeypatch.setenv("DATA_DIR", str(real_data_root))
    root = REPO / "checkpoints"
    at = goto(open_app(monkeypatch, root, runs=root / "_none"), "explore")
    assert not at.error and not at.exception
    upload(at, seven())
    reading = next(m.value for m in at.markdown if m.value.startswith("The MNIST classifier reads"))
    assert "**7**" in reading or "**1**" in reading  # a hand-made seven: the committed classifier must see a digit
    near = [i.caption for el in at.get("image") for i in el.proto.imgs if "nearest training digits" in i.caption]
    assert len(near) == 1
    kl = json.dumps([c for c in charts(at) if c["layout"]["title"]["text"].startswith("KL per dimension")])
    assert "of 32 units active" in kl
    at.selectbox(key="dataset").set_value("fashion-mnist").run()
    assert not at.exception and not at.error
    at.file_uploader(key="ex_upload").set_value(("s.png", seven(), "image/png")).run()
    assert any(m.value.startswith("The Fashion-MNIST classifier reads") for m in at.markdown)


def test_a_retrained_dense_run_with_another_latent_size(monkeypatch, tmp_path, tiny_runs, splits):
    """A run from the Retrain page (under RUNS_DIR, dense `seed` preset, 4 latent dimensions beside the GAN's 8)."""
    runs = tmp_path / "runs"
    run = make_tiny_run("vae", runs / "vae-mnist-20261126-0400-abcd", splits, preset="seed", latent_dim=4, epochs=1)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no-data"))
    at = open_app(monkeypatch, tiny_runs, runs=runs)
    at.selectbox(key="pick_vae").set_value(str(run)).run()
    goto(at, "explore")
    assert not at.error
    kl = [c for c in charts(at) if c["layout"]["title"]["text"].startswith("KL per dimension")]
    assert len(kl[0]["data"][0]["x"]) == 4
    at = upload(at, seven())
    shown = [i.caption for el in at.get("image") for i in el.proto.imgs]
    assert "VAE: decoder(μ(x))" in shown and "GAN: G(E(x))" in shown
    assert any("ELBO" in m.label for m in at.metric)


def test_a_copied_url_reopens_the_same_explore_view(monkeypatch, tiny_runs, tmp_path):
    from streamlit.testing.v1 import AppTest

    from .test_dashboard import APP

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no-data"))
    at = goto(open_app(monkeypatch, tiny_runs), "explore")
    default = images(at)
    assert not any(k.startswith("ex_") for k in at.query_params)  # defaults stay out of the URL
    at.number_input(key="ex_seed").set_value(4).run()
    at.selectbox(key="ex_class_a").set_value(2).run()
    at.radio(key="ex_int_mode").set_value("linear").run()
    query = {k: v for k, v in at.query_params.items()}
    assert (query["ex_seed"], query["ex_class_a"], query["ex_int_mode"]) == ("4", "2", "linear")
    changed = images(at)
    again = AppTest.from_file(APP, default_timeout=120)
    again.query_params.update(query)
    again.switch_page("views/explore.py")
    again.run()
    assert not again.exception and images(again) == changed != default
    hostile = AppTest.from_file(APP, default_timeout=120)  # values no widget accepts: the defaults, no error
    hostile.query_params.update({"ex_seed": "1e9999", "ex_class_a": "12", "ex_steps": "6", "ex_map": "<b>"})
    hostile.switch_page("views/explore.py")
    hostile.run()
    assert not hostile.exception and not hostile.error and images(hostile) == default


def test_runs_whose_embeddings_hold_no_digits(monkeypatch, tmp_path, tiny_runs):
    """embeddings.npz from before the test digits were stored in it: messages where the digits are needed."""
    root = tmp_path / "ck"
    shutil.copytree(tiny_runs, root)
    for kind in ("vae", "gan"):
        f = root / f"mnist-{kind}" / "embeddings.npz"
        with np.load(f) as z:
            kept = {k: z[k] for k in z.files if k != "images"}
        np.savez_compressed(f, **kept)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no-data"))
    at = goto(open_app(monkeypatch, root), "explore")
    assert not at.error
    assert any("holds no test digits: no KL per dimension" in i.value for i in at.info)
    assert any("no test images" in w.value for w in at.warning)  # the interpolation says what to do
    assert len(images(at)) == 2  # both traversal grids still work (from the stored codes)
    at = upload(at, one())
    assert any("no nearest digits to show" in i.value for i in at.info)
    assert any("holds no test digits to compare with" in c.value for c in at.caption)


def test_a_decompression_bomb_is_a_message(explore):
    buf = io.BytesIO()
    Image.new("1", (30_000, 30_000)).save(buf, format="PNG")  # 900 megapixels in a few hundred kB
    at = upload(explore, buf.getvalue(), "bomb.png")
    assert any("could not be read" in e.value and "too large" in e.value for e in at.error)


def test_dark_ink_on_a_transparent_background_is_read():
    from core.explore import to_grey

    rgba = np.zeros((60, 60, 4), np.uint8)  # a black stroke on a transparent sheet, as a drawing app exports it
    rgba[10:50, 25:35, 3] = 255
    grey = to_grey(rgba)
    assert grey[30, 30] == 1.0 and grey[0, 0] == 0.0  # white ink on black, like the canvas
    rgba[10:50, 25:35, :3] = 255  # white ink on transparent (the canvas) stays as it was
    assert to_grey(rgba)[30, 30] == 1.0 and to_grey(rgba)[0, 0] == 0.0


def test_fashion_mnist_speaks_of_items_and_prepares_them_as_fashion_mnist_did(monkeypatch, tmp_path):
    """Fashion-MNIST's images fill the field (longest edge resized to 28, Xiao et al. 2017), MNIST's digits a
    20x20 box; the page names what the data set holds, not digits."""
    from dashboard import explore_cache

    trousers = np.zeros((300, 120), np.uint8)
    trousers[20:280, 10:110] = 255
    rows = {name: np.flatnonzero(explore_cache.image_to_digit(trousers, name).max(axis=1) > 0).size
            for name in ("mnist", "fashion-mnist")}
    assert rows == {"mnist": 20, "fashion-mnist": 28}
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no-data"))
    root = REPO / "checkpoints"
    at = goto(open_app(monkeypatch, root, runs=root / "_none"), "explore")
    at.selectbox(key="dataset").set_value("fashion-mnist").run()
    upload(at, png(trousers))
    shown = [h.value for h in at.header] + [c.value for c in at.caption] + [i.value for i in at.info] + \
        [i.caption for el in at.get("image") for i in el.proto.imgs] + [m.value for m in at.markdown]
    assert "Draw or upload an item" in shown and "your item, 28×28" in shown
    wrong = [s for s in shown if "digit" in s or " MNIST's" in s or s.startswith("MNIST's")]
    assert not wrong, wrong


def test_a_phone_photo_is_turned_upright_by_its_exif_orientation():
    from dashboard import uploads

    img = np.full((100, 200), 255, np.uint8)  # stored landscape, shown portrait: EXIF orientation 6 (90° CW)
    img[45:55, 20:180] = 0  # a stroke along the stored image's width: upright, it runs top to bottom
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", exif=exif)
    assert uploads.read_image(buf.getvalue()).shape[:2] == (200, 100)


def test_an_error_inside_the_drawing_fragment_is_a_message_and_the_page_stays(explore, monkeypatch):
    """The drawing section reruns on its own (a fragment), outside the page's guard in app.py: it has its own."""
    from dashboard import sampling

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(sampling, "reconstruct", broken)
    at = explore
    at.file_uploader(key="ex_upload").set_value(("digit.png", seven(), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert any("Something went wrong in the drawing section (reference" in e for e in errors), errors
    assert "boom" not in " ".join(errors)  # no exception text for visitors
    assert any("Latent dimensions" in h.value for h in at.header)  # the rest of the page is still there
