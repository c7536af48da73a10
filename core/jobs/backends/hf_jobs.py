"""The `hf-jobs` backend: each job runs on Hugging Face Jobs (CPU or GPU flavors), through huggingface_hub only.

Where things live:
- a job's state, owner and position: in the Jobs API, as labels on the job (app, kind, owner digest, data set,
  run, entry), read with list_jobs(labels=...) / inspect_job. Every replica of the Space sees the same
  queue, and a restart of the dashboard loses no submitted job.
- jobs waiting for one of the RETRAIN_MAX_CONCURRENT slots: one small file each on the container's own disk
  (<state_dir>/waiting/, under the local queue lock), submitted oldest first by whoever reads the queue and by
  a small promoter process (hf_promoter.py) that lives while jobs wait.
- the finished run: written by the job into the bucket volume, <bucket>/incoming/<run>/, then the marker
  <bucket>/incoming/<run>.complete, last. The dashboard copies a run whose marker it sees into its runs folder
  (hidden temp folder, then one rename on its own disk), so a half-written folder is never listed.
- live progress: the job prints `@progress` lines (core.jobs.progress), read back with fetch_job_logs.

The Space owner's settings and a job's command line: hf_config.py; `core train --backend hf-jobs`: hf_cli.py.

Secrets: the dashboard's token (HF_TOKEN) stays in this process; a job gets no secret at all (the bucket is
mounted by the platform), and nothing here prints or returns the token.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

from core import datasets
from core.jobs import progress, store
from core.jobs.backends.hf_config import (  # noqa: F401 (START_MARGIN_S, MOUNT: read by tests)
    INCOMING,
    LABEL_RE,
    MOUNT,
    START_MARGIN_S,
    HfJobsConfig,
    _short,
    _stage,
    api,
    on_flavor,
    train_command,
)
from core.jobs.backends.hf_promoter import ensure_promoter
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

WAITING, FAILED = "waiting", "failed"
CACHE_S = 2.0  # list_jobs / logs answers are shared by every page view for this long
LOST_AFTER_S = 120.0  # a completed job whose marker is still not visible after this long: its run is lost
STAGE_STATE = {"SCHEDULING": "running", "RUNNING": "running", "COMPLETED": "done", "ERROR": "failed",
               "CANCELED": "cancelled", "DELETED": "failed"}


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
        self.api.run_job(image=self.config.image, command=on_flavor(command, entry["flavor"]), flavor=entry["flavor"],
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
