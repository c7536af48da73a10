"""The Retrain page's side of the job queue (core.jobs runs the training in its own process): this browser
session's owner token, the queue, starting and cancelling jobs, the data sets a job can train on."""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from core import paths
from core.run import layout


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


OWNER_COOKIE = "gv_owner"
TOKEN_RE = re.compile(r"^[0-9a-f]{64}$")
# Runs once in a browser that has no owner cookie yet: 32 random bytes made by the browser itself (the server
# never sends a token), kept for a year, then one reload so the server's next connection carries it. A Space
# is embedded in huggingface.co, so over https the cookie must be SameSite=None (partitioned per top site).
# sessionStorage stops a reload loop where cookies are refused; that tab then keeps a per-tab token.
COOKIE_SCRIPT = """<script>(function () {
  if (document.cookie.split("; ").some(function (c) { return c.indexOf("NAME=") === 0; })) {
    if (!sessionStorage.getItem("NAME_sent")) { sessionStorage.setItem("NAME_sent", "1"); location.reload(); }
    return;
  }
  var b = new Uint8Array(32); crypto.getRandomValues(b);
  var t = Array.from(b, function (x) { return x.toString(16).padStart(2, "0"); }).join("");
  var secure = location.protocol === "https:" ? "; SameSite=None; Secure; Partitioned" : "; SameSite=Lax";
  document.cookie = "NAME=" + t + "; path=/; max-age=31536000" + secure;
  if (!sessionStorage.getItem("NAME_sent")) { sessionStorage.setItem("NAME_sent", "1"); location.reload(); }
})();</script>""".replace("NAME", OWNER_COOKIE)


def owner_token() -> str:
    """This visitor's private owner token for the job queue: a random cookie the browser made and keeps
    (so a reload, another tab or a server restart is still the same visitor, and owns the same one job);
    job records keep only its SHA-256 digest, and it is never rendered. Until the browser has sent the cookie
    (its first view, or where cookies are refused) a token kept in this session stands in."""
    token = st.session_state.get("_retrain_owner")
    if token:
        return token
    cookie = st.context.cookies.get(OWNER_COOKIE, "")
    if isinstance(cookie, str) and TOKEN_RE.match(cookie):  # (a test harness may hand back a stand-in object)
        token = cookie
    else:
        import secrets

        token = secrets.token_urlsafe(24)
        st.html(COOKIE_SCRIPT, unsafe_allow_javascript=True)
    st.session_state["_retrain_owner"] = token
    return token


def backend():
    """The configured backend (RETRAIN_BACKEND: local, the default, or hf-jobs); raises core.jobs.JobError when
    hf-jobs lacks a setting. Built per call: cheap, and the environment is read as it is now."""
    from core.jobs import backends

    return backends.get(runs_dir=paths.runs_dir(), state_dir=jobs_dir(), data_dir=data_root(), caps=retrain_caps(),
                        classifiers=paths.checkpoints_dir())


def job_queue() -> list[dict]:
    """Active jobs, running first, with position and estimated seconds (raises core.jobs.JobError)."""
    return backend().queue()


def my_jobs() -> list[dict]:
    """This visitor's jobs, newest first (active ones with their queue position)."""
    return backend().owner_jobs(owner_token())


def current_job() -> dict | None:
    active = job_queue()
    return active[0] if active else None


def start_job(spec: dict, flavor: str | None = None) -> str:
    return backend().start_job(spec, owner_token(), flavor)


def start_evaluation(run: str) -> str:
    """Queue the quick evaluation of this visitor's retrained run (results land in its metrics.json)."""
    return backend().start_evaluation(run, owner_token())


def cancel_job(job_id: str) -> dict | None:
    """Cancel or remove this visitor's job (core.jobs.NotOwner for anyone else's)."""
    return backend().cancel_job(job_id, owner_token())


def flavors() -> list[dict]:
    """The hardware a visitor may pick with its price per hour ([] for the local backend: no choice)."""
    return backend().flavors()


def estimate(spec: dict, flavor: str) -> dict:
    """The most a job may take and cost on `flavor` (hf-jobs only)."""
    return backend().estimate(spec, flavor)


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


@st.cache_data(ttl=2, max_entries=256, show_spinner=False)  # a page names many runs: the jobs read once
def _runs_of(token: str, state_dir: str) -> frozenset[str]:  # state_dir: part of the key only
    try:
        return frozenset(j["run"] for j in backend().owner_jobs(token) if j.get("run"))
    except Exception:  # unreadable job records must not take a page down: nothing is marked
        return frozenset()


def my_runs() -> frozenset[str]:
    """Names of the runs this visitor's jobs trained: marked "yours" wherever a run is named. A visitor without
    an owner token yet (no job started, no cookie) has none, and none is made here."""
    cookie = st.context.cookies.get(OWNER_COOKIE, "")
    token = st.session_state.get("_retrain_owner") or (
        cookie if isinstance(cookie, str) and TOKEN_RE.match(cookie) else None)
    return _runs_of(token, str(jobs_dir())) if token else frozenset()


def display_name(info) -> str:
    """A run's one name on every page: its folder name, and "(yours)" for a run this visitor retrained."""
    mine = info.name in my_runs() and Path(info.path).parent == paths.runs_dir()
    return info.name + (" (yours)" if mine else "")
