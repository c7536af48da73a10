"""A loopback stand-in for the Hugging Face Jobs API, for tests: point HF_ENDPOINT at `FakeJobs.url`.

It serves exactly the routes huggingface_hub 2.4's job functions call (read from hf_api.py):
  GET  /api/whoami-v2                       whoami (the namespace)
  GET  /api/jobs/hardware                   list_jobs_hardware
  POST /api/jobs/{ns}                       run_job (the JSON job spec of _create_job_spec)
  GET  /api/jobs/{ns}?label=k=v&stage=S     list_jobs (paginate: one page, no Link header)
  GET  /api/jobs/{ns}/{id}                  inspect_job, wait_for_job
  POST /api/jobs/{ns}/{id}/cancel           cancel_job
  GET  /api/jobs/{ns}/{id}/logs[?tail=N]    fetch_job_logs (server-sent events, closed after the replay)
Each job's command runs as a local subprocess in the repository, `python` being this interpreter, with every
bucket volume's mount path mapped to a temporary folder (in the arguments and the environment). Its secrets
reach its environment, never a response. timeoutSeconds is enforced (stage ERROR, "Job timeout").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_fake_token_for_tests_0123456789"
NAMESPACE = "space-owner"
# (name, pretty name, cpu, ram, accelerator, micro-USD per minute): the shape of the real list
HARDWARE = [("cpu-basic", "CPU Basic", "2 vCPU", "16 GB", None, 167),
            ("cpu-upgrade", "CPU Upgrade", "8 vCPU", "32 GB", None, 500),
            ("t4-small", "Nvidia T4 - small", "4 vCPU", "15 GB", "T4", 6667),
            ("a10g-small", "Nvidia A10G - small", "4 vCPU", "15 GB", "A10G", 16667)]
TERMINAL = ("COMPLETED", "CANCELED", "ERROR", "DELETED")


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Job:
    def __init__(self, spec: dict, buckets: dict[str, Path]):
        self.id = uuid.uuid4().hex[:24]
        self.spec, self.created = spec, time.time()
        self.stage, self.message = "SCHEDULING", None
        self.started = self.finished = None
        self.logs: list[tuple[float, str]] = []
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.mounts = {v["mountPath"]: buckets[v["source"]] for v in spec.get("volumes", []) if v["type"] == "bucket"}

    def _map(self, text: str) -> str:
        for mount, folder in self.mounts.items():
            if text == mount or text.startswith(mount + "/"):
                return str(folder) + text[len(mount):]
        return text

    def start(self, extra_env: dict) -> None:
        # the image's `python` is this interpreter, also behind a GPU flavor's `sh -c … exec "$@"` prelude
        cmd = [sys.executable if a in ("python", "python3") else self._map(a) for a in self.spec["command"]]
        env = {**os.environ, **extra_env, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
               **{k: self._map(str(v)) for k, v in self.spec.get("environment", {}).items()},
               **{k: str(v) for k, v in self.spec.get("secrets", {}).items()}}
        env.pop("HF_ENDPOINT", None)  # the job talks to nobody
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        with self.lock:
            self.stage, self.started = "RUNNING", time.time()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.lock:
                self.logs.append((time.time(), line.rstrip("\n")))

    def _watch(self) -> None:
        timeout = self.spec.get("timeoutSeconds")
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
            self._end("ERROR", "Job timeout")
            return
        if rc == 0:
            self._end("COMPLETED", None)
        elif rc < 0 and self.stage == "CANCELED":
            pass
        else:
            self._end("ERROR", f"Job failed with exit code: {rc}")

    def _end(self, stage: str, message: str | None) -> None:
        with self.lock:
            if self.stage not in TERMINAL:
                self.stage, self.message, self.finished = stage, message, time.time()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except ProcessLookupError:
                pass

    def cancel(self) -> None:
        self._end("CANCELED", None)
        self.kill()

    def info(self) -> dict:
        s = self.spec
        with self.lock:
            running = (self.finished or time.time()) - self.started if self.started else 0
            return {"id": self.id, "createdAt": _iso(self.created), "startedAt": _iso(self.started),
                    "finishedAt": _iso(self.finished), "dockerImage": s.get("dockerImage"),
                    "spaceId": s.get("spaceId"), "command": s["command"], "arguments": s.get("arguments", []),
                    "environment": s.get("environment", {}), "secrets": sorted(s.get("secrets", {})),
                    "flavor": s.get("flavor"), "labels": s.get("labels"), "volumes": s.get("volumes"),
                    "status": {"stage": self.stage, "message": self.message},
                    "durations": {"runningSecs": int(running)},
                    "owner": {"id": "0" * 24, "name": NAMESPACE, "type": "user"}}


class FakeJobs:
    """The fake API on 127.0.0.1 (a free port). `buckets`: bucket id -> local folder standing for it."""

    def __init__(self, buckets: dict[str, Path], extra_env: dict | None = None):
        self.buckets, self.extra_env = buckets, extra_env or {}
        self.jobs: dict[str, Job] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every call, for tests
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, obj) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self, method: str) -> None:
                url = urlsplit(self.path)
                fake.requests.append((method, url.path))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._send(401, {"error": "Invalid credentials in Authorization header"})
                parts = url.path.strip("/").split("/")
                query = parse_qs(url.query)
                if method == "GET" and url.path == "/api/whoami-v2":
                    return self._send(200, {"type": "user", "name": NAMESPACE, "auth": {}})
                if method == "GET" and url.path == "/api/jobs/hardware":
                    return self._send(200, [{"name": n, "prettyName": p, "cpu": c, "ram": r,
                                             "accelerator": a and {"type": "gpu", "model": a, "quantity": "1",
                                                                   "vram": "16 GB", "manufacturer": "Nvidia"},
                                             "unitCostMicroUSD": m, "unitCostUSD": m / 1e6, "unitLabel": "minute"}
                                            for n, p, c, r, a, m in HARDWARE])
                if parts[:2] != ["api", "jobs"] or len(parts) < 3 or parts[2] != NAMESPACE:
                    return self._send(404, {"error": "not found"})
                if len(parts) == 3 and method == "POST":
                    spec = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    if spec.get("flavor") not in [h[0] for h in HARDWARE]:
                        return self._send(400, {"error": f"unknown flavor {spec.get('flavor')}"})
                    job = Job(spec, fake.buckets)
                    fake.jobs[job.id] = job
                    job.start(fake.extra_env)
                    return self._send(200, job.info())
                if len(parts) == 3 and method == "GET":
                    labels = [tuple(v.split("=", 1)) for v in query.get("label", [])]
                    stages = query.get("stage")
                    out = [j.info() for j in fake.jobs.values()
                           if all((j.spec.get("labels") or {}).get(k) == v for k, v in labels)]
                    return self._send(200, [i for i in out if not stages or i["status"]["stage"] in stages])
                job = fake.jobs.get(parts[3])
                if job is None:
                    return self._send(404, {"error": "Job not found"})
                if len(parts) == 4 and method == "GET":
                    return self._send(200, job.info())
                if parts[4:] == ["cancel"] and method == "POST":
                    job.cancel()
                    return self._send(200, {})
                if parts[4:] == ["logs"] and method == "GET":
                    with job.lock:
                        lines = list(job.logs)
                    if "tail" in query:
                        lines = lines[-int(query["tail"][0]):]
                    events = [("===== Job started =====", job.started or job.created)]
                    events += [(text, t) for t, text in lines]
                    body = "".join("data: " + json.dumps({"timestamp": _iso(t), "data": text}) + "\n\n"
                                   for text, t in events).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return None
                return self._send(404, {"error": "not found"})

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for job in self.jobs.values():
            job.cancel()
        self.server.shutdown()
        self.server.server_close()
