"""The dashboard's one data module: the only place that touches the disk or torch.

Pages call these functions and get numpy arrays, dicts and plain values back. Models are cached with
`st.cache_resource` (shared, never mutated), arrays with `st.cache_data`. Every cache key includes the
file's modification time, so a retrained or re-pulled run is picked up without a restart.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from core import checkpoint, embed, families, validate
from core.checkpoint import CheckpointError
from core.data import class_names
from core.explore import ACTIVE_THRESHOLD, axis_directions  # noqa: F401  (for the Explore page, which imports no core)
from core.images import make_grid

REPO = Path(__file__).resolve().parents[1]

# Streamlit runs a full garbage collection after every script run (runner.postScriptGC). Over the heap of
# torch, plotly and pandas that cost about 0.1 s of CPU per page view, half of the server's work (py-spy on
# bench/load_test.py). Freezing what is alive when this module is first imported (once per process, after
# app.py's imports) takes those objects out of every later collection; what the scripts create is still
# collected.
gc.freeze()


# The families the pages compare, read from core.families on every use (a family registered later shows up):
# KINDS lists their names in order (VAE, then GAN), LABELS[kind] is a family's label, ui.COLORS its colour.
class _Kinds(Sequence):
    def __getitem__(self, i):
        return [f.name for f in families.generative()][i]

    def __len__(self) -> int:
        return len(families.generative())


KINDS = _Kinds()
LABELS = families.Attr("label")


def family(kind: str) -> families.Family:
    return families.get(kind)


def checkpoint_dir() -> Path:
    """The committed runs: $CHECKPOINT_DIR, default checkpoints/ in the repository."""
    return Path(os.environ.get("CHECKPOINT_DIR") or REPO / "checkpoints")


def runs_dir() -> Path:
    """Runs trained from the browser (and their job queue, in .jobs/): $RUNS_DIR; else <$PERSISTENT_DIR>/runs
    when that folder exists and is writable (the Dockerfile sets PERSISTENT_DIR=/data, where a Space's
    persistent storage is mounted); else runs/ in the repository (git-ignored; a Space restart empties it)."""
    if os.environ.get("RUNS_DIR"):
        return Path(os.environ["RUNS_DIR"])
    persistent = os.environ.get("PERSISTENT_DIR")
    if persistent and os.path.isdir(persistent) and os.access(persistent, os.W_OK | os.X_OK):
        return Path(persistent) / "runs"
    return REPO / "runs"


@st.cache_resource(show_spinner="Pulling runs from the Hugging Face Hub…")
def hub_messages() -> list[str]:
    """Once per server process: pull the runs named in $HUB_RUNS that are not here yet (never raises)."""
    if not os.environ.get("HUB_RUNS"):
        return []
    from core.hub import pull_missing

    return pull_missing(None, checkpoint_dir())


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: str
    model: str | None  # a family's name ("vae", "gan", "classifier"), or None when config.json is unreadable
    dataset: str | None
    error: str | None = None

    @property
    def label(self) -> str:
        """Committed runs by folder name; retrained runs, whose folder names are long, by what they are:
        "VAE · mnist · 3 epochs · 25 Nov 14:02 (retrained)". The folder name is the picker's hover text."""
        if Path(self.path).parent == checkpoint_dir() or self.model is None:
            return self.name
        return run_summary(self.path, self.name) + " (retrained)"


def _stamp(path: str | Path, name: str = checkpoint.CONFIG) -> tuple | None:
    """(mtime_ns, size, inode) of a run file, not following links (None when missing): part of every cache key."""
    try:
        st = os.lstat(Path(path) / name)
        return st.st_mtime_ns, st.st_size, st.st_ino
    except OSError:
        return None


def catalog() -> list[RunInfo]:
    """Every run folder under the checkpoint and runs folders, each checked by core.validate.check_run;
    a run that fails is listed with its error (model and data set too when its config.json is sound)."""
    return _catalog(str(checkpoint_dir()), str(runs_dir()))


@st.cache_data(ttl=5, show_spinner=False)  # short: runs finished by a retrain job appear within seconds
def _catalog(*roots: str) -> list[RunInfo]:
    runs = []
    for root in map(Path, roots):
        for name in checkpoint.list_runs(root):
            path = root / name
            runs.append(_checked(str(path), validate.stamp(path)))
    return runs


@st.cache_data(max_entries=512, show_spinner=False)
def _checked(path: str, stamp: tuple) -> RunInfo:
    """One check per run and version of its files (the stamp): failures are cached like successes, so a bad
    run costs one check, not one per page view."""
    name = Path(path).name
    try:
        cfg = checkpoint.check_run(path).config
        return RunInfo(name, path, cfg["model"], cfg["dataset"]["name"])
    except CheckpointError as err:
        error = str(err)
    except Exception as err:  # a bug in a check must not take every page down: log it, list the run as broken
        ref = log_error(f"checking run {name}")
        error = f"{name}: could not be checked ({type(err).__name__}, reference {ref})"
    try:  # a sound config.json still files the run under its model and data set, so it is shown where it belongs
        cfg = checkpoint.read_config(path)
        return RunInfo(name, path, cfg["model"], cfg["dataset"]["name"], error)
    except Exception:
        return RunInfo(name, path, None, None, error)


def log_error(what: str) -> str:
    """Log the exception being handled, traceback and all, in the server log; return the short reference
    the visitor is shown instead (no traceback, no server path ever reaches the browser)."""
    import uuid

    from streamlit.logger import get_logger

    ref = uuid.uuid4().hex[:8]
    get_logger("dashboard").error("%s failed (reference %s)", what, ref, exc_info=True)
    return ref


def runs_of(kind: str, dataset: str | None = None) -> list[RunInfo]:
    """The runs of one model kind (and data set): broken runs whose config.json names them included (an error
    card in their place), runs whose config.json is unusable left out (see broken_runs)."""
    return [r for r in catalog() if r.model == kind and (dataset is None or r.dataset == dataset)]


def broken_runs() -> list[RunInfo]:
    """Runs that cannot be filed under a model and data set: their config.json itself fails the check."""
    return [r for r in catalog() if r.error and r.model is None]


def datasets() -> list[str]:
    """The data sets of the loadable runs of the compared families (a broken run never adds one)."""
    return sorted({r.dataset for r in catalog() if r.dataset and r.model in KINDS and not r.error})


# --- per-run files ---------------------------------------------------------------------------------
# Each cached loader returns (value, error): a CheckpointError is cached like a value (keyed on the file's
# stamp), so a file that fails is read once, not once per page view; the public function raises it again.
def _caught(load, *args) -> tuple:
    try:
        return load(*args), None
    except CheckpointError as err:
        return None, str(err)


def _value(result: tuple):
    value, error = result
    if error is not None:
        raise CheckpointError(error)
    return value


@st.cache_resource(max_entries=12, show_spinner=False)
def _model(path: str, stamp: tuple):
    return _caught(checkpoint.load_model, path)


def model(path: str):
    """The run's model, strictly loaded (raises CheckpointError naming the file)."""
    return _value(_model(path, (_stamp(path, checkpoint.WEIGHTS), _stamp(path))))


@st.cache_data(max_entries=32, show_spinner=False)
def _config(path: str, stamp: tuple) -> tuple:
    return _caught(checkpoint.read_config, path)


def config(path: str) -> dict:
    return _value(_config(path, _stamp(path)))


def run_summary(path: str, fallback: str) -> str:
    """Model · data set · epochs · start time (UTC) of a run, from its config.json; `fallback` if unreadable."""
    import time

    try:
        cfg = config(path)
        epochs = cfg.get("epochs_completed")
        started = time.strptime(cfg["started"], "%Y-%m-%dT%H:%M:%SZ")
        return (f"{LABELS.get(cfg['model'], cfg['model'])} · {cfg['dataset']['name']} · "
                f"{epochs} epoch{'' if epochs == 1 else 's'} · {time.strftime('%d %b %H:%M', started)}")
    except Exception:  # a label must never take the sidebar down; the folder name will do
        return fallback


@st.cache_data(max_entries=32, show_spinner=False)
def _history(path: str, stamp: tuple) -> tuple:
    return _caught(checkpoint.read_history, path)


def history(path: str) -> dict:
    return _value(_history(path, _stamp(path, checkpoint.HISTORY)))


@st.cache_data(max_entries=32, show_spinner=False)
def _metrics(path: str, stamp: tuple) -> tuple:
    return _caught(checkpoint.read_metrics, path)


def metrics(path: str) -> dict | None:
    return _value(_metrics(path, _stamp(path, checkpoint.METRICS)))


@st.cache_data(max_entries=16, show_spinner=False)
def _embeddings(path: str, stamp: tuple) -> tuple:
    return _caught(checkpoint.read_embeddings, path)


def embeddings(path: str) -> dict[str, np.ndarray]:
    return _value(_embeddings(path, (_stamp(path, checkpoint.EMBEDDINGS), _stamp(path))))


# --- long series: smoothed and downsampled once per (run, series, smoothing), not per render ---------------
TRACE_POINTS = 2000  # at most this many points per trace go to the browser


def ema(values, smoothing: float) -> np.ndarray:
    """Exponential moving average (TensorBoard-style, bias-corrected), vectorised; smoothing 0 = raw values."""
    y = np.asarray(values, dtype=np.float64)
    if smoothing <= 0 or len(y) == 0:
        return y
    from scipy.signal import lfilter

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
    return _step_series(path, _stamp(path, checkpoint.HISTORY), key, round(float(smoothing), 3), points)


def sample_grid_files(path: str) -> list[str]:
    """Per-epoch fixed-noise sample grids (PNG paths), epoch order."""
    return [str(p) for p in checkpoint.sample_grids(path)]


def nearest_png(path: str) -> str | None:
    p = Path(path) / "nearest.png"
    return str(p) if p.is_file() else None


def facts(path: str) -> dict:
    """Plain run facts for the Overview."""
    cfg = config(path)
    mc = cfg["model_config"]
    return {
        "Model": cfg["class"] + (f" ({mc.get('preset')} preset)" if mc.get("preset") else ""),
        "Dataset": cfg["dataset"]["name"] + ("" if not cfg["dataset"].get("synthetic") else " (synthetic)"),
        "Parameters": f"{cfg['parameters']:,}",
        "Latent size": mc.get("latent_dim"),
        "Epochs": cfg.get("epochs_completed"),
        "Training time": f"{cfg['wall_time_s'] / 60:.1f} min",
        "Device": cfg.get("device"),
        "Seed": cfg.get("seed"),
    }


def latent_dim(path: str) -> int:
    return int(config(path)["model_config"]["latent_dim"])


def classes(path: str) -> list[str]:
    return class_names(config(path)["dataset"]["name"])


# --- generation ------------------------------------------------------------------------------------
def latent_codes(seed: int, n: int, dim: int, temperature: float = 1.0) -> np.ndarray:
    """n codes z ~ N(0, temperature^2 I) from a seed: the same codes for every model of that latent size."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, dim)) * temperature).astype(np.float32)


def interpolation(z0: np.ndarray, z1: np.ndarray, steps: int, mode: str = "spherical") -> np.ndarray:
    """Codes from z0 to z1. Spherical (slerp) keeps the norm typical of a Gaussian sample; linear
    passes through low-norm codes near the origin, which neither model saw much of in training."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
    if mode == "linear":
        return (1 - t) * z0 + t * z1
    cos = np.dot(z0, z1) / (np.linalg.norm(z0) * np.linalg.norm(z1) + 1e-8)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-4:
        return (1 - t) * z0 + t * z1
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def generate(path: str, z: np.ndarray) -> np.ndarray:
    """Decode latent codes with the run's generator: (n, 28, 28) floats in [0, 1]."""
    import torch

    with torch.inference_mode():
        return model(path).sample(torch.from_numpy(np.ascontiguousarray(z)))[:, 0].numpy()


def reconstruct(path: str, images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> the model's reconstructions (VAE: decoder(mu); GAN: G(E(x)))."""
    import torch

    x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]
    with torch.inference_mode():
        return model(path).reconstruct(x)[:, 0].numpy()


def grid(images: np.ndarray, ncol: int | None = None, scale: int = 2) -> np.ndarray:
    """(n, H, W) floats in [0, 1] or uint8 -> one uint8 image, upscaled by an integer factor for crisp pixels."""
    return make_grid(images, nrow=ncol, scale=scale)


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
    return _map2d(path, _stamp(path, checkpoint.EMBEDDINGS), "pca" if method == "pca" else "tsne", perplexity, n)


# --- t-SNE recompute: started by a button, run by `python -m core.embed tsne` outside the server ----------
TSNE_PENDING_MAX = 4  # recomputes waiting or running at once, all visitors together; more are refused
TSNE_KEEP = 64  # cached results kept


def _tsne_file(path: str, perplexity: float, size: int) -> Path:
    import hashlib

    key = repr((str(Path(path).resolve()), _stamp(path, checkpoint.EMBEDDINGS), float(perplexity), int(size)))
    return jobs_dir() / "tsne" / f"{hashlib.sha1(key.encode()).hexdigest()[:24]}.npy"


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
    try:
        os.kill(int(marker.read_text()), 0)
        return True
    except (OSError, ValueError):
        return False


def tsne_pending(path: str, perplexity: float, size: int) -> bool:
    f = _tsne_file(path, perplexity, size)
    return not f.exists() and _pid_alive(f.with_suffix(".pending"))


def tsne_recompute(path: str, perplexity: float, size: int) -> str:
    """Start a recompute unless it is cached or under way: "cached", "pending", "started" or "busy".
    Raises OSError when the jobs folder cannot be written."""
    import subprocess
    import threading

    f = _tsne_file(path, perplexity, size)
    if f.exists():
        return "cached"
    marker = f.with_suffix(".pending")
    if _pid_alive(marker):
        return "pending"
    f.parent.mkdir(parents=True, exist_ok=True)
    markers = list(f.parent.glob("*.pending"))
    for m in markers:
        if m.with_suffix(".npy").exists() or not _pid_alive(m):
            m.unlink(missing_ok=True)
    if sum(m.exists() for m in markers) >= TSNE_PENDING_MAX:
        return "busy"
    for old in sorted(f.parent.glob("*.npy"), key=lambda p: p.stat().st_mtime)[:-TSNE_KEEP]:
        old.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen([sys.executable, "-m", "core.embed", "tsne", str(path), str(f),
                             f"--perplexity={float(perplexity)}", f"--digits={int(size)}"], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    marker.write_text(str(proc.pid))
    threading.Thread(target=proc.wait, daemon=True).start()  # reap it
    return "started"


# --- selection shared by every page -------------------------------------------------------------------
def selected(kind: str) -> RunInfo | None:
    """The run picked in the sidebar for family `kind` (one of KINDS), or None."""
    name = st.session_state.get(f"pick_{kind}")
    return next((r for r in catalog() if r.path == name), None)


def check_run(info: RunInfo | None) -> str | None:
    """None when the run loads, else a short error naming the run and the file."""
    if info is None:
        return "no run selected"
    if info.error:
        return info.error
    try:
        model(info.path)
        history(info.path)
        if info.model in families.FAMILIES and families.get(info.model).has_encoder:
            embeddings(info.path)
    except CheckpointError as err:
        return str(err)
    return None


# --- retraining (core.jobs runs the training in its own process) ----------------------------------------
def retrain_caps():
    from core.jobs import Caps

    return Caps.from_env()


def jobs_dir() -> Path:
    from core.jobs import default_jobs_dir

    return default_jobs_dir(runs_dir())


def data_root() -> Path:
    from core.data import default_root

    return default_root().resolve()


def dataset_available(name: str) -> bool:
    from core.data import is_available

    return is_available(name, data_root())


def download_dataset(name: str) -> None:
    """Fetch a data set into the data root (needs internet; raises DataMissingError otherwise)."""
    from core.data import load_split

    for train in (True, False):
        load_split(name, data_root(), train=train, download=True)


def owner_token() -> str:
    """This browser session's private owner token for the job queue (kept in st.session_state, never shown)."""
    token = st.session_state.get("_retrain_owner")
    if not token:
        import secrets

        token = st.session_state["_retrain_owner"] = secrets.token_urlsafe(24)
    return token


def job_queue() -> list[dict]:
    """Active jobs, running first, with position and estimated seconds (raises core.jobs.JobError)."""
    from core.jobs import queue

    return queue(jobs_dir())


def my_jobs() -> list[dict]:
    """This session's jobs, newest first (active ones with their queue position)."""
    from core.jobs import owner_jobs

    return owner_jobs(jobs_dir(), owner_token())


def current_job() -> dict | None:
    active = job_queue()
    return active[0] if active else None


def start_job(spec: dict) -> str:
    from core.jobs import start_job as sj

    return sj(spec, runs_dir(), jobs_dir(), data_root(), retrain_caps(), owner=owner_token())


def start_evaluation(run: str) -> str:
    """Queue the quick evaluation of this session's retrained run (results land in its metrics.json)."""
    from core.jobs import start_evaluation as se

    dataset = config(str(runs_dir() / run))["dataset"]["name"]
    return se(run, runs_dir(), checkpoint_dir() / f"{dataset}-classifier", jobs_dir(), data_root(), retrain_caps(),
              owner=owner_token())


def cancel_job(job_id: str) -> dict | None:
    """Cancel or remove this session's job (core.jobs.NotOwner for anyone else's)."""
    from core.jobs import cancel_job as cj

    return cj(jobs_dir(), job_id, owner_token())


def refresh_runs() -> None:
    """Forget the cached run list, so a run that just finished is in the pickers at once."""
    _catalog.clear()


def run_exists(run: str) -> bool:
    return (runs_dir() / run / checkpoint.CONFIG).is_file()


def job_grid(job: dict) -> str | None:
    """The sample grid to show for a job: the saved run's last grid once it exists, else the live one."""
    if job.get("run") and run_exists(job["run"]):
        grids = checkpoint.sample_grids(runs_dir() / job["run"])
        if grids:
            return str(grids[-1])
    grid = job.get("grid")
    return grid if grid and Path(grid).is_file() else None


# === Explore page (draw a digit, latent dimensions, interpolate real digits) ===============================
# Torch work lives in core.explore; these wrappers cache it per run version (the weights' and embeddings'
# stamps) and, for a visitor's drawing, in bounded caches keyed on the drawing's pixels.
ELBO_SAMPLES = 4  # draws of z for E_q[-log p(x|z)], for a drawing and for the test digits it is compared with


def _run_stamp(path: str) -> tuple:
    return _stamp(path, checkpoint.WEIGHTS), _stamp(path, checkpoint.EMBEDDINGS), _stamp(path)


def has_encoder(path: str) -> bool:
    """The run's model maps images to codes (VAE: mu(x); GAN: a trained encoder E)."""
    from core.explore import has_encoder as he

    return he(model(path))


def has_posterior(path: str) -> bool:
    """The run's model has a Gaussian posterior q(z|x), hence per-dimension KL and an ELBO (the VAE)."""
    from core.explore import has_posterior as hp

    return hp(model(path))


def classifier_path(dataset: str) -> str | None:
    """The committed classifier of a data set (checkpoints/<dataset>-classifier), when it loads."""
    info = next((r for r in catalog() if r.name == f"{dataset}-classifier" and r.model == "classifier"), None)
    return info.path if info is not None and not info.error else None


def dataset_record(name: str):
    """The data set's record (core.datasets.DataSet): label, class names, image size, what an image shows."""
    from core import datasets

    return datasets.get(name)


def image_to_digit(image: np.ndarray, dataset: str = "mnist") -> np.ndarray | None:
    """A canvas (RGBA) or uploaded image -> uint8 (side, side), prepared as the data set's images were (MNIST:
    the ink fitted into 20x20 of 28x28; Fashion-MNIST: into the whole field). None: no ink."""
    from core.explore import prepare, to_grey

    record = dataset_record(dataset)
    x = prepare(to_grey(image), side=record.image_size, box=record.ink_box or record.image_size)
    return None if x is None else np.round(x * 255).astype(np.uint8)


def read_image(raw: bytes) -> np.ndarray:
    """Uploaded file bytes -> an RGBA uint8 array (raises ValueError for anything that is not an image)."""
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as img:  # raises DecompressionBombError past ~179 megapixels
            if img.width * img.height > 25_000_000:
                raise ValueError("image too large (over 25 megapixels)")
            img.thumbnail((1024, 1024))
            return np.asarray(ImageOps.exif_transpose(img).convert("RGBA"))  # a phone photo, upright
    except Image.DecompressionBombError as err:
        raise ValueError("image too large (over 25 megapixels)") from err
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError("not an image file PIL can read (PNG, JPEG, ...)") from err


@st.cache_data(max_entries=64, ttl=600, show_spinner=False)
def _classify(path: str, stamp: tuple, digits: bytes, side: int = 28) -> np.ndarray:
    import torch

    x = torch.from_numpy(np.frombuffer(digits, np.uint8).reshape(-1, 1, side, side).astype(np.float32) / 255.0)
    return model(path).predict_proba(x).numpy()


def classify(dataset: str, digits: np.ndarray) -> np.ndarray | None:
    """Class probabilities (n, classes) from the data set's committed classifier, or None without one."""
    path = classifier_path(dataset)
    if path is None:
        return None
    return _classify(path, _run_stamp(path), np.ascontiguousarray(digits, np.uint8).tobytes(), digits.shape[-1])


def embed_images(path: str, images: np.ndarray) -> np.ndarray:
    """uint8 (n, 28, 28) -> the run's latent codes (VAE: mu(x); GAN: E(x))."""
    import torch

    return embed.latent_codes(model(path), torch.from_numpy(np.ascontiguousarray(images))[:, None])


@st.cache_data(max_entries=64, ttl=600, show_spinner=False)
def _neg_elbo(path: str, stamp: tuple, digits: bytes, side: int = 28) -> dict:
    from core.explore import neg_elbo

    return neg_elbo(model(path), np.frombuffer(digits, np.uint8).reshape(-1, side, side), samples=ELBO_SAMPLES)


def neg_elbo(path: str, digits: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image -ELBO, reconstruction and KL (nats) of uint8 digits under the run's VAE."""
    return _neg_elbo(path, _run_stamp(path), np.ascontiguousarray(digits, np.uint8).tobytes(), digits.shape[-1])


@st.cache_data(max_entries=16, show_spinner=False)
def _posterior_stats(path: str, stamp: tuple) -> dict | None:
    from core.explore import activity, neg_elbo, per_dim_kl, posterior

    images = embeddings(path).get("images")
    if images is None:  # an embeddings.npz from before the digits were stored in it
        return None
    mu, logvar = posterior(model(path), images)
    return {"kl": per_dim_kl(mu, logvar), "activity": activity(mu), "n": len(images),
            "test_neg_elbo": neg_elbo(model(path), images, samples=ELBO_SAMPLES)["neg_elbo"]}


def posterior_stats(path: str) -> dict | None:
    """On the run's test subset (embeddings.npz images): per-dimension KL (nats), Cov_x(E_q[z_j]) per
    dimension, and each digit's -ELBO, for the VAE (None when embeddings.npz holds no digits)."""
    return _posterior_stats(path, _run_stamp(path))


def activity(path: str) -> np.ndarray:
    """Cov_x(E_q[z_j]) per latent dimension over the run's test subset: the variance of its stored codes
    (a VAE's codes are the posterior means mu(x)); needs no digits in embeddings.npz."""
    from core.explore import activity as cov

    return cov(embeddings(path)["codes"])


@st.cache_data(max_entries=16, show_spinner=False)
def _principal(path: str, stamp: tuple) -> dict:
    from core.explore import principal_directions

    return principal_directions(embeddings(path)["codes"])


def principal(path: str) -> dict[str, np.ndarray]:
    """PCA of the run's test-subset codes: mean, directions, std along each, explained variance."""
    return _principal(path, _run_stamp(path))


def traversal(path: str, directions: np.ndarray, scales: np.ndarray, seed: int, steps: int) -> np.ndarray:
    """Images (rows * steps, 28, 28): the code of `seed` (as on the Samples page) moved from -3 to +3 scales
    along each direction (unit vectors (rows, D)), the rest of the code unchanged."""
    from core.explore import traversal_codes

    z0 = latent_codes(seed, 1, latent_dim(path))[0]
    directions = np.asarray(directions, np.float32)
    return generate(path, traversal_codes(z0, directions, directions @ z0, scales, steps))


def nearest_test(path: str, digit: np.ndarray, k: int = 8):
    """The k digits of the run's test subset nearest to `digit` in pixels: (images, test-set indices, distances),
    or None when embeddings.npz holds no digits."""
    from core.explore import nearest

    emb = embeddings(path)
    if "images" not in emb:
        return None
    idx, dist = nearest(digit, emb["images"], k)
    return emb["images"][idx], emb["indices"][idx], dist


def map_position(path: str, code: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Where a new code lands on the run's 2-D map: PCA exactly (the same projection as the map); the
    precomputed t-SNE at the mean position of its 5 nearest test codes (returned too), t-SNE placing no
    new points."""
    from core.explore import place_by_neighbours, project

    if method == "pca":
        return project(code[None], principal(path))[0], None
    emb = embeddings(path)
    return place_by_neighbours(code, emb["codes"], emb["tsne"], k=5)


@st.cache_resource(max_entries=2, show_spinner="Loading the training digits…")
def _train_images(dataset: str, root: str) -> tuple[np.ndarray, np.ndarray]:
    from core.data import load_split
    from core.explore import squared_norms

    images = load_split(dataset, root, train=True)[0][:, 0].numpy()  # uint8 (60000, 28, 28), 47 MB
    return images, squared_norms(images)


@st.cache_data(max_entries=64, ttl=600, show_spinner=False)
def _nearest_train(dataset: str, root: str, digit: bytes, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from core.explore import nearest

    train, sq = _train_images(dataset, root)
    idx, dist = nearest(np.frombuffer(digit, np.uint8).reshape(train.shape[1:]), train, k, ref_sq=sq)
    return train[idx], idx, dist


def nearest_train(dataset: str, digit: np.ndarray, k: int = 8):
    """The k training digits nearest to `digit` in pixels: (images, training-set indices, distances), or None
    when the data set is not on this server."""
    if not dataset_available(dataset):
        return None
    return _nearest_train(dataset, str(data_root()), np.ascontiguousarray(digit, np.uint8).tobytes(), k)
