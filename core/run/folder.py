"""A run folder as a whole: checked once, loaded, saved.

Tensors and JSON only (safetensors, numpy without pickle): loading a run never runs code. A run is written
into a hidden temporary folder beside its destination and renamed into place when complete, so a crash never
leaves a half-written run visible. Loading is strict: every file is checked once (core.run.reading, .formats,
.schemas), and every problem raises CheckpointError "<run>/<file>: <problem>", relative to the runs folder.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core import families
from core.files import disk_full, is_disk_full, replacing, write_json
from core.models import build_model
from core.run.config import FORMAT_VERSION
from core.run.formats import check_embeddings_file, check_png
from core.run.layout import (
    CONFIG,
    EMBEDDING_KEYS,
    EMBEDDINGS,
    HISTORY,
    METRICS,
    NEAREST,
    OPTIONAL_EMBEDDING_KEYS,
    SAMPLES,
    WEIGHTS,
    CheckpointError,
    where,
)
from core.run.reading import check_folder, open_in_run
from core.run.schemas import check_weights, embedding_shape, read_config, read_embeddings, read_history, read_metrics


@dataclass
class Checked:
    """What check_run read and checked (so loading need not read it again)."""

    config: dict
    history: dict
    metrics: dict | None
    grids: list[Path] = field(default_factory=list)
    embeddings: dict[str, np.ndarray] | None = None  # loaded only when asked for


def check_run(path: str | os.PathLike, label: str | None = None, load_embeddings: bool = False) -> Checked:
    """Check a whole run folder, each file once: the folder (no links, pipes or devices), config.json, the
    weights' header against the config, history.json, metrics.json, embeddings.npz (required for a family with
    an encoder, whose embeddings `load_embeddings` also loads, from the file it checked), the PNGs' headers.
    Raises CheckpointError "<run>/<file>: ..."."""
    path = Path(path)
    grids = check_folder(path, label)
    cfg = read_config(path, label)
    check_weights(path, cfg, label)
    history = read_history(path, label)
    metrics = read_metrics(path, label)
    embeddings = None
    has_encoder = families.get(cfg["model"]).has_encoder
    if load_embeddings and has_encoder:
        embeddings = read_embeddings(path, cfg, label)
    elif has_encoder or os.path.lexists(path / EMBEDDINGS):
        f, size, rel = open_in_run(path, EMBEDDINGS, label)
        with f:
            check_embeddings_file(f, size, rel, *embedding_shape(cfg))
    for grid in grids:
        check_png(grid, where(path, f"{SAMPLES}/{grid.name}", label))
    if os.path.lexists(path / NEAREST):
        check_png(path / NEAREST, where(path, NEAREST, label))
    return Checked(cfg, history, metrics, grids, embeddings)


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
    """Library versions for config.json. torchvision is imported here, not at the top: it adds about 0.4 s to
    every import of this module (python -X importtime) and only saving needs it."""
    import safetensors
    import torchvision

    from core import __version__

    return {"core": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__, "safetensors": safetensors.__version__}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({platform.processor() or platform.machine()}, {n} thread{'' if n == 1 else 's'})"
    return device.type


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
    path = Path(path).resolve()
    if path.exists() and not overwrite:
        raise CheckpointError(f"{path} exists; choose another name or pass overwrite=True")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a run is meant to be shared
    try:
        (tmp / SAMPLES).mkdir()
        for epoch, grid in sorted((grids or {}).items()):
            write_png(tmp / SAMPLES / f"epoch_{epoch:03d}.png", grid)
        _write_run_files(tmp, model, config, history, embeddings, metrics)
        move_into_place(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)  # first: the space it took is free again
        if isinstance(err, Exception) and is_disk_full(err):  # said so, not "SafetensorError: ... os error 28"
            raise disk_full(f"save the run {path.name}", path.parent) from err
        raise
    return path


def rewrite_run(path: str | os.PathLike, model: torch.nn.Module, config: dict, history: dict,
                embeddings: dict[str, np.ndarray] | None, metrics: dict | None) -> Path:
    """Replace an existing run's weights, config, history, embeddings and metrics together: the folder is
    copied, the copy rewritten and moved into place, so a failure leaves the old run whole."""
    path = Path(path).resolve()
    read_config(path)  # a run folder, not any folder
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        shutil.copytree(path, tmp, dirs_exist_ok=True)
        _write_run_files(tmp, model, config, history, embeddings, metrics)
        move_into_place(tmp, path)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, Exception) and is_disk_full(err):
            raise disk_full(f"rewrite the run {path.name}", path.parent) from err
        raise
    return path


def _write_run_files(tmp: Path, model: torch.nn.Module, config: dict, history: dict,
                     embeddings: dict[str, np.ndarray] | None, metrics: dict | None) -> None:
    write_json(tmp / CONFIG, config)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / WEIGHTS), metadata={"model": config["model"], "format": str(FORMAT_VERSION)})
    os.chmod(tmp / WEIGHTS, 0o644)  # as the JSON files: a run is meant to be read by others
    write_json(tmp / HISTORY, history)
    if embeddings is not None:
        write_embeddings(tmp, embeddings)
    if metrics is not None:
        write_json(tmp / METRICS, metrics)


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


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu", label: str | None = None,
               cfg: dict | None = None, checked: bool = False) -> torch.nn.Module:
    """Build the model from config.json and load model.safetensors strictly, in eval mode. The weights'
    header is checked against the model first (sizes, tensor count, names, shapes) before any tensor is read,
    unless `checked` says check_run has just done so."""
    path = Path(path)
    cfg = cfg or read_config(path, label)
    if not checked:
        check_weights(path, cfg, label)
    rel = where(path, WEIGHTS, label)
    try:
        model = build_model(cfg["model"], cfg["model_config"], saved=True)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{where(path, CONFIG, label)}: bad model_config: {err}") from err
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
    """Check the whole run folder once (check_run), then load it: the weights the check passed, the embeddings
    it loaded (for a family with an encoder). `label` names the run in errors (default: the folder's name)."""
    path = Path(path)
    checked = check_run(path, label, load_embeddings=True)
    cfg = checked.config
    model = load_model(path, device, label, cfg, checked=True)
    return Run(path.name, path, cfg, model, checked.history, checked.metrics, checked.embeddings, checked.grids)
