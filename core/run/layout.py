"""What a run folder holds and how runs are named and found; the error every check raises.

```
<run>/  config.json · model.safetensors · history.json · samples/epoch_NNN.png · embeddings.npz · metrics.json
        nearest.png
```
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CONFIG, WEIGHTS, HISTORY, METRICS, EMBEDDINGS, SAMPLES = (
    "config.json", "model.safetensors", "history.json", "metrics.json", "embeddings.npz", "samples")
NEAREST = "nearest.png"
EMBEDDING_KEYS = ("indices", "labels", "codes", "tsne")
OPTIONAL_EMBEDDING_KEYS = ("images",)  # (N, H, W) uint8 test digits


class CheckpointError(Exception):
    """A run folder is missing, corrupt, truncated, oversized or does not match its config."""


# The one rule for a run's name, wherever one is made or read: a folder in a runs folder, a pulled run (`core
# pull --name`), a trained or retrained run, an archive's folder. Letters, digits, '.', '_' and '-', starting
# with a letter or digit: nothing a spreadsheet reads as a formula (= + - @ first), Markdown as a link, a shell
# as an option or a zip extractor as a way out of its folder (.. / \\).
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAME_RULE = "use letters, digits, '.', '_' and '-', starting with a letter or digit (at most 100 characters)"


def name_problem(name: object) -> str | None:
    """Why `name` is not a valid run name, or None when it is."""
    return None if isinstance(name, str) and RUN_NAME.fullmatch(name) else f"invalid run name: {NAME_RULE}"


def check_name(name: object) -> str:
    """`name` when it is a valid run name, else ValueError saying the rule."""
    why = name_problem(name)
    if why:
        raise ValueError(f"{name!r}: {why}")
    return name


def label_of(path: str | os.PathLike, label: str | None = None) -> str:
    """How a run is named in messages: `label`, else the folder's name (relative to the runs folder)."""
    return label or Path(path).name


def where(path: Path, name: str, label: str | None = None) -> str:
    """`<run>/<file>`: a file as errors name it (relative to the runs folder, never the server's path)."""
    return f"{label_of(path, label)}/{name}"


def classifier_run(dataset: str) -> str:
    """The folder name of a data set's evaluation classifier (checkpoints/<dataset>-classifier)."""
    return f"{dataset}-classifier"


def run_path(root: str | os.PathLike, name: str) -> Path:
    """root/name for a valid run name (name_problem); the rule leaves no way out of root, checked again."""
    why = name_problem(name)
    if why:
        raise CheckpointError(f"{name!r}: {why}")
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


def sample_grids(path: str | os.PathLike) -> list[Path]:
    """The per-epoch sample grid PNGs, in epoch order."""
    d = Path(path) / SAMPLES
    return sorted(d.glob("epoch_*.png")) if d.is_dir() else []


def file_stamp(path: str | os.PathLike, name: str = CONFIG) -> tuple | None:
    """A cheap fingerprint of one run file for cache keys (the folder itself for name ""): (mtime_ns, size,
    inode, mode), not following links; None when it is missing. Any replacement (atomic rename) or edit
    changes it."""
    try:
        st = os.lstat(Path(path) / name)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode


def stamp(path: str | os.PathLike) -> tuple:
    """The fingerprint of a whole run folder: file_stamp of the folder, its samples/ and every file a check
    reads."""
    return tuple(file_stamp(path, name) for name in ("", SAMPLES, CONFIG, WEIGHTS, HISTORY, METRICS, EMBEDDINGS,
                                                     NEAREST))
