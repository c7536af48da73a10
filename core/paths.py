"""Every folder the project reads or writes, resolved in one place: absolute, from an environment variable
or a default inside the project folder (so the CLI, the dashboard and the job worker agree wherever they
are started from).

| root | variable | default |
| --- | --- | --- |
| committed runs | CHECKPOINT_DIR | checkpoints/ |
| retrained runs | RUNS_DIR | <PERSISTENT_DIR>/runs when writable (a Space's persistent storage), else runs/ |
| the job queue | RETRAIN_JOBS_DIR | <RUNS_DIR>/.jobs, else runs/.jobs on the container's own disk (never a bucket) |
| data sets | DATA_DIR | data/ |
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]  # the folder holding core/ and dashboard/


def _absolute(value: str | os.PathLike) -> Path:
    """Absolute without resolving links (a linked checkpoints folder keeps the name it was given)."""
    return Path(os.path.abspath(Path(value).expanduser()))


def checkpoints_dir() -> Path:
    """The committed runs: $CHECKPOINT_DIR, default checkpoints/ in the project."""
    return _absolute(os.environ.get("CHECKPOINT_DIR") or PROJECT / "checkpoints")


def runs_dir() -> Path:
    """Runs trained from the browser or a job: $RUNS_DIR; else <$PERSISTENT_DIR>/runs when that folder exists and
    is writable (the Dockerfile sets PERSISTENT_DIR=/data, where a Space's persistent storage is mounted); else
    runs/ in the project (git-ignored; a Space restart empties it)."""
    if os.environ.get("RUNS_DIR"):
        return _absolute(os.environ["RUNS_DIR"])
    persistent = os.environ.get("PERSISTENT_DIR")
    if persistent and os.path.isdir(persistent) and os.access(persistent, os.W_OK | os.X_OK):
        return _absolute(persistent) / "runs"
    return PROJECT / "runs"


def jobs_dir() -> Path:
    """The job queue: $RETRAIN_JOBS_DIR; else .jobs/ inside $RUNS_DIR when that is set; else runs/.jobs in the
    project, on the container's own disk even when runs go to persistent storage: the queue takes file locks
    and rewrites its status every second, which a bucket mount (no locking, stale reads) cannot serve."""
    if os.environ.get("RETRAIN_JOBS_DIR"):
        return _absolute(os.environ["RETRAIN_JOBS_DIR"])
    if os.environ.get("RUNS_DIR"):
        return _absolute(os.environ["RUNS_DIR"]) / ".jobs"
    return PROJECT / "runs" / ".jobs"


def data_dir() -> Path:
    """The data root (torchvision's layout, e.g. MNIST/raw): $DATA_DIR, default data/ in the project."""
    return _absolute(os.environ.get("DATA_DIR") or PROJECT / "data")
