"""The local dispatcher: one process that holds job.lock and runs the queued jobs one at a time, oldest first.

`ensure` (called under queue.lock by whoever queues or reads the queue) starts `python -m core.jobs work
<jobs_dir>` when jobs wait and nobody holds job.lock: in its own session (signals sent to Streamlit never
reach it), at lower CPU priority, with absolute paths (it runs in the repository, not the server's working
folder). It runs each job in a child `python -m core.jobs run <jobdir>` that inherits the lock's descriptor,
so while either lives the lock is held. It leaves, and removes its spawn record, only under queue.lock when
nothing is queued, so an enqueued job always finds a dispatcher or starts one; a job whose dispatcher died
hands the queue over itself when it ends (`hand_over`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from core import paths
from core.jobs import store
from core.jobs.spec import ACTIVE
from core.processes import alive, child_env

REPO = paths.PROJECT
SPAWN_GRACE_S = 3.0  # a dispatcher started this recently and still alive is left to take the lock
NICE = 10  # the dispatcher and the jobs run at this lower CPU priority than the web server
LOCK_FD_ENV, DISPATCHER_ENV = "RETRAIN_LOCK_FD", "RETRAIN_DISPATCHER_PID"  # what a job knows of its dispatcher


def ensure(jobs_dir: Path) -> None:
    """Caller holds queue.lock: start a dispatcher if jobs wait, none holds job.lock and none was started
    within SPAWN_GRACE_S (a fresh one may still be importing)."""
    jobs_dir = Path(jobs_dir).resolve()  # the dispatcher runs in REPO: a relative folder would mean another one
    if not any(store._read_json(d / store.STATUS).get("state") == "queued" for d in store._job_dirs(jobs_dir)):
        return
    if not store._lock_free(jobs_dir):
        return
    # A dispatcher removes its record under queue.lock as it leaves: a record still there belongs to one that
    # is starting (it reads the queue once it holds job.lock), unless it is old or its process is gone.
    last = store._read_json(jobs_dir / store.SPAWNED)
    if time.time() - last.get("at", 0) < SPAWN_GRACE_S and alive(last.get("pid")):
        return
    env = child_env()
    with open(jobs_dir / "dispatcher.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "core.jobs", "work", str(jobs_dir)], cwd=REPO, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # Streamlit's Ctrl-C / SIGTERM don't reach it
    store._write_json(jobs_dir / store.SPAWNED, {"pid": proc.pid, "at": time.time()})
    # Reap the child when it exits, so a finished dispatcher does not linger as a zombie of this process.
    threading.Thread(target=proc.wait, daemon=True).start()


def run_dispatcher(jobs_dir) -> int:
    """Body of `python -m core.jobs work <jobs_dir>`: hold job.lock and run queued jobs until none is left."""
    jobs_dir = Path(jobs_dir).resolve()
    _lower_priority()
    fd = None
    deadline = time.monotonic() + 2.0  # a status reader's shared probe holds the lock for microseconds
    while fd is None:
        fd = store._try_lock(jobs_dir)
        if fd is None:
            if time.monotonic() > deadline:
                with store._queue_lock(jobs_dir):
                    _forget_spawn(jobs_dir)  # another process runs the queue; whoever frees job.lock restarts it
                return 0
            time.sleep(0.02)
    try:
        while True:
            with store._queue_lock(jobs_dir):
                nxt = next((d for d in store._job_dirs(jobs_dir)
                            if store._read_json(d / store.STATUS).get("state") == "queued"), None)
                if nxt is None:
                    # under queue.lock: an enqueuer after us sees the lock free and no record, and starts one
                    os.close(fd)
                    fd = None
                    _forget_spawn(jobs_dir)
                    return 0
                st = store._read_json(nxt / store.STATUS)
                st.update(state="running", phase="starting", started=time.time(), updated=time.time(), pid=None)
                store._write_json(nxt / store.STATUS, st)
            _run_child(jobs_dir, nxt, fd)
    finally:
        if fd is not None:
            os.close(fd)


def _forget_spawn(jobs_dir: Path) -> None:
    """Caller holds queue.lock: this dispatcher leaves, so its record must not hold back the next start."""
    if store._read_json(jobs_dir / store.SPAWNED).get("pid") == os.getpid():
        (jobs_dir / store.SPAWNED).unlink(missing_ok=True)


def _lower_priority() -> None:
    try:
        os.nice(NICE)
    except OSError:
        pass


def _run_child(jobs_dir: Path, jobdir: Path, fd: int) -> None:
    job = store._read_json(jobdir / store.JOB)
    threads = int(job.get("caps", {}).get("threads", 1))  # OpenMP (t-SNE too) would otherwise take every core
    env = child_env(threads, **{LOCK_FD_ENV: str(fd), DISPATCHER_ENV: str(os.getpid())})
    try:
        with open(jobdir / store.LOG, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "core.jobs", "run", str(jobdir)], cwd=REPO, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    pass_fds=(fd,),  # the job holds job.lock too, even if we die
                                    start_new_session=True)
    except OSError as err:
        st = store._read_json(jobdir / store.STATUS)
        st.update(state="failed", reason=f"the job process did not start: {err.strerror}", finished=time.time())
        store._write_json(jobdir / store.STATUS, st)
        return
    st = store._read_json(jobdir / store.STATUS)
    if st.get("state") == "running" and not st.get("pid"):
        st["pid"] = proc.pid
        store._write_json(jobdir / store.STATUS, st)
    proc.wait()
    with store._queue_lock(jobs_dir):
        st = store._read_json(jobdir / store.STATUS)
        if st.get("state") in ACTIVE:  # killed before it could report
            st["state"] = "running"
            store._write_json(jobdir / store.STATUS, st)
            store._mark_dead(jobdir)


def hand_over(jobdir: Path) -> None:
    """The job is over. If its dispatcher died meanwhile, nobody would start the next queued job until a page
    reads the queue: free job.lock and start a dispatcher ourselves."""
    try:
        parent = int(os.environ.get(DISPATCHER_ENV, ""))
        fd = int(os.environ.get(LOCK_FD_ENV, ""))
    except ValueError:
        return
    if os.getppid() == parent:  # the dispatcher lives and runs the next job
        return
    try:
        os.close(fd)
    except OSError:
        pass
    with store._queue_lock(jobdir.parent):
        ensure(jobdir.parent)
