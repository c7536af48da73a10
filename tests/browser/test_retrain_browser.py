"""The Retrain form in a real browser: bad values typed by hand are refused in words, nothing starts."""

from pathlib import Path

import pytest

from core.data import RAW_FILES
from tests.browser import chromium_page, streamlit_server, wait_healthy, wait_rendered

pytestmark = pytest.mark.browser


def test_typed_bad_values_are_refused_naming_each_field(tmp_path, tiny_runs):
    data_root = tmp_path / "data"  # the page checks only that the raw files exist before Start
    (data_root / "MNIST" / "raw").mkdir(parents=True)
    for f in RAW_FILES:
        (data_root / "MNIST" / "raw" / f).touch()
    runs = tmp_path / "runs"
    env = {"CHECKPOINT_DIR": str(tiny_runs), "RUNS_DIR": str(runs), "DATA_DIR": str(data_root)}
    typed = {"Epochs": "1e9", "Batch size": "-3", "Learning rate": "-0.1", "Latent size": "1000000000000000000",
             "Random seed": "0"}
    with streamlit_server(env) as (url, proc), chromium_page() as page:
        wait_healthy(url, proc=proc)
        page.goto(f"{url}/retrain")
        wait_rendered(page, "Retrain")
        for label, value in typed.items():
            box = page.get_by_label(label, exact=True)
            box.fill(value)
            box.press("Tab")
        page.get_by_role("button", name="Start training").click()
        alert = page.get_by_text("Check the form").first
        alert.wait_for(timeout=60_000)
        text = page.locator('[data-testid="stAlert"]').filter(has_text="Check the form").inner_text()
        for sentence in ("Epochs must be a whole number from 1 to 5 (you typed '1e9')",
                         "Batch size must be a whole number from 16 to 512 (you typed '-3')",
                         "Latent size must be a whole number from 2 to 128 (you typed '1000000000000000000')",
                         "Learning rate must be a number from 1e-05 to 0.01"):
            assert sentence in text, text
        assert "nothing was started" in text
        for label, value in typed.items():  # nothing silently replaced: the boxes still hold what was typed
            assert page.get_by_label(label, exact=True).input_value() == value
        assert page.locator('[data-testid="stException"]').count() == 0
    jobs = Path(runs / ".jobs")
    assert not jobs.exists() or not [p for p in jobs.iterdir() if p.is_dir()]
