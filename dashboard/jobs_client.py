"""The Retrain page's side of the job queue (core.jobs runs the training in its own process): this browser
session's owner token, the queue, starting and cancelling jobs, the data sets a job can train on."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import paths
from core.run import layout
from dashboard.runs import config


def retrain_caps():
    from core.jobs import Caps

    return Caps.from_env()


def jobs_dir() -> Path:
    return paths.jobs_dir()


def data_root() -> Path:
    return paths.data_dir()


def dataset_available(name: str) -> bool:
    from core.data import is_available

    return is_available(name, data_root())


def download_dataset(name: str) -> None:
    """Fetch a data set into the data root (needs internet; raises DataMissingError otherwise)."""
    from core.data import load_split

    for train in (True, False):
        load_split(name, data_root(), train=train, download=True)


def owner_token() -> str:
    """This browser session's private owner token for the job queue (kept in st.session_state, never shown)."""
    token = st.session_state.get("_retrain_owner")
    if not token:
        import secrets

        token = st.session_state["_retrain_owner"] = secrets.token_urlsafe(24)
    return token


def job_queue() -> list[dict]:
    """Active jobs, running first, with position and estimated seconds (raises core.jobs.JobError)."""
    from core.jobs import queue

    return queue(jobs_dir())


def my_jobs() -> list[dict]:
    """This session's jobs, newest first (active ones with their queue position)."""
    from core.jobs import owner_jobs

    return owner_jobs(jobs_dir(), owner_token())


def current_job() -> dict | None:
    active = job_queue()
    return active[0] if active else None


def start_job(spec: dict) -> str:
    from core.jobs import start_job as sj

    return sj(spec, paths.runs_dir(), jobs_dir(), data_root(), retrain_caps(), owner=owner_token())


def start_evaluation(run: str) -> str:
    """Queue the quick evaluation of this session's retrained run (results land in its metrics.json)."""
    from core.jobs import start_evaluation as se

    dataset = config(str(paths.runs_dir() / run))["dataset"]["name"]
    return se(run, paths.runs_dir(), paths.checkpoints_dir() / f"{dataset}-classifier", jobs_dir(), data_root(),
              retrain_caps(), owner=owner_token())


def cancel_job(job_id: str) -> dict | None:
    """Cancel or remove this session's job (core.jobs.NotOwner for anyone else's)."""
    from core.jobs import cancel_job as cj

    return cj(jobs_dir(), job_id, owner_token())


def run_exists(run: str) -> bool:
    return (paths.runs_dir() / run / layout.CONFIG).is_file()


def job_grid(job: dict) -> str | None:
    """The sample grid to show for a job: the saved run's last grid once it exists, else the live one."""
    if job.get("run") and run_exists(job["run"]):
        grids = layout.sample_grids(paths.runs_dir() / job["run"])
        if grids:
            return str(grids[-1])
    grid = job.get("grid")
    return grid if grid and Path(grid).is_file() else None


@st.cache_data(ttl=2, max_entries=256, show_spinner=False)  # a page names many runs: the jobs folder read once
def _runs_of(jobs: str, token: str) -> frozenset[str]:
    from core.jobs import owner_jobs

    try:
        return frozenset(j["run"] for j in owner_jobs(Path(jobs), token) if j.get("run"))
    except Exception:  # an unreadable jobs folder must not take a page down: nothing is marked
        return frozenset()


def my_runs() -> frozenset[str]:
    """Names of the runs this browser session's jobs trained: marked "yours" wherever a run is named."""
    return _runs_of(str(jobs_dir()), owner_token())


def display_name(info) -> str:
    """A run's one name on every page: its folder name, and "(yours)" for a run this visitor retrained."""
    mine = info.name in my_runs() and Path(info.path).parent == paths.runs_dir()
    return info.name + (" (yours)" if mine else "")
