"""Shareable views (page state in the URL) and downloads (PNG grids, metrics CSV/JSON, run folders as zips)."""

import csv
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from core.run.layout import CheckpointError
from dashboard import share

from .test_dashboard import charts, evaluated_runs, goto, images, open_app  # noqa: F401 (fixture)

RUN_FILES = {"config.json", "history.json", "metrics.json", "model.safetensors", "embeddings.npz"}


@pytest.fixture
def clicks(monkeypatch) -> dict:
    """{file name: data callable} of the download buttons rendered since it was last cleared: what a click
    would download. The buttons defer their data to a callable (built on click), registered here."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    seen = {}
    real = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        seen[file_name] = data_callable
        return real(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return seen


def click(seen: dict, name: str) -> bytes:
    data = seen[name]()
    return data.encode() if isinstance(data, str) else data


# --- parsers: a hostile or stale value is refused, never raised ------------------------------------------
def test_parsers_accept_good_values_and_refuse_the_rest():
    seed = share.integer(0, 2**31 - 1)
    assert seed("5") == 5 and seed("2147483647") == 2**31 - 1
    for bad in ("-1", "2147483648", "1e9999", "5.0", "0x10", " 5", "", "9" * 400, "nan"):
        with pytest.raises(ValueError):
            seed(bad)
    temp = share.number(0.1, 2.0, 0.1)
    assert temp("0.3") == 0.3 and temp("0.34") == 0.3 and temp("2") == 2.0
    for bad in ("nan", "inf", "-inf", "0.05", "2.01", "abc", "1e9999"):
        with pytest.raises(ValueError):
            temp(bad)
    count = share.choice([16, 36, 64, 100])
    assert count("16") == 16 and isinstance(count("16"), int)
    with pytest.raises(ValueError):
        count("17")


# --- the run folder as a zip: its own files, nothing else ------------------------------------------------
@pytest.fixture
def run_copy(tmp_path, evaluated_runs):  # noqa: F811
    run = tmp_path / "ck" / "mnist-vae"
    shutil.copytree(evaluated_runs / "mnist-vae", run)
    return run


def zip_names(data: bytes) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        return set(zf.namelist())


def test_run_zip_holds_exactly_the_runs_files(run_copy):
    grids = sorted(p.name for p in (run_copy / "samples").glob("*.png"))
    assert grids and (run_copy / "nearest.png").is_file()
    data = share.run_zip(run_copy)
    expected = {f"mnist-vae/{n}" for n in RUN_FILES | {"nearest.png"}} | {f"mnist-vae/samples/{g}" for g in grids}
    assert zip_names(data) == expected
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in expected:
            assert zf.read(name) == (run_copy.parent / name).read_bytes()
    out = run_copy.parent.parent / "unzipped"
    zipfile.ZipFile(io.BytesIO(data)).extractall(out)
    from core.run.folder import check_run

    check_run(out / "mnist-vae")  # the unzipped folder is a run that loads strictly


def test_run_zip_leaves_out_links_extra_files_and_folders(run_copy, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the run folder")
    (run_copy / "notes.txt").write_text("not a run file")
    (run_copy / ".hidden.json").write_text("{}")
    (run_copy / "extra").mkdir()
    (run_copy / "extra" / "config.json").write_text("{}")
    os.symlink(secret, run_copy / "samples" / "epoch_999.png")  # a link where a sample grid would be
    os.symlink(run_copy / "samples", run_copy / "samples" / "loop.png")
    (run_copy / "samples" / "dir.png").mkdir()
    (run_copy / "metrics.json").unlink()
    os.symlink(secret, run_copy / "metrics.json")  # a known file name that is a link
    names = zip_names(share.run_zip(run_copy))
    assert "mnist-vae/metrics.json" not in names and "mnist-vae/config.json" in names
    assert not any(n.endswith(("notes.txt", ".hidden.json", "epoch_999.png", "loop.png", "dir.png")) for n in names)
    assert not any("extra" in n for n in names)
    with zipfile.ZipFile(io.BytesIO(share.run_zip(run_copy))) as zf:
        assert all(b"outside the run folder" not in zf.read(n) for n in zf.namelist())


def test_run_zip_leaves_out_hard_links_and_names_off_the_allow_list(run_copy, tmp_path):
    """A hard link shares its content with a file outside the run (st_nlink > 1): left out like a symbolic
    link. Only the run's known names go in: no backslashes, no '..', samples/epoch_<n>.png only."""
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"outside the run folder")
    os.link(secret, run_copy / "samples" / "epoch_998.png")
    (run_copy / "history.json").unlink()
    os.link(secret, run_copy / "history.json")
    evil = "..\\..\\..\\evil.png"
    (run_copy / "samples" / evil).write_bytes((run_copy / "samples" / "epoch_001.png").read_bytes())
    (run_copy / "samples" / "notes.png").write_bytes((run_copy / "samples" / "epoch_001.png").read_bytes())
    names = zip_names(share.run_zip(run_copy))
    assert "mnist-vae/config.json" in names and "mnist-vae/samples/epoch_001.png" in names
    assert not any(n.endswith(("epoch_998.png", "history.json", "evil.png", "notes.png")) for n in names), names
    assert not any("\\" in n or ".." in n for n in names)
    with zipfile.ZipFile(io.BytesIO(share.run_zip(run_copy))) as zf:
        assert all(b"outside the run folder" not in zf.read(n) for n in zf.namelist())


def test_run_zip_refuses_a_file_hard_linked_after_it_was_listed(run_copy, tmp_path, monkeypatch):
    members = share.run_members(run_copy)
    os.link(run_copy / "config.json", tmp_path / "elsewhere.json")  # linked between listing and reading
    monkeypatch.setattr(share, "run_members", lambda path: members)
    with pytest.raises(CheckpointError, match="hard link"):
        share.run_zip(run_copy)


def test_run_zip_refuses_a_linked_folder_and_an_oversized_run(run_copy, tmp_path):
    link = tmp_path / "linked-run"
    os.symlink(run_copy, link)
    with pytest.raises(CheckpointError, match="not a run folder"):
        share.run_zip(link)
    with pytest.raises(CheckpointError, match="over the download limit"):
        share.run_zip(run_copy, limit=1000)


# --- metrics as CSV and JSON ---------------------------------------------------------------------------
def test_metrics_csv_and_json(evaluated_runs):  # noqa: F811
    stored = {run: json.loads((evaluated_runs / run / "metrics.json").read_text())
              for run in ("mnist-vae", "mnist-gan")}
    rows = list(csv.DictReader(io.StringIO(share.metrics_csv(stored))))
    assert {r["run"] for r in rows} == {"mnist-vae", "mnist-gan"}
    assert {r["section"] for r in rows} == {"evaluation", "reference", "held_out"}
    fd = next(r for r in rows if r["run"] == "mnist-gan" and r["metric"] == "frechet_distance"
              and r["section"] == "evaluation")
    ev = stored["mnist-gan"]["evaluation"]["metrics"]["frechet_distance"]
    assert float(fd["mean"]) == pytest.approx(ev["mean"]) and int(fd["seeds"]) == len(ev["values"])
    elbo = next(r for r in rows if r["run"] == "mnist-vae" and r["metric"] == "neg_elbo" and r["section"] == "held_out")
    assert float(elbo["mean"]) == pytest.approx(stored["mnist-vae"]["held_out"]["neg_elbo"]) and elbo["std"] == ""
    assert json.loads(share.metrics_json(stored)) == stored
    assert share.metrics_csv({"x": None}).strip() == "run,section,metric,mean,std,seeds"  # not evaluated: header


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def test_csv_cells_are_neutralised_and_numbers_stay_numbers():
    """OWASP's CSV injection rule: a text cell starting with = + - @ tab or CR gets a leading quote."""
    import numpy as np

    for lead in FORMULA_STARTS:
        assert share.csv_cell(f"{lead}1+2") == f"'{lead}1+2"
    assert share.csv_cell("mnist-vae") == "mnist-vae" and share.csv_cell(None) is None
    for number in (-2.5, -3, np.float64(-1.5), np.int64(-7), 0.0):
        assert share.csv_cell(number) == number and type(share.csv_cell(number)) is type(number)


def test_metrics_csv_neutralises_run_and_metric_names(evaluated_runs):  # noqa: F811
    m = json.loads((evaluated_runs / "mnist-vae" / "metrics.json").read_text())
    m["evaluation"]["metrics"]['=HYPERLINK("http://evil.example","x")'] = {"mean": -2.5, "std": 0.0}
    m["held_out"]["-2+3+cmd|' /C calc'!A0"] = -1.25
    m["held_out"]["\r=1+2"] = 2.0  # a carriage return inside a cell is quoted, not a new row
    rows = list(csv.reader(io.StringIO(share.metrics_csv({"@SUM(1+1)": m}), newline="")))
    assert all(len(r) == 6 for r in rows), rows
    cells = [c for r in rows[1:] for c in r]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS) and not _is_number(c)], rows
    assert ["'@SUM(1+1)", "evaluation", "'=HYPERLINK(\"http://evil.example\",\"x\")", "-2.5", "0.0", ""] in rows
    assert any(r[2] == "'-2+3+cmd|' /C calc'!A0" and float(r[3]) == -1.25 for r in rows)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# --- the URL restores each page's state, follows the widgets, and survives hostile values ----------------
@pytest.fixture(scope="module")
def shared_runs(tmp_path_factory, tiny_runs, splits):
    """Two VAEs and a GAN on MNIST, a Fashion-MNIST pair (copies filed under that data set)."""
    from ..conftest import make_tiny_run

    root = tmp_path_factory.mktemp("shared") / "checkpoints"
    shutil.copytree(tiny_runs, root)
    make_tiny_run("vae", root / "mnist-vae-seed1", splits, seed=1)
    for kind in ("vae", "gan"):
        shutil.copytree(root / f"mnist-{kind}", root / f"fashion-mnist-{kind}")
        cfg = json.loads((root / f"fashion-mnist-{kind}" / "config.json").read_text())
        cfg["dataset"]["name"] = "fashion-mnist"
        (root / f"fashion-mnist-{kind}" / "config.json").write_text(json.dumps(cfg))
    return root


def open_with(monkeypatch, root, page: str | None = None, **query):
    """The app opened from a URL with this query string (on `page`, a views/ file name)."""
    from streamlit.testing.v1 import AppTest

    from .test_dashboard import APP

    monkeypatch.setenv("CHECKPOINT_DIR", str(root))
    monkeypatch.setenv("RUNS_DIR", str(Path(root) / "_no_runs"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query)
    if page:
        at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_sidebar_state_from_the_url_by_run_name(monkeypatch, shared_runs):
    at = open_with(monkeypatch, shared_runs, vae="mnist-vae-seed1")
    assert at.session_state["pick_vae"] == str(shared_runs / "mnist-vae-seed1")
    assert any("mnist-vae-seed1" in s.value for s in at.subheader)  # the Overview shows the shared run
    assert at.query_params["vae"] == "mnist-vae-seed1" and at.query_params["gan"] == "mnist-gan"
    assert not any(str(shared_runs) in str(v) or "/" in str(v) for v in at.query_params.values())  # names only
    at = open_with(monkeypatch, shared_runs, dataset="fashion-mnist", gan="fashion-mnist-gan")
    assert at.selectbox(key="dataset").value == "fashion-mnist"
    assert Path(at.session_state["pick_vae"]).name == "fashion-mnist-vae"
    at.selectbox(key="pick_vae").set_value(str(shared_runs / "fashion-mnist-vae")).run()
    at.selectbox(key="dataset").set_value("mnist").run()  # a widget change goes into the URL
    assert "dataset" not in at.query_params and at.query_params["vae"] == "mnist-vae"  # the default is left out


def test_samples_page_restored_from_the_url(monkeypatch, shared_runs, clicks):
    plain = open_with(monkeypatch, shared_runs, "samples")
    at = open_with(monkeypatch, shared_runs, "samples", gen_seed="5", gen_count="16", gen_temp="0.3",
                   int_mode="linear", int_steps="4", rec_seed="3", rec_n="6", epoch_vae="1")
    assert at.number_input(key="gen_seed").value == 5 and at.select_slider(key="gen_count").value == 16
    assert at.slider(key="gen_temp").value == 0.3 and at.radio(key="int_mode").value == "linear"
    assert at.slider(key="int_steps").value == 4 and at.slider(key="rec_n").value == 6
    assert at.slider(key="epoch_vae").value == 1
    assert images(at)[0] != images(plain)[0] and images(at)[2] != images(plain)[2]  # the output follows
    again = open_with(monkeypatch, shared_runs, "samples", **at.query_params)  # the URL after the run reopens it
    assert images(again) == images(at)
    assert click(clicks, "mnist-vae-samples-seed5-n16-t0.3.png").startswith(b"\x89PNG")
    assert "mnist-gan-interpolation-1-2-4-linear.png" in clicks and "reconstructions-mnist-vae-mnist-gan-seed3-n6.png" \
        in clicks
    epoch = (shared_runs / "mnist-vae" / "samples" / "epoch_001.png").read_bytes()
    assert click(clicks, "mnist-vae-epoch001.png") == epoch


def test_widget_changes_update_the_url(monkeypatch, shared_runs):
    at = open_with(monkeypatch, shared_runs, "samples")
    assert "gen_seed" not in at.query_params  # defaults stay out of the URL
    at.number_input(key="gen_seed").set_value(7).run()
    at.slider(key="gen_temp").set_value(0.5).run()
    at.radio(key="int_mode").set_value("linear").run()
    assert (at.query_params["gen_seed"], at.query_params["gen_temp"], at.query_params["int_mode"]) == ("7", "0.5",
                                                                                                    "linear")
    at.number_input(key="gen_seed").set_value(0).run()
    assert "gen_seed" not in at.query_params and at.query_params["gen_temp"] == "0.5"


@pytest.mark.parametrize("query", [
    {"gen_seed": "1e9999", "gen_count": "17", "gen_temp": "nan", "int_mode": "<script>", "int_steps": "99",
     "rec_n": "-3", "epoch_vae": "100000", "vae": "../../etc/passwd", "gan": "/etc", "dataset": "nope"},
    {"gen_seed": "x" * 10_000, "gen_temp": "inf", "int_steps": "3.5", "vae": "", "dataset": ""},
])
def test_bad_query_values_fall_back_to_the_defaults(monkeypatch, shared_runs, query):
    at = open_with(monkeypatch, shared_runs, "samples", **query)
    assert at.number_input(key="gen_seed").value == 0 and at.select_slider(key="gen_count").value == 64
    assert at.slider(key="gen_temp").value == 1.0 and at.radio(key="int_mode").value == "spherical"
    assert at.slider(key="int_steps").value == 10 and at.selectbox(key="dataset").value == "mnist"
    assert Path(at.session_state["pick_vae"]).name == "mnist-vae" and not at.error
    assert at.query_params == {"vae": "mnist-vae", "gan": "mnist-gan"}  # the bad values are gone from the URL


def test_latent_curves_and_metrics_pages_restored_from_the_url(monkeypatch, shared_runs):
    tsne = charts(open_with(monkeypatch, shared_runs, "latent"))
    at = open_with(monkeypatch, shared_runs, "latent", map_method="pca", map_perp="50", map_size="500")
    assert at.radio(key="map_method").value == "PCA" and at.slider(key="map_perp").value == 50
    assert at.select_slider(key="map_size").value == 500
    assert charts(at)[0]["data"][0]["x"] != tsne[0]["data"][0]["x"]
    at.radio(key="map_method").set_value("t-SNE (recompute)").run()
    assert at.query_params["map_method"] == "tsne"

    at = open_with(monkeypatch, shared_runs, "curves", curve_view="per epoch", quality_axis="training minutes",
                   overlay_vae="mnist-vae,mnist-vae-seed1", curve_smooth="0.5")
    assert at.radio(key="curve_view").value == "per epoch" and at.slider(key="curve_smooth").value == 0.5
    assert at.radio(key="quality_axis").value == "training minutes"
    assert at.multiselect(key="overlay_vae").value == [str(shared_runs / "mnist-vae"),
                                                       str(shared_runs / "mnist-vae-seed1")]
    assert {t["name"] for t in charts(at)[0]["data"]} >= {"mnist-vae (train)", "mnist-vae-seed1 (train)"}
    at = open_with(monkeypatch, shared_runs, "curves", overlay_vae="mnist-vae,evil")  # one unknown name: default
    assert at.multiselect(key="overlay_vae").value == [str(shared_runs / "mnist-vae")]

    at = open_with(monkeypatch, shared_runs, "metrics", vae="mnist-vae-seed1")
    assert "mnist-vae-seed1" in " ".join(i.value for i in at.info)  # the shared run, not evaluated


def test_metrics_page_and_overview_downloads(monkeypatch, evaluated_runs, clicks):  # noqa: F811
    at = goto(open_app(monkeypatch, evaluated_runs), "metrics")
    assert {"mnist-vae-nearest.png", "mnist-gan-nearest.png"} <= set(clicks)
    rows = list(csv.DictReader(io.StringIO(click(clicks, "metrics-mnist-vae-mnist-gan.csv").decode())))
    assert {r["run"] for r in rows} == {"mnist-vae", "mnist-gan"} and any(r["metric"] == "precision" for r in rows)
    assert set(json.loads(click(clicks, "metrics-mnist-vae-mnist-gan.json"))) == {"mnist-vae", "mnist-gan"}
    clicks.clear()
    goto(at, "overview")
    assert set(clicks) == {"mnist-vae-samples-seed0.png", "mnist-gan-samples-seed0.png", "mnist-vae.zip",
                           "mnist-gan.zip"}
    names = zip_names(click(clicks, "mnist-gan.zip"))
    assert "mnist-gan/model.safetensors" in names and all(n.startswith("mnist-gan/") for n in names)


def test_latent_page_digits_from_the_url(monkeypatch, shared_runs):
    import numpy as np

    emb = np.load(shared_runs / "mnist-vae" / "embeddings.npz")
    ids = [int(i) for i in emb["indices"][[0, 5, 9]]]
    at = open_with(monkeypatch, shared_runs, "latent", digits_vae=",".join(map(str, ids)))
    assert [i.caption for el in at.get("image") for i in el.proto.imgs] == ["3 selected"]  # the VAE's map only
    assert at.query_params["digits_vae"] == ",".join(map(str, ids)) and "digits_gan" not in at.query_params
    for bad in ("1e99", "-1", "x" * 500, "1,,2", str(10**12)):
        at = open_with(monkeypatch, shared_runs, "latent", digits_vae=bad)
        assert not at.get("image") and "digits_vae" not in at.query_params
    at = open_with(monkeypatch, shared_runs, "latent", digits_vae=f"{ids[0]},999999999")  # not in this map: skipped
    assert [i.caption for el in at.get("image") for i in el.proto.imgs] == ["1 selected"]


def test_a_selection_on_a_chart_goes_into_the_url_and_comes_back():
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from dashboard import share

        st.write(repr(share.selection("digits", st.session_state.get("rows", []), [10, 20, 30, 40])))

    at = AppTest.from_function(script)
    at.query_params["digits"] = "30,99,10"
    at.run()
    assert at.markdown[0].value == "[2, 0]" and at.query_params["digits"] == "30,10"  # 99: not on this map
    at.session_state["rows"] = [1, 3]  # the visitor selects on the chart
    at.run()
    assert at.markdown[0].value == "[1, 3]" and at.query_params["digits"] == "20,40"
    at.session_state["rows"] = []  # and clears the selection: the URL's digits do not come back
    at.run()
    assert at.markdown[0].value == "[]" and "digits" not in at.query_params


def test_a_value_gone_stale_in_the_session_falls_back_to_the_default(monkeypatch, tmp_path, shared_runs):
    root = tmp_path / "ck"
    shutil.copytree(shared_runs, root)
    more = root / "mnist-vae-seed1" / "samples"
    shutil.copy(more / "epoch_002.png", more / "epoch_003.png")  # 3 grids here, 2 in mnist-vae
    at = open_with(monkeypatch, root, "samples", vae="mnist-vae-seed1")
    assert at.slider(key="epoch_vae").value == 3
    at.selectbox(key="pick_vae").set_value(str(root / "mnist-vae")).run()
    assert at.slider(key="epoch_vae").value == 2 and not at.exception  # the last epoch again, not the first
    at = open_with(monkeypatch, root, "curves")
    at.multiselect(key="overlay_vae").set_value([]).run()  # cleared by the visitor: stays cleared
    assert at.multiselect(key="overlay_vae").value == [] and not at.exception


def test_a_shared_selection_of_48_four_digit_test_indices_comes_back():
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from dashboard import share

        ids = list(range(9000, 9960, 20))  # 48 test-set indices of four digits
        st.write(repr(share.selection("digits", st.session_state.get("rows", []), ids)))

    at = AppTest.from_function(script)
    at.session_state["rows"] = list(range(48))  # the visitor selects 48 digits on the map
    at.run()
    link = at.query_params["digits"]
    again = AppTest.from_function(script)
    again.query_params["digits"] = link  # the copied URL, opened elsewhere
    again.run()
    assert again.markdown[0].value == repr(list(range(48))) and again.query_params["digits"] == link


def test_a_shared_overlay_of_many_retrained_runs_comes_back(monkeypatch, tmp_path, shared_runs):
    root = tmp_path / "checkpoints"
    shutil.copytree(shared_runs, root)
    names = [f"ui-vae-fashion-mnist-20261126-0515{i:02d}" for i in range(6)]  # the Retrain page's run names
    for name in names:
        shutil.copytree(root / "mnist-vae", root / name)
    at = open_with(monkeypatch, root, "curves", overlay_vae=",".join(names))  # 221 characters
    assert at.multiselect(key="overlay_vae").value == [str(root / n) for n in names]
    assert at.query_params["overlay_vae"] == ",".join(names)
