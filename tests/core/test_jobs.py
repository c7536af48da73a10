"""Background retraining: real worker processes on synthetic data (no data set needed)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core import embed as jobs_embed
from core import jobs
from core.jobs import (
    Caps,
    JobBusy,
    JobError,
    NotOwner,
    cancel_all,
    cancel_job,
    current_job,
    dispatcher,
    job_status,
    list_jobs,
    queue,
    start_job,
    store,
    worker,
)
from core.run.folder import load_run
from core.run.layout import list_runs

REPO = Path(__file__).resolve().parents[2]
CAPS = Caps(max_lr=1.0, threads=1, embed_size=32)
TINY = {"model": "vae", "preset": "seed", "latent_dim": 8, "epochs": 2, "batch_size": 32, "synthetic": 256}
LONG = {**TINY, "epochs": 5, "batch_size": 16, "synthetic": 50_000}  # ~15k steps: outlives every test


def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


OWNER = "local-user"  # start_job's default owner


def lock_is_free(jobs_dir: Path) -> bool:
    """No dispatcher or job process left (they hold job.lock; a dispatcher leaves just after the last job)."""
    return wait_for(lambda: store._lock_free(jobs_dir), 10, "the dispatcher to leave")


@pytest.fixture
def dirs(tmp_path):
    runs, jobs_dir = tmp_path / "runs", tmp_path / "jobs"
    yield runs, jobs_dir
    cancel_all(jobs_dir)  # never leave a worker behind


def start_and_wait_training(runs, jobs_dir, spec=LONG) -> dict:
    job_id = start_job(spec, runs, jobs_dir, caps=CAPS)
    return wait_for(lambda: (s := job_status(jobs_dir, job_id)).get("phase") == "training" and s, 60,
                    "the first training step")


# --- spec and preconditions (no process started) -------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("epochs", 6), ("epochs", 2.0), ("epochs", True), ("batch_size", 8), ("batch_size", 1024),
    ("latent_dim", 1), ("latent_dim", 129), ("lr", 0.1), ("lr", 1e-7), ("lr", float("nan")), ("seed", -1),
    ("model", "vqvae"), ("dataset", "cifar10"), ("preset", "big"), ("colour", "red"),
])
def test_out_of_range_spec_names_the_field(dirs, field, value):
    runs, jobs_dir = dirs
    with pytest.raises(ValueError, match=field):
        start_job({field: value}, runs, jobs_dir)
    assert list_jobs(jobs_dir) == []


def test_defaults_are_valid_and_caps_come_from_env(monkeypatch):
    assert jobs.validate_spec({}, Caps()) == jobs.DEFAULT_SPEC
    monkeypatch.setenv("RETRAIN_MAX_EPOCHS", "2")
    monkeypatch.setenv("RETRAIN_ALLOW_CONV", "no")
    caps = Caps.from_env()
    assert caps.max_epochs == 2 and not caps.allow_conv
    with pytest.raises(ValueError, match=r"epochs .*\[1, 2\]"):
        jobs.validate_spec({"epochs": 3}, caps)
    with pytest.raises(ValueError, match="conv"):
        jobs.validate_spec({"preset": "conv"}, caps)
    monkeypatch.setenv("RETRAIN_MAX_BATCH", "lots")
    with pytest.raises(ValueError, match="RETRAIN_MAX_BATCH"):
        Caps.from_env()


def test_refuses_missing_data_and_a_full_disk(dirs, tmp_path):
    runs, jobs_dir = dirs
    with pytest.raises(JobError, match="fashion-mnist is not available"):
        start_job({"dataset": "fashion-mnist"}, runs, jobs_dir, data_dir=tmp_path / "empty")
    with pytest.raises(JobError, match="MB free"):
        start_job(TINY, runs, jobs_dir, caps=Caps(min_free_mb=1e12))
    assert list_jobs(jobs_dir) == []


def test_prune_keeps_the_newest_ui_runs_and_nothing_else(tmp_path):
    names = ["ui-vae-mnist-20240101-000000", "ui-gan-mnist-20240101-000000-2", "ui-vae-mnist-20231231-235959",
             "ui-gan-fashion-mnist-20230101-000000", "mnist-vae", "ui-notes"]
    for n in names:
        (tmp_path / n).mkdir()
        (tmp_path / n / "config.json").write_text("{}")
    assert jobs.prune_runs(tmp_path, keep=2) == ["ui-gan-fashion-mnist-20230101-000000",
                                                "ui-vae-mnist-20231231-235959"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ui-vae-mnist-20240101-000000", "ui-gan-mnist-20240101-000000-2", "mnist-vae", "ui-notes"])


def test_loss_history_is_averaged_down():
    steps = {"step": list(range(1, 1001)), "loss": [float(i) for i in range(1, 1001)]}
    h = worker._downsample(steps)
    assert len(h["step"]) == len(h["loss"]) <= jobs.HISTORY_POINTS
    assert h["step"][-1] == 1000 and h["loss"][0] == 3.0  # mean of steps 1..5


# --- real worker processes -----------------------------------------------------------------------
def test_job_runs_to_done_and_prunes_old_ui_runs(dirs):
    runs, jobs_dir = dirs
    old = ["ui-vae-mnist-20200101-000000", "ui-gan-mnist-20200102-000000", "ui-vae-fashion-mnist-20200103-000000"]
    for n in [*old, "mnist-vae"]:
        (runs / n).mkdir(parents=True)
        (runs / n / "config.json").write_text("{}")
    t0 = time.monotonic()
    job_id = start_job(TINY, runs, jobs_dir, caps=Caps(threads=1, embed_size=32, keep_runs=2))
    assert time.monotonic() - t0 < 5, "start_job must return before training"
    with pytest.raises(JobBusy):
        start_job(TINY, runs, jobs_dir, caps=CAPS)
    seen = []
    st = wait_for(lambda: seen.append(s := job_status(jobs_dir, job_id)) or (s["state"] not in jobs.ACTIVE and s),
                  60, "the job to finish")
    assert st["state"] == "done", st.get("reason")
    assert "running" in {s["state"] for s in seen} and "training" in {s.get("phase") for s in seen}
    assert st["epoch"] == st["epochs"] == 2 and st["step"] == st["total_steps"] == 16  # 256 images / 32, 2 epochs
    assert st["history"]["step"][-1] == 16 and len(st["history"]["neg_elbo"]) == 16
    assert set(st["losses"]) == {"neg_elbo", "reconstruction", "kl"} and "test/neg_elbo" in st["epoch_losses"]
    assert st["finished"] >= st["started"] >= st["created"] and st["pid"] > 0 and not st["stopped_early"]
    assert Path(st["grid"]).read_bytes()[:4] == b"\x89PNG"
    run = st["run"]
    assert run.startswith("ui-vae-mnist-") and load_run(runs / run).config["train_config"]["epochs"] == 2
    assert load_run(runs / run).config["latent_map"] == {"method": jobs_embed.TSNE_METHOD, "digits": 32,
                                                         "perplexity": 30.0}  # the method, recorded
    # keep_runs=2: the new run and the newest old ui run stay; the non-ui run is never touched
    assert st["pruned"] == old[:2]  # oldest first
    assert list_runs(runs) == sorted([run, old[2], "mnist-vae"])
    assert current_job(jobs_dir) is None and list_jobs(jobs_dir)[0]["job_id"] == job_id and lock_is_free(jobs_dir)
    assert st["history"] and st["epoch_history"]["epoch"] == [1, 2]  # the final view keeps both charts


def test_cancel_stops_the_job_within_two_seconds_and_writes_no_run(dirs):
    runs, jobs_dir = dirs
    st = start_and_wait_training(runs, jobs_dir)
    t0 = time.monotonic()
    final = cancel_job(jobs_dir, st["job_id"], OWNER)
    assert time.monotonic() - t0 < 2.0
    assert final["state"] == "cancelled" and final["job_id"] == st["job_id"]
    assert current_job(jobs_dir) is None and lock_is_free(jobs_dir)
    assert list(runs.iterdir()) == []  # not even a hidden temp folder
    with pytest.raises(ProcessLookupError):  # the worker is gone (reaped, not a zombie)
        wait_for(lambda: os.kill(st["pid"], 0) or None, 5, "the worker to exit")


def test_cancel_while_the_worker_is_still_starting(dirs):
    runs, jobs_dir = dirs
    job_id = start_job(LONG, runs, jobs_dir, caps=CAPS)
    wait_for(lambda: job_status(jobs_dir, job_id)["state"] == "running", 10, "the dispatcher to take the job")
    t0 = time.monotonic()
    assert cancel_job(jobs_dir, job_id, OWNER)["state"] == "cancelled"
    assert time.monotonic() - t0 < 2.0 and lock_is_free(jobs_dir) and list(runs.iterdir()) == []


def test_divergence_marks_the_job_failed_and_writes_no_run(dirs):
    runs, jobs_dir = dirs
    job_id = start_job({**TINY, "lr": 1.0}, runs, jobs_dir, caps=CAPS)
    st = wait_for(lambda: (s := job_status(jobs_dir, job_id))["state"] not in jobs.ACTIVE and s, 60, "the failure")
    assert st["state"] == "failed" and "neg_elbo became" in st["reason"], st.get("reason")
    assert list(runs.iterdir()) == [] and lock_is_free(jobs_dir)


def test_killed_worker_is_marked_failed_its_lock_freed_and_its_temp_run_removed(dirs):
    runs, jobs_dir = dirs
    (runs / "mnist-vae").mkdir(parents=True)
    (runs / "mnist-vae" / "config.json").write_text("{}")
    st = start_and_wait_training(runs, jobs_dir)
    run = json.loads((jobs_dir / st["job_id"] / jobs.JOB).read_text())["run"]
    partial = runs / f".{run}.tmp-abc123"  # what a SIGKILL in the middle of save_run leaves behind
    partial.mkdir()
    os.kill(st["pid"], signal.SIGKILL)
    wait_for(lambda: current_job(jobs_dir) is None, 5, "the dead worker to be noticed")
    final = job_status(jobs_dir, st["job_id"])
    assert final["state"] == "failed" and final["reason"] == "process died"
    assert not partial.exists() and list_runs(runs) == ["mnist-vae"] and lock_is_free(jobs_dir)
    job_id = start_job(TINY, runs, jobs_dir, caps=CAPS)  # the next job starts normally
    assert wait_for(lambda: job_status(jobs_dir, job_id)["state"] == "done", 60, "the next job")


def test_concurrent_starts_yield_exactly_one_job(dirs, monkeypatch):
    runs, jobs_dir = dirs
    real_lock_free = store._lock_free

    def slow_lock_free(*args, **kwargs):  # widen the gap between "is the lock free?" and starting a worker
        free = real_lock_free(*args, **kwargs)
        time.sleep(0.3)
        return free

    monkeypatch.setattr(store, "_lock_free", slow_lock_free)  # in this process's two racers only
    go = time.time() + 2.0  # every racer calls start_job at this moment
    racer = ("import sys, time\nfrom core.jobs import JobBusy, start_job\ntime.sleep(max(0.0, float(sys.argv[1]) - "
             "time.time()))\ntry:\n    start_job(eval(sys.argv[2]), sys.argv[3], sys.argv[4])\n    print('ok')\n"
             "except JobBusy:\n    print('busy')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "RETRAIN_THREADS": "1", "RETRAIN_EMBED_SIZE": "32"}
    procs = [subprocess.Popen([sys.executable, "-c", racer, str(go), repr(TINY), str(runs), str(jobs_dir)],
                              env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    results = []

    def in_thread():
        time.sleep(max(0.0, go - time.time()))
        try:
            start_job(TINY, runs, jobs_dir, caps=CAPS)
            results.append("ok")
        except JobBusy:
            results.append("busy")

    threads = [threading.Thread(target=in_thread) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    results += [p.communicate(timeout=30)[0].strip() for p in procs]
    assert sorted(results) == ["busy", "busy", "busy", "ok"]
    assert len(list_jobs(jobs_dir)) == 1


# --- the queue: order, owners, cap, restarts, folder errors ------------------------------------------
A, B, C = "owner-token-a", "owner-token-b", "owner-token-c"


def test_jobs_run_one_at_a_time_in_queue_order_with_positions(dirs):
    runs, jobs_dir = dirs
    ids = [start_job({**TINY, "seed": i}, runs, jobs_dir, caps=CAPS, owner=o) for i, o in enumerate((A, B, C))]
    q = queue(jobs_dir)
    assert [s["job_id"] for s in q] == ids
    assert [s["position"] for s in q] in ([0, 1, 2], [1, 2, 3])  # 0 = running; 1.. = waiting
    assert q[0]["wait_s"] <= q[1]["wait_s"] < q[2]["wait_s"] and all(s["end_s"] > s["wait_s"] for s in q)
    final = [wait_for(lambda i=i: (s := job_status(jobs_dir, i))["state"] == "done" and s, 120, "the queue")
             for i in ids]
    for before, after in zip(final, final[1:]):  # one at a time, in queue order
        assert before["finished"] <= after["started"]
    assert len({s["run"] for s in final}) == 3 and len(list_runs(runs)) == 3
    assert queue(jobs_dir) == [] and lock_is_free(jobs_dir)


def test_only_the_owner_cancels_or_removes_a_job(dirs):
    runs, jobs_dir = dirs
    running = start_and_wait_training(runs, jobs_dir)  # owner: start_job's default
    waiting = start_job(TINY, runs, jobs_dir, caps=CAPS, owner=B)
    for job_id in (running["job_id"], waiting):
        with pytest.raises(NotOwner):
            cancel_job(jobs_dir, job_id, A)
        assert job_status(jobs_dir, job_id)["state"] in jobs.ACTIVE
    removed = cancel_job(jobs_dir, waiting, B)  # the owner removes a waiting job: it never runs
    assert removed["state"] == "cancelled" and "owner" in removed["reason"] and "started" not in removed
    assert cancel_job(jobs_dir, running["job_id"], OWNER)["state"] == "cancelled"
    assert queue(jobs_dir) == [] and list(runs.iterdir()) == []
    assert B not in (jobs_dir / waiting / jobs.JOB).read_text()  # only a digest of the token is stored


def test_one_job_per_owner_and_a_capped_queue(dirs):
    runs, jobs_dir = dirs
    caps = Caps(max_lr=1.0, threads=1, embed_size=32, max_queue=2)
    start_and_wait_training(runs, jobs_dir)
    with pytest.raises(JobBusy, match="already have a job"):
        start_job(TINY, runs, jobs_dir, caps=caps)
    start_job(TINY, runs, jobs_dir, caps=caps, owner=A)
    start_job(TINY, runs, jobs_dir, caps=caps, owner=B)
    with pytest.raises(JobBusy, match="queue is full"):
        start_job(TINY, runs, jobs_dir, caps=caps, owner=C)
    assert len(queue(jobs_dir)) == 3


def test_queued_jobs_survive_a_server_restart_and_are_resumed(dirs, monkeypatch):
    """The server dies after writing a queued job but before any dispatcher started (the worst hand-over):
    the job waits on disk, and the next queue read of a restarted server starts a dispatcher for it."""
    runs, jobs_dir = dirs
    monkeypatch.setattr(dispatcher, "ensure", lambda jobs_dir: None)  # "killed" before spawning
    job_id = start_job(TINY, runs, jobs_dir, caps=CAPS, owner=A)
    assert job_status(jobs_dir, job_id)["state"] == "queued" and store._lock_free(jobs_dir)  # nobody runs it
    monkeypatch.undo()  # "restart"
    assert queue(jobs_dir)[0]["job_id"] == job_id
    wait_for(lambda: job_status(jobs_dir, job_id)["state"] != "queued", 30, "the resumed job to start")
    assert wait_for(lambda: (s := job_status(jobs_dir, job_id))["state"] == "done" and s, 60, "the job")["run"]


def test_killing_dispatcher_and_job_fails_the_running_job_and_resumes_the_queue(dirs):
    runs, jobs_dir = dirs
    st = start_and_wait_training(runs, jobs_dir)
    waiting = start_job(TINY, runs, jobs_dir, caps=CAPS, owner=A)
    dispatcher = json.loads((jobs_dir / jobs.SPAWNED).read_text())["pid"]
    os.kill(dispatcher, signal.SIGKILL)
    time.sleep(0.3)
    assert job_status(jobs_dir, st["job_id"])["state"] == "running"  # the job holds the lock on its own
    os.kill(st["pid"], signal.SIGKILL)
    final = wait_for(lambda: (s := job_status(jobs_dir, st["job_id"]))["state"] != "running" and s, 10, "the death")
    assert final["state"] == "failed" and final["reason"] == "process died"
    queue(jobs_dir)  # any page view starts a new dispatcher for the waiting job
    assert wait_for(lambda: job_status(jobs_dir, waiting)["state"] == "done", 60, "the waiting job")


def test_a_job_finishing_after_its_dispatcher_died_starts_the_next_one_with_no_page_open(dirs):
    """Only job_status is read here (it never starts a dispatcher): the finishing job hands the queue over."""
    runs, jobs_dir = dirs
    first = start_job({**TINY, "epochs": 5, "synthetic": 2048}, runs, jobs_dir, caps=CAPS, owner=A)
    waiting = start_job(TINY, runs, jobs_dir, caps=CAPS, owner=B)
    wait_for(lambda: job_status(jobs_dir, first).get("pid"), 60, "the first job's process")  # it holds the lock
    os.kill(json.loads((jobs_dir / jobs.SPAWNED).read_text())["pid"], signal.SIGKILL)
    st = wait_for(lambda: (s := job_status(jobs_dir, first))["state"] not in jobs.ACTIVE and s, 120, "the first job")
    assert st["state"] == "done", st.get("reason")
    assert wait_for(lambda: (s := job_status(jobs_dir, waiting))["state"] not in jobs.ACTIVE and s, 120,
                    "the waiting job to run with no queue read")["state"] == "done"


def test_a_relative_jobs_folder_is_resumed_from_any_working_directory(dirs, monkeypatch, tmp_path):
    """The server reads the queue with a relative RUNS_DIR; the dispatcher it starts runs in the repository."""
    runs, jobs_dir = dirs
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as mp:
        mp.setattr(dispatcher, "ensure", lambda jobs_dir: None)  # the server died before spawning
        job_id = start_job(TINY, Path("runs"), Path("jobs"), caps=CAPS, owner=A)
    assert job_status(Path("jobs"), job_id)["state"] == "queued"
    queue(Path("jobs"))  # a page view of the restarted server, with the relative folder
    assert wait_for(lambda: (s := job_status(jobs_dir, job_id))["state"] not in jobs.ACTIVE and s, 120,
                    "the resumed job")["state"] == "done"
    assert not (REPO / "jobs").exists()


def test_a_stale_dispatcher_record_delays_a_restart_by_seconds_only(dirs):
    runs, jobs_dir = dirs
    sleeper = subprocess.Popen(["sleep", "30"])  # a live process that is not a dispatcher
    try:
        jobs_dir.mkdir(parents=True)
        (jobs_dir / jobs.SPAWNED).write_text(json.dumps({"pid": sleeper.pid, "at": time.time()}))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(dispatcher, "ensure", lambda jobs_dir: None)
            job_id = start_job(TINY, runs, jobs_dir, caps=CAPS, owner=A)
        t0 = time.monotonic()
        wait_for(lambda: queue(jobs_dir) and job_status(jobs_dir, job_id)["state"] != "queued", 10, "recovery")
        assert time.monotonic() - t0 < dispatcher.SPAWN_GRACE_S + 3
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("err, words", [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"),
                                        (errno.EACCES, "permission denied")])
def test_jobs_folder_errors_are_a_short_message(dirs, monkeypatch, err, words):
    runs, jobs_dir = dirs

    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err), str(jobs_dir / "x"))

    with monkeypatch.context() as mp:
        mp.setattr(store, "_write_json", fail)
        with pytest.raises(JobError, match=words) as info:
            start_job(TINY, runs, jobs_dir, caps=CAPS, owner=A)
    assert str(jobs_dir) not in str(info.value) and list_jobs(jobs_dir) == []  # no half-written job queued
    monkeypatch.setattr(store, "_job_dirs", fail)
    for call in (lambda: queue(jobs_dir), lambda: list_jobs(jobs_dir), lambda: jobs.owner_jobs(jobs_dir, A)):
        with pytest.raises(JobError, match=words):
            call()
