"""What large uploads cost the server: RSS before and after six uploads on the Explore page, after the tab is
closed, and the server's CPU per slider move with a 25-megapixel upload on the page (against a small JPEG).

Starts `streamlit run dashboard/app.py` on 127.0.0.1 (the committed runs), drives headless Chromium
(Playwright, Debian's `chromium`) to the Explore page and uploads, one after another, six files of the kind
given: `big` (190 MB BMPs of 63 megapixels: the page refuses them; the uploader must refuse them first) or
`photo` (25-megapixel PNG scans, each different, under the upload limit). RSS is the server process's VmRSS.

    .venv/bin/python bench/upload_memory.py                 # both kinds, then 5 slider moves per upload size
    .venv/bin/python bench/upload_memory.py --kinds photo --moves 3

Bounded: loopback only, every wait has a timeout, files live in a temporary folder that is removed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.browser import chromium_page, streamlit_server, wait_healthy, wait_rendered  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
OUTCOME = """() => {
    if (document.querySelector('[data-testid="stStatusWidget"]')) return null;
    const text = document.body.innerText;
    if (/your (digit|item), 28/.test(text)) return 'read';
    if (/could not be read/.test(text)) return 'refused by the page';
    if (/File must be .* or smaller|exceeds|too large/i.test(text)) return 'refused by the uploader';
    return null;
}"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK  # utime + stime


def make_files(kind: str, folder: Path, count: int = 6) -> list[Path]:
    """`count` different files: a dark "1" on light paper, with noise so that each file is its own."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        if kind == "big":  # 7950 x 7950 x 3 bytes = 190 MB as an uncompressed BMP, 63 megapixels
            side, fmt, suffix = 7950, "BMP", ".bmp"
        elif kind == "photo":  # 25 megapixels; a PNG scan (no reduced-size decoding, unlike a JPEG), ~20 MB
            side, fmt, suffix = 5000, "PNG", ".png"
        else:  # a small photo
            side, fmt, suffix = 600, "JPEG", ".jpg"
        img = rng.integers(200, 256, size=(side, side), dtype=np.uint8)
        img[side // 6: 5 * side // 6, side // 2 - side // 20: side // 2 + side // 20] = 20 + i
        rgb = np.repeat(img[..., None], 3, axis=2) if fmt != "PNG" else img
        path = folder / f"{kind}-{i}{suffix}"
        Image.fromarray(rgb).save(path, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        out.append(path)
    return out


def upload(page, path: Path, timeout_s: float = 240) -> str:
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))
    end = time.time() + timeout_s
    page.wait_for_timeout(500)
    while time.time() < end:
        outcome = page.evaluate(OUTCOME)
        if outcome:
            return outcome
        page.wait_for_timeout(250)
    return "timed out"


def settle(page, timeout_ms: int = 120_000) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)


def slider_moves(page, pid: int, moves: int) -> float:
    """Server CPU seconds per move of the Explore page's "Rows" slider (a whole-page rerun)."""
    thumb = page.get_by_role("slider").first
    spent = []
    for i in range(moves):
        settle(page)
        time.sleep(0.5)
        before = cpu_s(pid)
        thumb.focus()
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        settle(page)
        spent.append(cpu_s(pid) - before)
    return float(np.median(spent))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kinds", default="big,photo", help="comma-separated: big (190 MB BMP), photo (25 MP PNG)")
    p.add_argument("--moves", type=int, default=5, help="slider moves per upload size for the CPU figure")
    p.add_argument("--after-close-s", type=float, default=150,
                   help="seconds to wait after the tab is closed (Streamlit frees a session's uploads after "
                        "server.disconnectedSessionTTL)")
    p.add_argument("--warm", action="store_true", help="upload a small image before the first RSS reading")
    args = p.parse_args()
    env = {"CHECKPOINT_DIR": str(REPO / "checkpoints")}
    with tempfile.TemporaryDirectory(prefix="uploads-") as tmp:
        env["RUNS_DIR"] = str(Path(tmp) / "runs")
        print(f"load average {os.getloadavg()[0]:.2f}")
        for kind in [k for k in args.kinds.split(",") if k]:
            files = make_files(kind, Path(tmp))
            sizes = ", ".join(f"{f.stat().st_size / 2**20:.0f}" for f in files)
            with streamlit_server(env) as (url, proc), chromium_page() as page:
                wait_healthy(url, 180, proc)
                page.goto(f"{url}/explore")
                wait_rendered(page, "Explore", 180_000)
                if args.warm:  # one small upload first: what any upload loads once (the nearest digits' set)
                    upload(page, make_files("small", Path(tmp), count=1)[0])
                    settle(page)
                time.sleep(2)
                start = rss_mb(proc.pid)
                print(f"{kind}: six uploads of {sizes} MB; server RSS {start:.0f} MB on the Explore page")
                peak = start
                for f in files:
                    outcome = upload(page, f)
                    settle(page)
                    peak = max(peak, rss_mb(proc.pid))
                    print(f"  {f.name}: {outcome}; RSS {rss_mb(proc.pid):.0f} MB")
                after = rss_mb(proc.pid)
                page.goto("about:blank")
                page.context.close()
                time.sleep(args.after_close_s)
                closed = rss_mb(proc.pid)
                print(f"{kind}: RSS {start:.0f} -> {after:.0f} MB after six uploads (peak {peak:.0f}), "
                      f"{closed:.0f} MB {args.after_close_s:.0f} s after the tab closed")
        if args.moves:
            for kind in ("photo", "small"):
                f = make_files(kind, Path(tmp), count=1)[0]
                with streamlit_server(env) as (url, proc), chromium_page() as page:
                    wait_healthy(url, 180, proc)
                    page.goto(f"{url}/explore")
                    wait_rendered(page, "Explore", 180_000)
                    outcome = upload(page, f)
                    settle(page)
                    per_move = slider_moves(page, proc.pid, args.moves)
                    print(f"slider move with a {kind} upload ({f.stat().st_size / 2**20:.1f} MB, {outcome}): "
                          f"server CPU {per_move:.2f} s per move (median of {args.moves}); "
                          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
