"""Real browser: `streamlit run` on a free port, Debian's Chromium via Playwright, every page visited.

Screenshots go to $SCREENSHOT_DIR (the README's come from `SCREENSHOT_DIR=docs/screenshots make test`),
else to pytest's temp folder.
"""

import os
from pathlib import Path

import pytest

from core.data import is_available

from .browser import PAGES, REPO, chromium_page, streamlit_server, wait_healthy, wait_rendered
from .conftest import data_root

pytestmark = pytest.mark.browser


def wait_count(page, selector: str, n: int) -> None:
    page.wait_for_function(f"() => document.querySelectorAll('{selector}').length >= {n}", timeout=30_000)


@pytest.fixture
def shot_dir(tmp_path) -> Path:
    d = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_every_page_renders_without_exception(shot_dir):
    env = {"CHECKPOINT_DIR": str(REPO / "checkpoints"), "RUNS_DIR": str(shot_dir / "no-runs"),
           "DATA_DIR": str(data_root())}
    has_data = is_available("mnist", data_root())
    with streamlit_server(env) as (url, proc), chromium_page(height=1500) as page:
        wait_healthy(url, proc=proc)
        for path, title in PAGES.items():
            page.goto(f"{url}/{path}")
            wait_rendered(page, title)
            page.wait_for_timeout(500)  # let Plotly draw
            assert page.locator('[data-testid="stException"]').count() == 0, path
            if path != "retrain" or has_data:  # without data the Retrain page rightly says so in an error box
                assert page.locator('[data-testid="stAlertContentError"]').count() == 0, path
            if path in ("", "samples"):
                wait_count(page, '[data-testid="stImage"] img', 2)
            if path in ("latent", "curves"):
                wait_count(page, ".js-plotly-plot", 2)
            page.screenshot(path=str(shot_dir / f"{path or 'overview'}.png"), full_page=True)
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
    assert all((shot_dir / f"{p or 'overview'}.png").stat().st_size > 10_000 for p in PAGES)


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
        page.get_by_text("Busy").first.wait_for(timeout=30_000)
        page.locator('[data-testid="stProgress"]').first.wait_for(timeout=30_000)
        page.get_by_text("Last job finished").wait_for(timeout=180_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').nth(1).click()
        option = page.get_by_role("option", name="(retrained)")
        option.first.wait_for(timeout=10_000)
        assert "ui-vae-mnist-" in option.first.inner_text()
