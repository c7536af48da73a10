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

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGES = {  # url path -> title shown on the page
    "": "GAN vs VAE", "samples": "Samples", "latent": "Latent space", "curves": "Training curves",
    "metrics": "Metrics", "retrain": "Retrain", "concepts": "Concepts",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium")
    if exe is None:
        raise RuntimeError("Debian's chromium is not installed: apt-get install -y chromium (make test does this)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def wait_rendered(page, title: str, timeout_ms: int = 60_000) -> None:
    """Wait until the page's title is shown and Streamlit has finished running the script."""
    page.get_by_role("heading", name=title).first.wait_for(timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=timeout_ms)
