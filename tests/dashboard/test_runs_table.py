"""The Runs page: every run (committed and retrained, broken ones with their error), sortable; picking a VAE and
a GAN sets the sidebar selection and opens the Overview."""

import json
import shutil
from pathlib import Path

import pytest

from ..core.test_hostile import hostile_root  # noqa: F401 (fixture)
from .test_dashboard import evaluated_runs, goto, open_app  # noqa: F401 (fixture)
from .test_share import click, clicks, zip_names  # noqa: F401 (fixture)


@pytest.fixture
def many_runs(tmp_path, evaluated_runs):  # noqa: F811
    """checkpoints/: the evaluated pair and its classifier, a GAN with truncated weights, a folder whose
    config.json is not JSON; runs/: a retrained VAE."""
    ck, runs = tmp_path / "checkpoints", tmp_path / "runs"
    shutil.copytree(evaluated_runs, ck)
    shutil.copytree(ck / "mnist-vae", runs / "mnist-vae-retrained")
    metrics = runs / "mnist-vae-retrained" / "metrics.json"
    metrics.write_text(json.dumps({"held_out": json.loads(metrics.read_text())["held_out"]}))  # not evaluated
    shutil.copytree(ck / "mnist-gan", ck / "mnist-gan-broken")
    weights = ck / "mnist-gan-broken" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    shutil.copytree(ck / "mnist-vae", ck / "garbage")
    (ck / "garbage" / "config.json").write_text("{not json")
    return ck, runs


def open_runs(monkeypatch, many_runs):
    return goto(open_app(monkeypatch, *many_runs), "runs")


def select(at, *names):
    table = at.dataframe[0].value
    rows = [int(table.index[table["run"] == n][0]) for n in names]
    at.session_state["runs_table"] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_runs_table_lists_every_run_with_settings_metrics_and_errors(monkeypatch, many_runs):
    ck, runs = many_runs
    at = open_runs(monkeypatch, many_runs)
    assert at.title[0].value == "Runs"
    table = at.dataframe[0].value.set_index("run")
    assert set(table.index) == {"mnist-vae", "mnist-gan", "mnist-classifier", "mnist-gan-broken", "garbage",
                                "mnist-vae-retrained"}
    assert table.loc["mnist-vae-retrained", "folder"] == "runs" and table.loc["mnist-vae", "folder"] == "checkpoints"
    assert table.loc["mnist-vae", "family"] == "VAE" and table.loc["mnist-gan", "family"] == "GAN"
    cfg = json.loads((ck / "mnist-vae" / "config.json").read_text())
    assert table.loc["mnist-vae", "latent size"] == cfg["model_config"]["latent_dim"]
    assert table.loc["mnist-vae", "epochs"] == cfg["epochs_completed"]
    assert table.loc["mnist-vae", "device"].startswith("cpu")
    assert table.loc["mnist-vae", "training min"] == pytest.approx(cfg["wall_time_s"] / 60)
    for run in ("mnist-vae", "mnist-gan"):
        ev = json.loads((ck / run / "metrics.json").read_text())["evaluation"]["metrics"]
        assert table.loc[run, "Fréchet distance ↓"] == pytest.approx(ev["frechet_distance"]["mean"])
        assert table.loc[run, "precision ↑"] == pytest.approx(ev["precision"]["mean"])
    assert table.loc["mnist-vae", "−ELBO ↓"] > 0 and table.isna().loc["mnist-gan", "−ELBO ↓"]  # a GAN has none
    assert table.isna().loc["mnist-vae-retrained", "Fréchet distance ↓"]  # retrained, not evaluated: empty
    assert "model.safetensors" in table.loc["mnist-gan-broken", "error"]
    assert table.loc["mnist-gan-broken", "family"] == "GAN"  # its sound config still says what it is
    assert "config.json" in table.loc["garbage", "error"] and table.loc["garbage", "family"] == "?"
    assert table.loc["mnist-vae", "error"] == "" and str(ck) not in table.to_csv()  # no machine paths
    assert "2 of them broken" in " ".join(c.value for c in at.caption)


def test_the_table_downloads_as_csv(monkeypatch, many_runs, clicks):  # noqa: F811
    import csv
    import io

    open_runs(monkeypatch, many_runs)
    rows = {r["run"]: r for r in csv.DictReader(io.StringIO(click(clicks, "runs.csv").decode()))}
    assert len(rows) == 6 and rows["mnist-gan"]["family"] == "GAN" and float(rows["mnist-gan"]["precision ↑"]) > 0
    assert "model.safetensors" in rows["mnist-gan-broken"]["error"] and str(many_runs[0]) not in str(rows)


def test_the_csv_neutralises_formulas_and_keeps_numbers(monkeypatch, many_runs, clicks):  # noqa: F811
    """A run folder named like a formula and a config string starting with '-' reach the CSV quoted (OWASP)."""
    import csv
    import io

    ck, runs = many_runs
    shutil.copytree(ck / "mnist-vae", runs / "=1+2")
    config = runs / "mnist-vae-retrained" / "config.json"
    cfg = json.loads(config.read_text())
    config.write_text(json.dumps({**cfg, "device": "-2+3+cmd|' /C calc'!A0"}))
    open_runs(monkeypatch, many_runs)
    rows = list(csv.reader(io.StringIO(click(clicks, "runs.csv").decode())))
    header, body = rows[0], rows[1:]
    risky = [c for r in body for c in r if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert not risky, risky
    by_run = {r[0]: dict(zip(header, r)) for r in body}
    assert "'=1+2" in by_run and by_run["mnist-vae-retrained"]["device"] == "'-2+3+cmd|' /C calc'!A0"
    assert float(by_run["mnist-gan"]["precision ↑"]) > 0 and int(by_run["mnist-vae"]["epochs"]) > 0


def test_picking_a_vae_and_a_gan_selects_them_and_opens_the_overview(monkeypatch, many_runs):
    """Selecting the second row offers the comparison (no jump away from the table); the button opens it."""
    ck, runs = many_runs
    at = select(open_runs(monkeypatch, many_runs), "mnist-gan", "mnist-vae-retrained")
    assert at.title[0].value == "Runs"  # still here, the pair offered
    at.button(key="compare_picked").click().run()
    assert at.session_state["pick_vae"] == str(runs / "mnist-vae-retrained")
    assert at.session_state["pick_gan"] == str(ck / "mnist-gan")
    assert at.title[0].value == "GAN vs VAE"  # the Overview
    assert any("mnist-vae-retrained" in s.value for s in at.subheader)
    assert at.query_params["vae"] == "mnist-vae-retrained"  # and the URL says so
    goto(at, "samples")
    assert at.session_state["pick_vae"] == str(runs / "mnist-vae-retrained")  # every page follows


def test_pairs_that_cannot_be_compared_stay_on_the_page(monkeypatch, many_runs):
    at = open_runs(monkeypatch, many_runs)
    before = at.session_state["pick_vae"]
    for pair in (("mnist-vae", "mnist-vae-retrained"), ("mnist-vae", "mnist-gan-broken"), ("mnist-vae", "garbage")):
        select(at, *pair)
        assert at.title[0].value == "Runs" and at.session_state["pick_vae"] == before
        assert "one run each of two or more families" in at.info[0].value
    assert "`mnist-gan-broken` is broken" in select(at, "mnist-vae", "mnist-gan-broken").info[0].value


def test_one_picked_run_downloads_as_a_zip(monkeypatch, many_runs, clicks):  # noqa: F811
    ck, runs = many_runs
    at = select(open_runs(monkeypatch, many_runs), "mnist-vae-retrained")
    assert [b.proto.label.split(" (")[0] for b in at.get("download_button")] == ["Table", "Run folder"]
    names = zip_names(click(clicks, "mnist-vae-retrained.zip"))
    expected = {f"mnist-vae-retrained/{p.relative_to(runs / 'mnist-vae-retrained')}"
                for p in (runs / "mnist-vae-retrained").rglob("*") if p.is_file()}
    assert names == expected and "mnist-vae-retrained/config.json" in names
    select(at, "garbage")  # a broken run's own files can still be downloaded, bounded as ever
    assert "garbage/config.json" in zip_names(click(clicks, "garbage.zip"))
    assert Path(ck).name not in "".join(zip_names(click(clicks, "garbage.zip")))


def test_hostile_run_folders_are_rows_with_their_error_and_zip_without_links(
        monkeypatch, tiny_runs, hostile_root, clicks):  # noqa: F811
    from ..core.test_hostile import ALL, FOLDER_LINK, expected_file

    at = goto(open_app(monkeypatch, hostile_root, runs=tiny_runs), "runs")
    table = at.dataframe[0].value.set_index("run")
    assert set(ALL) <= set(table.index) and {"mnist-vae", "mnist-gan"} <= set(table.index)
    for name in ALL:
        assert expected_file(name) in table.loc[name, "error"], name
    assert table.loc["mnist-vae", "error"] == "" and str(hostile_root) not in table.to_csv()
    for name in [n for n in ALL if n.endswith("-symlink") and n != FOLDER_LINK]:
        select(at, name)
        linked = f"{name}/{expected_file(name)}"
        names = zip_names(click(clicks, f"{name}.zip"))
        assert linked not in names, name
        assert f"{name}/config.json" in names or name == "config-symlink", name
    select(at, FOLDER_LINK)  # the folder itself is a link: no button, a sentence
    assert len(at.get("download_button")) == 1 and "cannot be downloaded" in " ".join(c.value for c in at.caption)


def test_a_phone_shows_the_key_columns_without_scrolling_sideways(monkeypatch, tmp_path):
    """The committed runs' table on a 390 px phone (358 px for the table, about 33 of them the selection
    column): the run's name, its family and its Fréchet distance fit without scrolling sideways."""
    from .test_dashboard import REPO

    at = goto(open_app(monkeypatch, REPO / "checkpoints", tmp_path / "runs"), "runs")
    config = json.loads(at.dataframe[0].proto.columns)
    widths = {name: config[name]["width"] for name in ("run", "family", "Fréchet distance ↓")}
    names = at.dataframe[0].value["run"]
    assert widths["run"] >= 7 * max(len(n) for n in names)  # the longest name is not cut
    assert 33 + sum(widths.values()) <= 358, widths
    assert list(at.dataframe[0].value.columns[:3]) == ["run", "family", "Fréchet distance ↓"]
