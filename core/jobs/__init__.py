"""Background jobs: training and evaluation queued by the Retrain page and the CLI, run by a backend.

  spec.py        what a job may ask for (the spec, the server's caps), owners, errors
  store.py       the local queue's folders and locks (on the container's own disk, never a bucket mount)
  dispatcher.py  the local process that runs queued jobs one at a time
  worker.py      one job's process: trains or evaluates, reports progress
  progress.py    training progress as log lines and back (a remote job's live charts)
  backends/      `local` (the default) and `hf-jobs` (Hugging Face Jobs: hf_jobs, hf_config, hf_cli), one
                 interface: backends.get()

The names below are the local backend's functions, as the dashboard and the benchmarks call them.
"""

from core.jobs.backends.local import (
    cancel_all,
    cancel_job,
    current_job,
    owner_jobs,
    queue,
    start_evaluation,
    start_job,
)
from core.jobs.spec import (
    ACTIVE,
    DEFAULT_SPEC,
    EVAL_SAMPLES,
    KINDS,
    Caps,
    JobBusy,
    JobError,
    NotOwner,
    is_owner,
    models,
    owner_id,
    run_re,
    validate_spec,
)
from core.jobs.store import JOB, SPAWNED, STATUS, default_jobs_dir, job_status, list_jobs
from core.jobs.worker import HISTORY_POINTS, prune_runs

__all__ = ["ACTIVE", "DEFAULT_SPEC", "EVAL_SAMPLES", "HISTORY_POINTS", "JOB", "KINDS", "SPAWNED", "STATUS", "Caps",
           "JobBusy", "JobError", "NotOwner", "cancel_all", "cancel_job", "current_job", "default_jobs_dir",
           "is_owner", "job_status", "list_jobs", "models", "owner_id", "owner_jobs", "prune_runs", "queue",
           "run_re", "start_evaluation", "start_job", "validate_spec"]
