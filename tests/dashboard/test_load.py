"""bench/load_test.py runs end to end (protocol clients) and idle Retrain tabs do not poll; no timings asserted."""

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^sessions=(\d+) clients=(\w+) p50=([\d.]+) p95=([\d.]+) max=([\d.]+) errors=(\d+) "
                  r"server_rss_mb=(\d+) server_cpu_s_per_view=([\d.]+)$")


def load_test(tiny_runs, *args) -> list[str]:
    env = {**os.environ, "CHECKPOINT_DIR": str(tiny_runs)}
    env.pop("RUNS_DIR", None)
    out = subprocess.run([sys.executable, "bench/load_test.py", *args], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout.strip().splitlines()


def test_protocol_clients_visit_every_page_and_report_one_line(tiny_runs):
    lines = load_test(tiny_runs, "--sessions", "2", "--rounds", "1", "--limit-s", "600")
    m = LINE.match(lines[-1])
    assert m, lines[-3:]
    assert m.group(1) == "2" and m.group(2) == "protocol" and m.group(6) == "0", lines
    views = next(int(v) for line in lines for v in re.findall(r"^views=(\d+)", line))
    assert views == 2 * 6  # five pages and a Samples seed change, per session
    assert 0 < float(m.group(3)) <= float(m.group(4)) <= float(m.group(5)) and int(m.group(7)) > 0


def test_idle_retrain_tabs_do_not_poll_without_a_job(tiny_runs):
    lines = load_test(tiny_runs, "--idle-retrain", "3", "--idle-s", "5")
    m = re.search(r"idle_retrain_tabs=3 seconds=5 timed_reruns=(\d+) errors=(\d+)", lines[-2] + lines[-1])
    assert m and m.group(1) == "0" and m.group(2) == "0", lines[-3:]
