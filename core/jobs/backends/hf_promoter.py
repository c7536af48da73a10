"""The hf-jobs backend's promoter: a small process (`python -m core.jobs promote <state_dir>`) that submits the
jobs waiting for one of the RETRAIN_MAX_CONCURRENT slots as slots free, while no page reads the queue. It lives
while jobs wait and holds <state_dir>/promoter.lock (flock, on the container's own disk) for its life."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from core import paths
from core.jobs import store
from core.jobs.spec import JobError
from core.processes import child_env

PROMOTER_LOCK = "promoter.lock"
PROMOTE_EVERY_S = 5.0


def ensure_promoter(state_dir: Path) -> None:
    """Caller holds queue.lock and jobs wait: start a promoter unless one holds promoter.lock."""
    lock = state_dir / PROMOTER_LOCK
    if lock.exists():
        probe = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a promoter lives
        finally:
            os.close(probe)
    with open(state_dir / "promoter.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "core.jobs", "promote", str(state_dir.resolve())],
                                cwd=paths.PROJECT, env=child_env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    threading.Thread(target=proc.wait, daemon=True).start()


def run_promoter(state_dir) -> int:
    """Body of `python -m core.jobs promote <state_dir>`: hold promoter.lock, submit waiting jobs as slots free,
    leave (under queue.lock) when nothing waits. Its configuration comes from the server's environment."""
    from core.jobs.backends.hf_jobs import HfJobsBackend  # here: hf_jobs imports ensure_promoter from this module

    state_dir = Path(state_dir).resolve()
    fd = os.open(state_dir / PROMOTER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return 0
    backend = HfJobsBackend(paths.runs_dir(), state_dir)
    try:
        while True:
            with store._queue_lock(state_dir):
                try:
                    backend._promote_locked()
                except JobError as err:
                    print(f"promote: {err}", flush=True)
                if not backend._waiting():
                    os.close(fd)  # under queue.lock: an enqueuer after us sees the lock free and starts one
                    fd = None
                    return 0
            time.sleep(PROMOTE_EVERY_S)
    finally:
        if fd is not None:
            os.close(fd)
