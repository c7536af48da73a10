"""Run names: one rule for folders, pulls and retrained runs (core.run.layout), and every page shows a name as text,
never as Markdown (a folder named like a link must not render as one) or as Plotly's HTML-like markup."""

from __future__ import annotations

import json
import re
import shutil
import string

import pytest

from ..dashboard.test_dashboard import charts, goto, open_app

LINK_NAME = "[Session expired - log in](https:evil.example)"
HTML_NAME = "<a href='https:evil.example'>GAN<"
PUNCTUATION = set(string.punctuation)


def outside_code(md: str) -> str:
    """The Markdown with its code spans and backslash-escaped characters blanked (CommonMark's rules)."""
    out, i = [], 0
    while i < len(md):
        c = md[i]
        if c == "\\" and i + 1 < len(md) and md[i + 1] in PUNCTUATION:
            out.append(" ")
            i += 2
            continue
        if c == "`":
            j = i
            while j < len(md) and md[j] == "`":
                j += 1
            k, end = j, -1
            while k < len(md):  # the closing run has exactly as many backticks
                if md[k] == "`":
                    m = k
                    while m < len(md) and md[m] == "`":
                        m += 1
                    if m - k == j - i:
                        end = m
                        break
                    k = m
                else:
                    k += 1
            if end < 0:
                out.append(md[i:j])
                i = j
            else:
                out.append(" ")
                i = end
            continue
        out.append(c)
        i += 1
    return "".join(out)


def live_markup(md: str) -> list[str]:
    """Links and raw HTML a Markdown renderer would make of this text outside code spans."""
    text = outside_code(md)
    return re.findall(r"\[[^\]]*\]\([^)]*\)|<[A-Za-z/][^>]*>?", text)


def markdown_texts(at) -> list[str]:
    """Every Markdown-rendered text of the page: bodies of text elements and alerts, widget labels and help."""
    out = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success"):
        out += [e.value for e in at.get(kind)]
    for kind in ("selectbox", "multiselect", "slider", "select_slider", "number_input", "radio", "button",
                 "checkbox", "toggle", "text_input", "expander", "tab"):
        for e in at.get(kind):
            out += [getattr(e, "label", "") or "", getattr(e, "help", "") or ""]
    return out


def test_markdown_helpers_show_any_name_as_itself():
    from dashboard import components as ui

    for name in (LINK_NAME, HTML_NAME, "a`b``c", "`x`", "**bold** _it_ :red[x] $x$ #h", "line\nbreak"):
        for md in (ui.text(name), ui.code(name)):
            assert not live_markup(md), (name, md)
            assert "\n" not in md
        assert not re.search(r"[*_$#:\[\]]", outside_code(ui.text(name)))  # nothing left to interpret


@pytest.fixture
def hostile_names(tmp_path, tiny_runs):
    ck = tmp_path / "checkpoints"
    shutil.copytree(tiny_runs, ck)
    shutil.copytree(ck / "mnist-vae", ck / LINK_NAME)
    shutil.copytree(ck / "mnist-gan", ck / HTML_NAME)
    broken = ck / "**broken** [x](https:evil.example)"
    shutil.copytree(ck / "mnist-vae", broken)
    (broken / "config.json").write_text("{not json")
    return ck


PAGES = ("overview", "samples", "latent", "curves", "metrics", "runs", "concepts", "explore")


def test_every_page_shows_run_names_as_text(monkeypatch, hostile_names):
    at = open_app(monkeypatch, hostile_names)
    at.session_state["pick_vae"] = str(hostile_names / LINK_NAME)
    at.session_state["pick_gan"] = str(hostile_names / HTML_NAME)
    at.run()
    shown = []
    for page in PAGES:
        goto(at, page)
        texts = markdown_texts(at) + [e.value for e in at.sidebar.error]
        for md in texts:
            assert not live_markup(md), (page, md)
        shown += texts
        for spec in charts(at):  # Plotly draws <a href>, <b> in trace names and titles: escaped
            assert "<a href" not in json.dumps(spec), page
    assert any("Session expired" in md for md in shown)


# --- one name rule: folders, pulls, retrained runs -----------------------------------------------------------
BAD_NAMES = ["=1+2", "+1", "-rf", "@SUM(1)", "\tx", ".hidden", "..", "a b", "a/b", "a\\b", LINK_NAME, "x" * 101, ""]


def test_the_rule():
    from core.run import layout

    for good in ("mnist-vae", "fashion-mnist-gan", "ui-vae-mnist-20260101-101010-2", "run_1.2", "7"):
        assert layout.name_problem(good) is None and layout.check_name(good) == good
    for bad in BAD_NAMES:
        assert layout.name_problem(bad), bad
        with pytest.raises(ValueError, match="invalid run name"):
            layout.check_name(bad)


@pytest.mark.parametrize("bad", ["=1+2", "-2+3+cmd", "@x", LINK_NAME])
def test_pull_refuses_a_name_off_the_rule(tmp_path, bad):
    """`core pull --name '=1+2'` (and any name that is no run name) is refused before anything is fetched."""
    from core.hub import HubError, pull_run

    with pytest.raises(HubError, match="invalid run name"):
        pull_run("alice/mnist-vae", tmp_path / "checkpoints", name=bad)
    assert not (tmp_path / "checkpoints").exists()


def test_the_cli_says_the_rule(tmp_path, capsys):
    from core.__main__ import main

    assert main(["pull", "alice/x", "--name", "=1+2", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "invalid run name" in err and "letters, digits" in err


def test_train_refuses_an_out_folder_named_off_the_rule(tmp_path, splits):
    from core.run.layout import CheckpointError

    from ..conftest import make_tiny_run

    with pytest.raises(CheckpointError, match="invalid run name"):
        make_tiny_run("vae", tmp_path / "=1+2", splits, epochs=1)
    assert not any(tmp_path.iterdir())


def test_a_folder_named_off_the_rule_is_listed_as_broken(monkeypatch, tmp_path, tiny_runs):
    from dashboard import runs

    ck = tmp_path / "checkpoints"
    shutil.copytree(tiny_runs, ck)
    shutil.copytree(ck / "mnist-vae", ck / "=1+2")
    monkeypatch.setenv("CHECKPOINT_DIR", str(ck))
    monkeypatch.setenv("RUNS_DIR", str(tmp_path / "runs"))
    runs._catalog.clear()
    listed = {r.name: r for r in runs.catalog()}
    assert listed["mnist-vae"].error is None
    assert "invalid run name" in listed["=1+2"].error and listed["=1+2"].model == "vae"  # filed, as broken


def test_retrained_run_names_follow_the_rule(tmp_path):
    from core.jobs import store

    assert store._unique_name(tmp_path, "ui-vae-mnist-20261201-103000") == "ui-vae-mnist-20261201-103000"
    (tmp_path / "ui-vae-mnist-20261201-103000").mkdir()
    assert store._unique_name(tmp_path, "ui-vae-mnist-20261201-103000") == "ui-vae-mnist-20261201-103000-2"
    with pytest.raises(ValueError, match="invalid run name"):
        store._unique_name(tmp_path, "=1+2")
