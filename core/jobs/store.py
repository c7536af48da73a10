"""The local queue's store: one folder per job under the jobs folder, read and written under file locks.

A job is a folder <jobs_dir>/<job_id>/ holding job.json (kind, checked spec, owner digest, paths), status.json
(state and progress, replaced atomically about once a second), latest.png (the newest sample grid), cancel (a
flag file) and worker.log. Job ids are UTC timestamps, so folder order is queue order. States: queued ->
running -> done | failed | cancelled.

Two locks: queue.lock (filelock) around every read-modify-write of the queue, and job.lock (flock), held by the
dispatcher and its job for their lives: a running status with a free job.lock means the job's processes died,
and whoever reads it next marks it failed ("process died"). Both need a local disk: a bucket mount has no
file locking, so the jobs folder must never be on one.
"""

from __future__ import annotations

import calendar
import errno
import fcntl
import functools
import json
import os
import re
import shutil
import time
from pathlib import Path

from filelock import FileLock, Timeout

from core.files import free_space, write_json
from core.jobs.spec import JobError
from core.run import layout

LOCK, QUEUE_LOCK, STATUS, JOB, GRID, CANCEL, LOG, SPAWNED = (
    "job.lock", "queue.lock", "status.json", "job.json", "latest.png", "cancel", "worker.log", "dispatcher.json")
KEEP_JOBS = 40  # finished job folders kept for list_jobs
QUEUE_LOCK_S = 10.0  # every step under queue.lock is short: file reads and writes, starting a process
JOB_ID_RE = re.compile(r"^\d{8}-\d{6}-\d{3}$")


def _write_json(path: Path, obj) -> None:
    write_json(path, obj, indent=None)  # compact: status.json is rewritten every second


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def default_jobs_dir(runs_dir) -> Path:
    """$RETRAIN_JOBS_DIR, else <runs_dir>/.jobs (hidden, so list_runs skips it)."""
    return Path(os.environ.get("RETRAIN_JOBS_DIR") or Path(runs_dir) / ".jobs")


FS_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up",
             errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
             errno.EPERM: "permission denied"}


def _fs_errors(func):
    """OSError from the jobs folder -> JobError with a short message (no server path, no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Timeout:
            raise JobError("the job queue is busy; try again in a few seconds") from None
        except OSError as err:
            what = FS_ERRORS.get(err.errno, err.strerror or type(err).__name__)
            raise JobError(f"retraining is unavailable: the jobs folder cannot be used ({what}). "
                           "The rest of the dashboard works; an administrator must free space or fix "
                           "RETRAIN_JOBS_DIR / RUNS_DIR.") from err
    return wrapper


def _job_dirs(jobs_dir) -> list[Path]:
    """Job folders, oldest first (ids are UTC timestamps)."""
    d = Path(jobs_dir)
    return sorted(p for p in d.iterdir() if p.is_dir() and JOB_ID_RE.match(p.name)) if d.is_dir() else []


_QUEUE_LOCKS: dict[str, FileLock] = {}


def _queue_lock(jobs_dir: Path) -> FileLock:
    """One FileLock object per folder: re-entrant within a thread (two objects on one file would block each
    other, flock being per open file), exclusive between threads and processes."""
    key = str(Path(jobs_dir).resolve())
    lock = _QUEUE_LOCKS.get(key)
    if lock is None:
        lock = _QUEUE_LOCKS.setdefault(key, FileLock(Path(key) / QUEUE_LOCK, timeout=QUEUE_LOCK_S, thread_local=True))
    return lock


def _try_lock(jobs_dir: Path, shared: bool = False) -> int | None:
    """An fd holding job.lock (flock), or None when someone else holds it."""
    fd = os.open(jobs_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _lock_free(jobs_dir: Path) -> bool:
    """True when no dispatcher or job process holds job.lock (a shared probe: probes never block each other)."""
    if not (Path(jobs_dir) / LOCK).exists():
        return True
    fd = _try_lock(Path(jobs_dir), shared=True)
    if fd is None:
        return False
    os.close(fd)
    return True


def _mark_dead(jobdir: Path) -> dict:
    """Caller holds queue.lock and has seen job.lock free: a running job there has no process left."""
    st = _read_json(jobdir / STATUS)
    if st.get("state") == "running":
        job = _read_json(jobdir / JOB)
        if job.get("runs_dir") and job.get("run"):  # a run SIGKILLed while saving leaves its temp folder
            for tmp in Path(job["runs_dir"]).glob(f".{job['run']}.tmp-*"):
                shutil.rmtree(tmp, ignore_errors=True)
        cancelled = (jobdir / CANCEL).exists()
        reason = "cancelled by its owner" if cancelled else "process died"
        min_free = (job.get("caps") or {}).get("min_free_mb", 0)
        if not cancelled and shutil.disk_usage(jobdir).free < min_free * 2**20:  # it could not write why
            reason = f"disk full: the job's process died with {free_space(jobdir)} where it writes"
        st.update(state="cancelled" if cancelled else "failed", finished=time.time(), reason=reason)
        _write_json(jobdir / STATUS, st)
    return st


def _status(jobdir: Path) -> dict:
    """status.json of one job; a running job whose processes are gone is marked failed (or cancelled) first."""
    st = _read_json(jobdir / STATUS)
    if st.get("state") != "running" or not _lock_free(jobdir.parent):
        return st
    with _queue_lock(jobdir.parent):
        if _lock_free(jobdir.parent):  # no dispatcher can mark a job running while we hold queue.lock
            st = _mark_dead(jobdir)
        else:
            st = _read_json(jobdir / STATUS)
    return st


@_fs_errors
def job_status(jobs_dir, job_id: str) -> dict | None:
    if not JOB_ID_RE.match(job_id or ""):
        raise ValueError(f"invalid job id {job_id!r}")
    jobdir = Path(jobs_dir) / job_id
    return _status(jobdir) if jobdir.is_dir() else None


@_fs_errors
def list_jobs(jobs_dir) -> list[dict]:
    """Statuses of the kept jobs, newest first."""
    return [_status(d) for d in reversed(_job_dirs(jobs_dir))]


def _unique_name(parent: Path, base: str) -> str:
    layout.check_name(base)  # the runs' one name rule (core.run.layout)
    name, n = base, 1
    while (parent / name).exists() or any(parent.glob(f".{name}.tmp-*")):
        n += 1
        name = f"{base}-{n}"
    return name


def _new_job_id(jobs_dir: Path) -> str:
    """A UTC timestamp with milliseconds, later than every existing id, so folder order is queue order."""
    now_ms = int(time.time() * 1000)
    last = max((p.name for p in _job_dirs(jobs_dir)), default=None)
    if last:
        now_ms = max(now_ms, calendar.timegm(time.strptime(last[:15], "%Y%m%d-%H%M%S")) * 1000 + int(last[16:]) + 1)
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(now_ms // 1000))}-{now_ms % 1000:03d}"
