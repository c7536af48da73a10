"""Background jobs for the dashboard's Retrain page: a queue with owners, one job running at a time.

A job is a folder <jobs_dir>/<job_id>/ holding job.json (kind, checked spec, owner, paths), status.json
(state and progress, replaced atomically about once a second), latest.png (the newest sample grid), cancel
(a flag file) and worker.log. Job ids are UTC timestamps, so folder order is queue order.

States: queued -> running -> done | failed | cancelled. Kinds: "train" (a short training run) and
"evaluate" (a quick evaluation of a retrained run, written into its metrics.json).

Processes. `enqueue` writes a queued job under <jobs_dir>/queue.lock and makes sure a dispatcher runs:
`python -m core.jobs work <jobs_dir>`, in its own session (signals sent to Streamlit never reach it) and
at lower CPU priority (os.nice). The dispatcher holds <jobs_dir>/job.lock (flock) for its life and runs
the queued jobs oldest first, each in a child `python -m core.jobs run <jobdir>` that inherits the lock's
file descriptor: while either process lives the lock is held, so there is never a second job running,
and a running status with a free lock means the job's processes died; whoever reads it next marks it
failed ("process died"). The dispatcher leaves (and frees the lock) only under queue.lock when nothing is
queued, so an enqueued job always finds a dispatcher or starts one.

Restarts. Queued jobs live on disk: after a server restart (or a dispatcher killed with -9) they are kept
and resumed; every queue read starts a dispatcher when jobs wait and none holds the lock (at most one
start every SPAWN_GRACE_S seconds), so a hand-over interrupted by kills recovers within seconds.

Owners. Each browser session passes a private token; job.json keeps only its SHA-256 digest. Only the
owner's token cancels or removes a job (`cancel_job`); an owner has at most one queued or running job;
the queue holds at most Caps.max_queue waiting jobs. `cancel_all` is for administrators and tests.

Errors of the jobs folder itself (disk full, read-only, permission denied) surface as JobError with a
short message, never as a traceback. This module imports no torch at the top: a dispatcher starts in a
fraction of a second.
"""

from __future__ import annotations

import calendar
import errno
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from filelock import FileLock, Timeout

from core import datasets, families
from core.checks import LATENT_DIM_DEFAULT, LATENT_DIM_RANGE, check_int
from core.files import write_json

REPO = Path(__file__).resolve().parents[1]
KINDS = ("train", "evaluate")
# The form's fields and their defaults: the dense preset trains an MNIST epoch in seconds on a CPU. The model
# families (core.families: generative ones) and data sets (core.datasets) are read from their records.
DEFAULT_SPEC = {"model": "vae", "dataset": "mnist", "preset": "seed", "epochs": 3, "batch_size": 128,
                "lr": None, "latent_dim": LATENT_DIM_DEFAULT, "seed": 0}  # lr None = the model's default
# Not offered by the page: `synthetic` = train on N fake images (tests), `limit` = first N images of each split.
DEBUG_KEYS = ("synthetic", "limit")
ACTIVE = ("queued", "running")
LOCK, QUEUE_LOCK, STATUS, JOB, GRID, CANCEL, LOG, SPAWNED = (
    "job.lock", "queue.lock", "status.json", "job.json", "latest.png", "cancel", "worker.log", "dispatcher.json")
STATUS_INTERVAL_S = 1.0  # at most one status write a second, besides epoch ends and state changes
HISTORY_POINTS = 200  # the loss history in status.json is averaged down to at most this many points
KEEP_JOBS = 40  # finished job folders kept for list_jobs
QUEUE_LOCK_S = 10.0  # every step under queue.lock is short: file reads and writes, starting a process
SPAWN_GRACE_S = 3.0  # a dispatcher started this recently and still alive is left to take the lock
NICE = 10  # the dispatcher and the jobs run at this lower CPU priority than the web server
EVAL_SAMPLES, EVAL_SEEDS = 2000, (0,)  # the Retrain page's quick evaluation
TAIL_S = {"train": 15.0, "evaluate": 45.0}  # start-up, latent map and saving / the whole evaluation
LOCK_FD_ENV, DISPATCHER_ENV = "RETRAIN_LOCK_FD", "RETRAIN_DISPATCHER_PID"  # what a job knows of its dispatcher
JOB_ID_RE = re.compile(r"^\d{8}-\d{6}-\d{3}$")


def models() -> list[str]:
    """The families a visitor may train: the generative ones."""
    return [f.name for f in families.generative()]


def run_re() -> re.Pattern:
    """Names of the runs the Retrain page writes: ui-<model>-<data set>-<YYYYmmdd-HHMMSS>[-N]."""
    alt = lambda names: "|".join(re.escape(n) for n in names)  # noqa: E731
    return re.compile(rf"^ui-(?:{alt(models())})-(?:{alt(datasets.names())})-(\d{{8}}-\d{{6}})(?:-(\d+))?$")


class JobError(RuntimeError):
    """A job cannot be queued or read for a reason outside its spec (data missing, disk full, queue full)."""


class JobBusy(JobError):
    """The queue is full, or this owner already has a job waiting or running (`status`: that job)."""

    def __init__(self, message: str, status: dict | None = None):
        super().__init__(message)
        self.status = status


class NotOwner(JobError):
    """The token given is not the owner's: only the visitor who queued a job may cancel or remove it."""


class Cancelled(Exception):
    """Raised inside the worker when the cancel flag appears or SIGTERM arrives."""


@dataclass(frozen=True)
class Caps:
    """Limits on what the page may ask for; Caps.from_env() reads RETRAIN_<FIELD> (e.g. RETRAIN_MAX_EPOCHS)."""

    max_epochs: int = 5
    min_batch: int = 16
    max_batch: int = 512
    min_latent: int = LATENT_DIM_RANGE[0]
    max_latent: int = 128  # of the models' LATENT_DIM_RANGE: a bigger z only slows a short CPU run
    min_lr: float = 1e-5
    max_lr: float = 1e-2
    allow_conv: bool = True  # the conv preset is ~10x slower per epoch on a CPU
    time_budget_s: float = 600.0  # training stops (and the run is saved) after this long
    min_free_mb: float = 200.0  # refuse to start with less free space where runs go
    keep_runs: int = 5  # newest ui-* runs kept in runs_dir; older ones are deleted after a success
    # torch / OpenMP threads of the worker. One: on a shared 2-core box two threads were no faster, and
    # without OMP_WAIT_POLICY=PASSIVE they spun against other processes and ran 10x slower.
    threads: int = 1
    # test digits in the run's t-SNE map (as core.embed). 1,000 with scikit-learn's PCA-initialised t-SNE
    # keeps the job's latent map under 10 s on a 2-core CPU (bench/retrain_speed.py prints the time).
    embed_size: int = 1000
    max_queue: int = 8  # jobs waiting behind the running one, all visitors together

    def __post_init__(self):
        ok = (1 <= self.max_epochs and 1 <= self.min_batch <= self.max_batch
              and LATENT_DIM_RANGE[0] <= self.min_latent <= self.max_latent <= LATENT_DIM_RANGE[1]
              and 0 < self.min_lr <= self.max_lr <= 1.0
              and self.keep_runs >= 1 and self.threads >= 1 and self.embed_size >= 10
              and 0 < self.time_budget_s <= 1e7 and self.min_free_mb >= 0 and 1 <= self.max_queue <= 1000)
        if not ok:
            raise ValueError(f"inconsistent retrain caps: {self}")

    @classmethod
    def from_env(cls, env=None) -> Caps:
        env = os.environ if env is None else env
        kwargs = {}
        for f in fields(cls):
            name = f"RETRAIN_{f.name.upper()}"
            raw = env.get(name, "").strip()
            if not raw:
                continue
            try:
                if f.type == "bool":
                    if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                        raise ValueError
                    kwargs[f.name] = raw.lower() in ("1", "true", "yes", "on")
                else:
                    kwargs[f.name] = int(raw) if f.type == "int" else float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a valid {f.type}") from None
        return cls(**kwargs)


# --- the spec ------------------------------------------------------------------------------------
def validate_spec(spec: dict, caps: Caps | None = None) -> dict:
    """The spec with defaults filled in; ValueError naming the first bad field."""
    caps = caps or Caps.from_env()
    unknown = sorted(set(spec) - set(DEFAULT_SPEC) - set(DEBUG_KEYS))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; known: {sorted(DEFAULT_SPEC)}")
    s = {**DEFAULT_SPEC, **spec}
    for name, choices in (("model", models()), ("dataset", datasets.names())):
        if s[name] not in choices:
            raise ValueError(f"{name} must be one of {list(choices)}, got {s[name]!r}")
    presets = families.get(s["model"]).presets
    if s["preset"] not in presets:
        raise ValueError(f"preset must be one of {list(presets)}, got {s['preset']!r}")
    if s["preset"] == "conv" and not caps.allow_conv:
        raise ValueError("preset 'conv' is disabled on this server (RETRAIN_ALLOW_CONV); choose 'seed'")
    check_int("epochs", s["epochs"], 1, caps.max_epochs)
    check_int("batch_size", s["batch_size"], caps.min_batch, caps.max_batch)
    check_int("latent_dim", s["latent_dim"], caps.min_latent, caps.max_latent)
    check_int("seed", s["seed"], 0, 2**31 - 1)
    lr = s["lr"]
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                           or not caps.min_lr <= lr <= caps.max_lr):
        raise ValueError(f"lr must be a number in [{caps.min_lr:g}, {caps.max_lr:g}] (or None), got {lr!r}")
    for name in DEBUG_KEYS:
        if s.get(name) is not None:
            check_int(name, s[name], 16, 100_000)
    return s


class FormError(ValueError):
    """The Retrain form's typed values, refused; `problems` holds one sentence per field, named in words."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


INT_RE = re.compile(r"^[+-]?\d{1,30}$")


def form_limits(caps: Caps) -> dict[str, tuple[str, float, float]]:
    """The form's numeric fields: spec key -> (label in words, lowest, highest)."""
    return {"epochs": ("Epochs", 1, caps.max_epochs), "batch_size": ("Batch size", caps.min_batch, caps.max_batch),
            "latent_dim": ("Latent size", caps.min_latent, caps.max_latent), "seed": ("Random seed", 0, 2**31 - 1),
            "lr": ("Learning rate", caps.min_lr, caps.max_lr)}


def parse_form(choices: dict, typed: dict[str, str], caps: Caps | None = None) -> dict:
    """The spec from the form: `choices` (model, dataset, preset from pickers) and `typed` (the text the
    visitor typed per numeric field). Nothing is rounded, clamped or replaced: a value that is not a whole
    number (or, for the learning rate, a number) or lies outside the limits is refused, every such field
    named in words in FormError.problems. An empty learning rate means the model's default."""
    caps = caps or Caps.from_env()
    spec, problems = dict(choices), []
    for key, (label, lo, hi) in form_limits(caps).items():
        raw = str(typed.get(key, "")).strip()
        if key == "lr":
            if not raw:
                spec["lr"] = None
                continue
            try:
                value = float(raw)
            except ValueError:
                value = None
            if value is None or value != value or not lo <= value <= hi:
                problems.append(f"{label} must be a number from {lo:g} to {hi:g}, or empty for the model's "
                                f"default (you typed {raw[:40]!r})")
                continue
        else:
            value = int(raw) if INT_RE.match(raw) else None
            if value is None or not lo <= value <= hi:
                problems.append(f"{label} must be a whole number from {lo} to {hi} (you typed {raw[:40]!r})"
                                if raw else f"{label} is empty: type a whole number from {lo} to {hi}")
                continue
        spec[key] = value
    if problems:
        raise FormError(problems)
    try:
        return validate_spec(spec, caps)
    except ValueError as err:
        raise FormError([str(err)]) from None


def owner_id(token: str) -> str:
    """What job.json keeps of an owner's token: a digest, so the jobs folder never holds a usable token."""
    if not isinstance(token, str) or len(token) < 8:
        raise ValueError("an owner token is a string of at least 8 characters")
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def is_owner(status: dict | None, token: str | None) -> bool:
    return bool(status and token) and status.get("owner") == owner_id(token)


# --- small file helpers --------------------------------------------------------------------------
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


# --- reading status, noticing dead workers -------------------------------------------------------
def _mark_dead(jobdir: Path) -> dict:
    """Caller holds queue.lock and has seen job.lock free: a running job there has no process left."""
    st = _read_json(jobdir / STATUS)
    if st.get("state") == "running":
        job = _read_json(jobdir / JOB)
        if job.get("runs_dir") and job.get("run"):  # a run SIGKILLed while saving leaves its temp folder
            for tmp in Path(job["runs_dir"]).glob(f".{job['run']}.tmp-*"):
                shutil.rmtree(tmp, ignore_errors=True)
        cancelled = (jobdir / CANCEL).exists()
        st.update(state="cancelled" if cancelled else "failed", finished=time.time(),
                  reason="cancelled by its owner" if cancelled else "process died")
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
    statuses = [_status(d) for d in _job_dirs(jobs_dir)]
    active = [s for s in statuses if s.get("state") in ACTIVE]
    if start_worker and any(s["state"] == "queued" for s in active) and _lock_free(jobs_dir):
        with _queue_lock(jobs_dir):
            _ensure_dispatcher(jobs_dir)
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
    return [active.get(s["job_id"], s) for s in list_jobs(jobs_dir) if s.get("owner") == me]


# --- queueing ----------------------------------------------------------------------------------------
def _unique_name(parent: Path, base: str) -> str:
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


def _enqueue(jobs_dir: Path, kind: str, spec: dict, owner: str, caps: Caps, extra: dict) -> str:
    jobs_dir.mkdir(parents=True, exist_ok=True)
    me = owner_id(owner)
    with _queue_lock(jobs_dir):
        active = [s for s in (_status(d) for d in _job_dirs(jobs_dir)) if s.get("state") in ACTIVE]
        mine = next((s for s in active if s.get("owner") == me), None)
        if mine is not None:
            raise JobBusy("you already have a job in the queue; cancel it or wait for it to finish", mine)
        waiting = [s for s in active if s["state"] == "queued"]
        if len(waiting) >= caps.max_queue:
            raise JobBusy(f"the queue is full ({caps.max_queue} jobs waiting); try again when one has finished")
        for old in [d for d in _job_dirs(jobs_dir)][:-KEEP_JOBS]:
            if _read_json(old / STATUS).get("state") not in ACTIVE:
                shutil.rmtree(old, ignore_errors=True)
        job_id = _new_job_id(jobs_dir)
        jobdir = jobs_dir / job_id
        jobdir.mkdir()
        try:
            _write_json(jobdir / JOB, {"job_id": job_id, "kind": kind, "spec": spec, "caps": asdict(caps),
                                       "owner": me, **extra})
            _write_json(jobdir / STATUS, {"job_id": job_id, "kind": kind, "state": "queued", "spec": spec,
                                          "epochs": spec.get("epochs"), "owner": me, "created": time.time(),
                                          "time_budget_s": caps.time_budget_s,
                                          "synthetic": bool(spec.get("synthetic"))})
        except BaseException:
            shutil.rmtree(jobdir, ignore_errors=True)  # a half-written job (disk full) is never queued
            raise
        _ensure_dispatcher(jobs_dir)
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
    jobs_dir = Path(jobs_dir or default_jobs_dir(runs_dir)).resolve()
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
    jobs_dir = Path(jobs_dir or default_jobs_dir(runs_dir)).resolve()
    if synthetic is None:
        from core import data

        data_dir = Path(data_dir or data.default_root()).resolve()
    return _enqueue(jobs_dir, "evaluate", {"run": run, "samples": EVAL_SAMPLES, "seeds": list(EVAL_SEEDS),
                                           "synthetic": synthetic}, owner, caps,
                    {"runs_dir": str(runs_dir), "data_dir": str(data_dir) if data_dir and not synthetic else None,
                     "classifier": str(Path(classifier).resolve()), "run": run})


def _ensure_dispatcher(jobs_dir: Path) -> None:
    """Caller holds queue.lock: start a dispatcher if jobs wait, none holds job.lock and none was started
    within SPAWN_GRACE_S (a fresh one may still be importing)."""
    jobs_dir = Path(jobs_dir).resolve()  # the dispatcher runs in REPO: a relative folder would mean another one
    if not any(_read_json(d / STATUS).get("state") == "queued" for d in _job_dirs(jobs_dir)):
        return
    if not _lock_free(jobs_dir):
        return
    # A dispatcher removes its record under queue.lock as it leaves: a record still there belongs to one that
    # is starting (it reads the queue once it holds job.lock), unless it is old or its process is gone.
    last = _read_json(jobs_dir / SPAWNED)
    if time.time() - last.get("at", 0) < SPAWN_GRACE_S and _alive(last.get("pid")):
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1"}
    with open(jobs_dir / "dispatcher.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "core.jobs", "work", str(jobs_dir)], cwd=REPO, env=env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # Streamlit's Ctrl-C / SIGTERM don't reach it
    _write_json(jobs_dir / SPAWNED, {"pid": proc.pid, "at": time.time()})
    # Reap the child when it exits, so a finished dispatcher does not linger as a zombie of this process.
    threading.Thread(target=proc.wait, daemon=True).start()


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- cancelling -------------------------------------------------------------------------------------
def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the job process leads its own session: this reaches its children too
    except (ProcessLookupError, PermissionError):
        pass


def _stop(jobs_dir: Path, job_id: str, timeout: float, reason: str) -> dict | None:
    jobdir = jobs_dir / job_id
    with _queue_lock(jobs_dir):
        st = _status(jobdir)
        if st.get("state") == "queued":  # not started: remove it from the queue
            st.update(state="cancelled", reason=reason, finished=time.time())
            _write_json(jobdir / STATUS, st)
            return st
        if st.get("state") != "running":
            return st or None
        (jobdir / CANCEL).write_text(reason)  # checked by the job every step
    t0 = time.monotonic()
    signalled = set()
    while True:
        st = _status(jobdir)
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
    st = job_status(jobs_dir, job_id)
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


# --- keeping runs_dir small ----------------------------------------------------------------------
def prune_runs(runs_dir, keep: int) -> list[str]:
    """Delete the oldest ui-* runs beyond the newest `keep`; other runs are never touched. Returns the deleted."""
    from core.run.layout import list_runs

    runs_dir = Path(runs_dir)
    ui = sorted((m.group(1), int(m.group(2) or 1), name) for name in list_runs(runs_dir)
                if (m := run_re().match(name)))
    doomed = [name for *_, name in ui[:max(0, len(ui) - keep)]]
    for name in doomed:
        # hide it first (one rename), so the dashboard never lists a half-deleted run
        aside = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=runs_dir))
        os.rename(runs_dir / name, aside / "run")
        shutil.rmtree(aside, ignore_errors=True)
    return doomed


# --- the dispatcher -----------------------------------------------------------------------------------
def run_dispatcher(jobs_dir) -> int:
    """Body of `python -m core.jobs work <jobs_dir>`: hold job.lock and run queued jobs until none is left."""
    jobs_dir = Path(jobs_dir).resolve()
    _lower_priority()
    fd = None
    deadline = time.monotonic() + 2.0  # a status reader's shared probe holds the lock for microseconds
    while fd is None:
        fd = _try_lock(jobs_dir)
        if fd is None:
            if time.monotonic() > deadline:
                with _queue_lock(jobs_dir):
                    _forget_spawn(jobs_dir)  # another process runs the queue; whoever frees job.lock restarts it
                return 0
            time.sleep(0.02)
    try:
        while True:
            with _queue_lock(jobs_dir):
                nxt = next((d for d in _job_dirs(jobs_dir) if _read_json(d / STATUS).get("state") == "queued"), None)
                if nxt is None:
                    # under queue.lock: an enqueuer after us sees the lock free and no record, and starts one
                    os.close(fd)
                    fd = None
                    _forget_spawn(jobs_dir)
                    return 0
                st = _read_json(nxt / STATUS)
                st.update(state="running", phase="starting", started=time.time(), updated=time.time(), pid=None)
                _write_json(nxt / STATUS, st)
            _run_child(jobs_dir, nxt, fd)
    finally:
        if fd is not None:
            os.close(fd)


def _forget_spawn(jobs_dir: Path) -> None:
    """Caller holds queue.lock: this dispatcher leaves, so its record must not hold back the next start."""
    if _read_json(jobs_dir / SPAWNED).get("pid") == os.getpid():
        (jobs_dir / SPAWNED).unlink(missing_ok=True)


def _lower_priority() -> None:
    try:
        os.nice(NICE)
    except OSError:
        pass


def _run_child(jobs_dir: Path, jobdir: Path, fd: int) -> None:
    job = _read_json(jobdir / JOB)
    threads = str(job.get("caps", {}).get("threads", 1))  # OpenMP (t-SNE too) would otherwise take every core
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONUNBUFFERED": "1", LOCK_FD_ENV: str(fd), DISPATCHER_ENV: str(os.getpid())}
    try:
        with open(jobdir / LOG, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "core.jobs", "run", str(jobdir)], cwd=REPO, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    pass_fds=(fd,),  # the job holds job.lock too, even if we die
                                    start_new_session=True)
    except OSError as err:
        st = _read_json(jobdir / STATUS)
        st.update(state="failed", reason=f"the job process did not start: {err.strerror}", finished=time.time())
        _write_json(jobdir / STATUS, st)
        return
    st = _read_json(jobdir / STATUS)
    if st.get("state") == "running" and not st.get("pid"):
        st["pid"] = proc.pid
        _write_json(jobdir / STATUS, st)
    proc.wait()
    with _queue_lock(jobs_dir):
        st = _read_json(jobdir / STATUS)
        if st.get("state") in ACTIVE:  # killed before it could report
            st["state"] = "running"
            _write_json(jobdir / STATUS, st)
            _mark_dead(jobdir)


# --- the job process ----------------------------------------------------------------------------------
def _downsample(steps: dict[str, list]) -> dict[str, list]:
    """Average consecutive steps so the history has at most HISTORY_POINTS points (the step is each chunk's last)."""
    n = len(steps["step"])
    k = max(1, -(-n // HISTORY_POINTS))  # ceil(n / HISTORY_POINTS) steps per point
    out = {"step": [steps["step"][min(i + k, n) - 1] for i in range(0, n, k)]}
    for key, v in steps.items():
        if key != "step":
            out[key] = [round(sum(v[i:i + k]) / len(v[i:i + k]), 5) for i in range(0, n, k)]
    return out


class _Progress:
    """The job's on_step / on_epoch callbacks: cancel checks and throttled status writes."""

    def __init__(self, jobdir: Path, status: dict):
        self.jobdir, self.status = jobdir, status
        self.steps: dict[str, list] = {"step": []}
        self.epochs: dict[str, list] = {}
        self.last_write = 0.0

    def write(self, **changes) -> None:
        self.status.update(changes, updated=time.time())
        _write_json(self.jobdir / STATUS, self.status)
        self.last_write = time.monotonic()

    def check(self) -> None:
        if (self.jobdir / CANCEL).exists():
            raise Cancelled

    def on_step(self, p: dict) -> None:
        self.check()
        self.steps["step"].append(p["step"])
        for k, v in p["losses"].items():
            self.steps.setdefault(k, []).append(v)
        if p["step"] == 1 or time.monotonic() - self.last_write >= STATUS_INTERVAL_S:
            self.write(phase="training", epoch=p["epoch"], step=p["step"], total_steps=p["total_steps"],
                       elapsed_s=round(p["elapsed_s"], 2), eta_s=round(p["eta_s"], 1),
                       losses={k: round(v, 5) for k, v in p["losses"].items()}, history=_downsample(self.steps))

    def on_epoch(self, p: dict) -> None:
        if p["grid"] is not None:
            from core.run.folder import write_png  # torch is loaded by now: this runs inside training

            write_png(self.jobdir / GRID, p["grid"])
        for k, v in p["row"].items():
            self.epochs.setdefault(k, []).append(round(v, 5))
        last = p["epoch"] == p["epochs"] or p["step"] < self.status.get("total_steps", 0) * p["epoch"] / p["epochs"]
        self.write(phase="finishing" if last else "training", epoch=p["epoch"], step=p["step"],
                   eta_s=0.0 if last else self.status.get("eta_s"),
                   epoch_losses={k: round(v, 5) for k, v in p["row"].items()}, epoch_history=self.epochs,
                   history=_downsample(self.steps),
                   grid=str(self.jobdir / GRID) if p["grid"] is not None else None, grid_epoch=p["epoch"])


def _train(job: dict, progress: _Progress) -> dict:
    s, caps = job["spec"], job["caps"]
    runs_dir = Path(job["runs_dir"])
    run = _unique_name(runs_dir, f"ui-{s['model']}-{s['dataset']}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    job["run"] = run
    _write_json(progress.jobdir / JOB, job)  # so a killed job's temp folder is found and removed
    progress.write(phase="loading data", run_pending=run)
    import torch

    torch.set_num_threads(caps["threads"])
    from core.data import synthetic_split
    from core.runner import train_run
    from core.train import TrainConfig

    cfg = TrainConfig(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], seed=s["seed"], device="cpu",
                      time_budget_s=caps["time_budget_s"])
    splits = None
    if s.get("synthetic"):
        n = s["synthetic"]
        splits = (synthetic_split(n, seed=1), synthetic_split(max(16, n // 4), seed=2))
    train_run(s["model"], runs_dir / run, {"preset": s["preset"], "latent_dim": s["latent_dim"]}, cfg,
              dataset=s["dataset"], data_dir=job["data_dir"], limit=s.get("limit"), splits=splits,
              embed_size=caps["embed_size"], on_step=progress.on_step, on_epoch=progress.on_epoch)
    pruned = prune_runs(runs_dir, caps["keep_runs"])
    return {"run": run, "pruned": pruned,
            "stopped_early": progress.status.get("step") != progress.status.get("total_steps")}


def _evaluate(job: dict, progress: _Progress) -> dict:
    s = job["spec"]
    run = Path(job["runs_dir"]) / job["run"]
    if not (run / "config.json").is_file():
        raise RuntimeError(f"run {job['run']} no longer exists (only the newest retrained runs are kept)")
    progress.write(phase="evaluating")
    import torch

    torch.set_num_threads(job["caps"]["threads"])
    from core.data import synthetic_split
    from core.evaluate import evaluate_run

    progress.check()
    splits = None
    if s.get("synthetic"):
        n = s["synthetic"]
        splits = (synthetic_split(n, seed=1), synthetic_split(max(16, n // 4), seed=2))
    t0 = time.perf_counter()
    ev = evaluate_run(run, job["classifier"], job["data_dir"], samples=s["samples"], seeds=tuple(s["seeds"]),
                      splits=splits)
    return {"run": job["run"], "evaluation_s": round(time.perf_counter() - t0, 1),
            "metrics": {k: round(v["mean"], 4) for k, v in ev["metrics"].items()}}


def _on_sigterm(signum, frame):
    raise Cancelled


def run_worker(jobdir) -> int:
    """Body of `python -m core.jobs run <jobdir>` (started by the dispatcher, which holds job.lock for it):
    run one job, report; 0 when it succeeded."""
    jobdir = Path(jobdir).resolve()
    job = _read_json(jobdir / JOB)
    _lower_priority()
    progress = _Progress(jobdir, _read_json(jobdir / STATUS))
    t0 = time.monotonic()
    progress.write(state="running", phase="starting", pid=os.getpid(), run=None, reason=None)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        progress.check()
        result = (_evaluate if job.get("kind") == "evaluate" else _train)(job, progress)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the result is saved: finish the bookkeeping
    except Cancelled:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        progress.write(state="cancelled", reason=(jobdir / CANCEL).read_text() if (jobdir / CANCEL).exists()
                       else "cancelled", finished=time.time())
        return 1
    except Exception as err:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        traceback.print_exc()  # the full story goes to worker.log; the page shows one line
        from core.train import TrainingDiverged

        reason = str(err) if isinstance(err, (TrainingDiverged, RuntimeError)) else f"{type(err).__name__}: {err}"
        if isinstance(err, OSError):
            reason = f"could not save: {FS_ERRORS.get(err.errno, err.strerror)}"
        progress.write(state="failed", reason=reason[:500], finished=time.time())
        return 1
    progress.write(state="done", phase="done", finished=time.time(), job_s=round(time.monotonic() - t0, 1),
                   **result)
    return 0


def _hand_over(jobdir: Path) -> None:
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
    with _queue_lock(jobdir.parent):
        _ensure_dispatcher(jobdir.parent)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "run":
        try:
            return run_worker(argv[1])
        finally:
            _hand_over(Path(argv[1]).resolve())
    if len(argv) == 2 and argv[0] == "work":
        return run_dispatcher(argv[1])
    print("usage: python -m core.jobs run <jobdir> | work <jobs_dir>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
