"""The Retrain page under AppTest: form checks, the queue seen by owners and others, the finished run."""

import errno
import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import jobs
from core.data import RAW_FILES
from core.jobs import Caps, cancel_all, job_status, list_jobs, queue, start_job, store

from ..core.test_jobs import wait_for
from .test_dashboard import plain

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
CAPS = Caps(threads=1, embed_size=32)
LONG = {"model": "gan", "preset": "seed", "latent_dim": 8, "epochs": 5, "batch_size": 16, "synthetic": 50_000}
ONE_EPOCH = {"model": "vae", "preset": "seed", "latent_dim": 8, "epochs": 1, "batch_size": 32, "synthetic": 256}
ME, OTHER = "token-of-this-visitor", "token-of-another-visitor"


@pytest.fixture
def env(monkeypatch, tmp_path, tiny_runs):
    data_root = tmp_path / "data"  # the page only checks the raw files exist before Start
    (data_root / "MNIST" / "raw").mkdir(parents=True)
    for f in RAW_FILES:
        (data_root / "MNIST" / "raw" / f).touch()
    runs = tmp_path / "runs"
    monkeypatch.setenv("CHECKPOINT_DIR", str(tiny_runs))
    monkeypatch.setenv("RUNS_DIR", str(runs))
    monkeypatch.setenv("DATA_DIR", str(data_root))
    monkeypatch.setenv("RETRAIN_EMBED_SIZE", "32")
    st.cache_data.clear()
    yield runs
    cancel_all(runs / ".jobs")


def open_retrain(token: str = ME) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)  # generous: a loaded 2-core box
    at.session_state["_retrain_owner"] = token
    at.run()
    at.switch_page("views/retrain.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def submit(at: AppTest, **typed) -> AppTest:
    for key, value in typed.items():
        at.text_input(key=key).set_value(value)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("key, typed, words", [
    ("rt_epochs", "-3", "Epochs must be a whole number from 1 to 5 (you typed '-3')"),
    ("rt_epochs", "1e9", "Epochs must be a whole number from 1 to 5 (you typed '1e9')"),
    ("rt_batch", str(10**18), "Batch size must be a whole number from 16 to 512"),
    ("rt_latent", "1.5", "Latent size must be a whole number from 2 to 128"),
    ("rt_lr", "-0.1", "Learning rate must be a number from 1e-05 to 0.01"),
    ("rt_seed", "", "Random seed is empty"),
])
def test_bad_form_values_are_refused_naming_the_field(env, key, typed, words):
    at = submit(open_retrain(), **{key: typed})
    assert any(words in e.value and "nothing was started" in e.value for e in at.error), [e.value for e in at.error]
    assert list_jobs(env / ".jobs") == []
    assert at.text_input(key=key).value == typed  # what the visitor typed stays, for them to correct


def test_another_visitors_job_is_shown_but_cannot_be_cancelled_and_the_form_queues(env):
    start_job(LONG, env, env / ".jobs", caps=CAPS, owner=OTHER)
    wait_for(lambda: (queue(env / ".jobs") or [{}])[0].get("state") == "running", 60, "the job to start")
    at = open_retrain()
    assert any("Another visitor's job is running" in i.value for i in at.info)
    assert not any("Cancel" in b.label or "Remove" in b.label for b in at.button)
    assert ME not in repr(at.main) and ME not in repr(at.sidebar)  # the owner token is never rendered
    submit(at, rt_epochs="1")  # the visitor queues behind it
    mine = [s for s in queue(env / ".jobs") if jobs.is_owner(s, ME)]
    assert len(mine) == 1 and mine[0]["state"] == "queued" and mine[0]["spec"]["epochs"] == 1
    assert any("position 1" in i.value for i in at.info), [i.value for i in at.info]
    remove = next(b for b in at.button if b.label == "Remove my job from the queue")
    remove.click().run()
    assert job_status(env / ".jobs", mine[0]["job_id"])["state"] == "cancelled"
    assert any(b.label == "Start training" for b in at.button)
    assert at.text_input(key="rt_epochs").value == "1"  # the form keeps the visitor's last values


def test_owner_cancel_is_an_info_message(env):
    at = open_retrain()
    job_id = start_job(LONG, env, env / ".jobs", caps=CAPS, owner=ME)
    wait_for(lambda: job_status(env / ".jobs", job_id).get("phase") == "training", 60, "training")
    at.run()
    next(b for b in at.button if b.label == "Cancel my job").click().run()
    assert job_status(env / ".jobs", job_id)["state"] == "cancelled"
    assert any("You cancelled your job" in i.value for i in at.info)
    assert not at.error


def test_a_finished_one_epoch_run_stays_on_the_page_is_selected_and_can_be_evaluated(env):
    at = open_retrain()
    job_id = start_job(ONE_EPOCH, env, env / ".jobs", caps=CAPS, owner=ME)
    st_ = wait_for(lambda: (s := job_status(env / ".jobs", job_id))["state"] == "done" and s, 60, "the job")
    at.run()
    at.run()  # the page selects the run in the sidebar with one rerun
    assert not at.exception, [e.value for e in at.exception]
    assert any(st_["run"] in s.value for s in at.success)
    assert at.session_state["pick_vae"] == str(env / st_["run"])
    charts = at.get("plotly_chart")
    specs = [plain(json.loads(c.proto.spec)) for c in charts]
    per_epoch = [s for s in specs if "per epoch" in json.dumps(s.get("layout", {}).get("title", ""))]
    assert per_epoch and all(t["mode"] == "lines+markers" and len(t["x"]) == 1 for t in per_epoch[0]["data"])
    assert at.get("image"), "the final sample grid is shown"
    assert len(list((env / st_["run"] / "samples").glob("*.png"))) == 1  # a one-epoch run writes its grid
    # Evaluate: no classifier among the tiny runs, so the page says so instead of queueing
    next(b for b in at.button if b.label == "Evaluate").click().run()
    assert any("no evaluation classifier" in e.value for e in at.error), [e.value for e in at.error]


@pytest.mark.parametrize("err, words", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"),
                                        (errno.EACCES, "permission denied")])
def test_jobs_folder_errors_are_a_message_not_a_traceback(env, monkeypatch, err, words):
    def fail(*args, **kwargs):
        raise OSError(err, "simulated", str(env / ".jobs"))

    at = open_retrain()
    with monkeypatch.context() as mp:  # reading the queue fails
        mp.setattr(store, "_job_dirs", fail)
        at.run()
        assert not at.exception
        assert any(words in e.value for e in at.error) and not any(str(env) in e.value for e in at.error)
    with monkeypatch.context() as mp:  # writing a job fails
        mp.setattr(store, "_write_json", fail)
        at = open_retrain()
        submit(at, rt_epochs="1")
        assert any(words in e.value for e in at.error), [e.value for e in at.error]
    assert list_jobs(env / ".jobs") == []


def test_no_data_says_so_before_start(env, monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "nothing"))
    at = open_retrain()
    assert any("No data set is available" in e.value for e in at.error)
    assert not any(b.label == "Start training" for b in at.button)


def test_runs_go_to_persistent_storage_when_a_space_has_it(monkeypatch, tmp_path):
    from core import paths
    from dashboard import jobs_client

    monkeypatch.delenv("RUNS_DIR", raising=False)
    monkeypatch.setenv("PERSISTENT_DIR", str(tmp_path / "data"))
    assert paths.runs_dir() == paths.PROJECT / "runs"  # not mounted: the container's own (temporary) disk
    (tmp_path / "data").mkdir()
    assert paths.runs_dir() == tmp_path / "data" / "runs"
    assert jobs_client.jobs_dir() == paths.PROJECT / "runs" / ".jobs"  # locks never on the (bucket) mount
    monkeypatch.setenv("RUNS_DIR", str(tmp_path / "explicit"))
    assert paths.runs_dir() == tmp_path / "explicit"
