"""Real browser: a copied URL reopens the same view, the URL follows the widgets and the sidebar, and the
Runs page's table is drawn. Debian's Chromium via Playwright, on the committed checkpoints."""

from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser import PAGES, chromium_page, wait_complete, wait_rendered

from .test_browser import committed_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_a_copied_url_reopens_the_view_and_follows_the_widgets(committed_server):  # noqa: F811
    url = committed_server
    with chromium_page(width=1400) as page:
        page.goto(f"{url}/samples?gen_seed=7&gen_temp=0.5&int_mode=linear&dataset=fashion-mnist")
        wait_rendered(page, PAGES["samples"])
        wait_complete(page, images=7)
        assert page.get_by_label("Seed", exact=True).input_value() == "7"
        assert page.get_by_role("radio", name="linear").is_checked()
        page.wait_for_function("() => location.search.includes('vae=fashion-mnist-vae')")
        q = query(page)
        assert (q["gen_seed"], q["gen_temp"], q["int_mode"], q["gan"]) == ("7", "0.5", "linear", "fashion-mnist-gan")
        assert not any("/" in v for v in q.values())  # run folder names, never paths
        seed = page.get_by_label("Seed", exact=True)
        seed.fill("11")
        seed.press("Enter")
        page.wait_for_function("() => new URLSearchParams(location.search).get('gen_seed') === '11'")

        page.get_by_role("link", name="Latent space").click()  # another page keeps the runs, not the seeds
        wait_rendered(page, PAGES["latent"])
        page.wait_for_function("() => location.search.includes('vae=fashion-mnist-vae')")
        assert "gen_seed" not in query(page)

        page.goto(f"{url}/samples?gen_seed=1e9999&gen_count=17&vae=../../etc/passwd")  # hostile: defaults
        wait_rendered(page, PAGES["samples"])
        wait_complete(page, images=7)
        assert page.get_by_label("Seed", exact=True).input_value() == "0"
        assert page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count() == 0
        page.wait_for_function("() => location.search.includes('vae=mnist-vae')")
        assert "gen_seed" not in query(page) and "gen_count" not in query(page)

        page.goto(f"{url}/runs")
        wait_rendered(page, PAGES["runs"])
        page.locator('[data-testid="stDataFrame"] canvas').first.wait_for(timeout=60_000)
        assert page.locator('[data-testid="stException"]').count() == 0
