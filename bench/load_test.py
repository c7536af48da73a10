"""A class on one server: N visitors browse every page at once; page times, errors, the server's RSS and CPU.

Starts `streamlit run dashboard/app.py` on 127.0.0.1 (a free port in 8700-8799, or --port), then runs N
sessions concurrently. Each session visits Overview, Samples (and changes the Samples seed: one more view),
Latent space, Training curves and Metrics, R rounds. A page's time is from the request to the server's
"script finished" message (protocol) or to the rendered page with no running-indicator (browser).

Clients:
  protocol  (default) speaks Streamlit's own websocket protocol with the protobuf messages of the installed
            streamlit package (BackMsg rerun_script -> ForwardMsg deltas ... script_finished): cheap, so the
            figures measure the server, not the client.
  browser   headless Chromium via Playwright (Debian's chromium), the ground truth for a few sessions.

--with-job keeps a retrain job (GAN, seed preset, full MNIST from $DATA_DIR) running for the whole test.
--idle-retrain N opens N Retrain pages that then sit idle for --idle-s seconds and reports the server's
CPU over that time in cores (target <= 0.05 for 10 tabs).

Bounded: loopback only, at most 50 sessions, every wait has a timeout, the whole run stops after --limit-s.
The last line reads:
  sessions=N clients=... p50=... p95=... max=... errors=... server_rss_mb=... server_cpu_s_per_view=...

    .venv/bin/python bench/load_test.py --sessions 20 --rounds 3 --with-job
    .venv/bin/python bench/load_test.py --sessions 5 --rounds 2 --with-job --clients browser
    .venv/bin/python bench/load_test.py --idle-retrain 10 --idle-s 30
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PAGES = [("", "GAN vs VAE"), ("samples", "Samples"), ("latent", "Latent space"), ("curves", "Training curves"),
         ("metrics", "Metrics")]
PAGE_TIMEOUT_S = 120.0
CLK = os.sysconf("SC_CLK_TCK")


# --- the server and its process numbers ------------------------------------------------------------
def free_port(lo: int = 8700, hi: int = 8799) -> int:
    for port in range(lo, hi + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {lo}-{hi}")


def cpu_s(pid: int) -> float:
    """utime + stime of one process (the server itself; job processes are counted apart)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(port: int, env: dict, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.address=127.0.0.1",
           f"--server.port={port}", "--server.headless=true", "--browser.gatherUsageStats=false"]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc
        except OSError:
            time.sleep(0.2)
    stop_server(proc)
    raise TimeoutError("server not healthy after 240 s")


def stop_server(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


# --- protocol clients --------------------------------------------------------------------------------
class ProtocolSession:
    """One visitor speaking Streamlit's websocket protocol."""

    def __init__(self, port: int):
        self.url = f"ws://127.0.0.1:{port}/_stcore/stream"
        self.ws = None
        self.widgets: dict[str, str] = {}  # label -> widget id, from the last page's deltas
        self.auto: list[tuple[float, str]] = []  # (interval, fragment id) the page asked to rerun on a timer
        self.errors = 0

    async def __aenter__(self):
        import websockets

        self.ws = await websockets.connect(self.url, subprotocols=["streamlit"], max_size=2**26,
                                           open_timeout=30, ping_interval=None)
        return self

    async def __aexit__(self, *exc):
        await self.ws.close()

    async def rerun(self, page: str, widgets=None, fragment_id: str = "") -> float:
        """Ask for a run of `page`; return seconds until the server reports the script finished."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        cs = msg.rerun_script
        cs.page_name = page
        cs.fragment_id = fragment_id
        cs.is_auto_rerun = bool(fragment_id)
        for w in widgets or []:
            cs.widget_states.widgets.append(w)
        t0 = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        if not fragment_id:
            self.widgets, self.auto = {}, []
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), PAGE_TIMEOUT_S)
            fm = ForwardMsg()
            fm.ParseFromString(raw)
            kind = fm.WhichOneof("type")
            if kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                etype = el.WhichOneof("type")
                if etype == "exception" or (etype == "alert" and "Something went wrong" in el.alert.body):
                    self.errors += 1
                inner = getattr(el, etype, None)
                if hasattr(inner, "id") and hasattr(inner, "label") and inner.id:
                    self.widgets[inner.label] = inner.id
            elif kind == "auto_rerun":
                self.auto.append((fm.auto_rerun.interval, fm.auto_rerun.fragment_id))
            elif kind == "script_finished":
                status = fm.script_finished
                if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    self.errors += 1
                if status != ForwardMsg.FINISHED_EARLY_FOR_RERUN:  # a st.rerun continues in the same wait
                    return time.perf_counter() - t0

    def seed_widget(self, value: int):
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        wid = self.widgets.get("Seed")
        if wid is None:
            return None
        return WidgetState(id=wid, double_value=float(value))  # number_input sends doubles


async def protocol_visitor(port: int, rounds: int, index: int, times: list, errors: list, deadline: float):
    try:
        async with ProtocolSession(port) as s:
            for r in range(rounds):
                for path, _title in PAGES:
                    if time.monotonic() > deadline:
                        return
                    times.append(await s.rerun(path))
                    if path == "samples":
                        w = s.seed_widget(1000 * index + r + 1)
                        if w is None:
                            errors.append(f"session {index}: no Seed widget on Samples")
                        else:
                            times.append(await s.rerun(path, [w]))
            if s.errors:
                errors.append(f"session {index}: {s.errors} error element(s)")
    except Exception as err:  # a timeout or a dropped connection is an error of the run, not of the tool
        errors.append(f"session {index}: {type(err).__name__}: {err}")


async def idle_retrain_visitor(port: int, idle_s: float, errors: list, reruns: list):
    """Open the Retrain page, then behave like an idle tab: only the timed fragment reruns the page asked for."""
    try:
        async with ProtocolSession(port) as s:
            await s.rerun("retrain")
            end = time.monotonic() + idle_s
            next_at = {fid: time.monotonic() + iv for iv, fid in s.auto}
            while time.monotonic() < end:
                due = [fid for fid, at in next_at.items() if at <= time.monotonic()]
                for fid in due:
                    await s.rerun("retrain", fragment_id=fid)
                    reruns.append(fid)
                    next_at[fid] = time.monotonic() + dict((f, i) for i, f in s.auto).get(fid, 1.0)
                await asyncio.sleep(0.05)
    except Exception as err:
        errors.append(f"idle tab: {type(err).__name__}: {err}")


# --- browser clients ------------------------------------------------------------------------------------
WAIT_JS = ("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
           " && !document.querySelector('[data-testid=\"stSkeleton\"]')")


async def browser_visitor(browser, port: int, rounds: int, index: int, times: list, errors: list, deadline: float):
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await ctx.new_page()
    try:
        for r in range(rounds):
            for path, title in PAGES:
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                await page.goto(f"http://127.0.0.1:{port}/{path}")
                await page.get_by_role("heading", name=title).first.wait_for(timeout=PAGE_TIMEOUT_S * 1000)
                await page.wait_for_function(WAIT_JS, timeout=PAGE_TIMEOUT_S * 1000)
                times.append(time.perf_counter() - t0)
                if path == "samples":
                    seed = page.get_by_label("Seed", exact=True).first
                    t0 = time.perf_counter()
                    await seed.fill(str(1000 * index + r + 1))
                    await seed.press("Enter")
                    await page.wait_for_timeout(100)  # let the rerun begin
                    await page.wait_for_function(WAIT_JS, timeout=PAGE_TIMEOUT_S * 1000)
                    times.append(time.perf_counter() - t0)
                n = await page.locator('[data-testid="stException"]').count()
                if n:
                    errors.append(f"session {index}: exception on {path or 'overview'}")
    except Exception as err:
        errors.append(f"session {index}: {type(err).__name__}: {str(err)[:200]}")
    finally:
        await ctx.close()


async def run_browsers(port: int, sessions: int, rounds: int, times: list, errors: list, deadline: float):
    from playwright.async_api import async_playwright

    exe = shutil.which("chromium")
    if exe is None:
        raise SystemExit("Debian's chromium is not installed: apt-get install -y chromium")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=exe, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                     "--disable-background-networking"])
        try:
            await asyncio.gather(*(browser_visitor(browser, port, rounds, i, times, errors, deadline)
                                   for i in range(sessions)))
        finally:
            await browser.close()


# --- a job running throughout ----------------------------------------------------------------------------------
class BackgroundJob:
    """Keeps one retrain job running (a new one is queued whenever the last ends) until stopped."""

    def __init__(self, runs: Path, data_dir: Path):
        from core import jobs

        self.jobs, self.runs, self.data_dir = jobs, runs, data_dir
        self.caps = jobs.Caps.from_env()
        self.jobs_dir = runs / ".jobs"
        self.started = 0

    def tick(self) -> None:
        if not self.jobs.queue(self.jobs_dir):
            spec = {**self.jobs.DEFAULT_SPEC, "model": "gan", "epochs": self.caps.max_epochs}
            self.jobs.start_job(spec, self.runs, self.jobs_dir, self.data_dir, self.caps, owner="load-test-job")
            self.started += 1

    def wait_running(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            q = self.jobs.queue(self.jobs_dir)
            if q and q[0].get("phase") == "training":
                return
            time.sleep(0.2)
        raise TimeoutError("the background job did not start training")

    def stop(self) -> None:
        self.jobs.cancel_all(self.jobs_dir)


async def keep_job(job: BackgroundJob, stop: asyncio.Event):
    while not stop.is_set():
        job.tick()
        try:
            await asyncio.wait_for(stop.wait(), 2.0)
        except TimeoutError:
            pass


# --- main ---------------------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q * (len(v) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", choices=["protocol", "browser"], default="protocol")
    ap.add_argument("--with-job", action="store_true", help="keep a retrain job running during the test")
    ap.add_argument("--idle-retrain", type=int, default=0, help="instead: N idle Retrain tabs, server CPU in cores")
    ap.add_argument("--idle-s", type=float, default=30.0)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--limit-s", type=float, default=900.0, help="stop every session after this long")
    args = ap.parse_args()
    if not 1 <= args.sessions <= 50 or not 1 <= args.rounds <= 20 or not 0 <= args.idle_retrain <= 50:
        raise SystemExit("sessions 1-50, rounds 1-20, idle-retrain 0-50")
    port = args.port or free_port()
    tmp = Path(tempfile.mkdtemp(prefix="load-test-"))
    data_dir = Path(os.environ.get("DATA_DIR") or REPO.parent / "shared" / "data")
    env = {**os.environ, "RUNS_DIR": str(tmp / "runs"), "DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    os.environ.update(RUNS_DIR=env["RUNS_DIR"], DATA_DIR=env["DATA_DIR"])
    load0 = os.getloadavg()[0]
    print(f"cpu cores {os.cpu_count()}, load average {load0:.2f} at start; server on 127.0.0.1:{port}", flush=True)
    job = None
    server = start_server(port, env, tmp / "server.log")
    try:
        job = BackgroundJob(tmp / "runs", data_dir) if args.with_job else None
        asyncio.run(run(args, port, server, job))
    finally:
        if job:
            job.stop()
        stop_server(server)
        shutil.rmtree(tmp, ignore_errors=True)


async def run(args, port: int, server: subprocess.Popen, job: BackgroundJob | None) -> None:
    stop = asyncio.Event()
    keeper = None
    if job:
        job.tick()
        await asyncio.to_thread(job.wait_running)
        keeper = asyncio.create_task(keep_job(job, stop))
        print("a retrain job is training during the test", flush=True)
    # warm-up: one visitor loads each page once (imports, model loads), not timed
    warm_times, warm_errors = [], []
    await protocol_visitor(port, 1, 999, warm_times, warm_errors, time.monotonic() + 300)
    if warm_errors:
        print(f"warm-up errors: {warm_errors}", flush=True)
    if args.idle_retrain:
        await asyncio.sleep(2)
        errors, reruns = [], []
        cpu0, t0 = cpu_s(server.pid), time.monotonic()
        await asyncio.gather(*(idle_retrain_visitor(port, args.idle_s, errors, reruns)
                               for _ in range(args.idle_retrain)))
        cores = (cpu_s(server.pid) - cpu0) / (time.monotonic() - t0)
        stop.set()
        print(f"idle_retrain_tabs={args.idle_retrain} seconds={args.idle_s:.0f} timed_reruns={len(reruns)} "
              f"errors={len(errors)} server_cores={cores:.3f} with_job={bool(job)}", flush=True)
        return
    times: list[float] = []
    errors: list[str] = []
    rss = [rss_mb(server.pid)]
    deadline = time.monotonic() + args.limit_s
    cpu0, t0 = cpu_s(server.pid), time.monotonic()

    async def sample_rss():
        while not stop.is_set():
            rss.append(rss_mb(server.pid))
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample_rss())
    if args.clients == "protocol":
        await asyncio.gather(*(protocol_visitor(port, args.rounds, i, times, errors, deadline)
                               for i in range(args.sessions)))
    else:
        await run_browsers(port, args.sessions, args.rounds, times, errors, deadline)
    wall = time.monotonic() - t0
    cpu = cpu_s(server.pid) - cpu0
    stop.set()
    await sampler
    if keeper:
        await keeper
    for e in errors[:10]:
        print("error:", e, flush=True)
    views = len(times)
    print(f"views={views} wall_s={wall:.1f} server_cpu_s={cpu:.1f} server_cores={cpu / wall:.2f} "
          f"rss_start_mb={rss[0]:.0f} rss_peak_mb={max(rss):.0f} rss_end_mb={rss[-1]:.0f} "
          f"jobs_started={job.started if job else 0} load_average={os.getloadavg()[0]:.2f}", flush=True)
    p50 = statistics.median(times) if times else float("nan")
    print(f"sessions={args.sessions} clients={args.clients} p50={p50:.2f} "
          f"p95={pct(times, 0.95):.2f} max={max(times, default=float('nan')):.2f} errors={len(errors)} "
          f"server_rss_mb={max(rss):.0f} server_cpu_s_per_view={cpu / max(views, 1):.3f}", flush=True)


if __name__ == "__main__":
    main()
