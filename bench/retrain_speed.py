"""How fast the Retrain page responds on this machine: start -> first progress, epoch times, cancel latency.

Trains the page's default form values (core.jobs.DEFAULT_SPEC) for the VAE and the GAN on full MNIST from
$DATA_DIR (default ../shared/data) into a temporary folder, through core.jobs exactly as the page does.
Targets: one VAE epoch <= 10 s, one GAN epoch <= 20 s, cancel <= 2 s, the job's latent map <= 10 s.

Then the latent map's method: scikit-learn's t-SNE (PCA initialisation) on the committed runs' real latent
codes at 2,000 and 1,000 digits (and openTSNE when it is importable), one thread, as a job runs it.

    .venv/bin/python bench/retrain_speed.py [--epochs N] [--tsne-only]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from core import jobs

REPO = Path(__file__).resolve().parents[1]

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
    p.add_argument("--tsne-only", action="store_true", help="only compare the latent-map methods")
    args = p.parse_args()
    data_dir = Path(os.environ.get("DATA_DIR") or REPO.parent / "shared" / "data")
    caps = jobs.Caps.from_env()
    print(f"cpu cores: {os.cpu_count()}, worker threads: {caps.threads}, load average: {os.getloadavg()[0]:.1f}, "
          f"t-SNE subset: {caps.embed_size}")
    with tempfile.TemporaryDirectory() as tmp:
        runs, jobs_dir = Path(tmp) / "runs", Path(tmp) / "jobs"
        try:
            if not args.tsne_only:
                run_all(args.epochs, runs, jobs_dir, data_dir, caps)
        finally:
            jobs.cancel_all(jobs_dir)  # never leave a worker behind (Ctrl-C, errors)
    tsne_methods()


def run_all(epochs: int, runs: Path, jobs_dir: Path, data_dir: Path, caps: jobs.Caps) -> None:
    for model in ("vae", "gan"):
        spec = {**jobs.DEFAULT_SPEC, "model": model, "epochs": epochs}
        t0 = time.perf_counter()
        job_id = jobs.start_job(spec, runs, jobs_dir, data_dir=data_dir, caps=caps)
        returned = time.perf_counter() - t0
        r = watch(jobs_dir, job_id, t0)
        verdict = "ok" if max(r["epoch_s"]) <= TARGET_EPOCH_S[model] else "SLOWER THAN TARGET"
        tail = r["total_s"] - r["trained_s"]
        print(f"{model}: start_job returned {returned:.2f} s; first progress {r['first_progress_s']:.1f} s; "
              f"epochs {', '.join(f'{s:.1f}' for s in r['epoch_s'])} s (target <= {TARGET_EPOCH_S[model]:.0f} s: "
              f"{verdict}); training done at {r['trained_s']:.1f} s; run saved at {r['total_s']:.1f} s: tail "
              f"(latent codes, t-SNE of {caps.embed_size} digits, files) {tail:.1f} s (target <= 10 s: "
              f"{'ok' if tail <= 10 else 'SLOWER THAN TARGET'})")

    for when in ("while training", "while starting"):
        job_id = jobs.start_job({**jobs.DEFAULT_SPEC, "epochs": caps.max_epochs}, runs, jobs_dir,
                                data_dir=data_dir, caps=caps)
        phases = ("training",) if when == "while training" else ("starting", "loading data", "training")
        while jobs.job_status(jobs_dir, job_id).get("phase") not in phases:
            time.sleep(0.01)
        t0 = time.perf_counter()
        st = jobs.cancel_job(jobs_dir, job_id, "local-user")
        print(f"cancel {when}: {time.perf_counter() - t0:.2f} s -> {st['state']} (target <= 2 s)")

if __name__ == "__main__":
    main()


def tsne_methods() -> None:
    """The job's latent map: seconds per method and size on real codes, one thread (as in a job)."""
    import numpy as np

    from core import embed
    from core.run import schemas

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn depends on it; keep the bench usable anyway
        threadpool_limits = None
    for name in ("mnist-vae", "mnist-gan"):
        codes = schemas.read_embeddings(REPO / "checkpoints" / name)["codes"]
        for n in (2000, 1000):
            t0 = time.perf_counter()
            if threadpool_limits:
                with threadpool_limits(1):
                    embed.tsne(codes[:n])
            else:
                embed.tsne(codes[:n])
            print(f"t-SNE {name}: scikit-learn, PCA init, {n} digits, perplexity 30: {time.perf_counter() - t0:.1f} s, "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
        try:
            from openTSNE import TSNE as OpenTSNE
        except ImportError:
            print("t-SNE: openTSNE is not installed (pip install openTSNE to compare)")
            continue
        t0 = time.perf_counter()
        OpenTSNE(n_jobs=1, random_state=0).fit(np.asarray(codes[:2000], dtype=np.float64))
        print(f"t-SNE {name}: openTSNE (FFT), 2000 digits: {time.perf_counter() - t0:.1f} s", flush=True)
