"""Helpers for the real-browser tests: a `streamlit run` server on a free port and Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
NO_CHROMIUM = ("no `chromium` on PATH and no $CHROMIUM: install it (Debian/Ubuntu: sudo apt-get install chromium; "
               "macOS: brew install --cask chromium) or run the other tests with: make test-no-browser")
PAGES = {  # url path -> title shown on the page
    "": "GAN vs VAE", "samples": "Samples", "latent": "Latent space", "curves": "Training curves",
    "metrics": "Metrics", "runs": "Runs", "retrain": "Retrain", "concepts": "Concepts", "explore": "Explore",
}


def free_port() -> int:
    """A free local port: the first free one in $TEST_PORTS ("8600-8649") when set, else any."""
    lo, _, hi = os.environ.get("TEST_PORTS", "0").partition("-")
    for port in range(int(lo), int(hi or lo) + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in TEST_PORTS={os.environ['TEST_PORTS']}")


def server_log(proc: subprocess.Popen) -> str:
    return Path(proc.log_path).read_text(errors="replace")[-3000:]


def wait_healthy(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> float:
    """Poll Streamlit's health endpoint; returns seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server_log(proc)}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} not healthy after {timeout} s:\n{server_log(proc) if proc else ''}")


@contextlib.contextmanager
def streamlit_server(env: dict | None = None, cmd: list[str] | None = None, base_env: dict | None = None):
    """Yields (base url, process) of a server on a free port, logging to a temp file (a pipe could fill up
    and stall it). `cmd` replaces the default `streamlit run dashboard/app.py`; its --server.port is
    swapped for the free one. `base_env` replaces os.environ under `env`."""
    port = free_port()
    cmd = cmd or [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.address=127.0.0.1",
                  "--server.headless=true", "--server.port=0"]
    cmd = [f"--server.port={port}" if a.startswith("--server.port=") else a for a in cmd]
    with tempfile.NamedTemporaryFile("w", prefix="streamlit-", suffix=".log", delete=False) as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env={**(os.environ if base_env is None else base_env), **(env or {})},
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    proc.log_path = log.name
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own process group (start_new_session)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        Path(log.name).unlink(missing_ok=True)


# what a phone's and a tablet's browser call themselves (the dashboard opens charts without a drag tool there)
PHONE_AGENT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
               "Mobile Safari/537.36")
TABLET_AGENT = ("Mozilla/5.0 (Linux; Android 14; Pixel Tablet) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
                "Safari/537.36")


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 1000, touch: bool = False):
    """A Chromium page; `touch`: a touch screen whose browser says it is a phone (under 800 px) or a tablet."""
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if exe is None:
        raise RuntimeError(NO_CHROMIUM)
    device = {"has_touch": True, "is_mobile": width < 800,
              "user_agent": PHONE_AGENT if width < 800 else TABLET_AGENT} if touch else {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield browser.new_context(viewport={"width": width, "height": height}, **device).new_page()
        finally:
            browser.close()


def wait_rendered(page, title: str, timeout_ms: int = 60_000) -> None:
    """Wait until the page's title is shown and Streamlit has finished running the script."""
    page.get_by_role("heading", name=title).first.wait_for(timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=timeout_ms)


def wait_complete(page, images: int = 0, charts: int = 0, timeout_ms: int = 60_000) -> None:
    """Wait until the script has finished, at least `images` images and `charts` Plotly charts are there,
    every image has loaded and every chart has drawn its plot area (for screenshots that show it all)."""
    page.wait_for_function(
        """([images, charts]) => {
            if (document.querySelector('[data-testid="stStatusWidget"], [data-testid="stSkeleton"]')) return false;
            const imgs = [...document.querySelectorAll('[data-testid="stMain"] img')];
            const plots = [...document.querySelectorAll('.js-plotly-plot')];
            return imgs.length >= images && imgs.every(i => i.complete && i.naturalWidth > 0)
                && plots.length >= charts && plots.every(p => p._fullLayout && p.querySelector('.main-svg'));
        }""", arg=[images, charts], timeout=timeout_ms)


def full_screenshot(page, path, max_height: int = 4000) -> None:
    """Screenshot of the whole page: Streamlit scrolls inside its main block, so the viewport is stretched to
    that block's height first (and put back afterwards)."""
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, size["height"]), max_height)})
    page.wait_for_timeout(800)  # charts re-layout to the new size
    wait_complete(page)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def draw_digit(page, strokes: list[list[tuple[float, float]]] | None = None) -> None:
    """Draw on the Explore page's canvas with the mouse: each stroke a list of points in fractions of the
    canvas (default: a "7"). Fabric.js listens on its upper canvas, the last one in the component."""
    strokes = strokes or [[(0.25, 0.2), (0.5, 0.2), (0.75, 0.2)], [(0.75, 0.2), (0.6, 0.5), (0.45, 0.85)]]
    canvas = page.locator('[data-testid="stMain"] canvas').last
    canvas.wait_for(timeout=60_000)
    box = canvas.bounding_box()
    for stroke in strokes:
        mouse_drag(page, box, stroke, steps=8)


def mouse_drag(page, box: dict, path: list[tuple[float, float]], steps: int = 4) -> None:
    """Press the mouse at path[0] and move through the rest: points in fractions of `box` (a bounding box)."""
    points = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in path]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


RECONSTRUCTIONS = """() => {
    const caps = [...document.querySelectorAll('[data-testid="stImageCaption"]')].map(c => c.textContent);
    const imgs = [...document.querySelectorAll('[data-testid="stMain"] img')];
    return caps.some(c => c.startsWith('VAE: decoder')) && caps.some(c => c.startsWith('GAN: G(E(x))'))
        && imgs.every(i => i.complete && i.naturalWidth > 0)
        && !document.querySelector('[data-testid="stStatusWidget"]');
}"""
