"""The run catalog and the cached readers of a run's files: the dashboard's one door to the runs on disk.

Pages get numpy arrays, dicts and plain values back. Models are cached with `st.cache_resource` (shared,
never mutated), arrays with `st.cache_data`. Every cache key includes the file's stamp (modification time,
size, inode), so a retrained or re-pulled run is picked up without a restart.
"""

from __future__ import annotations

import gc
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.logger import get_logger

from core import datasets as dataset_records
from core import families, paths
from core.data import class_names
from core.hub import pull_missing
from core.run import folder, layout, schemas
from core.run.layout import CheckpointError, file_stamp

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


@st.cache_resource(show_spinner="Pulling runs from the Hugging Face Hub…")
def hub_messages() -> list[str]:
    """Once per server process: pull the runs named in $HUB_RUNS that are not here yet (never raises)."""
    if not os.environ.get("HUB_RUNS"):
        return []
    return pull_missing(None, paths.checkpoints_dir())


@dataclass(frozen=True)
class RunInfo:
    name: str
    path: str
    model: str | None  # a family's name ("vae", "gan", "classifier"), or None when config.json is unreadable
    dataset: str | None
    error: str | None = None

    @property
    def label(self) -> str:
        """The run's one name on every page (sidebar, overlays, Overview, Runs, Retrain): its folder name, unique
        to the second for a retrained run; run_summary says what it is. jobs_client.display_name marks a
        visitor's own runs."""
        return self.name


def catalog() -> list[RunInfo]:
    """Every run folder under the committed and retrained runs' folders (core.paths), each checked once;
    a run that fails is listed with its error (model and data set too when its config.json is sound)."""
    return _catalog(str(paths.checkpoints_dir()), str(paths.runs_dir()))


@st.cache_data(ttl=5, show_spinner=False)  # short: runs finished by a retrain job appear within seconds
def _catalog(*roots: str) -> list[RunInfo]:
    runs = []
    for root in map(Path, roots):
        for name in layout.list_runs(root):
            path = root / name
            runs.append(_checked(str(path), layout.stamp(path)))
    return runs


@st.cache_data(max_entries=512, show_spinner=False)
def _checked(path: str, stamp: tuple) -> RunInfo:
    """One check per run and version of its files (the stamp): failures are cached like successes, so a bad
    run costs one check, not one per page view."""
    name = Path(path).name
    try:
        cfg = folder.check_run(path).config
        if layout.name_problem(name):  # one rule for every run's name: a folder named otherwise is not loaded
            raise CheckpointError(f"{name}: {layout.name_problem(name)}")
        return RunInfo(name, path, cfg["model"], cfg["dataset"]["name"])
    except CheckpointError as err:
        error = str(err)
    except Exception as err:  # a bug in a check must not take every page down: log it, list the run as broken
        ref = log_error(f"checking run {name}")
        error = f"{name}: could not be checked ({type(err).__name__}, reference {ref})"
    try:  # a sound config.json still files the run under its model and data set, so it is shown where it belongs
        cfg = schemas.read_config(path)
        return RunInfo(name, path, cfg["model"], cfg["dataset"]["name"], error)
    except Exception:
        return RunInfo(name, path, None, None, error)


def log_error(what: str) -> str:
    """Log the exception being handled, traceback and all, in the server log; return the short reference
    the visitor is shown instead (no traceback, no server path ever reaches the browser)."""
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
    return _caught(folder.load_model, path)


def model(path: str):
    """The run's model, strictly loaded (raises CheckpointError naming the file)."""
    return _value(_model(path, (file_stamp(path, layout.WEIGHTS), file_stamp(path))))


@st.cache_data(max_entries=32, show_spinner=False)
def _config(path: str, stamp: tuple) -> tuple:
    return _caught(schemas.read_config, path)


def config(path: str) -> dict:
    return _value(_config(path, file_stamp(path)))


def run_summary(path: str, fallback: str) -> str:
    """Model · data set · epochs · start time (UTC) of a run, from its config.json; `fallback` if unreadable."""
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
    return _caught(schemas.read_history, path)


def history(path: str) -> dict:
    return _value(_history(path, file_stamp(path, layout.HISTORY)))


@st.cache_data(max_entries=32, show_spinner=False)
def _metrics(path: str, stamp: tuple) -> tuple:
    return _caught(schemas.read_metrics, path)


def metrics(path: str) -> dict | None:
    return _value(_metrics(path, file_stamp(path, layout.METRICS)))


@st.cache_data(max_entries=16, show_spinner=False)
def _embeddings(path: str, stamp: tuple) -> tuple:
    return _caught(schemas.read_embeddings, path)


def embeddings(path: str) -> dict[str, np.ndarray]:
    return _value(_embeddings(path, (file_stamp(path, layout.EMBEDDINGS), file_stamp(path))))


def sample_grid_files(path: str) -> list[str]:
    """Per-epoch fixed-noise sample grids (PNG paths), epoch order."""
    return [str(p) for p in layout.sample_grids(path)]


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
        "Device": str(cfg.get("device")).replace(", 1 threads)", ", 1 thread)"),  # as older runs wrote it
        "Seed": cfg.get("seed"),
    }


def latent_dim(path: str) -> int:
    return int(config(path)["model_config"]["latent_dim"])


def classes(path: str) -> list[str]:
    return class_names(config(path)["dataset"]["name"])


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


def refresh_runs() -> None:
    """Forget the cached run list, so a run that just finished is in the pickers at once."""
    _catalog.clear()


def classifier_path(dataset: str) -> str | None:
    """The committed classifier of a data set (checkpoints/<dataset>-classifier), when it loads."""
    info = next((r for r in catalog() if r.name == layout.classifier_run(dataset) and r.model == "classifier"), None)
    return info.path if info is not None and not info.error else None


def noun(dataset: str | None = None) -> str:
    """What one image of the data set shows ("digit", "item"): `dataset`, else the sidebar's; "image" if unknown."""
    try:
        return dataset_records.get(dataset or st.session_state.get("dataset")).noun
    except ValueError:  # no data set picked, or one no record describes
        return "image"


def dataset_record(name: str):
    """The data set's record (core.datasets.DataSet): label, class names, image size, what an image shows."""
    return dataset_records.get(name)
