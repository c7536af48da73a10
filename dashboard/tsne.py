"""The latent maps: PCA or t-SNE of a run's test-subset codes, and t-SNE recomputes with other settings, which
run in their own process (`python -m core.embed tsne`), never in the server's."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import streamlit as st

from core import embed, paths, processes
from core.run import layout
from core.run.layout import file_stamp
from dashboard.runs import embeddings


@st.cache_data(max_entries=32, show_spinner=False)
def _map2d(path: str, stamp: tuple | None, method: str, perplexity: float, size: int) -> np.ndarray:
    emb = embeddings(path)
    codes = emb["codes"][:size]
    return embed.pca(codes) if method == "pca" else embed.tsne(codes, perplexity)


def map2d(path: str, method: str = "tsne-precomputed", perplexity: float = 30.0, size: int | None = None):
    """2-D coordinates of the test subset's latent codes: precomputed t-SNE (instant), PCA (instant) or a
    fresh t-SNE with another perplexity / subset size (seconds; cached per setting)."""
    if method == "tsne-precomputed":
        return embeddings(path)["tsne"]
    n = size or len(embeddings(path)["indices"])
    return _map2d(path, file_stamp(path, layout.EMBEDDINGS), "pca" if method == "pca" else "tsne", perplexity, n)


# --- t-SNE recompute: started by a button, run by `python -m core.embed tsne` outside the server ----------
TSNE_PENDING_MAX = 4  # recomputes waiting or running at once, all visitors together; more are refused
TSNE_KEEP = 64  # cached results kept


def _tsne_file(path: str, perplexity: float, size: int) -> Path:
    key = repr((str(Path(path).resolve()), file_stamp(path, layout.EMBEDDINGS), float(perplexity), int(size)))
    return paths.jobs_dir() / "tsne" / f"{hashlib.sha1(key.encode()).hexdigest()[:24]}.npy"


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def _load_coords(file: str, mtime: float) -> np.ndarray:
    return np.load(file, allow_pickle=False)


def tsne_recomputed(path: str, perplexity: float, size: int) -> np.ndarray | None:
    """The recomputed map for (run, perplexity, digits) once it exists, else None."""
    f = _tsne_file(path, perplexity, size)
    try:
        return _load_coords(str(f), f.stat().st_mtime)
    except (OSError, ValueError):
        return None


def _pid_alive(marker: Path) -> bool:
    """Whether the recompute whose process id the marker holds still runs."""
    try:
        return processes.alive(int(marker.read_text()))
    except (OSError, ValueError):
        return False


def tsne_pending(path: str, perplexity: float, size: int) -> bool:
    f = _tsne_file(path, perplexity, size)
    return not f.exists() and _pid_alive(f.with_suffix(".pending"))


def tsne_recompute(path: str, perplexity: float, size: int) -> str:
    """Start a recompute unless it is cached or under way: "cached", "pending", "started" or "busy".
    The cap is taken atomically: counting the live markers and writing a new one happen under one file lock,
    so simultaneous requests (threads of this server, or other servers on the same disk) start at most
    TSNE_PENDING_MAX. Raises OSError when the jobs folder cannot be written."""
    from filelock import FileLock, Timeout

    f = _tsne_file(path, perplexity, size)
    if f.exists():
        return "cached"
    f.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(f.parent / ".slots.lock", timeout=10):
            return _start_locked(f, path, perplexity, size)
    except Timeout:
        return "busy"


def _start_locked(f: Path, path: str, perplexity: float, size: int) -> str:
    marker = f.with_suffix(".pending")
    if _pid_alive(marker):
        return "pending"
    live = 0
    for m in f.parent.glob("*.pending"):
        if m.with_suffix(".npy").exists() or not _pid_alive(m):
            m.unlink(missing_ok=True)
        else:
            live += 1
    if live >= TSNE_PENDING_MAX:
        return "busy"
    for old in sorted(f.parent.glob("*.npy"), key=lambda p: p.stat().st_mtime)[:-TSNE_KEEP]:
        old.unlink(missing_ok=True)
    env = processes.child_env(threads=1)
    proc = subprocess.Popen([sys.executable, "-m", "core.embed", "tsne", str(path), str(f),
                             f"--perplexity={float(perplexity)}", f"--digits={int(size)}"], cwd=paths.PROJECT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    marker.write_text(str(proc.pid))  # before the lock is let go: the next request counts it
    threading.Thread(target=proc.wait, daemon=True).start()  # reap it
    return "started"
