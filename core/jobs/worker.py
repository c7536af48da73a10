"""The job process (`python -m core.jobs run <jobdir>`): trains or evaluates, reporting into status.json.

Progress goes to status.json at most once a second (losses averaged down to HISTORY_POINTS points), the
newest sample grid to latest.png; the cancel flag is checked every step and SIGTERM is honoured outside the
step loop. Torch is imported only here, inside the job.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
import traceback
from pathlib import Path

from core.files import is_disk_full
from core.jobs import store
from core.jobs.dispatcher import _lower_priority
from core.jobs.progress import HISTORY_POINTS  # noqa: F401 (re-exported: the history's length)
from core.jobs.progress import downsample as _downsample
from core.jobs.spec import run_re

STATUS_INTERVAL_S = 1.0  # at most one status write a second, besides epoch ends and state changes


class Cancelled(Exception):
    """Raised inside the worker when the cancel flag appears or SIGTERM arrives."""


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


class _Progress:
    """The job's on_step / on_epoch callbacks: cancel checks and throttled status writes."""

    def __init__(self, jobdir: Path, status: dict):
        self.jobdir, self.status = jobdir, status
        self.steps: dict[str, list] = {"step": []}
        self.epochs: dict[str, list] = {}
        self.last_write = 0.0

    def write(self, **changes) -> None:
        self.status.update(changes, updated=time.time())
        store._write_json(self.jobdir / store.STATUS, self.status)
        self.last_write = time.monotonic()

    def check(self) -> None:
        if (self.jobdir / store.CANCEL).exists():
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

            write_png(self.jobdir / store.GRID, p["grid"])
        for k, v in p["row"].items():
            self.epochs.setdefault(k, []).append(round(v, 5))
        last = p["epoch"] == p["epochs"] or p["step"] < self.status.get("total_steps", 0) * p["epoch"] / p["epochs"]
        self.write(phase="finishing" if last else "training", epoch=p["epoch"], step=p["step"],
                   eta_s=0.0 if last else self.status.get("eta_s"),
                   epoch_losses={k: round(v, 5) for k, v in p["row"].items()}, epoch_history=self.epochs,
                   history=_downsample(self.steps),
                   grid=str(self.jobdir / store.GRID) if p["grid"] is not None else None, grid_epoch=p["epoch"])


def _train(job: dict, progress: _Progress) -> dict:
    s, caps = job["spec"], job["caps"]
    runs_dir = Path(job["runs_dir"])
    stamp = time.strftime('%Y%m%d-%H%M%S', time.gmtime())
    run = store._unique_name(runs_dir, f"ui-{s['model']}-{s['dataset']}-{stamp}")
    job["run"] = run
    store._write_json(progress.jobdir / store.JOB, job)  # so a killed job's temp folder is found and removed
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
    job = store._read_json(jobdir / store.JOB)
    _lower_priority()
    progress = _Progress(jobdir, store._read_json(jobdir / store.STATUS))
    t0 = time.monotonic()
    progress.write(state="running", phase="starting", pid=os.getpid(), run=None, reason=None)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        progress.check()
        result = (_evaluate if job.get("kind") == "evaluate" else _train)(job, progress)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the result is saved: finish the bookkeeping
    except Cancelled:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        progress.write(state="cancelled", reason=(jobdir / store.CANCEL).read_text() if (jobdir / store.CANCEL).exists()
                       else "cancelled", finished=time.time())
        return 1
    except Exception as err:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with contextlib.suppress(OSError):  # worker.log may sit on the same full disk: the status still says why
            traceback.print_exc()  # the full story goes to worker.log; the page shows one line
        from core.train import TrainingDiverged

        reason = str(err) if isinstance(err, (TrainingDiverged, RuntimeError)) else f"{type(err).__name__}: {err}"
        if isinstance(err, OSError):
            reason = f"could not save: {store.FS_ERRORS.get(err.errno, err.strerror)}"
        if is_disk_full(err):
            reason = str(err) if str(err).startswith("disk full") else f"disk full: {reason}"
        progress.write(state="failed", reason=reason[:500], finished=time.time())
        return 1
    progress.write(state="done", phase="done", finished=time.time(), job_s=round(time.monotonic() - t0, 1),
                   **result)
    return 0
