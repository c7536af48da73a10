"""Reading a run's files safely: size limits checked before reading, regular files only (opened without
following links, so nothing outside the folder is ever read), JSON without NaN, bounded folder listings."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

from core.run.layout import CONFIG, EMBEDDINGS, HISTORY, METRICS, SAMPLES, WEIGHTS, CheckpointError, label_of, where

# Limits: an order of magnitude or more above the committed runs (config 1 KB, metrics 5 KB, history 1.4 MB
# with 23,450 steps, weights 7 MB with 34 tensors, embeddings 1.2 MB, PNGs 250 x 250 px).
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
MAX_BYTES = {CONFIG: 64 * KiB, METRICS: 1 * MiB, HISTORY: 16 * MiB, WEIGHTS: 1 * GiB, EMBEDDINGS: 64 * MiB,
             ".png": 8 * MiB}
MAX_ST_HEADER = 1 * MiB  # safetensors JSON header, bytes
MAX_TENSORS = 4096
MAX_HISTORY_COLUMNS = 256  # per part ("steps", "epochs")
MAX_HISTORY_POINTS = 250_000  # per column
MAX_NPZ_MEMBERS = 8
MAX_NPZ_MEMBER = 32 * MiB  # uncompressed
MAX_NPZ_TOTAL = 64 * MiB  # uncompressed, all members
MAX_EMBEDDED = 70_000  # test digits in embeddings.npz
MAX_PNG_SIDE = 4096  # pixels
MAX_SAMPLE_GRIDS = 1000
MAX_ENTRIES = 256  # entries in a run folder (top level)
MAX_STRING = 1000  # characters of a string field in config.json


def limit_for(name: str) -> int:
    """The byte limit of a run file, by name (PNGs by suffix)."""
    return MAX_BYTES.get(name) or MAX_BYTES.get(Path(name).suffix, MAX_BYTES[CONFIG])


def open_regular(file: Path, rel: str, limit: int | None = None):
    """Open a run file for reading: no symbolic link, a regular file (not a pipe or device), at most
    `limit` bytes (default: limit_for its name). Returns (binary file object, size)."""
    limit = limit_for(file.name) if limit is None else limit
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(file, flags)
    except FileNotFoundError:
        if os.path.islink(file):
            raise CheckpointError(f"{rel}: is a symbolic link; a run holds regular files only") from None
        raise CheckpointError(f"{rel}: missing") from None
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(file):
            raise CheckpointError(f"{rel}: is a symbolic link; a run holds regular files only") from None
        raise CheckpointError(f"{rel}: cannot be read ({err.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"{rel}: not a regular file")
        if st.st_size > limit:
            raise CheckpointError(f"{rel}: {st.st_size:,} bytes, over the limit of {limit:,}")
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def open_in_run(path: Path, name: str, label: str | None = None):
    """Open the run file `name` of the run folder `path` (open_regular: limits, regular files only). Returns
    (binary file object, size, the file as errors name it)."""
    rel = where(path, name, label)
    if not path.is_dir():
        raise CheckpointError(f"{label_of(path, label)}: no such run folder")
    f, size = open_regular(path / name, rel)
    return f, size, rel


def read_json(path: Path, name: str, label: str | None = None):
    """Parse a run's JSON file (size-limited, regular file); NaN and Infinity are refused."""
    f, _, rel = open_in_run(path, name, label)
    with f:
        raw = f.read(limit_for(name) + 1)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise CheckpointError(f"{rel}: not valid JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError, over-long integers, NaN
        raise CheckpointError(f"{rel}: not valid JSON ({str(err)[:200]})") from None


def _entries(folder: Path, rel: str, limit: int) -> list[os.DirEntry]:
    out = []
    with os.scandir(folder) as it:
        for entry in it:
            out.append(entry)
            if len(out) > limit:
                raise CheckpointError(f"{rel}: more than {limit} entries")
    return out


def check_folder(path: str | os.PathLike, label: str | None = None) -> list[Path]:
    """The folder itself and everything in it (and in samples/): no symbolic links, no pipes, sockets or
    devices, bounded entry counts. Returns the sample grid PNGs in epoch order."""
    path = Path(path)
    name = label_of(path, label)
    try:
        st = os.lstat(path)
    except OSError:
        raise CheckpointError(f"{name}: no such run folder") from None
    if stat.S_ISLNK(st.st_mode):
        raise CheckpointError(f"{name}: the run folder is a symbolic link; runs must be real folders")
    if not stat.S_ISDIR(st.st_mode):
        raise CheckpointError(f"{name}: no such run folder")
    grids = []
    for entry in _entries(path, name, MAX_ENTRIES):
        rel = f"{name}/{entry.name}"
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            raise CheckpointError(f"{rel}: is a symbolic link; a run holds regular files only")
        if entry.name == SAMPLES:
            if not stat.S_ISDIR(mode):
                raise CheckpointError(f"{rel}: not a folder")
            for grid in _entries(Path(entry.path), rel, MAX_SAMPLE_GRIDS):
                grel = f"{rel}/{grid.name}"
                gmode = grid.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(gmode):
                    raise CheckpointError(f"{grel}: is a symbolic link; a run holds regular files only")
                if not (stat.S_ISREG(gmode) or stat.S_ISDIR(gmode)):
                    raise CheckpointError(f"{grel}: not a regular file")
                if grid.name.startswith("epoch_") and grid.name.endswith(".png"):
                    grids.append(Path(grid.path))
        elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise CheckpointError(f"{rel}: not a regular file")
    return sorted(grids)
