"""The `hf-jobs` backend: each job runs on Hugging Face Jobs (CPU or GPU flavors), through huggingface_hub only.

Where things live:
- a job's state, owner and position: in the Jobs API, as labels on the job (app, kind, owner digest, data set,
  run, entry), read with list_jobs(labels=...) / inspect_job. Every replica of the Space sees the same
  queue, and a restart of the dashboard loses no submitted job.
- jobs waiting for one of the RETRAIN_MAX_CONCURRENT slots: one small file each on the container's own disk
  (<state_dir>/waiting/, under the local queue lock), submitted oldest first by whoever reads the queue and by
  a small promoter process (`python -m core.jobs promote <state_dir>`) that lives while jobs wait.
- the finished run: written by the job into the bucket volume, <bucket>/incoming/<run>/, then the marker
  <bucket>/incoming/<run>.complete, last. The dashboard copies a run whose marker it sees into its runs folder
  (hidden temp folder, then one rename on its own disk), so a half-written folder is never listed.
- live progress: the job prints `@progress` lines (core.jobs.progress), read back with fetch_job_logs.

Secrets: the dashboard's token (HF_TOKEN) stays in this process; a job gets no secret at all (the bucket is
mounted by the platform), and nothing here prints or returns the token.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from core import datasets
from core.jobs import progress, store
from core.jobs.spec import (
    EVAL_SAMPLES,
    Caps,
    JobBusy,
    JobError,
    NotOwner,
    owner_id,
    run_re,
    validate_spec,
)

MOUNT = "/bucket"  # where a job sees the bucket volume
INCOMING = "incoming"  # <bucket>/incoming/<run>/ and <run>.complete (or <run>.evaluated-<entry>)
WAITING, FAILED, PROMOTER_LOCK = "waiting", "failed", "promoter.lock"
START_MARGIN_S = 600  # added to the owner's time cap for the hard timeout: image pull, data, latent map, saving
CACHE_S = 2.0  # list_jobs / logs answers are shared by every page view for this long
PROMOTE_EVERY_S = 5.0
LOST_AFTER_S = 120.0  # a completed job whose marker is still not visible after this long: its run is lost
LABEL_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
STAGE_STATE = {"SCHEDULING": "running", "RUNNING": "running", "COMPLETED": "done", "ERROR": "failed",
               "CANCELED": "cancelled", "DELETED": "failed"}


@dataclass(frozen=True)
class HfJobsConfig:
    """What the Space owner sets (docs/deploy.md); from_env() names the first missing variable."""

    token: str = field(repr=False)
    bucket: str  # "user/bucket": mounted into every job at MOUNT
    bucket_dir: Path | None  # where this server sees the same bucket (its volume); None on the CLI
    image: str  # "hf.co/spaces/user/space" (the Space's own image) or a Docker image with this repository
    flavors: tuple[str, ...] = ("cpu-basic",)
    max_concurrent: int = 1
    namespace: str | None = None
    app: str = "gan-vae-retrain"
    data_dir: str | None = None  # DATA_DIR inside the image, when it is not the image's default

    @classmethod
    def from_env(cls, env=None, need_bucket_dir: bool = True) -> HfJobsConfig:
        env = os.environ if env is None else env

        def need(name: str, why: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise JobError(f"the hf-jobs backend needs {name} ({why}); see docs/deploy.md")
            return value

        token = need("HF_TOKEN", "a token with the Jobs permission, as a secret")
        bucket = need("RETRAIN_HF_BUCKET", "the bucket runs are written to, e.g. user/retrain-runs")
        bucket_dir = Path(need("RETRAIN_HF_BUCKET_DIR", "where the Space mounts that bucket")) \
            if need_bucket_dir else None
        space = env.get("SPACE_ID", "").strip()
        image = env.get("RETRAIN_HF_IMAGE", "").strip() or (f"hf.co/spaces/{space}" if space else "")
        if not image:
            raise JobError("the hf-jobs backend needs RETRAIN_HF_IMAGE (outside a Space); see docs/deploy.md")
        flavors = tuple(f.strip() for f in env.get("RETRAIN_FLAVORS", "cpu-basic").split(",") if f.strip())
        try:
            k = int(env.get("RETRAIN_MAX_CONCURRENT", "1"))
        except ValueError:
            raise JobError("RETRAIN_MAX_CONCURRENT must be a whole number") from None
        if not flavors or not 1 <= k <= 100:
            raise JobError("RETRAIN_FLAVORS must name at least one flavor and RETRAIN_MAX_CONCURRENT be 1 to 100")
        app = env.get("RETRAIN_HF_APP", "").strip() or (re.sub(r"[^A-Za-z0-9_-]", "-", space) or "gan-vae-retrain")
        return cls(token=token, bucket=bucket, bucket_dir=bucket_dir, image=image, flavors=flavors,
                   max_concurrent=k, namespace=env.get("RETRAIN_HF_NAMESPACE", "").strip() or None, app=app[:100],
                   data_dir=env.get("RETRAIN_HF_DATA_DIR", "").strip() or None)


def _stage(info) -> str:
    stage = info.status.stage
    return stage.value if hasattr(stage, "value") else str(stage)


def api(config: HfJobsConfig):
    from huggingface_hub import HfApi

    # HF_ENDPOINT is read here, not at import: a test (or a staging Hub) may set it after the import
    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=config.token)


def _short(err: Exception) -> str:
    """An API error in one line, never with a token (huggingface_hub's messages hold none; cut anyway)."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)[:300]


_CACHE: dict[tuple, tuple[float, object]] = {}
_CACHE_LOCK = threading.Lock()


def _cached(key: tuple, ttl: float, compute):
    now = time.monotonic()
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit and now - hit[0] < ttl:
            return hit[1]
    value = compute()
    with _CACHE_LOCK:
        _CACHE[key] = (now, value)
    return value


def forget_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


class HfJobsBackend:
    """The Retrain page's queue on Hugging Face Jobs: same methods and status fields as the local backend."""

    name = "hf-jobs"

    def __init__(self, runs_dir, state_dir, caps: Caps | None = None, config: HfJobsConfig | None = None):
        self.runs_dir = Path(runs_dir).resolve()
        self.state_dir = Path(state_dir).resolve()  # local disk: locks and waiting entries, never the bucket
        self.caps = caps or Caps.from_env()
        self.config = config or HfJobsConfig.from_env()
        self.api = api(self.config)

    # --- the Jobs API -------------------------------------------------------------------------------
    @property
    def namespace(self) -> str:
        if self.config.namespace:
            return self.config.namespace
        return _cached(("whoami", self.config.app), 3600, lambda: self.api.whoami()["name"])

    def _remote(self, fresh: bool = False) -> list:
        """Every job of this app, newest first."""
        def fetch():
            try:
                jobs = list(self.api.list_jobs(labels={"app": self.config.app}, namespace=self.namespace))
            except Exception as err:  # network, auth, the API down: the page says so and keeps working
                raise JobError(f"Hugging Face Jobs did not answer: {_short(err)}") from None
            return sorted(jobs, key=lambda j: j.created_at.timestamp() if j.created_at else 0, reverse=True)

        if fresh:
            _CACHE.pop(("jobs", self.config.app), None)
        return _cached(("jobs", self.config.app), CACHE_S, fetch)

    def _logs(self, job_id: str, final: bool = False) -> list[str]:
        """The job's log lines; a finished job's never change, so they are fetched once an hour at most."""
        def fetch():
            try:
                return list(self.api.fetch_job_logs(job_id=job_id, namespace=self.namespace))
            except Exception:
                return []  # progress is a nicety: the state comes from inspect/list
        return _cached(("logs", job_id, final), 3600 if final else CACHE_S, fetch)

    def flavors(self) -> list[dict]:
        """The allowed flavors with their price: [{"name", "label", "usd_per_hour"}], in RETRAIN_FLAVORS order."""
        def fetch():
            try:
                return {h.name: h for h in self.api.list_jobs_hardware()}
            except Exception as err:
                raise JobError(f"Hugging Face Jobs did not list its hardware: {_short(err)}") from None
        known = _cached(("hardware",), 3600, fetch)
        out = []
        for name in self.config.flavors:
            h = known.get(name)
            if h is None:
                continue  # not offered (a typo in RETRAIN_FLAVORS, or retired): never shown
            per_minute = h.unit_cost_usd if h.unit_label == "minute" else h.unit_cost_usd / 60
            out.append({"name": name, "label": h.pretty_name, "usd_per_hour": round(per_minute * 60, 4),
                        "accelerator": h.accelerator.model if h.accelerator else None})
        return out

    def estimate(self, spec: dict, flavor: str) -> dict:
        """Minutes and dollars of a job at most: the time cap plus start-up, at the flavor's price."""
        price = next((f["usd_per_hour"] for f in self.flavors() if f["name"] == flavor), None)
        minutes = (self.caps.time_budget_s + START_MARGIN_S) / 60
        return {"max_minutes": round(minutes), "max_usd": None if price is None else round(price * minutes / 60, 2)}

    # --- statuses -----------------------------------------------------------------------------------
    def _status(self, info) -> dict:
        labels = info.labels or {}
        env = info.environment or {}
        try:
            spec = json.loads(env.get("RETRAIN_SPEC", "{}"))
        except ValueError:
            spec = {}
        stage = _stage(info)
        st = {"job_id": labels.get("entry", info.id), "hf_job_id": info.id, "url": info.url,
              "kind": labels.get("kind", "train"), "state": STAGE_STATE.get(stage, "failed"), "stage": stage,
              "spec": spec, "epochs": spec.get("epochs"), "owner": labels.get("owner"), "flavor": info.flavor,
              "created": info.created_at.timestamp() if info.created_at else None,
              "started": info.started_at.timestamp() if info.started_at else None,
              "finished": info.finished_at.timestamp() if info.finished_at else None,
              "run_pending": labels.get("run"), "time_budget_s": self.caps.time_budget_s,
              "synthetic": bool(spec.get("synthetic"))}
        if stage == "SCHEDULING":
            st["phase"] = "starting"
        if stage in ("RUNNING", "COMPLETED") and st["kind"] == "train":
            st.update(progress.parse(self._logs(info.id, final=stage == "COMPLETED")))
        st.setdefault("phase", "starting")
        if stage == "COMPLETED":
            self._finish(st, labels)
        elif stage == "ERROR":
            st["reason"] = self._failure(info, st)
        elif stage == "CANCELED":
            st["reason"] = "the job was cancelled"
        elif stage == "DELETED":
            st["reason"] = "the job was deleted on Hugging Face"
        if st["started"]:
            st["job_s"] = round((st["finished"] or time.time()) - st["started"], 1)
        return st

    def _failure(self, info, st: dict) -> str:
        message = info.status.message or ""
        ran = (info.finished_at.timestamp() - info.started_at.timestamp()) if info.finished_at and info.started_at \
            else 0
        if "timeout" in message.lower() or "timed out" in message.lower() \
                or ran >= self.caps.time_budget_s + START_MARGIN_S - 5:
            return (f"stopped at this server's time limit ({(self.caps.time_budget_s + START_MARGIN_S) / 60:.0f} "
                    "min, RETRAIN_TIME_BUDGET_S plus start-up); nothing was saved")
        last = next((line.strip() for line in reversed(self._logs(info.id))
                     if re.match(r"^\w*(Error|Exception|Diverged)\b|^error:", line.strip())), "")
        why = last or message or "it stopped with an error"
        return f"the job failed on Hugging Face: {_short(RuntimeError(why))}"

    def _finish(self, st: dict, labels: dict) -> None:
        """A completed job is done once its marker is visible in the bucket and its result is adopted."""
        run = labels.get("run")
        marker = self._incoming() / (f"{run}.complete" if st["kind"] == "train"
                                     else f"{run}.evaluated-{labels.get('entry')}")
        if run and self._incoming() is not None and marker.is_file():
            try:
                self._adopt(run, evaluation=st["kind"] == "evaluate")
            except OSError as err:
                st.update(state="failed", reason=f"the run could not be copied: {store.FS_ERRORS.get(err.errno, err)}")
                return
            st.update(state="done", phase="done", run=run)
            return
        waited = time.time() - (st["finished"] or time.time())
        if waited > LOST_AFTER_S:
            st.update(state="failed", reason="the job ended but its run never reached the bucket (see its logs)")
        else:
            st.update(state="running", phase="finishing")  # the bucket may serve a stale listing for seconds

    def _incoming(self) -> Path | None:
        return self.config.bucket_dir / INCOMING if self.config.bucket_dir else None

    def _adopt(self, run: str, evaluation: bool = False) -> None:
        """Copy a complete run from the bucket into runs_dir: a hidden temp folder, then one rename (local disk)."""
        src, dst = self._incoming() / run, self.runs_dir / run
        if evaluation and dst.is_dir():
            for name in ("metrics.json", "nearest.png"):
                if (src / name).is_file():
                    tmp = dst / f".{name}.tmp"
                    shutil.copyfile(src / name, tmp)
                    os.replace(tmp, dst / name)
            return
        if dst.exists():
            return
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run}.tmp-", dir=self.runs_dir))
        try:
            shutil.copytree(src, tmp, dirs_exist_ok=True)
            os.rename(tmp, dst)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _waiting(self) -> list[dict]:
        folder = self.state_dir / WAITING
        entries = [store._read_json(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
        return [e for e in entries if e.get("job_id")]

    def _failed_local(self) -> list[dict]:
        folder = self.state_dir / FAILED
        return [store._read_json(p) for p in sorted(folder.glob("*.json"), reverse=True)] if folder.is_dir() else []

    # --- the interface ------------------------------------------------------------------------------
    def adopt_finished(self) -> list[str]:
        """Copy the newest `keep_runs` complete runs of the bucket that runs_dir lacks (after a restart emptied
        the container's disk). Returns the runs copied."""
        incoming = self._incoming()
        if incoming is None or not incoming.is_dir():
            return []
        markers = sorted(incoming.glob("*.complete"), key=lambda p: p.stat().st_mtime)[-self.caps.keep_runs:]
        runs = [m.name[:-len(".complete")] for m in markers]
        runs = [r for r in runs if run_re().match(r) and not (self.runs_dir / r).exists()]
        for run in runs:
            self._adopt(run)
        return runs

    def queue(self) -> list[dict]:
        """Active jobs: running ones (position 0, as many as RETRAIN_MAX_CONCURRENT) then waiting ones (1, 2...)."""
        self.promote()
        _cached(("adopt", str(self.runs_dir)), 10 * CACHE_S, self.adopt_finished)
        recent = time.time() - 2 * LOST_AFTER_S  # a completed job stays "finishing" until its run is adopted
        running = [self._status(j) for j in self._remote()
                   if _stage(j) in ("SCHEDULING", "RUNNING")
                   or _stage(j) == "COMPLETED" and j.finished_at and j.finished_at.timestamp() > recent]
        running = [s for s in running if s["state"] == "running"]
        waiting = self._waiting()
        per_job = self.caps.time_budget_s + START_MARGIN_S
        slots = [max(0.0, per_job - (time.time() - (s["started"] or time.time()))) for s in running]
        slots += [0.0] * max(0, self.config.max_concurrent - len(slots))
        for i, w in enumerate(waiting):  # each waiting job takes the slot that frees first
            slots.sort()
            w.update(position=i + 1, wait_s=round(slots[0]), end_s=round(slots[0] + per_job))
            slots[0] += per_job
        for s in running:
            s.update(position=0, wait_s=0, end_s=round(s.get("eta_s") or per_job))
        return running + waiting

    def owner_jobs(self, token: str) -> list[dict]:
        """This owner's jobs, newest first (the active ones with their position, as `queue`)."""
        if not token:
            return []
        me = owner_id(token)
        active = {s["job_id"]: s for s in self.queue()}
        mine = [active.get(s["job_id"], s) for s in (self._status(j) for j in self._remote()
                                                       if (j.labels or {}).get("owner") == me)]
        mine += [w for w in self._waiting() if w.get("owner") == me]
        mine += [f for f in self._failed_local() if f.get("owner") == me]
        return sorted(mine, key=lambda s: s.get("created") or 0, reverse=True)

    def job_status(self, job_id: str) -> dict | None:
        for w in self._waiting() + self._failed_local():
            if w["job_id"] == job_id:
                return w
        info = next((j for j in self._remote() if (j.labels or {}).get("entry", j.id) == job_id), None)
        return self._status(info) if info is not None else None

    def start_job(self, spec: dict, owner: str, flavor: str | None = None) -> str:
        s = validate_spec(spec, self.caps)
        flavor = flavor or self.config.flavors[0]
        offered = [f["name"] for f in self.flavors()]
        if flavor not in offered:
            raise ValueError(f"flavor must be one of {offered} on this server, got {flavor!r}")
        run = f"ui-{s['model']}-{s['dataset']}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        return self._enqueue("train", s, owner, flavor, run)

    def start_evaluation(self, run: str, owner: str, flavor: str | None = None) -> str:
        if not isinstance(run, str) or not run_re().match(run):
            raise ValueError(f"only runs trained on the Retrain page can be evaluated here, not {run!r}")
        if self._incoming() is None or not (self._incoming() / f"{run}.complete").is_file():
            raise JobError(f"run {run} is not in the bucket (only runs trained on Hugging Face Jobs can be "
                           "evaluated there)")
        dataset = next(d for d in datasets.names() if f"-{d}-" in run)  # run_re: ui-<model>-<data set>-<time>
        spec = {"run": run, "dataset": dataset, "samples": EVAL_SAMPLES, "seeds": [0]}
        return self._enqueue("evaluate", spec, owner, flavor or self.config.flavors[0], run)

    def _enqueue(self, kind: str, spec: dict, owner: str, flavor: str, run: str) -> str:
        me = owner_id(owner)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with store._queue_lock(self.state_dir):
            remote = self._remote(fresh=True)
            mine = next((self._status(j) for j in remote if (j.labels or {}).get("owner") == me
                         and STAGE_STATE.get(_stage(j)) == "running"), None)
            mine = mine or next((w for w in self._waiting() if w["owner"] == me), None)
            if mine is not None:
                raise JobBusy("you already have a job in the queue; cancel it or wait for it to finish", mine)
            if len(self._waiting()) >= self.caps.max_queue:
                raise JobBusy(f"the queue is full ({self.caps.max_queue} jobs waiting); try again when one has "
                              "finished")
            if run in {(j.labels or {}).get("run") for j in remote} and kind == "train":
                run = f"{run}-{len(remote) + 1}"
            job_id = "w" + store._new_job_id(self.state_dir / WAITING).replace("-", "")
            entry = {"job_id": job_id, "kind": kind, "state": "queued", "spec": spec, "epochs": spec.get("epochs"),
                     "owner": me, "flavor": flavor, "run_pending": run, "created": time.time(),
                     "time_budget_s": self.caps.time_budget_s, "synthetic": bool(spec.get("synthetic"))}
            (self.state_dir / WAITING).mkdir(exist_ok=True)
            store._write_json(self.state_dir / WAITING / f"{job_id}.json", entry)
            self._promote_locked()
            if self._waiting():
                ensure_promoter(self.state_dir)
        return job_id

    def promote(self) -> None:
        """Submit waiting jobs while fewer than RETRAIN_MAX_CONCURRENT run (oldest first)."""
        if not self._waiting():
            return
        with store._queue_lock(self.state_dir):
            self._promote_locked()
            if self._waiting():
                ensure_promoter(self.state_dir)

    def _promote_locked(self) -> None:
        waiting = self._waiting()
        if not waiting:
            return
        busy = sum(STAGE_STATE.get(_stage(j)) == "running" for j in self._remote(fresh=True))
        for entry in waiting[:max(0, self.config.max_concurrent - busy)]:
            path = self.state_dir / WAITING / f"{entry['job_id']}.json"
            try:
                self._submit(entry)
            except Exception as err:
                entry.update(state="failed", finished=time.time(),
                             reason=f"Hugging Face Jobs refused the job: {_short(err)}")
                (self.state_dir / FAILED).mkdir(exist_ok=True)
                store._write_json(self.state_dir / FAILED / f"{entry['job_id']}.json", entry)
            path.unlink(missing_ok=True)
        _CACHE.pop(("jobs", self.config.app), None)

    def _submit(self, entry: dict) -> None:
        from huggingface_hub import Volume

        s, run = entry["spec"], entry["run_pending"]
        labels = {"app": self.config.app, "kind": entry["kind"], "owner": entry["owner"], "run": run,
                  "entry": entry["job_id"], "dataset": s["dataset"]}
        if not all(LABEL_RE.match(v) for v in labels.values()):
            raise JobError(f"a label is not valid for Hugging Face Jobs: {labels}")
        if entry["kind"] == "train":
            command = train_command(s, f"{MOUNT}/{INCOMING}/{run}", self.caps, self.config.data_dir)
        else:
            command = ["python", "-m", "core", "evaluate", f"{MOUNT}/{INCOMING}/{run}", "--samples",
                       str(s["samples"]), "--seeds", *map(str, s["seeds"]), "--iwae-k", "0",
                       "--marker", f"{MOUNT}/{INCOMING}/{run}.evaluated-{entry['job_id']}"]
            if self.config.data_dir:
                command += ["--data-dir", self.config.data_dir]
        self.api.run_job(image=self.config.image, command=command, flavor=entry["flavor"],
                         env={"RETRAIN_SPEC": json.dumps(s), "PYTHONUNBUFFERED": "1"},  # no secret here
                         timeout=int(self.caps.time_budget_s + START_MARGIN_S), labels=labels, name=run,
                         volumes=[Volume(type="bucket", source=self.config.bucket, mount_path=MOUNT)],
                         namespace=self.namespace)

    def cancel_job(self, job_id: str, owner: str) -> dict | None:
        st = self.job_status(job_id)
        if st is None:
            return None
        if not owner or st.get("owner") != owner_id(owner):
            raise NotOwner("only the visitor who queued this job can cancel it")
        with store._queue_lock(self.state_dir):
            path = self.state_dir / WAITING / f"{job_id}.json"
            if path.is_file():
                path.unlink()
                return {**st, "state": "cancelled", "reason": "cancelled by its owner", "finished": time.time()}
        if st["state"] == "running" and st.get("hf_job_id"):
            try:
                self.api.cancel_job(job_id=st["hf_job_id"], namespace=self.namespace)
            except Exception as err:
                raise JobError(f"Hugging Face Jobs did not cancel the job: {_short(err)}") from None
            _CACHE.pop(("jobs", self.config.app), None)
            return {**st, "state": "cancelled", "reason": "cancelled by its owner", "finished": time.time()}
        return st

    def cancel_all(self) -> None:
        """Administrators and tests: drop every waiting entry and cancel every running job of this app."""
        with store._queue_lock(self.state_dir):
            for p in (self.state_dir / WAITING).glob("*.json"):
                p.unlink()
        for j in self._remote(fresh=True):
            if STAGE_STATE.get(_stage(j)) == "running":
                self.api.cancel_job(job_id=j.id, namespace=self.namespace)
        _CACHE.pop(("jobs", self.config.app), None)


def train_command(spec: dict, out: str, caps: Caps, data_dir: str | None) -> list[str]:
    """`python -m core train ...` for a checked spec, writing the run to `out` and its marker last."""
    cmd = ["python", "-m", "core", "train", "--model", spec["model"], "--dataset", spec["dataset"],
           "--preset", spec["preset"], "--epochs", str(spec["epochs"]), "--batch-size", str(spec["batch_size"]),
           "--latent-dim", str(spec["latent_dim"]), "--seed", str(spec["seed"]),
           "--time-budget", str(caps.time_budget_s), "--quality", "none", "--progress", "json",
           "--out", out, "--marker", f"{out}.complete"]
    if spec.get("lr") is not None:
        cmd += ["--lr", repr(float(spec["lr"]))]
    if spec.get("limit"):
        cmd += ["--limit", str(spec["limit"])]
    if spec.get("synthetic"):
        cmd += ["--synthetic", str(spec["synthetic"])]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    return cmd


# --- the promoter: submits waiting jobs while no page is open ------------------------------------------
def ensure_promoter(state_dir: Path) -> None:
    """Caller holds queue.lock and jobs wait: start a promoter unless one holds promoter.lock."""
    lock = state_dir / PROMOTER_LOCK
    if lock.exists():
        import fcntl

        probe = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a promoter lives
        finally:
            os.close(probe)
    from core.jobs.dispatcher import REPO

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    with open(state_dir / "promoter.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "core.jobs", "promote", str(state_dir.resolve())], cwd=REPO,
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    threading.Thread(target=proc.wait, daemon=True).start()


def run_promoter(state_dir) -> int:
    """Body of `python -m core.jobs promote <state_dir>`: hold promoter.lock, submit waiting jobs as slots free,
    leave (under queue.lock) when nothing waits. Its configuration comes from the server's environment."""
    import fcntl

    state_dir = Path(state_dir).resolve()
    fd = os.open(state_dir / PROMOTER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return 0
    from core import paths

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


# --- the CLI: python -m core train ... --backend hf-jobs [--flavor t4-small] ---------------------------
DROP_OPTIONS = {"--backend", "--flavor", "--out", "--progress", "--marker"}


def remote_argv(argv: list[str]) -> list[str]:
    """The CLI's own arguments minus the ones that choose where and how it runs."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in DROP_OPTIONS:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def train_from_cli(args, argv: list[str]) -> int:
    """Submit `core train` to Hugging Face Jobs, follow its progress, say where the run is. Exit status 0 = done."""
    config = HfJobsConfig.from_env(need_bucket_dir=False)
    flavor = args.flavor or config.flavors[0]
    hf = api(config)
    namespace = config.namespace or hf.whoami()["name"]
    known = {h.name: h for h in hf.list_jobs_hardware()}
    if flavor not in known:
        print(f"error: --flavor {flavor} is not a Jobs flavor; one of: {', '.join(known)}", file=sys.stderr)
        return 2
    name = Path(args.out).name if args.out else f"{args.dataset}-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not LABEL_RE.match(name):
        print(f"error: the run name {name!r} may hold only letters, digits, '-' and '_'", file=sys.stderr)
        return 2
    out = f"{MOUNT}/{INCOMING}/{name}"
    command = ["python", "-m", "core", *[a for a in remote_argv(argv)], "--out", out, "--progress", "json",
               "--marker", f"{out}.complete"]
    if command[3] != "train":
        command.insert(3, "train")
    from huggingface_hub import Volume

    timeout = int(args.time_budget + START_MARGIN_S) if args.time_budget else None
    job = hf.run_job(image=config.image, command=command, flavor=flavor, timeout=timeout,
                     env={"PYTHONUNBUFFERED": "1"}, namespace=namespace,
                     labels={"app": config.app, "kind": "cli", "run": name, "dataset": args.dataset},
                     volumes=[Volume(type="bucket", source=config.bucket, mount_path=MOUNT)])
    h = known[flavor]
    print(f"submitted {job.id} on {flavor} (${h.unit_cost_usd * 60:.2f}/hour): {job.url}", flush=True)
    seen = 0
    while True:
        info = hf.inspect_job(job_id=job.id, namespace=namespace)
        lines = list(hf.fetch_job_logs(job_id=job.id, namespace=namespace))
        p = progress.parse(lines)
        for line in lines[seen:]:
            if not line.startswith((progress.PROGRESS, progress.EPOCH)):
                print(f"  | {line}", flush=True)
        seen = len(lines)
        if p.get("step"):
            print(f"epoch {p.get('epoch')} step {p['step']}/{p['total_steps']} "
                  f"{json.dumps(p.get('losses', {}))}", flush=True)
        stage = _stage(info)
        if stage in ("COMPLETED", "ERROR", "CANCELED", "DELETED"):
            break
        time.sleep(float(os.environ.get("RETRAIN_CLI_POLL_S", "5")))
    minutes = (info.finished_at - info.started_at).total_seconds() / 60 if info.finished_at and info.started_at \
        else 0
    print(f"{stage.lower()} after {minutes:.1f} min (about ${h.unit_cost_usd * minutes:.3f})")
    if stage != "COMPLETED":
        print(f"error: the job ended {stage}: {info.status.message or 'see its logs at ' + job.url}",
              file=sys.stderr)
        return 1
    print(f"the run is in the bucket {config.bucket} at {INCOMING}/{name}/ (marker {INCOMING}/{name}.complete)")
    return 0
