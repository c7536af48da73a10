"""`python -m core train ... --backend hf-jobs [--flavor t4-small]`: submit the same training to Hugging Face
Jobs, follow its progress, and say where the run is in the bucket."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from core.jobs import progress
from core.jobs.backends.hf_config import (
    INCOMING,
    LABEL_RE,
    MOUNT,
    START_MARGIN_S,
    HfJobsConfig,
    _stage,
    api,
    on_flavor,
)

DROP_OPTIONS = {"--backend", "--flavor", "--out", "--progress", "--marker"}


def remote_argv(argv: list[str]) -> list[str]:
    """The CLI's own arguments minus the ones that choose where and how it runs."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        name = a.split("=", 1)[0]
        if name in DROP_OPTIONS:
            skip = "=" not in a
            continue
        out.append(a)
    return out


def train_from_cli(args, argv: list[str]) -> int:
    """Submit `core train` to Hugging Face Jobs, follow its progress, say where the run is. Exit status 0 = done."""
    config = HfJobsConfig.from_env(need_bucket_dir=False)
    flavor = args.flavor or config.flavors[0]
    hf = api(config)
    namespace = config.namespace or hf.whoami()["name"]
    known = {h.name: h for h in hf.list_jobs_hardware()}
    if flavor not in known:
        print(f"error: --flavor {flavor} is not a Jobs flavor; one of: {', '.join(known)}", file=sys.stderr)
        return 2
    name = Path(args.out).name if args.out else f"{args.dataset}-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not LABEL_RE.match(name):
        print(f"error: the run name {name!r} may hold only letters, digits, '-' and '_'", file=sys.stderr)
        return 2
    out = f"{MOUNT}/{INCOMING}/{name}"
    command = ["python", "-m", "core", *[a for a in remote_argv(argv)], "--out", out, "--progress", "json",
               "--marker", f"{out}.complete"]
    if command[3] != "train":
        command.insert(3, "train")
    from huggingface_hub import Volume

    timeout = int(args.time_budget + START_MARGIN_S) if args.time_budget else None
    job = hf.run_job(image=config.image, command=on_flavor(command, flavor), flavor=flavor, timeout=timeout,
                     env={"PYTHONUNBUFFERED": "1"}, namespace=namespace,
                     labels={"app": config.app, "kind": "cli", "run": name, "dataset": args.dataset},
                     volumes=[Volume(type="bucket", source=config.bucket, mount_path=MOUNT)])
    h = known[flavor]
    print(f"submitted {job.id} on {flavor} (${h.unit_cost_usd * 60:.2f}/hour): {job.url}", flush=True)
    seen = 0
    while True:
        info = hf.inspect_job(job_id=job.id, namespace=namespace)
        lines = list(hf.fetch_job_logs(job_id=job.id, namespace=namespace))
        p = progress.parse(lines)
        for line in lines[seen:]:
            if not line.startswith((progress.PROGRESS, progress.EPOCH)):
                print(f"  | {line}", flush=True)
        seen = len(lines)
        if p.get("step"):
            print(f"epoch {p.get('epoch')} step {p['step']}/{p['total_steps']} "
                  f"{json.dumps(p.get('losses', {}))}", flush=True)
        stage = _stage(info)
        if stage in ("COMPLETED", "ERROR", "CANCELED", "DELETED"):
            break
        time.sleep(float(os.environ.get("RETRAIN_CLI_POLL_S", "5")))
    minutes = (info.finished_at - info.started_at).total_seconds() / 60 if info.finished_at and info.started_at \
        else 0
    print(f"{stage.lower()} after {minutes:.1f} min (about ${h.unit_cost_usd * minutes:.3f})")
    if stage != "COMPLETED":
        print(f"error: the job ended {stage}: {info.status.message or 'see its logs at ' + job.url}",
              file=sys.stderr)
        return 1
    print(f"the run is in the bucket {config.bucket} at {INCOMING}/{name}/ (marker {INCOMING}/{name}.complete)")
    return 0
