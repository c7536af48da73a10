"""Run names: one rule for folders, pulls and retrained runs (core.names), and every page shows a name as text,
never as Markdown (a folder named like a link must not render as one) or as Plotly's HTML-like markup."""

from __future__ import annotations

import json
import re
import shutil
import string

import pytest

from .test_dashboard import charts, goto, open_app

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
