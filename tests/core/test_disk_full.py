"""A full disk is named as such: "disk full: ..." when a run is saved (not safetensors' "os error 28") and as a
retraining job's failure reason (not "process died" with an empty log)."""

from __future__ import annotations

import errno
import io
import json
import sys

import pytest

from core import files
from core.run import folder

from ..conftest import make_tiny_run

FULL = ("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: \"No space left on device\" })"
        " (os error 28)")  # what safetensors raises on a full disk (bench/hostile_runs.py meets it on a real one)


def to_dev_full(monkeypatch):
    """The weights' write meets a full disk."""
    from safetensors import SafetensorError

    def full(state, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\0" * 1000)  # part of it was written
        raise SafetensorError(FULL)

    monkeypatch.setattr(folder, "save_file", full)


def test_saving_a_run_on_a_full_disk_says_disk_full(tmp_path, splits, monkeypatch):
    to_dev_full(monkeypatch)
    with pytest.raises(OSError) as info:
        make_tiny_run("vae", tmp_path / "mnist-vae", splits, epochs=1)
    assert str(info.value).startswith("disk full: could not save the run mnist-vae")
    assert "os error" not in str(info.value) and "SafetensorError" not in str(info.value)
    assert info.value.errno == errno.ENOSPC and list(tmp_path.iterdir()) == []  # nothing half-written left


def test_an_atomic_write_on_a_full_disk_says_disk_full(tmp_path, monkeypatch):
    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(tmp_path), "write_text", full)
    with pytest.raises(files.DiskFull, match=r"^disk full: could not write metrics\.json"):
        files.write_json(tmp_path / "metrics.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_the_cli_says_disk_full(tmp_path, monkeypatch, capsys, real_data_root):
    from core.__main__ import main

    to_dev_full(monkeypatch)
    code = main(["train", "--model", "vae", "--limit", "256", "--epochs", "1", "--batch-size", "64",
                 "--data-dir", str(real_data_root), "--out", str(tmp_path / "mnist-vae"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code != 0 and "error: disk full: could not save the run mnist-vae" in err, err


def test_a_job_that_meets_a_full_disk_fails_with_disk_full(tmp_path, monkeypatch):
    """The worker's own log is on the full disk too: writing the traceback fails, the reason still gets out."""
    from safetensors import SafetensorError

    from core import jobs
    from core.jobs import dispatcher, worker

    monkeypatch.setattr(dispatcher, "ensure", lambda jobs_dir: None)  # queue it, run it here
    monkeypatch.setattr(worker, "_lower_priority", lambda: None)
    job_id = jobs.start_job({"model": "vae", "preset": "seed", "latent_dim": 8, "epochs": 1, "batch_size": 32,
                             "synthetic": 256}, tmp_path / "runs", tmp_path / "jobs",
                            caps=jobs.Caps(max_lr=1.0, threads=1, embed_size=32))

    def train(job, progress):
        raise SafetensorError(FULL)

    class FullLog(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(worker, "_train", train)
    monkeypatch.setattr(sys, "stderr", FullLog())
    assert worker.run_worker(tmp_path / "jobs" / job_id) == 1
    status = json.loads((tmp_path / "jobs" / job_id / "status.json").read_text())
    assert status["state"] == "failed" and status["reason"].startswith("disk full"), status["reason"]


def test_a_worker_that_died_on_a_full_disk_is_said_to_have_met_a_full_disk(tmp_path, monkeypatch):
    from core import jobs
    from core.jobs import dispatcher, store

    monkeypatch.setattr(dispatcher, "ensure", lambda jobs_dir: None)
    caps = jobs.Caps(max_lr=1.0, threads=1, embed_size=32, min_free_mb=1)
    job_id = jobs.start_job({"model": "vae", "preset": "seed", "latent_dim": 8, "epochs": 1, "batch_size": 32,
                             "synthetic": 256}, tmp_path / "runs", tmp_path / "jobs", caps=caps)
    jobdir = tmp_path / "jobs" / job_id
    status = json.loads((jobdir / "status.json").read_text())
    (jobdir / "status.json").write_text(json.dumps({**status, "state": "running"}))  # its process is gone
    usage = type("Usage", (), {"free": 100 * 1024, "total": 10**9, "used": 10**9})
    monkeypatch.setattr(store.shutil, "disk_usage", lambda path: usage)
    assert store._mark_dead(jobdir)["reason"].startswith("disk full")
