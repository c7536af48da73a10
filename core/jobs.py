"""Background training jobs for the dashboard's Retrain page: one job at a time, a progress file, cancel.

A job is a folder <jobs_dir>/<job_id>/ holding job.json (the checked spec and paths), status.json
(progress, replaced atomically about once a second), latest.png (the newest sample grid), cancel (a flag
file) and worker.log. The worker is a separate process, `python -m core.jobs run <jobdir>`, in its own
session so signals sent to Streamlit never reach it. It holds <jobs_dir>/job.lock (flock) for the job's
life; the kernel drops that lock however the process ends, so an active status with a free lock means the
worker died, and whoever reads the status next marks the job failed ("process died").

This module imports no torch at the top: a worker takes the lock and reports within a fraction of a second,
before torch loads.
"""

from __future__ import annotations

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

REPO = Path(__file__).resolve().parents[1]
MODELS = ("vae", "gan")
DATASETS = ("mnist", "fashion-mnist")
PRESETS = ("conv", "seed")
# The form's fields and their defaults: the dense preset trains an MNIST epoch in seconds on a CPU.
DEFAULT_SPEC = {"model": "vae", "dataset": "mnist", "preset": "seed", "epochs": 3, "batch_size": 128,
                "lr": None, "latent_dim": 32, "seed": 0}  # lr None = the model's default (VAE 1e-3, GAN 2e-4)
# Not offered by the page: `synthetic` = train on N fake images (tests), `limit` = first N images of each split.
DEBUG_KEYS = ("synthetic", "limit")
ACTIVE = ("queued", "running")
LOCK, START_LOCK, STATUS, JOB, GRID, CANCEL, LOG = (
    "job.lock", "start.lock", "status.json", "job.json", "latest.png", "cancel", "worker.log")
STATUS_INTERVAL_S = 1.0  # at most one status write a second, besides epoch ends and state changes
HISTORY_POINTS = 200  # the loss history in status.json is averaged down to at most this many points
KEEP_JOBS = 20  # finished job folders kept for list_jobs
HANDOVER_S = 30.0  # start_job waits this long for the worker to take the lock
RUN_RE = re.compile(r"^ui-(?:vae|gan)-(?:mnist|fashion-mnist)-(\d{8}-\d{6})(?:-(\d+))?$")
JOB_ID_RE = re.compile(r"^\d{8}-\d{6}-\d{3}$")


class JobError(RuntimeError):
    """A job cannot start for a reason outside its spec (data missing, disk full, another job running)."""


class JobBusy(JobError):
    """Another job is queued or running; `status` is its status."""

    def __init__(self, message: str, status: dict | None = None):
        super().__init__(message)
        self.status = status


class Cancelled(Exception):
    """Raised inside the worker when the cancel flag appears or SIGTERM arrives."""


@dataclass(frozen=True)
class Caps:
    """Limits on what the page may ask for; Caps.from_env() reads RETRAIN_<FIELD> (e.g. RETRAIN_MAX_EPOCHS)."""

    max_epochs: int = 5
    min_batch: int = 16
    max_batch: int = 512
    min_latent: int = 2
    max_latent: int = 128
    min_lr: float = 1e-5
    max_lr: float = 1e-2
    allow_conv: bool = True  # the conv preset is ~10x slower per epoch on a CPU
    time_budget_s: float = 600.0  # training stops (and the run is saved) after this long
    min_free_mb: float = 200.0  # refuse to start with less free space where runs go
    keep_runs: int = 5  # newest ui-* runs kept in runs_dir; older ones are deleted after a success
    # torch / OpenMP threads of the worker. One: on a shared 2-core box two threads were no faster, and
    # without OMP_WAIT_POLICY=PASSIVE they spun against other processes and ran 10x slower.
    threads: int = 1
    embed_size: int = 2000  # test digits in the run's t-SNE map (as core.embed); t-SNE is most of a job's tail

    def __post_init__(self):
        ok = (1 <= self.max_epochs and 1 <= self.min_batch <= self.max_batch
              and 2 <= self.min_latent <= self.max_latent <= 512 and 0 < self.min_lr <= self.max_lr <= 1.0
              and self.keep_runs >= 1 and self.threads >= 1 and self.embed_size >= 10
              and 0 < self.time_budget_s <= 1e7 and self.min_free_mb >= 0)
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
def _int(name: str, value, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be a whole number in [{lo}, {hi}], got {value!r}")


def validate_spec(spec: dict, caps: Caps | None = None) -> dict:
    """The spec with defaults filled in; ValueError naming the first bad field."""
    caps = caps or Caps.from_env()
    unknown = sorted(set(spec) - set(DEFAULT_SPEC) - set(DEBUG_KEYS))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; known: {sorted(DEFAULT_SPEC)}")
    s = {**DEFAULT_SPEC, **spec}
    for name, choices in (("model", MODELS), ("dataset", DATASETS), ("preset", PRESETS)):
        if s[name] not in choices:
            raise ValueError(f"{name} must be one of {list(choices)}, got {s[name]!r}")
    if s["preset"] == "conv" and not caps.allow_conv:
        raise ValueError("preset 'conv' is disabled on this server (RETRAIN_ALLOW_CONV); choose 'seed'")
    _int("epochs", s["epochs"], 1, caps.max_epochs)
    _int("batch_size", s["batch_size"], caps.min_batch, caps.max_batch)
    _int("latent_dim", s["latent_dim"], caps.min_latent, caps.max_latent)
    _int("seed", s["seed"], 0, 2**31 - 1)
    lr = s["lr"]
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                           or not caps.min_lr <= lr <= caps.max_lr):
        raise ValueError(f"lr must be a number in [{caps.min_lr:g}, {caps.max_lr:g}] (or None), got {lr!r}")
    for name in DEBUG_KEYS:
        if s.get(name) is not None:
            _int(name, s[name], 16, 100_000)
    return s


# --- small file helpers --------------------------------------------------------------------------
def _write_json(path: Path, obj) -> None:
    """Write a temp file beside `path`, then rename: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, allow_nan=False)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def default_jobs_dir(runs_dir) -> Path:
    """$RETRAIN_JOBS_DIR, else <runs_dir>/.jobs (hidden, so list_runs skips it)."""
    return Path(os.environ.get("RETRAIN_JOBS_DIR") or Path(runs_dir) / ".jobs")


def _job_dirs(jobs_dir) -> list[Path]:
    """Job folders, oldest first (ids are UTC timestamps)."""
    d = Path(jobs_dir)
    return sorted(p for p in d.iterdir() if p.is_dir() and JOB_ID_RE.match(p.name)) if d.is_dir() else []


def _lock_free(jobs_dir: Path, timeout: float = 0) -> bool:
    lock = FileLock(jobs_dir / LOCK, timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        return False
    lock.release()
    return True


# --- reading status, noticing dead workers -------------------------------------------------------
def _status(jobdir: Path) -> dict:
    """status.json of one job; an active job whose worker is gone is marked failed (or cancelled) first."""
    st = _read_json(jobdir / STATUS)
    if st.get("state") not in ACTIVE:
        return st
    if st["state"] == "queued" and time.time() - st.get("created", 0) < 2 * HANDOVER_S:
        return st  # start_job is still handing over to the worker
    lock = FileLock(jobdir.parent / LOCK, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return st  # the worker holds it: alive
    try:
        st = _read_json(jobdir / STATUS)  # it may have finished between the two reads
        if st.get("state") in ACTIVE:
            job = _read_json(jobdir / JOB)
            if job.get("runs_dir") and job.get("run"):  # a run SIGKILLed while saving leaves its temp folder
                for tmp in Path(job["runs_dir"]).glob(f".{job['run']}.tmp-*"):
                    shutil.rmtree(tmp, ignore_errors=True)
            cancelled = (jobdir / CANCEL).exists()
            st.update(state="cancelled" if cancelled else "failed", finished=time.time(),
                      reason="cancelled" if cancelled else "process died")
            _write_json(jobdir / STATUS, st)
    finally:
        lock.release()
    return st


def job_status(jobs_dir, job_id: str) -> dict | None:
    if not JOB_ID_RE.match(job_id or ""):
        raise ValueError(f"invalid job id {job_id!r}")
    jobdir = Path(jobs_dir) / job_id
    return _status(jobdir) if jobdir.is_dir() else None


def list_jobs(jobs_dir) -> list[dict]:
    """Statuses of the kept jobs, newest first."""
    return [_status(d) for d in reversed(_job_dirs(jobs_dir))]


def current_job(jobs_dir) -> dict | None:
    """The queued or running job's status, or None."""
    dirs = _job_dirs(jobs_dir)
    st = _status(dirs[-1]) if dirs else {}
    return st if st.get("state") in ACTIVE else None


# --- starting and cancelling ---------------------------------------------------------------------
def _unique_name(parent: Path, base: str) -> str:
    name, n = base, 1
    while (parent / name).exists() or any(parent.glob(f".{name}.tmp-*")):
        n += 1
        name = f"{base}-{n}"
    return name


def start_job(spec: dict, runs_dir, jobs_dir=None, data_dir=None, caps: Caps | None = None) -> str:
    """Check the spec, the data and the disk, launch the worker process and return the job id (in ~0.3 s).

    Raises ValueError for a bad spec, JobBusy when a job is active, JobError when the data set is missing
    or the disk is nearly full.
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
            raise JobError(f"{s['dataset']} is not available on this server (looked under {data_dir}); "
                           "choose another data set")
    runs_dir.mkdir(parents=True, exist_ok=True)
    jobs_dir.mkdir(parents=True, exist_ok=True)
    free_mb = shutil.disk_usage(runs_dir).free / 2**20
    if free_mb < caps.min_free_mb:
        raise JobError(f"only {free_mb:.0f} MB free where runs are saved; a job needs {caps.min_free_mb:.0f} MB "
                       "(delete old runs or lower RETRAIN_MIN_FREE_MB)")

    with FileLock(jobs_dir / START_LOCK, timeout=HANDOVER_S + 10):  # starters queue here, one at a time
        active = current_job(jobs_dir)
        if active is not None or not _lock_free(jobs_dir, timeout=0.5):
            what = f"{active['spec']['model']} on {active['spec']['dataset']}" if active else "a job"
            raise JobBusy(f"{what} is already training; wait for it to finish or cancel it", active)
        for old in _job_dirs(jobs_dir)[:-KEEP_JOBS]:
            shutil.rmtree(old, ignore_errors=True)
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        ms = int(now * 1000) % 1000
        while (jobs_dir / f"{stamp}-{ms:03d}").exists():  # ids sort in start order
            ms += 1
        job_id = f"{stamp}-{ms:03d}"
        jobdir = jobs_dir / job_id
        jobdir.mkdir()
        run = _unique_name(runs_dir, f"ui-{s['model']}-{s['dataset']}-{stamp}")
        _write_json(jobdir / JOB, {"job_id": job_id, "spec": s, "caps": asdict(caps), "runs_dir": str(runs_dir),
                                   "data_dir": str(data_dir) if data_dir else None, "run": run})
        _write_json(jobdir / STATUS, {"job_id": job_id, "state": "queued", "spec": s, "epochs": s["epochs"],
                                      "created": now})
        threads = str(caps.threads)  # OpenMP (t-SNE too) would otherwise take every core
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OMP_WAIT_POLICY": "PASSIVE",
               "PYTHONUNBUFFERED": "1"}
        with open(jobdir / LOG, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "core.jobs", "run", str(jobdir)], cwd=REPO, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # Streamlit's Ctrl-C / SIGTERM don't reach it
        # Hold the start lock until the worker owns job.lock, so no second starter slips in between.
        deadline = time.monotonic() + HANDOVER_S
        while _read_json(jobdir / STATUS).get("state") == "queued":
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                tail = (jobdir / LOG).read_text(errors="replace").strip()[-300:]
                _write_json(jobdir / STATUS, {**_read_json(jobdir / STATUS), "state": "failed", "finished": time.time(),
                                              "reason": f"worker did not start: {tail or 'timed out'}"})
                raise JobError(f"the training process did not start: {tail or 'timed out'}")
            time.sleep(0.01)
    # Reap the child when it exits, so a dead worker does not linger as a zombie of this process.
    threading.Thread(target=proc.wait, daemon=True).start()
    return job_id


def _signal(jobs_dir: Path, pid: int, sig: int) -> None:
    if not _lock_free(jobs_dir):  # only while a worker holds the lock: never signal a recycled pid
        try:
            os.killpg(pid, sig)  # the worker leads its own session: this reaches its children too
        except (ProcessLookupError, PermissionError):
            pass


def cancel_job(jobs_dir, timeout: float = 2.0) -> dict | None:
    """Stop the active job (flag file, then SIGTERM, then SIGKILL) and return its final status; None if idle."""
    jobs_dir = Path(jobs_dir)
    st = current_job(jobs_dir)
    if st is None:
        return None
    jobdir = jobs_dir / st["job_id"]
    (jobdir / CANCEL).touch()  # checked by the worker every step
    t0 = time.monotonic()
    signalled = set()
    while True:
        st = _status(jobdir)
        if st.get("state") not in ACTIVE and _lock_free(jobs_dir):  # reported, and the process has let go
            return st
        waited = time.monotonic() - t0
        pid = st.get("pid")
        # The flag is seen within a step; outside the step loop (importing torch, t-SNE) only a signal works,
        # and SIGTERM still lets the worker clean up. SIGKILL is the last resort.
        term_after = 0.3 * timeout if st.get("phase") == "training" else 0.0
        for sig, after in ((signal.SIGTERM, term_after), (signal.SIGKILL, 0.7 * timeout)):
            if pid and waited > after and sig not in signalled:
                _signal(jobs_dir, pid, sig)
                signalled.add(sig)
        if waited > timeout + 5:
            return st
        time.sleep(0.01)


# --- keeping runs_dir small ----------------------------------------------------------------------
def prune_runs(runs_dir, keep: int) -> list[str]:
    """Delete the oldest ui-* runs beyond the newest `keep`; other runs are never touched. Returns the deleted."""
    from core.checkpoint import list_runs

    runs_dir = Path(runs_dir)
    ui = sorted((m.group(1), int(m.group(2) or 1), name) for name in list_runs(runs_dir)
                if (m := RUN_RE.match(name)))
    doomed = [name for *_, name in ui[:max(0, len(ui) - keep)]]
    for name in doomed:
        # hide it first (one rename), so the dashboard never lists a half-deleted run
        aside = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=runs_dir))
        os.rename(runs_dir / name, aside / "run")
        shutil.rmtree(aside, ignore_errors=True)
    return doomed


# --- the worker ----------------------------------------------------------------------------------
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
    """The worker's on_step / on_epoch callbacks: cancel checks and throttled status writes."""

    def __init__(self, jobdir: Path, status: dict):
        self.jobdir, self.status = jobdir, status
        self.steps: dict[str, list] = {"step": []}
        self.last_write = 0.0

    def write(self, **changes) -> None:
        self.status.update(changes, updated=time.time())
        _write_json(self.jobdir / STATUS, self.status)
        self.last_write = time.monotonic()

    def on_step(self, p: dict) -> None:
        if (self.jobdir / CANCEL).exists():
            raise Cancelled
        self.steps["step"].append(p["step"])
        for k, v in p["losses"].items():
            self.steps.setdefault(k, []).append(v)
        if p["step"] == 1 or time.monotonic() - self.last_write >= STATUS_INTERVAL_S:
            self.write(phase="training", epoch=p["epoch"], step=p["step"], total_steps=p["total_steps"],
                       elapsed_s=round(p["elapsed_s"], 2), eta_s=round(p["eta_s"], 1),
                       losses={k: round(v, 5) for k, v in p["losses"].items()}, history=_downsample(self.steps))

    def on_epoch(self, p: dict) -> None:
        if p["grid"] is not None:
            from core.checkpoint import write_png  # torch is loaded by now: this runs inside training

            write_png(self.jobdir / GRID, p["grid"])
        last = p["epoch"] == p["epochs"] or p["step"] < self.status.get("total_steps", 0) * p["epoch"] / p["epochs"]
        self.write(phase="finishing" if last else "training", epoch=p["epoch"], step=p["step"],
                   eta_s=0.0 if last else self.status.get("eta_s"),
                   epoch_losses={k: round(v, 5) for k, v in p["row"].items()}, history=_downsample(self.steps),
                   grid=str(self.jobdir / GRID) if p["grid"] is not None else None, grid_epoch=p["epoch"])


def _train(job: dict, progress: _Progress) -> Path:
    s, caps = job["spec"], job["caps"]
    import torch

    torch.set_num_threads(caps["threads"])
    from core.data import synthetic_split
    from core.runner import train_run
    from core.train import TrainConfig

    progress.write(phase="loading data")
    cfg = TrainConfig(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], seed=s["seed"], device="cpu",
                      time_budget_s=caps["time_budget_s"])
    splits = None
    if s.get("synthetic"):
        n = s["synthetic"]
        splits = (synthetic_split(n, seed=1), synthetic_split(max(16, n // 4), seed=2))
    return train_run(s["model"], Path(job["runs_dir"]) / job["run"],
                     {"preset": s["preset"], "latent_dim": s["latent_dim"]}, cfg, dataset=s["dataset"],
                     data_dir=job["data_dir"], limit=s.get("limit"), splits=splits, embed_size=caps["embed_size"],
                     on_step=progress.on_step, on_epoch=progress.on_epoch)


def _on_sigterm(signum, frame):
    raise Cancelled


def run_worker(jobdir) -> int:
    """Body of `python -m core.jobs run <jobdir>`: take the lock, train, report; 0 when the run was saved."""
    jobdir = Path(jobdir).resolve()
    job = _read_json(jobdir / JOB)
    status = _read_json(jobdir / STATUS)
    lock = FileLock(jobdir.parent / LOCK, timeout=5)  # a status reader may hold it for a moment
    try:
        lock.acquire()
    except Timeout:
        _write_json(jobdir / STATUS, {**status, "state": "failed", "reason": "another job holds the lock",
                                      "finished": time.time()})
        return 1
    try:
        progress = _Progress(jobdir, status)
        progress.write(state="running", phase="starting", pid=os.getpid(), started=time.time(),
                       run=None, reason=None)
        signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            if (jobdir / CANCEL).exists():
                raise Cancelled
            _train(job, progress)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the run is saved: finish the bookkeeping
        except Cancelled:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            progress.write(state="cancelled", reason="cancelled", finished=time.time())
            return 1
        except Exception as err:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            traceback.print_exc()
            from core.train import TrainingDiverged

            reason = str(err) if isinstance(err, TrainingDiverged) else f"{type(err).__name__}: {err}"
            progress.write(state="failed", reason=reason[:500], finished=time.time())
            return 1
        pruned = prune_runs(job["runs_dir"], job["caps"]["keep_runs"])
        progress.write(state="done", phase="done", run=job["run"], pruned=pruned, finished=time.time(),
                       stopped_early=progress.status.get("step") != progress.status.get("total_steps"))
        return 0
    finally:
        lock.release()


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "run":
        print("usage: python -m core.jobs run <jobdir>", file=sys.stderr)
        return 2
    return run_worker(argv[1])


if __name__ == "__main__":
    sys.exit(main())
