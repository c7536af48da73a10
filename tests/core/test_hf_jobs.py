"""The hf-jobs backend against a loopback fake of the Jobs API (tests/fake_hf_jobs.py): real huggingface_hub
calls over HTTP, each job's command a real `python -m core train` process, the bucket a temporary folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.jobs import Caps, JobBusy, NotOwner, owner_id
from core.jobs import backends as jobs_backends
from core.jobs.backends import hf_jobs
from core.run.folder import load_run
from core.run.layout import list_runs
from tests.fake_hf_jobs import TOKEN, FakeJobs

from .test_jobs import LONG, TINY, wait_for  # the local queue's tiny and long specs, and its state waiter

REPO = Path(__file__).resolve().parents[2]
BUCKET = "space-owner/retrain-runs"
CAPS = Caps(max_lr=1.0, threads=1, embed_size=32, max_queue=1)
A, B, C = "owner-token-a", "owner-token-b", "owner-token-c"


@pytest.fixture
def space(tmp_path, monkeypatch):
    """A Space configured for hf-jobs: its env, its runs folder (own disk), the bucket, the fake API."""
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    fake = FakeJobs({BUCKET: bucket})
    env = {"HF_TOKEN": TOKEN, "HF_ENDPOINT": fake.url, "RETRAIN_HF_BUCKET": BUCKET,
           "RETRAIN_HF_BUCKET_DIR": str(bucket), "RETRAIN_HF_IMAGE": "hf.co/spaces/space-owner/dashboard",
           "RETRAIN_FLAVORS": "cpu-basic,t4-small,no-such-flavor", "RETRAIN_MAX_CONCURRENT": "1",
           "RETRAIN_HF_APP": f"test-{tmp_path.name}"[-100:], "RUNS_DIR": str(tmp_path / "runs")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    hf_jobs.forget_cache()
    s = {"fake": fake, "bucket": bucket, "runs": tmp_path / "runs", "state": tmp_path / "state", "env": env}
    yield s
    try:
        backend(s).cancel_all()  # no promoter or job left behind
    finally:
        fake.close()


def backend(space, caps=CAPS):
    hf_jobs.forget_cache()  # a new server process: nothing cached
    return jobs_backends.get("hf-jobs", runs_dir=space["runs"], state_dir=space["state"], caps=caps)


def until_state(b, job_id, states, timeout=180):
    return wait_for(lambda: (s := b.job_status(job_id)) and s["state"] in states and s, timeout,
                    f"job {job_id} to reach {states}")


def test_submit_runs_to_done_and_the_run_appears_with_its_progress(space):
    b = backend(space)
    job_id = b.start_job(TINY, A)
    seen = []
    final = wait_for(lambda: seen.append(s := b.job_status(job_id)) or (s["state"] not in ("queued", "running")
                                                                          and s), 180, "the job")
    assert final["state"] == "done", final.get("reason")
    run = final["run"]
    assert run.startswith("ui-vae-mnist-") and list_runs(space["runs"]) == [run]  # copied from the bucket
    assert load_run(space["runs"] / run).config["train_config"]["epochs"] == 2
    assert (space["bucket"] / "incoming" / f"{run}.complete").is_file()
    # progress parsed from the job's logs, in the fields the live charts draw
    assert final["step"] == final["total_steps"] == 16 and final["history"]["step"][-1] == 16
    assert set(final["losses"]) == {"neg_elbo", "reconstruction", "kl"}
    assert final["epoch_history"]["epoch"] == [1, 2] and "test/neg_elbo" in final["epoch_history"]
    assert any(s and s["state"] == "running" for s in seen)
    # what the Jobs API was given: labels, timeout from the cap, the bucket, no secret, no token anywhere
    (job,) = space["fake"].jobs.values()
    spec = job.spec
    assert spec["labels"] == {"app": space["env"]["RETRAIN_HF_APP"], "kind": "train", "owner": owner_id(A),
                              "run": run, "entry": job_id, "dataset": "mnist", "name": run}
    assert spec["timeoutSeconds"] == CAPS.time_budget_s + hf_jobs.START_MARGIN_S and spec["flavor"] == "cpu-basic"
    assert spec["volumes"] == [{"type": "bucket", "source": BUCKET, "mountPath": hf_jobs.MOUNT}]
    assert "secrets" not in spec and TOKEN not in json.dumps(spec) and A not in json.dumps(spec)
    assert spec["command"][:4] == ["python", "-m", "core", "train"] and spec.get("spaceId") == "space-owner/dashboard"
    assert TOKEN not in json.dumps(final) and b.owner_jobs(A)[0]["job_id"] == job_id and b.owner_jobs(B) == []


def test_owners_caps_cancel_and_a_restart_that_keeps_every_job(space):
    b = backend(space)
    a = b.start_job(LONG, A)
    until_state(b, a, ("running",))
    with pytest.raises(JobBusy, match="already have a job"):
        b.start_job(TINY, A)
    waiting = b.start_job(TINY, B)  # RETRAIN_MAX_CONCURRENT=1: it waits, on this server's disk
    assert [(s["job_id"], s["position"]) for s in b.queue()] == [(a, 0), (waiting, 1)]
    with pytest.raises(JobBusy, match="queue is full"):
        b.start_job(TINY, C)  # max_queue=1
    assert len(space["fake"].jobs) == 1  # nothing beyond the cap reached the API
    for job_id in (a, waiting):
        with pytest.raises(NotOwner):
            b.cancel_job(job_id, C)
    restarted = backend(space)  # a new server process: the running job from the API, the waiting one from disk
    q = restarted.queue()
    assert [(s["job_id"], s["owner"], s["state"]) for s in q] == [(a, owner_id(A), "running"),
                                                                   (waiting, owner_id(B), "queued")]
    assert restarted.cancel_job(a, A)["state"] == "cancelled"
    # the slot frees: the promoter submits the waiting job with no page reading the queue
    wait_for(lambda: len(space["fake"].jobs) == 2, 60, "the waiting job to be submitted")
    final = until_state(restarted, waiting, ("done", "failed", "cancelled"))
    assert final["state"] == "done", final.get("reason")
    assert restarted.job_status(a)["state"] == "cancelled" and "cancelled" in restarted.job_status(a)["reason"]


def test_failure_and_timeout_are_said_in_words(space, monkeypatch):
    b = backend(space)
    failing = b.start_job({**TINY, "lr": 1.0}, A)  # diverges: the job exits 1
    st = until_state(b, failing, ("done", "failed", "cancelled"))
    assert st["state"] == "failed" and "failed on Hugging Face" in st["reason"] and "neg_elbo" in st["reason"], st
    monkeypatch.setattr(hf_jobs, "START_MARGIN_S", 0)
    short = backend(space, Caps(max_lr=1.0, threads=1, embed_size=32, time_budget_s=2.0))
    slow = short.start_job(LONG, B)
    st = until_state(short, slow, ("done", "failed", "cancelled"))
    assert st["state"] == "failed" and "time limit" in st["reason"], st


def test_only_allowed_flavors_are_offered_with_their_price(space):
    b = backend(space)
    assert [(f["name"], f["usd_per_hour"]) for f in b.flavors()] == [("cpu-basic", 0.01), ("t4-small", 0.4)]
    assert b.estimate(TINY, "t4-small") == {"max_minutes": 20, "max_usd": 0.13}  # (600 s cap + 600 s) at $0.40/h
    for flavor in ("a10g-small", "no-such-flavor"):
        with pytest.raises(ValueError, match="flavor"):
            b.start_job(TINY, A, flavor=flavor)
    assert space["fake"].jobs == {}


def test_the_cli_trains_on_jobs_and_lists_its_options(space):
    out = subprocess.run([sys.executable, "-m", "core", "train", "--help"], cwd=REPO, capture_output=True,
                         text=True, timeout=120).stdout
    assert "--backend" in out and "--flavor" in out and "hf-jobs" in out
    env = {**os.environ, "PYTHONPATH": str(REPO), "RETRAIN_CLI_POLL_S": "0.5"}
    res = subprocess.run([sys.executable, "-m", "core", "train", "--model", "vae", "--preset", "seed", "--epochs",
                          "1", "--batch-size", "32", "--latent-dim", "8", "--synthetic", "128", "--backend",
                          "hf-jobs", "--flavor", "t4-small", "--out", "cli-run"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "submitted" in res.stdout and "$0.40/hour" in res.stdout and "completed" in res.stdout
    assert (space["bucket"] / "incoming" / "cli-run.complete").is_file()
    assert load_run(space["bucket"] / "incoming" / "cli-run").config["train_config"]["epochs"] == 1
    (job,) = space["fake"].jobs.values()
    assert job.spec["flavor"] == "t4-small" and "--backend" not in job.spec["command"]
    # a GPU flavor's job first makes sure torch has CUDA (no nvidia-smi here: it ran the command as it was)
    assert job.spec["command"][:2] == ["sh", "-c"] and "nvidia-smi" in job.spec["command"][2]
    assert job.spec["command"][4:8] == ["python", "-m", "core", "train"]
    assert TOKEN not in res.stdout + res.stderr


@pytest.mark.real_data
def test_the_evaluate_button_runs_on_jobs_and_its_metrics_reach_the_run(space, real_data_root, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(real_data_root))  # the job's image has the data sets; here, the shared copy
    b = backend(space)
    trained = until_state(b, b.start_job(TINY, A), ("done", "failed", "cancelled"))
    assert trained["state"] == "done", trained.get("reason")
    job_id = b.start_evaluation(trained["run"], A)
    final = until_state(b, job_id, ("done", "failed", "cancelled"), timeout=600)
    assert final["state"] == "done" and final["kind"] == "evaluate", final.get("reason")
    metrics = json.loads((space["runs"] / trained["run"] / "metrics.json").read_text())
    assert metrics["evaluation"]["settings"]["samples"] == 2000  # copied from the bucket into the listed run
    with pytest.raises(ValueError, match="only runs trained"):
        b.start_evaluation("mnist-vae", A)


def test_a_gpu_flavor_installs_the_cuda_build_of_the_pinned_torch_only_where_missing(tmp_path):
    """On a GPU flavor the prelude installs PyPI's CUDA build of this server's torch pins when the image's torch
    has no CUDA and a GPU is there; otherwise it runs the command unchanged (cpu-* flavors are not wrapped)."""
    from core.jobs.backends.hf_config import on_flavor, torch_pins

    cmd = ["python", "-c", "print('trained')"]
    assert on_flavor(cmd, "cpu-basic") == cmd
    wrapped = on_flavor(cmd, "a10g-small")
    torch_v, vision_v = torch_pins()
    assert f"torch=={torch_v} torchvision=={vision_v}" in wrapped[2] and "+" not in torch_v
    bin_dir = tmp_path / "bin"  # an image with a GPU (nvidia-smi) whose torch lacks CUDA, and a pip that logs
    bin_dir.mkdir()
    for name, body in {"nvidia-smi": "exit 0", "pip": f'echo "$@" > {tmp_path}/pip.args',
                       "python": f'if [ "$1" = -c ] && [ "$2" != "print(\'trained\')" ]; then exit 1; fi; '
                                 f'exec {sys.executable} "$@"'}.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    res = subprocess.run(wrapped, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.splitlines() == ["installing the CUDA build of torch", "trained"]
    assert (tmp_path / "pip.args").read_text().split() == [
        "install", "--quiet", "--user", "--ignore-installed", f"torch=={torch_v}", f"torchvision=={vision_v}"]
    (bin_dir / "nvidia-smi").unlink()  # no GPU: nothing installed
    (tmp_path / "pip.args").unlink()
    res = subprocess.run(wrapped, env=env, capture_output=True, text=True, timeout=60)
    assert res.stdout.splitlines() == ["trained"] and not (tmp_path / "pip.args").exists()
