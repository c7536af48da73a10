"""Run folders: config.json, model.safetensors, history.json, samples/, embeddings.npz, metrics.json.

Tensors and JSON only (safetensors, numpy without pickle): loading a run never runs code. A run is
written into a hidden temporary folder beside its destination and renamed into place when complete,
so a crash never leaves a half-written run visible. Loading is strict and goes through core.validate
(sizes checked before reading, regular files only, schemas, weights against the config): every problem
raises CheckpointError naming the file, relative to the runs folder, and what is wrong with it.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core import validate
from core.files import replacing, write_json
from core.run_config import FORMAT_VERSION  # noqa: F401  (re-exported)
from core.validate import (  # noqa: F401  (re-exported: the names every reader uses)
    CONFIG,
    EMBEDDING_KEYS,
    EMBEDDINGS,
    HISTORY,
    METRICS,
    OPTIONAL_EMBEDDING_KEYS,
    SAMPLES,
    WEIGHTS,
    CheckpointError,
    check_run,
)


# --- paths -------------------------------------------------------------------------------------
def run_path(root: str | os.PathLike, name: str) -> Path:
    """root/name, refusing names that are empty, hidden or escape root (.., absolute, separators)."""
    if not name or name.startswith(".") or "/" in name or "\\" in name or name in ("..", "."):
        raise CheckpointError(f"invalid run name {name!r}: use letters, digits, '-' and '_' only")
    root = Path(root).resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise CheckpointError(f"run name {name!r} escapes {root}")
    return path


def resolve_run(root: str | os.PathLike, name_or_path: str) -> Path:
    """A run given as a folder path (anything with a separator, or an existing folder) or as a name under root."""
    p = Path(name_or_path)
    return p if p.is_dir() or "/" in name_or_path or "\\" in name_or_path else run_path(root, name_or_path)


def list_runs(root: str | os.PathLike) -> list[str]:
    """Names of the runs (folders holding a config.json entry) under root, sorted; hidden ones skipped.
    Listed is not loadable: a linked folder or config.json is listed so that checking it can refuse it."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and os.path.lexists(p / CONFIG))


# --- provenance --------------------------------------------------------------------------------
def git_commit() -> str:
    """HEAD of the repository this code lives in, with '+dirty' for uncommitted changes; 'unknown' outside git."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    import safetensors
    import torchvision

    from core import __version__

    return {"core": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__, "safetensors": safetensors.__version__}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return device.type


# --- writing -----------------------------------------------------------------------------------
def write_png(path: str | os.PathLike, grid: np.ndarray) -> None:
    """A uint8 (H, W) grid as a grayscale PNG, replaced atomically."""
    from PIL import Image

    with replacing(Path(path)) as tmp:
        Image.fromarray(grid).save(tmp, format="PNG")


def save_run(
    path: str | os.PathLike,
    model: torch.nn.Module,
    config: dict,
    history: dict,
    grids: dict[int, np.ndarray] | None = None,
    embeddings: dict[str, np.ndarray] | None = None,
    metrics: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete run folder atomically. `config` is the run's config.json (see core.train_run)."""
    from safetensors.torch import save_file

    path = Path(path).resolve()
    if path.exists() and not overwrite:
        raise CheckpointError(f"{path} exists; choose another name or pass overwrite=True")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a run is meant to be shared
    try:
        write_json(tmp / CONFIG, config)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"model": config["model"], "format": str(FORMAT_VERSION)})
        write_json(tmp / HISTORY, history)
        (tmp / SAMPLES).mkdir()
        for epoch, grid in sorted((grids or {}).items()):
            write_png(tmp / SAMPLES / f"epoch_{epoch:03d}.png", grid)
        if embeddings is not None:
            write_embeddings(tmp, embeddings)
        if metrics is not None:
            write_json(tmp / METRICS, metrics)
        move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def move_into_place(tmp: Path, dest: Path) -> None:
    """Rename a finished temporary run folder to `dest` (same file system, so atomic). An existing `dest`
    is moved aside first and deleted only after the rename, so a failure loses neither run."""
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        os.rename(dest, old / "run")
        os.rename(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, dest)


def write_embeddings(path: str | os.PathLike, embeddings: dict[str, np.ndarray]) -> None:
    """Write embeddings.npz (compressed, no pickles) into a run folder, replaced atomically."""
    keys = [k for k in (*EMBEDDING_KEYS, *OPTIONAL_EMBEDDING_KEYS) if k in embeddings]
    with replacing(Path(path) / EMBEDDINGS) as tmp:
        np.savez_compressed(tmp, **{k: np.asarray(embeddings[k]) for k in keys})


def write_metrics(path: str | os.PathLike, metrics: dict) -> None:
    """Replace metrics.json of an existing run atomically."""
    path = Path(path)
    read_config(path)
    write_json(path / METRICS, metrics)


# --- reading (every reader checks through core.validate) -------------------------------------------
def read_config(path: str | os.PathLike, label: str | None = None) -> dict:
    """config.json, checked: known model and data set, a model_config its config class accepts, typed fields."""
    return validate.read_config(path, label)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", label: str | None = None,
               cfg: dict | None = None) -> torch.nn.Module:
    """Build the model from config.json and load model.safetensors strictly, in eval mode. The weights'
    header is checked against the model first (sizes, tensor count, names, shapes) before any tensor is read."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from core.models import build_model

    path = Path(path)
    cfg = cfg or read_config(path, label)
    rel = f"{validate.label_of(path, label)}/{WEIGHTS}"
    validate.check_weights(path, cfg, label)
    try:
        model = build_model(cfg["model"], cfg["model_config"], saved=True)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{validate.label_of(path, label)}/{CONFIG}: bad model_config: {err}") from err
    try:
        state = load_file(str(path / WEIGHTS), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{rel}: corrupt or truncated ({err})") from err
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(f"{rel}: does not match {CONFIG}: {' '.join(first[:3])[:400]}") from err
    return model.to(device).eval()


def read_history(path: str | os.PathLike, label: str | None = None) -> dict:
    return validate.read_history(path, label)


def read_metrics(path: str | os.PathLike, label: str | None = None) -> dict | None:
    """metrics.json, or None when the run has not been evaluated."""
    return validate.read_metrics(path, label)


def read_embeddings(path: str | os.PathLike, cfg: dict | None = None, label: str | None = None
                    ) -> dict[str, np.ndarray]:
    """embeddings.npz, checked before any array is inflated (`cfg` adds the latent size and class checks;
    default: the run's config.json when it is readable)."""
    if cfg is None:
        with contextlib.suppress(CheckpointError):
            cfg = read_config(path, label)
    return validate.read_embeddings(path, cfg, label)


def sample_grids(path: str | os.PathLike) -> list[Path]:
    """The per-epoch sample grid PNGs, in epoch order."""
    d = Path(path) / SAMPLES
    return sorted(d.glob("epoch_*.png")) if d.is_dir() else []


@dataclass
class Run:
    name: str
    path: Path
    config: dict
    model: torch.nn.Module
    history: dict
    metrics: dict | None
    embeddings: dict[str, np.ndarray] | None
    grids: list[Path] = field(default_factory=list)


def load_run(path: str | os.PathLike, device: str | torch.device = "cpu", label: str | None = None) -> Run:
    """Check the whole run folder (core.validate.check_run), then load it (embeddings only for a family with
    an encoder). `label` names the run in errors (default: the folder's name)."""
    path = Path(path)
    checked = check_run(path, label)
    cfg = checked.config
    from core import families

    embeddings = read_embeddings(path, cfg, label) if families.get(cfg["model"]).has_encoder else None
    return Run(path.name, path, cfg, load_model(path, device, label, cfg), checked.history, checked.metrics,
               embeddings, checked.grids)
