"""The Retrain page on the hf-jobs backend (a loopback fake of the Jobs API), in a real browser: the allowed
flavors with their price, a job's live charts from its logs, and ownership kept by the browser across a
reload while another visitor (another browser profile) sees the job as someone else's."""

import time

import pytest

from core.jobs.backends import hf_jobs
from tests.browser import chromium_page, streamlit_server, wait_healthy, wait_rendered

from ..fake_hf_jobs import TOKEN, FakeJobs

pytestmark = [pytest.mark.browser, pytest.mark.real_data]
BUCKET = "space-owner/retrain-runs"


def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := pred():
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def open_with_cookie(page, url: str) -> str:
    """Open the page as a first-time visitor and return the owner cookie's value. The first view makes the
    cookie and the cookie script reloads the page once: wait for that reload instead of navigating again (a
    goto racing the page's own reload, then Streamlit's query-string update, can wait forever in Playwright)."""
    from playwright.sync_api import Error

    def reloaded() -> bool:
        try:
            return page.evaluate("() => performance.getEntriesByType('navigation')[0]?.type") == "reload"
        except Error:  # between two documents
            return False

    page.goto(url, wait_until="domcontentloaded", timeout=120_000)  # slow with a job training beside it
    wait_for(lambda: any(c["name"] == "gv_owner" for c in page.context.cookies()), 60, "the owner cookie")
    wait_for(reloaded, 60, "the cookie script's reload")
    wait_rendered(page, "Retrain")
    return next(c["value"] for c in page.context.cookies() if c["name"] == "gv_owner")


def test_retrain_on_jobs_shows_prices_live_charts_and_keeps_its_owner_across_a_reload(tmp_path, tiny_runs,
                                                                                      real_data_root):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    fake = FakeJobs({BUCKET: bucket}, extra_env={"DATA_DIR": str(real_data_root)})
    env = {"CHECKPOINT_DIR": str(tiny_runs), "RUNS_DIR": str(tmp_path / "runs"), "DATA_DIR": str(real_data_root),
           "RETRAIN_BACKEND": "hf-jobs", "HF_TOKEN": TOKEN, "HF_ENDPOINT": fake.url, "RETRAIN_HF_BUCKET": BUCKET,
           "RETRAIN_HF_BUCKET_DIR": str(bucket), "RETRAIN_HF_IMAGE": "hf.co/spaces/space-owner/dashboard",
           "RETRAIN_FLAVORS": "cpu-basic,t4-small", "RETRAIN_HF_APP": "browser-test", "RETRAIN_THREADS": "1"}
    try:
        with streamlit_server(env) as (url, proc), chromium_page() as page:
            wait_healthy(url, proc=proc)
            token = open_with_cookie(page, f"{url}/retrain")
            body = page.locator('[data-testid="stMain"]')
            body.get_by_text("at most $").first.wait_for(timeout=60_000)  # the most a job can cost, per flavor
            text = body.inner_text()
            assert "cpu-basic ($0.01/hour): at most under $0.01" in text, text
            assert "t4-small ($0.40/hour): at most $0.13" in text, text
            page.get_by_text("GAN", exact=True).first.click()
            for label, value in {"Epochs": "5", "Batch size": "16"}.items():
                box = page.get_by_label(label, exact=True)
                box.fill(value)
                box.press("Tab")
            page.get_by_role("button", name="Start training").click()
            page.get_by_role("button", name="Cancel my job").wait_for(timeout=120_000)
            # the job's @progress log lines, parsed into the same live chart as a local job
            page.locator(".js-plotly-plot").first.wait_for(timeout=180_000)
            assert token not in page.content() and TOKEN not in page.content()  # neither token is ever shown
            page.reload(wait_until="domcontentloaded", timeout=120_000)  # same browser: same visitor, same owner
            wait_rendered(page, "Retrain")
            page.get_by_role("button", name="Cancel my job").wait_for(timeout=60_000)
            other = page.context.browser.new_page()  # another visitor: a fresh cookie jar
            assert open_with_cookie(other, f"{url}/retrain") != token
            other.get_by_text("Another visitor's job is running").wait_for(timeout=60_000)
            assert other.get_by_role("button", name="Cancel my job").count() == 0
            page.get_by_role("button", name="Cancel my job").click()
            page.get_by_text("You cancelled your job").wait_for(timeout=60_000)
            assert page.locator('[data-testid="stException"]').count() == 0
        (job,) = fake.jobs.values()
        assert job.stage == "CANCELED" and job.spec["labels"]["kind"] == "train"
        assert hf_jobs.owner_id(token) == job.spec["labels"]["owner"]
    finally:
        fake.close()
