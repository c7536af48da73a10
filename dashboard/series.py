"""Long training series for the browser: smoothed over the whole run, then downsampled, once per (run, series,
smoothing) rather than once per render."""

from __future__ import annotations

import numpy as np
import streamlit as st
from scipy.signal import lfilter

from core.run import layout
from core.run.layout import file_stamp
from dashboard.runs import history

TRACE_POINTS = 2000  # at most this many points per trace go to the browser


def ema(values, smoothing: float) -> np.ndarray:
    """Exponential moving average (TensorBoard-style, bias-corrected), vectorised; smoothing 0 = raw values."""
    y = np.asarray(values, dtype=np.float64)
    if smoothing <= 0 or len(y) == 0:
        return y
    avg = lfilter([1.0 - smoothing], [1.0, -smoothing], y)  # avg_t = s * avg_(t-1) + (1 - s) * y_t, avg_(-1) = 0
    return avg / (1.0 - smoothing ** np.arange(1, len(y) + 1))


def downsample(x, y, points: int = TRACE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `points` points keeping each bucket's minimum and maximum (so spikes survive), first and last."""
    x, y = np.asarray(x), np.asarray(y, dtype=np.float64)
    n = len(y)
    if n <= points:
        return x, y
    buckets = max(1, (points - 2) // 2)
    k = -(-n // buckets)  # points per bucket
    padded = np.full(buckets * k, np.nan)
    padded[:n] = y
    chunks = padded.reshape(buckets, k)
    filled = ~np.isnan(chunks).all(axis=1)
    base = np.arange(buckets)[filled] * k
    lo = base + np.nanargmin(chunks[filled], axis=1)
    hi = base + np.nanargmax(chunks[filled], axis=1)
    keep = np.unique(np.concatenate([[0, n - 1], lo, hi]))
    return x[keep], y[keep]


@st.cache_data(max_entries=256, ttl=3600, show_spinner=False)  # smoothing is the visitor's slider: bounded
def _step_series(path: str, stamp: float, key: str, smoothing: float, points: int):
    h = history(path)
    x, y = downsample(h["steps"]["step"], ema(h["steps"][key], smoothing), points)
    return x.tolist(), y.tolist()


def step_series(path: str, key: str, smoothing: float, points: int = TRACE_POINTS) -> tuple[list, list]:
    """(steps, values) of one per-step series, smoothed over the full run, then downsampled for the browser."""
    return _step_series(path, file_stamp(path, layout.HISTORY), key, round(float(smoothing), 3), points)
