"""The Retrain page under AppTest: validation, the busy state, the finished run in the picker."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.data import RAW_FILES
from core.jobs import Caps, cancel_job, current_job, start_job

from .test_jobs import wait_for

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
LONG = {"model": "gan", "preset": "seed", "latent_dim": 8, "epochs": 5, "batch_size": 16, "synthetic": 50_000}


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
    cancel_job(runs / ".jobs")


def open_retrain() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/retrain.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.mark.parametrize("key,value,message", [("rt_epochs", 50, "epochs must be"), ("rt_batch", 4, "batch_size"),
                                               ("rt_latent", 1, "latent_dim"), ("rt_lr", 0.5, "lr must be")])
def test_out_of_range_values_get_a_message_and_start_nothing(env, key, value, message):
    at = open_retrain()
    at.number_input(key=key).set_value(value)
    submit = next(b for b in at.button if b.label == "Start training")
    submit.click().run()
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert current_job(env / ".jobs") is None


def test_busy_state_is_shown_to_every_visitor(env):
    start_job(LONG, env, env / ".jobs", caps=Caps(threads=1, embed_size=32))
    wait_for(lambda: (current_job(env / ".jobs") or {}).get("phase") == "training", 60, "training")
    at = open_retrain()
    assert any("Busy" in w.value for w in at.warning)
    assert not any(b.label == "Start training" for b in at.button)
    assert any("Cancel" in b.label for b in at.button)
    assert at.get("progress")
    cancel_job(env / ".jobs")
    at.run()
    assert any("cancelled" in e.value for e in at.error)
    assert any(b.label == "Start training" for b in at.button)


def test_no_data_says_so_before_start(env, monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "nothing"))
    at = open_retrain()
    assert any("No data set is available" in e.value for e in at.error)
    assert not any(b.label == "Start training" for b in at.button)
