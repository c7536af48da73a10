"""Real browser: draw a digit on the Explore page's canvas with the mouse and see both reconstructions."""

import time

import pytest

from tests.browser import RECONSTRUCTIONS, chromium_page, draw_digit, wait_complete, wait_rendered

from .test_browser import LOCAL, committed_server  # noqa: F401  (the module-scoped server fixture)

pytestmark = pytest.mark.browser


def test_drawing_a_stroke_shows_both_reconstructions_offline(committed_server):  # noqa: F811
    outside = []
    with chromium_page(width=1400, height=1200) as page:
        page.on("request", lambda r: None if LOCAL.match(r.url) else outside.append(r.url))
        page.goto(f"{committed_server}/explore")
        wait_rendered(page, "Explore")
        wait_complete(page, images=4, charts=1)
        assert page.get_by_text("Draw a digit on the black square").count() == 1
        assert page.locator('[data-testid="stImageCaption"]', has_text="VAE: decoder").count() == 0
        t = time.perf_counter()
        draw_digit(page)
        page.wait_for_function(RECONSTRUCTIONS, timeout=60_000)
        elapsed = time.perf_counter() - t
        # a fragment's rerun shows no status widget: wait for what follows the reconstructions to arrive
        page.get_by_text("The mnist classifier reads").wait_for(timeout=60_000)
        wait_complete(page, images=8, charts=4)  # + your digit, 2 reconstructions, nearest digits; readings, maps
        assert page.locator('[data-testid="stException"]').count() == 0
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0
        # a second stroke changes the drawing: the reconstructions follow
        srcs = page.locator('[data-testid="stImage"] img').evaluate_all("els => els.slice(0, 3).map(e => e.src)")
        draw_digit(page, [[(0.3, 0.6), (0.5, 0.55), (0.7, 0.5)]])
        page.wait_for_function(
            "old => { const now = [...document.querySelectorAll('[data-testid=\"stImage\"] img')].slice(0, 3);"
            " return now.length === 3 && now.every((e, i) => e.src !== old[i] && e.complete); }", arg=srcs,
            timeout=60_000)
    assert outside == []
    print(f"drawing -> both reconstructions shown: {elapsed:.2f} s")
