"""Page text from the records, never assumed: the data set's noun (Fashion-MNIST shows items, not digits), and
why a run has no per-epoch quality log, read from its config.json."""

import json
import re
import shutil

from .test_dashboard import REPO, goto, open_app

COMMITTED = REPO / "checkpoints"
TEXT = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error")
WIDGETS = ("number_input", "slider", "select_slider", "selectbox", "radio", "toggle", "multiselect")


def page_text(at) -> str:
    parts = [e.value for kind in TEXT for e in at.get(kind)]
    parts += [w.label for kind in WIDGETS for w in at.get(kind)]
    return "\n".join(map(str, parts))


def test_fashion_mnist_pages_say_items(monkeypatch, tmp_path):
    ck = tmp_path / "checkpoints"
    for run in ("fashion-mnist-vae", "fashion-mnist-gan", "fashion-mnist-classifier"):
        shutil.copytree(COMMITTED / run, ck / run)
    at = open_app(monkeypatch, ck, tmp_path / "runs")
    assert at.selectbox(key="dataset").value == "fashion-mnist"
    for page in ("overview", "samples", "latent", "metrics", "curves", "concepts"):
        text = page_text(goto(at, page))
        assert not re.search(r"\bdigits?\b", text, re.I), (page, re.findall(r".{40}\bdigits?\b.{20}", text, re.I))
        assert re.search(r"\bitems?\b", text) or page in ("curves", "concepts"), page  # these name no image


def test_a_retrained_run_says_why_it_has_no_quality_log(monkeypatch, tmp_path):
    ck, runs = tmp_path / "checkpoints", tmp_path / "runs"
    for run in ("mnist-vae", "mnist-gan", "mnist-classifier"):
        shutil.copytree(COMMITTED / run, ck / run)
    retrained = runs / "ui-gan-mnist-20261201-082946"
    shutil.copytree(COMMITTED / "mnist-gan", retrained)
    cfg = json.loads((retrained / "config.json").read_text())
    cfg["quality_check"], cfg["best_epoch"] = None, None  # what a run from the Retrain page records
    (retrained / "config.json").write_text(json.dumps(cfg))
    history = json.loads((retrained / "history.json").read_text())
    history["epochs"] = {k: v for k, v in history["epochs"].items() if not k.startswith("quality/")}
    (retrained / "history.json").write_text(json.dumps(history))
    at = open_app(monkeypatch, ck, runs)
    at.selectbox(key="pick_gan").set_value(str(retrained)).run()
    text = page_text(goto(at, "curves"))
    assert "no per-epoch quality log" in text and "Retrain page leaves the check out" in text
    assert "trained before" not in text and "without a classifier" not in text


def test_a_short_run_overlaid_on_a_long_one_spans_the_chart(monkeypatch, tmp_path):
    """A 469-step retrained GAN over the committed 40,000-step one: the page says so, and the "share of training"
    axis draws both from 0 to 100 % instead of squeezing the short one against x = 0."""
    from .test_dashboard import charts

    ck, runs = tmp_path / "checkpoints", tmp_path / "runs"
    for run in ("mnist-vae", "mnist-gan"):
        shutil.copytree(COMMITTED / run, ck / run)
    short = runs / "ui-gan-mnist-20261201-082946"
    shutil.copytree(COMMITTED / "mnist-gan", short)
    history = json.loads((short / "history.json").read_text())
    history["steps"] = {k: v[:469] for k, v in history["steps"].items()}
    (short / "history.json").write_text(json.dumps(history))
    at = goto(open_app(monkeypatch, ck, runs), "curves")
    at.multiselect(key="overlay_gan").set_value([str(ck / "mnist-gan"), str(short)]).run()
    assert any("differ more than tenfold" in c.value for c in at.caption)
    at.radio(key="curve_view").set_value("share of training").run()
    gan = next(c for c in charts(at) if "Discriminator" in c["layout"]["title"]["text"])
    ends = {t["name"]: max(t["x"]) for t in gan["data"]}
    assert len(ends) == 4 and all(abs(e - 100) < 1e-6 for e in ends.values()), ends
