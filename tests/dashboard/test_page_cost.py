"""Bounded work per page view: smoothing and downsampling once per run, bounded caches, t-SNE only on a button."""

import inspect
import time
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.runtime.caching.cache_utils import CachedFunc
from streamlit.testing.v1 import AppTest

from dashboard import explore_cache, jobs_client, runs, sampling, series, tsne

from ..core.test_jobs import wait_for

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.mark.parametrize("smoothing", [0.0, 0.3, 0.9, 0.99])
def test_vectorised_smoothing_matches_the_loop(smoothing):
    y = np.random.default_rng(0).standard_normal(5000).cumsum()
    loop, avg = np.empty(len(y)), 0.0  # TensorBoard's smoothing as a plain loop, bias-corrected
    for i, v in enumerate(y):
        avg = smoothing * avg + (1 - smoothing) * v
        loop[i] = avg / (1 - smoothing ** (i + 1)) if smoothing > 0 else v
    np.testing.assert_allclose(series.ema(y, smoothing), loop, rtol=1e-9, atol=1e-9)


def test_downsampling_keeps_extremes_ends_and_order():
    rng = np.random.default_rng(1)
    y = rng.standard_normal(23_000)
    y[12_345], y[777] = 50.0, -50.0  # one-step spikes must survive
    x = np.arange(1, len(y) + 1)
    dx, dy = series.downsample(x, y, 2000)
    assert len(dx) <= 2000 and dx[0] == 1 and dx[-1] == 23_000 and np.all(np.diff(dx) > 0)
    assert dy.max() == 50.0 and dy.min() == -50.0 and np.array_equal(dy, y[dx - 1])
    sx, sy = series.downsample(x[:500], y[:500], 2000)
    assert np.array_equal(sx, x[:500])  # short series go out untouched


def test_every_visitor_keyed_cache_is_bounded():
    rooms = (runs, series, sampling, tsne, jobs_client, explore_cache)
    cached = {name: f for room in rooms for name, f in vars(room).items() if isinstance(f, CachedFunc)}
    assert {"_step_series", "_load_coords", "_map2d"} <= set(cached)
    unbounded = [name for name, f in cached.items() if f._info.max_entries is None and f._info.ttl is None
                 and inspect.signature(f._info.func).parameters]  # a cache without arguments holds one entry
    assert unbounded == []


def test_step_series_is_smoothed_once_per_run_and_setting(tiny_runs, monkeypatch):
    st.cache_data.clear()
    path = str(tiny_runs / "mnist-vae")
    calls = []
    real = series.ema
    monkeypatch.setattr(series, "ema", lambda y, s: calls.append(s) or real(y, s))
    first = series.step_series(path, "neg_elbo", 0.9)
    for _ in range(5):
        assert series.step_series(path, "neg_elbo", 0.9) == first
    assert calls == [0.9]
    h = runs.history(path)
    assert first[0] == h["steps"]["step"] and np.allclose(first[1], real(h["steps"]["neg_elbo"], 0.9))


@pytest.fixture
def latent_env(monkeypatch, tmp_path, tiny_runs):
    monkeypatch.setenv("CHECKPOINT_DIR", str(tiny_runs))
    monkeypatch.setenv("RUNS_DIR", str(tmp_path / "runs"))
    st.cache_data.clear()
    return tmp_path / "runs" / ".jobs" / "tsne"


def open_latent() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)  # generous: a loaded 2-core box
    at.run()
    at.switch_page("views/latent.py")
    at.run()
    at.radio(key="map_method").set_value("t-SNE (recompute)").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_tsne_recompute_starts_only_from_the_button_and_runs_outside_the_server(latent_env, monkeypatch):
    at = open_latent()
    for p in (10, 20, 40):  # slider moves: nothing is computed, anywhere
        at.slider(key="map_perp").set_value(p).run()
    at.select_slider(key="map_size").set_value(250).run()
    assert not at.exception and not latent_env.exists()
    in_process = []
    monkeypatch.setattr("core.embed.tsne", lambda *a, **k: in_process.append(a))
    at.button(key="map_go").click().run()
    assert sorted(p.suffix for p in latent_env.iterdir() if p.suffix in (".npy", ".pending"))[-1] == ".pending"
    wait_for(lambda: len(list(latent_env.glob("*.npy"))) == 2, 120, "both maps")  # the VAE's and the GAN's
    assert in_process == []  # computed by `python -m core.embed tsne`, not in this (the server's) process
    at.run()
    captions = [c.value for c in at.caption]
    assert sum("t-SNE of 64 digits, perplexity 40" in c for c in captions) == 2, captions  # tiny runs: 64 digits
    stamp = {p: p.stat().st_mtime for p in latent_env.glob("*.npy")}
    at.button(key="map_go").click().run()  # the same setting again: served from the cache, not recomputed
    time.sleep(0.5)
    assert {p: p.stat().st_mtime for p in latent_env.glob("*.npy")} == stamp


def test_ten_simultaneous_recomputes_start_at_most_the_cap(latent_env, monkeypatch, tiny_runs):
    """The cap is taken atomically: ten requests at once (other settings each) start TSNE_PENDING_MAX processes,
    the rest are told "busy". Popen is replaced by a slow stand-in whose pid (this process) stays alive."""
    import os
    import threading

    from dashboard import tsne

    started = []

    class SlowStart:
        def __init__(self, *args, **kwargs):
            time.sleep(0.2)  # spawning takes time: the window in which another request counts the markers
            started.append(args)
            self.pid = os.getpid()

        def wait(self):
            return 0

    monkeypatch.setattr(tsne.subprocess, "Popen", SlowStart)
    path = str(tiny_runs / "mnist-vae")
    barrier, answers = threading.Barrier(10), []

    def request(i: int) -> None:
        barrier.wait()
        answers.append(tsne.tsne_recompute(path, 5.0 + i, 64))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(answers) == 10
    assert len(started) == answers.count("started") == tsne.TSNE_PENDING_MAX, answers
    assert answers.count("busy") == 10 - tsne.TSNE_PENDING_MAX
    assert len(list(latent_env.glob("*.pending"))) == tsne.TSNE_PENDING_MAX


def test_no_full_collection_of_the_import_heap_after_each_run():
    """The server's post-run gc.collect(2) over torch's, plotly's and pandas' objects was half its CPU per view:
    it is off in the app's config, and the heap alive at import is frozen out of Python's own collections."""
    import gc
    import subprocess
    import sys

    config = subprocess.run([sys.executable, "-c", "from streamlit import config; "
                             "print(config.get_option('runner.postScriptGC'))"],
                            cwd=Path(APP).parents[1], capture_output=True, text=True, timeout=60)
    assert config.stdout.strip() == "False", config.stderr[-2000:]
    assert gc.get_freeze_count() > 100_000  # dashboard.runs is imported above: torch and streamlit are frozen
