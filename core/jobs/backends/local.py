"""The `local` backend (the default): the queue on this machine's disk, one job at a time, in the server's
container. Needs nothing; jobs survive a server restart (queued ones are resumed) as long as the jobs folder
does.

Owners: each visitor passes a private token; job.json keeps only its SHA-256 digest. Only the owner's token
cancels or removes a job; an owner has at most one queued or running job; the queue holds at most
Caps.max_queue waiting jobs. `cancel_all` is for administrators and tests. Errors of the jobs folder itself
(disk full, read-only, permission denied) surface as JobError with a short message.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from dataclasses import asdict
from pathlib import Path

from core import families
from core.checks import check_int
from core.jobs import dispatcher, store
from core.jobs.spec import (
    ACTIVE,
    EVAL_SAMPLES,
    EVAL_SEEDS,
    Caps,
    JobBusy,
    JobError,
    NotOwner,
    is_owner,
    owner_id,
    run_re,
    validate_spec,
)
from core.jobs.store import _fs_errors

TAIL_S = {"train": 15.0, "evaluate": 45.0}  # start-up, latent map and saving / the whole evaluation


def _estimate_s(job: dict, done: list[dict]) -> float:
    """Expected run time of a job from its spec: the newest finished job like it, else its family's epoch_s."""
    s = job.get("spec", {})
    if job.get("kind") == "evaluate":
        same = [d for d in done if d.get("kind") == "evaluate" and d.get("job_s")]
        return same[0]["job_s"] if same else TAIL_S["evaluate"]
    key = (s.get("model"), s.get("preset"), s.get("dataset"))
    for d in done:
        ds = d.get("spec", {})
        if d.get("kind", "train") == "train" and (ds.get("model"), ds.get("preset"), ds.get("dataset")) == key \
                and d.get("elapsed_s") and d.get("epoch") and not d.get("synthetic"):
            per_epoch = d["elapsed_s"] / d["epoch"]
            break
    else:
        known = families.FAMILIES.get(s.get("model"))
        epoch_s = known.epoch_s.get(s.get("preset"), 10.0) if known else 10.0
        per_epoch = epoch_s * (s.get("synthetic") or 60_000) / 60_000
    budget = job.get("time_budget_s") or 1e7
    return min(per_epoch * s.get("epochs", 1), budget) + TAIL_S["train"]


@_fs_errors
def queue(jobs_dir, start_worker: bool = True) -> list[dict]:
    """The active jobs in run order (running first), each status with `position` (0 = running, 1 = next)
    and `wait_s` / `end_s`: estimated seconds until it starts / ends. Starts a dispatcher when jobs wait
    and none runs (after a restart or a kill)."""
    jobs_dir = Path(jobs_dir)
    statuses = [store._status(d) for d in store._job_dirs(jobs_dir)]
    active = [s for s in statuses if s.get("state") in ACTIVE]
    if start_worker and any(s["state"] == "queued" for s in active) and store._lock_free(jobs_dir):
        with store._queue_lock(jobs_dir):
            dispatcher.ensure(jobs_dir)
    done = [s for s in reversed(statuses) if s.get("state") == "done"]
    active.sort(key=lambda s: (s["state"] != "running", s["job_id"]))
    t = 0.0
    for i, s in enumerate(active):
        estimate = _estimate_s(s, done)
        if s["state"] == "running":
            if s.get("phase") == "training" and s.get("eta_s") is not None:
                left = s["eta_s"] + TAIL_S["train"]
            else:
                left = max(estimate - (time.time() - s.get("started", time.time())), 5.0)
        else:
            left = estimate
        s.update(position=i if active[0]["state"] == "running" else i + 1, wait_s=round(t), end_s=round(t + left))
        t += left
    return active


def current_job(jobs_dir) -> dict | None:
    """The running job's status (or the first queued one), or None when the queue is empty."""
    active = queue(jobs_dir)
    return active[0] if active else None


@_fs_errors
def owner_jobs(jobs_dir, token: str) -> list[dict]:
    """This owner's jobs, newest first; the active ones with `position`, `wait_s` and `end_s` as in `queue`."""
    if not token:
        return []
    me = owner_id(token)
    active = {s["job_id"]: s for s in queue(jobs_dir)}
    return [active.get(s["job_id"], s) for s in store.list_jobs(jobs_dir) if s.get("owner") == me]


def _enqueue(jobs_dir: Path, kind: str, spec: dict, owner: str, caps: Caps, extra: dict) -> str:
    jobs_dir.mkdir(parents=True, exist_ok=True)
    me = owner_id(owner)
    with store._queue_lock(jobs_dir):
        active = [s for s in (store._status(d) for d in store._job_dirs(jobs_dir)) if s.get("state") in ACTIVE]
        mine = next((s for s in active if s.get("owner") == me), None)
        if mine is not None:
            raise JobBusy("you already have a job in the queue; cancel it or wait for it to finish", mine)
        waiting = [s for s in active if s["state"] == "queued"]
        if len(waiting) >= caps.max_queue:
            raise JobBusy(f"the queue is full ({caps.max_queue} jobs waiting); try again when one has finished")
        for old in [d for d in store._job_dirs(jobs_dir)][:-store.KEEP_JOBS]:
            if store._read_json(old / store.STATUS).get("state") not in ACTIVE:
                shutil.rmtree(old, ignore_errors=True)
        job_id = store._new_job_id(jobs_dir)
        jobdir = jobs_dir / job_id
        jobdir.mkdir()
        try:
            store._write_json(jobdir / store.JOB, {"job_id": job_id, "kind": kind, "spec": spec, "caps": asdict(caps),
                                       "owner": me, **extra})
            store._write_json(jobdir / store.STATUS, {"job_id": job_id, "kind": kind, "state": "queued", "spec": spec,
                                          "epochs": spec.get("epochs"), "owner": me, "created": time.time(),
                                          "time_budget_s": caps.time_budget_s,
                                          "synthetic": bool(spec.get("synthetic"))})
        except BaseException:
            shutil.rmtree(jobdir, ignore_errors=True)  # a half-written job (disk full) is never queued
            raise
        dispatcher.ensure(jobs_dir)
    return job_id


def _check_disk(runs_dir: Path, caps: Caps) -> None:
    free_mb = shutil.disk_usage(runs_dir).free / 2**20
    if free_mb < caps.min_free_mb:
        raise JobError(f"only {free_mb:.0f} MB free where runs are saved; a job needs {caps.min_free_mb:.0f} MB "
                       "(delete old runs or lower RETRAIN_MIN_FREE_MB)")


@_fs_errors
def start_job(spec: dict, runs_dir, jobs_dir=None, data_dir=None, caps: Caps | None = None,
              owner: str = "local-user") -> str:
    """Check the spec, the data and the disk, queue a training job for `owner` and return its id (at once).

    Raises ValueError for a bad spec, JobBusy when the owner already has a job or the queue is full,
    JobError when the data set is missing, the disk is nearly full or the jobs folder is unusable.
    """
    caps = caps or Caps.from_env()
    s = validate_spec(spec, caps)
    runs_dir = Path(runs_dir).resolve()
    jobs_dir = Path(jobs_dir or store.default_jobs_dir(runs_dir)).resolve()
    if s.get("synthetic"):
        data_dir = None
    else:
        from core import data  # imports torch: only needed for real data

        data_dir = Path(data_dir or data.default_root()).resolve()
        if not data.is_available(s["dataset"], data_dir):
            raise JobError(f"{s['dataset']} is not available on this server; choose another data set")
    runs_dir.mkdir(parents=True, exist_ok=True)
    _check_disk(runs_dir, caps)
    return _enqueue(jobs_dir, "train", s, owner, caps,
                    {"runs_dir": str(runs_dir), "data_dir": str(data_dir) if data_dir else None})


@_fs_errors
def start_evaluation(run: str, runs_dir, classifier, jobs_dir=None, data_dir=None, caps: Caps | None = None,
                     owner: str = "local-user", synthetic: int | None = None) -> str:
    """Queue a quick evaluation (EVAL_SAMPLES samples, one seed) of the retrained run `run` in runs_dir;
    it writes the run's metrics.json (shown on the Metrics page). `classifier`: the data set's classifier run."""
    caps = caps or Caps.from_env()
    if not isinstance(run, str) or not run_re().match(run):
        raise ValueError(f"only runs trained on the Retrain page can be evaluated here, not {run!r}")
    runs_dir = Path(runs_dir).resolve()
    if not (runs_dir / run / "config.json").is_file():
        raise JobError(f"run {run} no longer exists (only the newest {caps.keep_runs} retrained runs are kept)")
    if not (Path(classifier) / "model.safetensors").is_file():
        raise JobError("this server has no evaluation classifier for that data set")
    if synthetic is not None:
        check_int("synthetic", synthetic, 16, 100_000)
    jobs_dir = Path(jobs_dir or store.default_jobs_dir(runs_dir)).resolve()
    if synthetic is None:
        from core import data

        data_dir = Path(data_dir or data.default_root()).resolve()
    return _enqueue(jobs_dir, "evaluate", {"run": run, "samples": EVAL_SAMPLES, "seeds": list(EVAL_SEEDS),
                                           "synthetic": synthetic}, owner, caps,
                    {"runs_dir": str(runs_dir), "data_dir": str(data_dir) if data_dir and not synthetic else None,
                     "classifier": str(Path(classifier).resolve()), "run": run})


def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the job process leads its own session: this reaches its children too
    except (ProcessLookupError, PermissionError):
        pass


def _stop(jobs_dir: Path, job_id: str, timeout: float, reason: str) -> dict | None:
    jobdir = jobs_dir / job_id
    with store._queue_lock(jobs_dir):
        st = store._status(jobdir)
        if st.get("state") == "queued":  # not started: remove it from the queue
            st.update(state="cancelled", reason=reason, finished=time.time())
            store._write_json(jobdir / store.STATUS, st)
            return st
        if st.get("state") != "running":
            return st or None
        (jobdir / store.CANCEL).write_text(reason)  # checked by the job every step
    t0 = time.monotonic()
    signalled = set()
    while True:
        st = store._status(jobdir)
        if st.get("state") not in ACTIVE:
            return st
        waited = time.monotonic() - t0
        pid = st.get("pid")
        # The flag is seen within a step; outside the step loop (importing torch, t-SNE) only a signal works,
        # and SIGTERM still lets the job clean up. SIGKILL is the last resort.
        term_after = 0.3 * timeout if st.get("phase") == "training" else 0.0
        for sig, after in ((signal.SIGTERM, term_after), (signal.SIGKILL, 0.7 * timeout)):
            if pid and waited > after and sig not in signalled and st.get("state") == "running":
                _signal(pid, sig)
                signalled.add(sig)
        if waited > timeout + 5:
            return st
        time.sleep(0.01)


@_fs_errors
def cancel_job(jobs_dir, job_id: str, owner: str, timeout: float = 2.0) -> dict | None:
    """Stop the owner's running job (flag file, then SIGTERM, then SIGKILL) or remove it from the queue;
    returns the final status (None for an unknown job). NotOwner when `owner` is not the job's owner."""
    jobs_dir = Path(jobs_dir)
    st = store.job_status(jobs_dir, job_id)
    if st is None:
        return None
    if not is_owner(st, owner):
        raise NotOwner("only the visitor who queued this job can cancel it")
    return _stop(jobs_dir, job_id, timeout, "cancelled by its owner")


@_fs_errors
def cancel_all(jobs_dir, timeout: float = 2.0) -> list[dict]:
    """Administrator's stop: remove every queued job, then stop the running one. Returns their final statuses."""
    jobs_dir = Path(jobs_dir)
    out = []
    for s in sorted(queue(jobs_dir, start_worker=False), key=lambda s: s["state"] == "running"):
        out.append(_stop(jobs_dir, s["job_id"], timeout, "cancelled by the administrator"))
    return out
