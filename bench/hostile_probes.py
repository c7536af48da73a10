"""The attacks of a visitor (or a hostile run folder) replayed, one line each: "held" when the defence works,
"broken" when it does not. bench/hostile_runs.py runs them after the hostile run folders.

Each probe builds what it needs in a temporary folder, talks to 127.0.0.1 only, and is bounded (timeouts on
every wait). Probes 2, 3 and 10 run real retraining jobs on synthetic data (seconds each).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GOOD = REPO / "checkpoints" / "mnist-vae"
FORMULA = ("=", "+", "-", "@", "\t", "\r")
TINY_JOB = {"model": "vae", "preset": "seed", "latent_dim": 8, "epochs": 1, "batch_size": 32, "synthetic": 256}


def wait_for(pred, timeout: float):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    return None


def png(img: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def stroke(side: int, paper: int, ink: int, dtype=np.uint8) -> np.ndarray:
    img = np.full((side, side), paper, dtype)
    img[side // 6: 5 * side // 6, side // 2 - side // 20: side // 2 + side // 20] = ink
    return img


# --- 1. uploads ------------------------------------------------------------------------------------------
def upload_limit(tmp: Path):
    from dashboard import uploads

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    limit = config.get("server", {}).get("maxUploadSize", 200)
    seen = subprocess.run([sys.executable, "-c", "from streamlit import config; "
                           "print(config.get_option('server.maxUploadSize'))"], cwd=REPO, capture_output=True,
                          text=True, timeout=120).stdout.strip()
    return limit <= 50 and seen == str(limit) == str(uploads.MAX_UPLOAD_MB), \
        f"server.maxUploadSize {seen} MB (Streamlit's default: 200), the uploader's {uploads.MAX_UPLOAD_MB} MB"


def upload_decoded_once(tmp: Path):
    from dashboard import uploads

    class Upload:  # what st.file_uploader hands the page
        file_id, size = "f1", 0

        def __init__(self, raw):
            self.raw = raw

        def getvalue(self):
            return self.raw

    raw = png(stroke(5000, 250, 10))  # 25 megapixels
    decoded, real = [], uploads.read_image
    uploads.read_image = lambda data: decoded.append(1) or real(data)
    try:
        times = []
        for _ in range(3):  # the upload, then two slider moves
            t0 = time.process_time()
            digit, error = uploads._prepared("probe-digest", "mnist", Upload(raw))
            times.append(time.process_time() - t0)
    finally:
        uploads.read_image = real
    return len(decoded) == 1 and digit is not None, \
        f"25 MP PNG decoded {len(decoded)}x in 3 runs; CPU {times[0]:.2f} s, then {times[1]:.4f} s and {times[2]:.4f} s"


def upload_freed(tmp: Path):
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.runtime.uploaded_file_manager import UploadedFileRec

    from dashboard import uploads

    mgr = MemoryUploadedFileManager("/upload")
    for i in range(6):  # six closed tabs' uploads of 30 MB
        mgr.add_file(f"gone-{i}", UploadedFileRec(f"f{i}", "big.png", "image/png", bytes(30 << 20)))
    mgr.add_file("open-tab", UploadedFileRec("g", "small.png", "image/png", bytes(1 << 20)))
    swept = uploads.sweep(mgr, known=lambda sid: sid == "open-tab")
    left = sum(len(f.data) for files in mgr.file_storage.values() for f in files.values())
    return swept == 6 and left == 1 << 20, \
        f"6 expired sessions' files (180 MB) dropped by the sweep, {left / 2**20:.0f} MB of the open tab kept " \
        "(bench/upload_memory.py: RSS with a real browser)"


def upload_16_bit(tmp: Path):
    from dashboard import explore_cache, uploads

    try:
        img = uploads.read_image(png(stroke(4096, 60000, 1000, np.uint16)))
    except ValueError as err:
        return False, f"4096 px 16-bit PNG: {err}"
    digit = explore_cache.image_to_digit(img)
    return digit is not None and digit.max() > 200, "4096 px 16-bit PNG (mode I;16) read: the stroke is ink"


# --- 2, 3, 10. jobs ----------------------------------------------------------------------------------------
def jobs_env(tmp: Path):
    from core.jobs import Caps

    return tmp / "runs", tmp / "jobs", Caps(max_lr=1.0, threads=1, embed_size=32)


def job_owner_across_reload_and_restart(tmp: Path):
    from core.jobs import JobBusy, NotOwner, cancel_job, start_job

    runs, jobs_dir, caps = jobs_env(tmp / "owner")
    token = "a" * 43  # the browser's cookie: the same after a reload, in another tab, after a restart
    job = start_job({**TINY_JOB, "epochs": 5, "synthetic": 50_000}, runs, jobs_dir, caps=caps, owner=token)
    try:
        start_job(TINY_JOB, runs, jobs_dir, caps=caps, owner=token)  # a second tab, or Start after a reload
        second = "a second job was queued"
    except JobBusy:
        second = "a second Start is refused"
    try:
        cancel_job(jobs_dir, job, owner="b" * 43)
        other = "another visitor cancelled it"
    except NotOwner:
        other = "another visitor cannot cancel it"
    restarted = subprocess.run(  # a restarted server: a new process, the same folder, the same cookie
        [sys.executable, "-c", "import sys; from core.jobs import cancel_job; "
         "print(cancel_job(sys.argv[1], sys.argv[2], owner=sys.argv[3])['state'])", str(jobs_dir), job, token],
        cwd=REPO, capture_output=True, text=True, timeout=120).stdout.strip()
    held = second == "a second Start is refused" and other.endswith("cannot cancel it") and restarted == "cancelled"
    return held, f"{second}; {other}; after a restart its owner cancels it ({restarted or 'failed'})"


def job_relative_runs_dir(tmp: Path):
    from core.jobs import Caps

    work = tmp / "cwd"
    work.mkdir()
    code = ("import json, sys, time; from core.jobs import Caps, start_job, job_status; "
            f"c = Caps(max_lr=1.0, threads=1, embed_size=32); j = start_job({TINY_JOB!r}, 'small', caps=c); "
            "print(j)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    job = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                         timeout=120).stdout.strip()
    del Caps
    status = work / "small" / ".jobs" / job / "status.json"
    done = wait_for(lambda: status.exists() and json.loads(status.read_text()).get("state") in ("done", "failed")
                    and json.loads(status.read_text()), 180)
    return bool(done) and done["state"] == "done", \
        f"RUNS_DIR=small (relative), started from another folder: the job is {done and done['state'] or 'stuck'}"


def job_runs_with_no_page_open(tmp: Path):
    from core.jobs import SPAWNED, start_job

    runs, jobs_dir, caps = jobs_env(tmp / "nopage")
    first = start_job({**TINY_JOB, "epochs": 5, "synthetic": 50_000}, runs, jobs_dir, caps=caps, owner="a" * 43)
    waiting = start_job(TINY_JOB, runs, jobs_dir, caps=caps, owner="b" * 43)

    def state(job):  # read the file itself: a status call may start a dispatcher, as a page view does
        return json.loads((jobs_dir / job / "status.json").read_text())

    pid = wait_for(lambda: state(first).get("pid"), 120)
    if pid:
        os.kill(pid, signal.SIGKILL)  # the worker is killed
        with contextlib.suppress(OSError, ValueError):
            os.kill(json.loads((jobs_dir / SPAWNED).read_text())["pid"], 0)
    left = wait_for(lambda: state(waiting)["state"] != "queued" and state(waiting)["state"], 120)
    done = wait_for(lambda: state(waiting)["state"] in ("done", "failed") and state(waiting)["state"], 180)
    return done == "done", f"worker killed; the next job left the queue ({left or 'no'}) and ended {done or 'never'} " \
                           "with no queue read"


# --- 4. CSV injection, metric names, one name rule --------------------------------------------------------
def csv_cells(tmp: Path):
    import pandas as pd

    from dashboard import share

    hostile = ['=HYPERLINK("http://evil.example","x")', "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)", "+1", "\tx", "\rx"]
    table = pd.DataFrame({"run": hostile, "value": [-2.5, 1, 2, 3, 4, 5]})
    metrics = {name: {"evaluation": {"metrics": {name: {"mean": -1.0, "std": 0.0}}}} for name in hostile}
    import csv

    rows = [row for text in (share.table_csv(table), share.metrics_csv(metrics))
            for row in list(csv.reader(io.StringIO(text, newline="")))[1:]]
    cells = [c for row in rows for c in row]
    risky = [c for c in cells if c.startswith(FORMULA) and not _number(c)]
    numbers = [c for c in cells if _number(c) and c.startswith("-")]
    whole = len(rows) == 12 and {len(r) for r in rows} == {2, 6}  # a CR inside a cell split no row
    return not risky and "-2.5" in numbers and whole, \
        f"{len(cells)} cells in {len(rows)} rows, {len(risky)} starting a formula; -2.5 stays a number"


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def metric_names(tmp: Path):
    from core.run import schemas
    from core.run.layout import CheckpointError

    m = json.loads((GOOD / "metrics.json").read_text())
    m["evaluation"]["metrics"]['=HYPERLINK("http://evil.example")'] = {"mean": 1.0, "std": 0.0}
    try:
        schemas.check_metrics(m)
        return False, "a metric named =HYPERLINK(...) passes the check"
    except CheckpointError as err:
        return True, f"refused: {str(err)[:90]}"


def pull_name(tmp: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "core", "pull", "alice/mnist-vae", "--name", "=1+2", "--root",
                          str(tmp / "pulled")], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    return res.returncode == 2 and "invalid run name" in res.stderr, \
        f"core pull --name '=1+2': exit {res.returncode}, {res.stderr.strip()[:80]}"


# --- 5. names shown as text --------------------------------------------------------------------------------
def markdown_names(tmp: Path):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.core.test_run_names import LINK_NAME, live_markup, markdown_texts

    ck = tmp / "md"
    shutil.copytree(GOOD, ck / "mnist-vae")
    shutil.copytree(REPO / "checkpoints" / "mnist-gan", ck / "mnist-gan")
    shutil.copytree(GOOD, ck / LINK_NAME)
    os.environ.update(CHECKPOINT_DIR=str(ck), RUNS_DIR=str(tmp / "md-runs"))
    st.cache_data.clear()
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=300)
    at.run()
    at.session_state["pick_vae"] = str(ck / LINK_NAME)
    at.run()
    live = [m for md in markdown_texts(at) + [e.value for e in at.sidebar.error] for m in live_markup(md)]
    subheads = [s.value for s in at.subheader]
    return not live and not at.exception, \
        f"folder {LINK_NAME!r}: {len(live)} live links on the Overview; subheader {subheads[0][:60]!r}"


# --- 6. the zip ----------------------------------------------------------------------------------------------
def zip_allow_list(tmp: Path):
    import zipfile

    from dashboard import share

    run = tmp / "zip" / "mnist-vae"
    shutil.copytree(GOOD, run)
    secret = tmp / "secret.png"
    secret.write_bytes(b"outside the run folder")
    os.link(secret, run / "samples" / "epoch_999.png")  # a hard link to a file outside the run
    (run / "samples" / "..\\..\\..\\evil.png").write_bytes((run / "samples" / "epoch_001.png").read_bytes())
    with zipfile.ZipFile(io.BytesIO(share.run_zip(run))) as zf:
        names = zf.namelist()
        leaked = any(b"outside the run folder" in zf.read(n) for n in names)
    bad = [n for n in names if "\\" in n or ".." in n or n.endswith("epoch_999.png")]
    return not bad and not leaked, f"{len(names)} entries; hard link and '..\\\\' name left out: {not bad}"


# --- 7. push: machine paths ------------------------------------------------------------------------------
def push_machine_paths(tmp: Path):
    import huggingface_hub

    from core import hub

    uploads = []
    saved = {name: getattr(huggingface_hub.HfApi, name) for name in ("create_repo", "upload_folder")}
    huggingface_hub.HfApi.create_repo = lambda self, repo_id, **kw: f"https://huggingface.co/{repo_id}"
    huggingface_hub.HfApi.upload_folder = lambda self, **kw: uploads.append(kw)
    os.environ.setdefault("HF_TOKEN", "hf_probe_token_not_real_0000")
    cases = {"mid-string": ("note", "trained from /srv/alice/mnist on 2 threads"),
             "file URI": ("note", "file:///C:/Users/alice/run"), "JSON key": ("/home/alice/data", 1)}
    refused = []
    try:
        for what, (key, value) in cases.items():
            run = tmp / "push" / what.replace(" ", "-")
            shutil.copytree(GOOD, run)
            m = json.loads((run / "metrics.json").read_text())
            m.setdefault("settings", {})[key] = value
            (run / "metrics.json").write_text(json.dumps(m))
            refused.append(_refused(hub, run))
        run = tmp / "push" / "png-text"
        shutil.copytree(GOOD, run)
        grid = run / "samples" / "epoch_001.png"
        grid.write_bytes(_with_text(grid.read_bytes(), b"Source", b"/home/alice/runs/epoch_001.png"))
        refused.append(_refused(hub, run))
    finally:
        for name, fn in saved.items():
            setattr(huggingface_hub.HfApi, name, fn)
    return all(refused) and not uploads, \
        f"{sum(refused)} of 4 refused before the upload (mid-string path, file:// URI, JSON key, PNG text chunk)"


def _refused(hub, run: Path) -> bool:
    try:
        hub.push_run(run, "alice/probe")
    except hub.HubError as err:
        return "machine paths" in str(err)
    return False


def _with_text(png_bytes: bytes, keyword: bytes, text: bytes) -> bytes:
    import struct
    import zlib

    body = keyword + b"\0" + text
    chunk = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return png_bytes[:33] + chunk + png_bytes[33:]


# --- 8. the t-SNE cap --------------------------------------------------------------------------------------
def tsne_cap(tmp: Path):
    from dashboard import tsne

    os.environ.update(CHECKPOINT_DIR=str(REPO / "checkpoints"), RUNS_DIR=str(tmp / "tsne-runs"))
    started = []

    class SlowStart:  # spawning takes time; the pid (this process) stays alive, so each start holds a slot
        def __init__(self, *args, **kwargs):
            time.sleep(0.2)
            started.append(args)
            self.pid = os.getpid()

        def wait(self):
            return 0

    real, tsne.subprocess.Popen = tsne.subprocess.Popen, SlowStart
    barrier, answers = threading.Barrier(10), []

    def request(i: int) -> None:
        barrier.wait()
        answers.append(tsne.tsne_recompute(str(GOOD), 5.0 + i, 250))

    try:
        threads = [threading.Thread(target=request, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        tsne.subprocess.Popen = real
    return len(started) <= tsne.TSNE_PENDING_MAX, \
        f"ten simultaneous requests started {len(started)} (cap {tsne.TSNE_PENDING_MAX}), {answers.count('busy')} busy"


# --- 9. disk full ------------------------------------------------------------------------------------------
def disk_full_save(tmp: Path):
    """On a real 1 MB file system (tmpfs, where this machine lets us mount one), else on a simulated one."""
    import torch

    from core.run import folder

    mount = tmp / "small-disk"
    mount.mkdir()
    real_disk = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                               capture_output=True).returncode == 0
    model = torch.nn.Linear(1024, 1024)  # 4 MB of weights, on a 1 MB disk
    cfg = json.loads((GOOD / "config.json").read_text())
    saved = folder.save_file
    if not real_disk:
        from safetensors import SafetensorError

        def full(*a, **k):
            raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "
                                  "\"No space left on device\" }) (os error 28)")

        folder.save_file = full
    try:
        folder.save_run(mount / "mnist-vae", model, cfg, {"steps": {}, "epochs": {}})
        message = "saved?"
    except Exception as err:  # what the CLI and the job show
        message = f"{type(err).__name__}: {err}" if not str(err).startswith("disk full") else str(err)
    finally:
        folder.save_file = saved
        if real_disk:
            subprocess.run(["umount", str(mount)], capture_output=True)
    where = "a real 1 MB tmpfs" if real_disk else "a simulated full disk"
    return message.startswith("disk full:"), f"on {where}: {message[:90]}"


def disk_full_job(tmp: Path):
    from safetensors import SafetensorError

    from core.jobs import dispatcher, start_job, worker

    runs, jobs_dir, caps = jobs_env(tmp / "full-job")
    saved = dispatcher.ensure, worker._lower_priority, worker._train, sys.stderr
    dispatcher.ensure, worker._lower_priority = (lambda jobs_dir: None), (lambda: None)

    def train(job, progress):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "
                              "\"No space left on device\" }) (os error 28)")

    class FullLog(io.StringIO):
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    try:
        job = start_job(TINY_JOB, runs, jobs_dir, caps=caps, owner="c" * 43)
        worker._train, sys.stderr = train, FullLog()
        worker.run_worker(jobs_dir / job)
    finally:
        dispatcher.ensure, worker._lower_priority, worker._train, sys.stderr = saved
    reason = json.loads((jobs_dir / job / "status.json").read_text()).get("reason") or ""
    return reason.startswith("disk full"), f"(simulated) the job's reason, its log unwritable too: {reason[:70]!r}"


PROBES = [
    ("1 upload limit", upload_limit), ("1 upload decoded once", upload_decoded_once),
    ("1 uploads of gone sessions freed", upload_freed), ("1 16-bit PNG of 4096 px", upload_16_bit),
    ("2 owner across reload and restart", job_owner_across_reload_and_restart),
    ("3 relative RUNS_DIR", job_relative_runs_dir),
    ("4 CSV cells neutralised", csv_cells), ("4 metric names checked", metric_names), ("4 pull --name =1+2", pull_name),
    ("5 run names as text", markdown_names), ("6 zip allow-list", zip_allow_list),
    ("7 push machine paths", push_machine_paths), ("8 t-SNE cap atomic", tsne_cap),
    ("9 disk full on save", disk_full_save), ("9 disk full as a job's reason", disk_full_job),
    ("10 queued job with no page open", job_runs_with_no_page_open),
]


def run_all(only: str | None = None) -> list[tuple[str, bool, str]]:
    """Run each probe (in this process, its own temporary folder); print and return (name, held, detail)."""
    rows = []
    env = dict(os.environ)
    for name, probe in PROBES:
        if only and only not in name:
            continue
        with tempfile.TemporaryDirectory(prefix="probe-") as tmp:
            t0 = time.perf_counter()
            try:
                held, detail = probe(Path(tmp))
            except Exception as err:  # a probe that crashes is a defence that did not hold
                held, detail = False, f"{type(err).__name__}: {str(err)[:120]}"
            finally:
                os.environ.clear()
                os.environ.update(env)
        rows.append((name, held, detail))
        print(f"{'held  ' if held else 'BROKEN'}  {name:34s} {detail}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    return rows
