"""Real browser: `streamlit run` on a free port, Debian's Chromium via Playwright, every page visited.

Screenshots go to $SCREENSHOT_DIR (the README's come from `SCREENSHOT_DIR=docs/screenshots make test`),
else to pytest's temp folder. They are taken only once every image has loaded and every chart has drawn.
"""

import os
import re
from pathlib import Path

import pytest

from core.data import is_available
from tests.browser import (
    PAGES,
    RECONSTRUCTIONS,
    REPO,
    chromium_page,
    draw_digit,
    full_screenshot,
    mouse_drag,
    streamlit_server,
    wait_complete,
    wait_healthy,
    wait_rendered,
)

from ..conftest import data_root

pytestmark = pytest.mark.browser
LOCAL = re.compile(r"^(https?://127\.0\.0\.1:\d+/|data:|blob:|about:)")
# what each page must show before it counts as rendered: (images, Plotly charts)
CONTENT = {"": (2, 0), "samples": (7, 0), "latent": (0, 2), "curves": (0, 5), "metrics": (2, 2),
           "runs": (0, 0), "retrain": (0, 0), "concepts": (0, 0), "explore": (4, 1)}
# elements whose text must never be cut off: scrollWidth > clientWidth means clipped or ellipsised
CLIPPED = """() => {
    const bad = [];
    const sel = '[data-testid="stMetricLabel"], [data-testid="stMetricLabel"] *, [data-testid="stMetricValue"],'
              + ' [data-testid="stMetricValue"] *, .katex-display';
    for (const el of document.querySelectorAll(sel))
        if (el.scrollWidth > el.clientWidth) bad.push(`${el.className || el.tagName}: ${el.textContent.slice(0, 30)}`
                                                      + ` (${el.scrollWidth} > ${el.clientWidth} px)`);
    return bad;
}"""
# Plotly legends must not sit on an axis title or the chart title
OVERLAPS = """() => {
    const bad = [];
    const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    for (const plot of document.querySelectorAll('.js-plotly-plot')) {
        const legend = plot.querySelector('.legend');
        if (!legend) continue;
        const box = legend.getBoundingClientRect();
        for (const t of plot.querySelectorAll('.xtitle, .ytitle, .gtitle'))
            if (t.textContent && hit(box, t.getBoundingClientRect())) bad.push(t.textContent);
    }
    return bad;
}"""


@pytest.fixture
def shot_dir(tmp_path) -> Path:
    d = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def committed_server(tmp_path_factory):
    """The dashboard on the committed checkpoints; an empty `runs/` beside them, as in a fresh checkout."""
    runs = tmp_path_factory.mktemp("app") / "runs"
    env = {"CHECKPOINT_DIR": str(REPO / "checkpoints"), "RUNS_DIR": str(runs), "DATA_DIR": str(data_root())}
    with streamlit_server(env) as (url, proc):
        wait_healthy(url, proc=proc)
        yield url


def open_page(page, url: str, path: str) -> None:
    page.goto(f"{url}/{path}")
    wait_rendered(page, PAGES[path])
    images, charts = CONTENT[path]
    wait_complete(page, images, charts)
    if path == "runs":  # the table is drawn on a canvas, with its header row
        page.locator('[data-testid="stDataFrame"] canvas').first.wait_for(timeout=60_000)
    if path == "concepts":  # KaTeX renders after the script has finished
        page.wait_for_function("() => document.querySelectorAll('.katex-display').length >= 5", timeout=60_000)


def test_every_page_renders_completely_and_offline(committed_server, shot_dir):
    url = committed_server
    has_data = is_available("mnist", data_root())
    outside = []
    with chromium_page(width=1400) as page:
        page.on("request", lambda r: None if LOCAL.match(r.url) else outside.append(r.url))
        for path in PAGES:
            open_page(page, url, path)
            assert page.locator('[data-testid="stException"]').count() == 0, path
            if path != "retrain" or has_data:  # without data the Retrain page rightly says so in an error box
                assert page.locator('[data-testid="stAlertContentError"]').count() == 0, path
            sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
            assert "checkpoints/" in sidebar and "runs/" in sidebar and "no-runs" not in sidebar
            if path == "explore":  # the screenshot shows a drawing and what both models make of it
                draw_digit(page)
                page.wait_for_function(RECONSTRUCTIONS, timeout=60_000)
                wait_complete(page, images=8, charts=4)
            full_screenshot(page, shot_dir / f"{path or 'overview'}.png")
        # navigate by clicking, as a visitor does, and change a widget
        page.get_by_role("link", name="Samples").click()
        wait_rendered(page, "Samples")
        first = page.locator('[data-testid="stImage"] img').first.get_attribute("src")
        seed = page.get_by_label("Seed", exact=True)
        seed.fill("7")
        seed.press("Enter")
        page.wait_for_function(
            "src => document.querySelector('[data-testid=\"stImage\"] img').getAttribute('src') !== src", arg=first)
        assert page.locator('[data-testid="stException"]').count() == 0
    assert outside == []  # favicon, fonts, scripts: everything comes from the server itself
    assert all((shot_dir / f"{p or 'overview'}.png").stat().st_size > 10_000 for p in PAGES)


@pytest.mark.parametrize("width", [1280, 1920])
def test_nothing_is_cut_off(committed_server, width):
    """Metric cards and display equations fit their columns; chart legends stay clear of axis titles."""
    with chromium_page(width=width) as page:
        for path in ("", "curves", "metrics", "concepts"):
            open_page(page, committed_server, path)
            if path == "":  # the cards come after the sample grids, which may finish loading first
                page.locator('[data-testid="stMetric"]').nth(3).wait_for(timeout=60_000)
            assert page.evaluate(CLIPPED) == [], (width, path)
            assert page.evaluate(OVERLAPS) == [], (width, path)
        assert page.locator(".katex-display").count() >= 5  # the Concepts page's equations were measured


def drag(page, chart_index: int, tool: str, path: list[tuple[float, float]]) -> None:
    """Pick a Plotly selection tool on one chart and drag along `path` (fractions of its plot area)."""
    chart = page.locator('[data-testid="stPlotlyChart"]').nth(chart_index)
    chart.hover()
    page.locator(f'.modebar-btn[data-title="{tool}"]').nth(chart_index).click()
    mouse_drag(page, chart.locator(".nsewdrag").first.bounding_box(), path)


def SELECTED(captions: list[str]) -> list[int]:  # noqa: N802 ("629 selected (first 48 shown)" -> 629)
    return [int(c.split()[0]) for c in captions]


def selection_captions(page) -> list[str]:
    return [c for c in page.locator('[data-testid="stImageCaption"]').all_inner_texts() if "selected" in c]


def test_latent_selection_shows_the_digits(committed_server):
    """A box on each t-SNE map, then a lasso on each PCA map: the selected digits appear, circled on both maps,
    kept when the map changes; the page's link reopens them, circled too; nothing crashes."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = [(0.3, 0.3), (0.5, 0.5), (0.7, 0.7)]
    lasso = [(0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8), (0.25, 0.25)]
    with chromium_page(width=1400, height=1400) as page:
        open_page(page, committed_server, "latent")
        # every map circles the images selected on any map (a redraw, which would wipe a lasso, is over)
        ringed = ("n => [...document.querySelectorAll('.js-plotly-plot')].every(p => p._fullData.some("
                  "t => (t.name || '').startsWith('selected') && t.x.length >= n))")
        for i in range(2):
            drag(page, i, "Box Select", box)
            page.wait_for_function(f"() => [...document.querySelectorAll('[data-testid=\"stImageCaption\"]')]"
                                   f".filter(c => c.textContent.includes('selected')).length >= {i + 1}")
            page.wait_for_function(ringed, arg=max(SELECTED(selection_captions(page))), timeout=60_000)
            wait_complete(page, images=i + 1)
            assert page.locator('[data-testid="stException"]').count() == 0
        tsne = selection_captions(page)
        assert len(tsne) == 2 and all(int(c.split()[0]) > 0 for c in tsne)

        page.get_by_text("PCA", exact=True).click()
        wait_complete(page, charts=2)
        page.wait_for_function(ringed, arg=max(SELECTED(tsne)), timeout=60_000)  # the PCA maps circle them too
        assert selection_captions(page) == tsne  # the selections outlive the change of map
        for i in range(2):
            before = selection_captions(page)
            changed = ("before => JSON.stringify([...document.querySelectorAll('[data-testid=\"stImageCaption\"]')]"
                       ".map(c => c.textContent).filter(c => c.includes('selected'))) !== JSON.stringify(before)")
            for attempt in range(3):  # a lasso drawn while a chart redraws is wiped with it: draw it again
                drag(page, i, "Lasso Select", lasso)
                try:  # a loaded machine: the rerun after a lasso can take seconds
                    page.wait_for_function(changed, arg=before, timeout=20_000 * (attempt + 1))
                    break
                except PlaywrightTimeout:
                    assert attempt < 2, "the lasso never selected anything"
            # both maps redrawn with the new circles before the next lasso (a redraw would wipe a lasso)
            page.wait_for_function(ringed, arg=max(SELECTED(selection_captions(page))), timeout=60_000)
            wait_complete(page)
            assert page.locator('[data-testid="stException"]').count() == 0
        pca = selection_captions(page)
        assert len(pca) == 2 and pca != tsne
        page.goto(page.url)  # the shared link: ?digits_vae=...&digits_gan=... (the first 48 of each)
        wait_rendered(page, "Latent space")
        page.wait_for_function(ringed, arg=48, timeout=60_000)
        assert SELECTED(selection_captions(page)) == [48, 48]


@pytest.mark.real_data
def test_retrain_from_the_browser(tmp_path, real_data_root, tiny_runs):
    """Start a one-epoch job from the form, watch progress reach done, find the run in the picker."""
    env = {"CHECKPOINT_DIR": str(tiny_runs), "RUNS_DIR": str(tmp_path / "runs"), "DATA_DIR": str(real_data_root),
           "RETRAIN_EMBED_SIZE": "200"}
    with streamlit_server(env) as (url, proc), chromium_page() as page:
        wait_healthy(url, proc=proc)
        page.goto(f"{url}/retrain")
        wait_rendered(page, "Retrain")
        epochs = page.get_by_label("Epochs", exact=True)
        epochs.fill("1")
        epochs.press("Tab")
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("Your job").first.wait_for(timeout=30_000)
        page.locator('[data-testid="stProgress"]').first.wait_for(timeout=30_000)
        page.get_by_text("is ready").first.wait_for(timeout=180_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1).click()
        option = page.get_by_role("option", name="(yours)")
        option.first.wait_for(timeout=10_000)
        assert re.match(r"ui-vae-mnist-\d{8}-\d{6} \(yours\)", option.first.inner_text())  # one name, marked
