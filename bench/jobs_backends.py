"""Submit -> running -> run listed, for the local backend and for hf-jobs against the loopback fake Jobs API
(tests/fake_hf_jobs.py: real huggingface_hub calls over HTTP, the job a local `python -m core train`).

    python bench/jobs_backends.py [--repeat 2]

Both train the same tiny job (VAE, seed preset, 2 epochs of 256 synthetic images), so the difference is the
backend's own overhead: the local dispatcher and worker against list_jobs / logs polling, the bucket's marker
and the copy into the runs folder. Prints seconds from submit to each stage, with the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.jobs import Caps  # noqa: E402
from core.jobs import backends as jobs_backends  # noqa: E402
from core.jobs.backends import hf_jobs  # noqa: E402
from tests.fake_hf_jobs import TOKEN, FakeJobs  # noqa: E402

SPEC = {"model": "vae", "preset": "seed", "latent_dim": 8, "epochs": 2, "batch_size": 32, "synthetic": 256}
CAPS = Caps(threads=1, embed_size=32)


def follow(backend, job_id: str, runs: Path) -> dict[str, float]:
    t0, seen = time.monotonic(), {}
    while time.monotonic() - t0 < 600:
        st = backend.job_status(job_id) or {}
        now = round(time.monotonic() - t0, 2)
        if st.get("state") == "running":
            seen.setdefault("running", now)
        if st.get("step"):
            seen.setdefault("first progress", now)
        if st.get("state") == "done" and (runs / st["run"] / "config.json").is_file():
            seen["run listed"] = now
            return seen
        if st.get("state") in ("failed", "cancelled"):
            raise SystemExit(f"the job ended {st['state']}: {st.get('reason')}")
        time.sleep(0.1)
    raise SystemExit("the job did not finish in 600 s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=2, help="jobs per backend (default: 2)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bucket = tmp / "bucket"
        bucket.mkdir()
        fake = FakeJobs({"owner/runs": bucket})
        os.environ.update({"HF_TOKEN": TOKEN, "HF_ENDPOINT": fake.url, "RETRAIN_HF_BUCKET": "owner/runs",
                           "RETRAIN_HF_BUCKET_DIR": str(bucket), "RETRAIN_HF_IMAGE": "hf.co/spaces/owner/space",
                           "RETRAIN_HF_APP": "bench"})
        try:
            for name in ("local", "hf-jobs"):
                for i in range(args.repeat):
                    runs = tmp / f"{name}-{i}" / "runs"
                    hf_jobs.forget_cache()
                    b = jobs_backends.get(name, runs_dir=runs, state_dir=runs.parent / "jobs", caps=CAPS)
                    t = time.monotonic()
                    job_id = b.start_job(SPEC, f"bench-owner-{i}")
                    submit = time.monotonic() - t
                    seen = follow(b, job_id, runs)
                    load = os.getloadavg()[0]
                    stages = ", ".join(f"{k} {v + submit:.1f} s" for k, v in seen.items())
                    print(f"{name:8s} #{i + 1}: submit returned in {submit:.2f} s; {stages} (load {load:.1f})",
                          flush=True)
        finally:
            fake.close()


if __name__ == "__main__":
    main()
