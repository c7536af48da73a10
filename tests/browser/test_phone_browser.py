"""Real browser at a phone's width (390 px, a touch screen whose browser says it is a phone) and at 1400 px:
swipes over charts scroll the page, no chart toolbar covers a title, the models stay side by side, Explore's
results follow the canvas."""

import pytest

from tests.browser import RECONSTRUCTIONS, chromium_page, draw_digit, wait_complete

from .test_browser import committed_server, open_page, shot_dir  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser
WIDTHS = [390, 1400]

# every touchstart/touchmove the page sees, with whether a handler cancelled it (a cancelled one never scrolls)
LISTEN = """() => { window.__touches = [];
    for (const t of ['touchstart', 'touchmove'])
        window.addEventListener(t, e => window.__touches.push(e.defaultPrevented)); }"""
# chart titles that Plotly's toolbar (its hover band) overlaps
UNDER_TOOLBAR = """() => {
    const hit = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
    return [...document.querySelectorAll('.js-plotly-plot')].flatMap(p => {
        const bar = p.querySelector('.modebar'), title = p.querySelector('.gtitle');
        return bar && title && hit(bar.getBoundingClientRect(), title.getBoundingClientRect())
            ? [title.textContent] : [];
    });
}"""


def swipe_up(page, chart) -> list[bool]:
    """A finger swiping up over the middle of a chart's plot area (Chrome's touch events); returns, for each
    touch event, whether the page cancelled it."""
    chart.scroll_into_view_if_needed()
    box = chart.locator(".nsewdrag").first.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.6
    page.evaluate(LISTEN)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for i in range(1, 9):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x + 2 * i, "y": y - 20 * i}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()
    return page.evaluate("() => window.__touches")


@pytest.mark.parametrize("width", WIDTHS)
def test_a_swipe_over_a_latent_map_scrolls_on_a_touch_screen(committed_server, width):  # noqa: F811
    """On a touch screen the maps open without a drag tool: a swipe's touch events are not cancelled (so the
    browser scrolls) and no lasso is drawn; the switch brings the lasso back, and then the swipe draws one."""
    with chromium_page(width=width, height=844, touch=True) as page:
        open_page(page, committed_server, "latent")
        switch = page.get_by_role("switch", name="Lasso on the maps")
        assert not switch.is_checked()
        maps = page.locator('[data-testid="stPlotlyChart"]')
        for i in range(maps.count()):
            touches = swipe_up(page, maps.nth(i))
            assert touches and not any(touches), (i, touches)
        assert page.locator(".select-outline").count() == 0

        page.get_by_text("Lasso on the maps").click()
        page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')]"
                               ".some(p => p._fullLayout && p._fullLayout.dragmode === 'lasso')", timeout=60_000)
        wait_complete(page, charts=2)
        assert all(swipe_up(page, maps.first))  # the lasso takes the swipe


def test_the_lasso_is_on_by_default_with_a_mouse(committed_server):  # noqa: F811
    with chromium_page(width=1400) as page:
        open_page(page, committed_server, "latent")
        assert page.get_by_role("switch", name="Lasso on the maps").is_checked()
        assert page.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')]"
                             ".map(p => p._fullLayout.dragmode)") == ["lasso", "lasso"]


@pytest.mark.parametrize("width", WIDTHS)
def test_no_chart_toolbar_covers_a_title(committed_server, width):  # noqa: F811
    with chromium_page(width=width, height=844, touch=width < 800) as page:
        for path in ("metrics", "latent", "curves", "explore"):
            open_page(page, committed_server, path)
            if path == "explore":  # its maps and the classifier's reading come with a drawing
                draw_digit(page)
                page.wait_for_function(RECONSTRUCTIONS, timeout=60_000)
                wait_complete(page, images=8, charts=4)
            titles = page.locator(".js-plotly-plot .gtitle")
            assert titles.count() >= 2, path
            assert page.evaluate(UNDER_TOOLBAR) == [], (width, path)


def side_by_side(page, boxes: list[dict]) -> None:
    """The boxes sit in one row, left to right, inside the window."""
    assert len(boxes) == 2, boxes
    a, b = boxes
    assert abs(a["y"] - b["y"]) < 5 and a["x"] + a["width"] <= b["x"], boxes
    assert b["x"] + b["width"] <= page.viewport_size["width"], boxes


@pytest.mark.parametrize("width", WIDTHS)
def test_the_models_sit_side_by_side(committed_server, shot_dir, width):  # noqa: F811
    """Overview's and Samples' sample grids: VAE beside GAN, on a phone too (Streamlit stacks columns there).
    The phone's first screen of the Overview is the README's phone screenshot."""
    with chromium_page(width=width, height=844, touch=width < 800) as page:
        open_page(page, committed_server, "")
        side_by_side(page, [page.locator('[data-testid="stImage"] img').nth(i).bounding_box() for i in range(2)])
        if width < 800:
            page.screenshot(path=str(shot_dir / "phone-overview.png"))
        open_page(page, committed_server, "samples")
        grids = page.locator('[data-testid="stImage"] img')  # the first two: same codes, two generators
        side_by_side(page, [grids.nth(i).bounding_box() for i in range(2)])


@pytest.mark.parametrize("width", WIDTHS)
def test_explore_results_follow_the_canvas(committed_server, width):  # noqa: F811
    """After drawing, the drawing and both reconstructions lie in one row right under (phone) or beside
    (desktop) the canvas, above the upload box; the text does not assume a mouse."""
    with chromium_page(width=width, height=844, touch=width < 800) as page:
        open_page(page, committed_server, "explore")
        assert "with the mouse" not in page.locator('[data-testid="stMain"]').inner_text()
        draw_digit(page)
        page.wait_for_function(RECONSTRUCTIONS, timeout=60_000)
        wait_complete(page, images=8)
        canvas = page.locator('[data-testid="stMain"] canvas').last.bounding_box()
        images = [page.locator('[data-testid="stImage"] img').nth(i).bounding_box() for i in range(3)]
        upload = page.locator('[data-testid="stFileUploader"]').bounding_box()
        assert max(i["y"] for i in images) - min(i["y"] for i in images) < 5  # one row
        assert all(i["y"] + i["height"] < upload["y"] for i in images)
        assert images[-1]["x"] + images[-1]["width"] <= width
        if width < 640:  # stacked: the row comes right after the canvas
            assert 0 <= images[0]["y"] - (canvas["y"] + canvas["height"]) < 120, (canvas, images)
        else:  # beside the canvas
            assert images[0]["x"] > canvas["x"] + canvas["width"] and images[0]["y"] < canvas["y"] + canvas["height"]
