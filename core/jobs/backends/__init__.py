"""One interface for everything that queues work (the Retrain page, its Evaluate button, the CLI):

    backend.queue() -> [status]                      active jobs, running first, with position / wait_s / end_s
    backend.owner_jobs(token) -> [status]            one visitor's jobs, newest first
    backend.job_status(job_id) -> status | None
    backend.start_job(spec, owner, flavor=None) -> job_id            (ValueError, JobBusy, JobError)
    backend.start_evaluation(run, owner, flavor=None) -> job_id
    backend.cancel_job(job_id, owner) -> status | None              (NotOwner for anyone else)
    backend.flavors() -> [{"name", "label", "usd_per_hour"}]        ([] for local: no choice, no price)

A status is the dict of a local job's status.json (state, phase, spec, epoch, step, total_steps, history,
epoch_history, losses, run, reason...), whichever backend ran it, so the page draws both the same way.

`get(name)` builds one: "local" (the default: this machine, one job at a time) or "hf-jobs" (Hugging Face
Jobs, configured by HF_TOKEN and RETRAIN_HF_* variables, see docs/deploy.md). RETRAIN_BACKEND picks it on
the server, --backend on the CLI.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.jobs.spec import Caps, JobError

NAMES = ("local", "hf-jobs")


class LocalBackend:
    """The local queue (core.jobs.backends.local) behind the common interface."""

    name = "local"

    def __init__(self, runs_dir, jobs_dir=None, data_dir=None, caps: Caps | None = None, classifiers=None):
        from core.jobs.store import default_jobs_dir

        self.runs_dir = Path(runs_dir)
        self.jobs_dir = Path(jobs_dir or default_jobs_dir(runs_dir))
        self.data_dir, self.caps = data_dir, caps or Caps.from_env()
        self.classifiers = Path(classifiers) if classifiers else None  # <dir>/<data set>-classifier

    def queue(self) -> list[dict]:
        from core.jobs.backends import local

        return local.queue(self.jobs_dir)

    def owner_jobs(self, token: str) -> list[dict]:
        from core.jobs.backends import local

        return local.owner_jobs(self.jobs_dir, token)

    def job_status(self, job_id: str) -> dict | None:
        from core.jobs.store import job_status

        return job_status(self.jobs_dir, job_id)

    def start_job(self, spec: dict, owner: str, flavor: str | None = None) -> str:
        from core.jobs.backends import local

        return local.start_job(spec, self.runs_dir, self.jobs_dir, self.data_dir, self.caps, owner=owner)

    def start_evaluation(self, run: str, owner: str, flavor: str | None = None) -> str:
        from core import paths
        from core.jobs.backends import local
        from core.run.layout import classifier_run
        from core.run.schemas import read_config

        dataset = read_config(self.runs_dir / run)["dataset"]["name"] if (self.runs_dir / run).is_dir() else "mnist"
        classifier = (self.classifiers or paths.checkpoints_dir()) / classifier_run(dataset)
        return local.start_evaluation(run, self.runs_dir, classifier, self.jobs_dir, self.data_dir, self.caps,
                                      owner=owner)

    def cancel_job(self, job_id: str, owner: str) -> dict | None:
        from core.jobs.backends import local

        return local.cancel_job(self.jobs_dir, job_id, owner)

    def flavors(self) -> list[dict]:
        return []


def get(name: str | None = None, *, runs_dir, state_dir=None, data_dir=None, caps: Caps | None = None,
        classifiers=None):
    """The backend `name` (default $RETRAIN_BACKEND, else local). `state_dir`: the local jobs folder (locks and
    the queue; on the container's own disk)."""
    name = (name or os.environ.get("RETRAIN_BACKEND") or "local").strip()
    if name == "local":
        return LocalBackend(runs_dir, state_dir, data_dir, caps, classifiers)
    if name == "hf-jobs":
        from core.jobs.backends.hf_jobs import HfJobsBackend
        from core.jobs.store import default_jobs_dir

        return HfJobsBackend(runs_dir, state_dir or default_jobs_dir(runs_dir), caps)
    raise JobError(f"RETRAIN_BACKEND={name!r} is not a backend; one of: {', '.join(NAMES)}")
