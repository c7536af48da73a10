"""How fast the Retrain page responds on this machine: start -> first progress, epoch times, cancel latency.

Trains the page's default form values (core.jobs.DEFAULT_SPEC) for the VAE and the GAN on full MNIST from
$DATA_DIR (default ../shared/data) into a temporary folder, through core.jobs exactly as the page does.
Targets: one VAE epoch <= 10 s, one GAN epoch <= 20 s, cancel <= 2 s.

    .venv/bin/python bench/retrain_speed.py [--epochs N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core import jobs  # noqa: E402

TARGET_EPOCH_S = {"vae": 10.0, "gan": 20.0}


def watch(jobs_dir: Path, job_id: str, t0: float) -> dict:
    """Poll like the page does (but every 50 ms); return timings read off status.json."""
    first = None
    epoch_ends: dict[int, float] = {}  # epoch -> cumulative training seconds at its end (fit's clock)
    trained_at = None
    while True:
        st = jobs.job_status(jobs_dir, job_id)
        if first is None and st.get("step"):
            first = time.perf_counter() - t0
        row = st.get("epoch_losses") or {}
        if row:
            epoch_ends[row["epoch"]] = row["time_s"]
        if trained_at is None and st.get("phase") == "finishing":
            trained_at = time.perf_counter() - t0
        if st["state"] not in jobs.ACTIVE:
            total = time.perf_counter() - t0
            break
        time.sleep(0.05)
    if st["state"] != "done":
        raise SystemExit(f"job {job_id} {st['state']}: {st.get('reason')}")
    ends = [epoch_ends[e] for e in sorted(epoch_ends)]
    return {"first_progress_s": first, "epoch_s": [b - a for a, b in zip([0.0, *ends], ends)],
            "trained_s": trained_at, "total_s": total}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=jobs.DEFAULT_SPEC["epochs"])
    args = p.parse_args()
    data_dir = Path(os.environ.get("DATA_DIR") or REPO.parent / "shared" / "data")
    caps = jobs.Caps.from_env()
    print(f"cpu cores: {os.cpu_count()}, worker threads: {caps.threads}, load average: {os.getloadavg()[0]:.1f}, "
          f"t-SNE subset: {caps.embed_size}")
    with tempfile.TemporaryDirectory() as tmp:
        runs, jobs_dir = Path(tmp) / "runs", Path(tmp) / "jobs"
        try:
            run_all(args.epochs, runs, jobs_dir, data_dir, caps)
        finally:
            jobs.cancel_job(jobs_dir)  # never leave a worker behind (Ctrl-C, errors)


def run_all(epochs: int, runs: Path, jobs_dir: Path, data_dir: Path, caps: jobs.Caps) -> None:
    for model in ("vae", "gan"):
        spec = {**jobs.DEFAULT_SPEC, "model": model, "epochs": epochs}
        t0 = time.perf_counter()
        job_id = jobs.start_job(spec, runs, jobs_dir, data_dir=data_dir, caps=caps)
        returned = time.perf_counter() - t0
        r = watch(jobs_dir, job_id, t0)
        verdict = "ok" if max(r["epoch_s"]) <= TARGET_EPOCH_S[model] else "SLOWER THAN TARGET"
        print(f"{model}: start_job returned {returned:.2f} s; first progress {r['first_progress_s']:.1f} s; "
              f"epochs {', '.join(f'{s:.1f}' for s in r['epoch_s'])} s (target <= {TARGET_EPOCH_S[model]:.0f} s: "
              f"{verdict}); training done at {r['trained_s']:.1f} s; run saved (t-SNE + files) at {r['total_s']:.1f} s")

    for when in ("while training", "while starting"):
        job_id = jobs.start_job({**jobs.DEFAULT_SPEC, "epochs": caps.max_epochs}, runs, jobs_dir,
                                data_dir=data_dir, caps=caps)
        while when == "while training" and jobs.job_status(jobs_dir, job_id).get("phase") != "training":
            time.sleep(0.05)
        t0 = time.perf_counter()
        st = jobs.cancel_job(jobs_dir)
        print(f"cancel {when}: {time.perf_counter() - t0:.2f} s -> {st['state']} (target <= 2 s)")

if __name__ == "__main__":
    main()
