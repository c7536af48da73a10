"""Hostile input replayed. First the visitor's attacks (bench/hostile_probes.py: uploads, job ownership,
CSV injection, names, the zip, push, the t-SNE cap, a full disk, a killed worker), one "held" / "BROKEN" line
each; then the time and peak memory of `python -m core show` on every hostile run folder of
tests/core/test_hostile.py, plus the full-size attacks (an embeddings.npz of a few MB that inflates to 2 GiB, and a
model.safetensors header listing 1.5 M empty tensors), against the same command on the good run.

    python -m bench.hostile_runs              # everything (needs ~100 MB of temporary disk)
    python -m bench.hostile_runs --no-full    # skip the two full-size files
    python -m bench.hostile_runs --probes-only [--only zip]

Each folder case runs in its own process under /usr/bin/time -v (wall seconds, max RSS); prints one row per
case and the worst case last. Every hostile case must exit 2; the good run exits 0. Exits 1 when anything
broke.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.core import test_hostile as th

REPO = Path(__file__).resolve().parents[1]


def measure(path: Path) -> tuple[int, float, int, str]:
    """(exit status, wall seconds, max RSS in MB, first stderr line) of `python -m core show path`."""
    res = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "core", "show", str(path)], cwd=REPO,
                         capture_output=True, text=True)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", res.stderr)
    h, m, s = (float(g or 0) for g in wall.groups())
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1)) // 1024
    first = next((line for line in res.stderr.splitlines() if line.startswith("error:")), "")
    return res.returncode, 3600 * h + 60 * m + s, rss, first


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-full", action="store_true", help="skip the 2 GiB bomb and the 1.5 M-tensor header")
    p.add_argument("--probes-only", action="store_true", help="only the visitor's attacks, not the run folders")
    p.add_argument("--only", default=None, help="only the probes whose name holds this text")
    args = p.parse_args()
    from bench import hostile_probes

    print(f"load average {os.getloadavg()[0]:.2f}; the visitor's attacks")
    rows = hostile_probes.run_all(args.only)
    broken = [name for name, held, _ in rows if not held]
    print(f"{len(rows) - len(broken)} of {len(rows)} held" + (f"; broken: {', '.join(broken)}" if broken else ""))
    if args.probes_only or args.only:
        sys.exit(1 if broken else 0)
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root, outside = Path(tmp) / "runs", Path(tmp) / "outside"
        root.mkdir()
        cases = {name: th.make_case(name, root, outside) for name in th.ALL}
        if not args.no_full:  # built beside the others (make_case names a folder after its case)
            full = Path(tmp) / "full"
            full.mkdir()
            bomb = th.make_case("npz-bomb", full, outside).rename(root / "full-npz-bomb-2GiB")
            th.write_bomb_npz(bomb / "embeddings.npz", rows=(2 << 30) // 128)  # 2 GiB of float32 codes
            cases["full-npz-bomb-2GiB"] = bomb
            header = th.make_case("weights-many-tensors", full, outside).rename(root / "full-1.5M-empty-tensors")
            (header / "model.safetensors").write_bytes(th.many_tensors(1_500_000))
            cases["full-1.5M-empty-tensors"] = header
        print(f"load average {os.getloadavg()[0]:.2f}; python -m core show RUN, one process per case")
        code, wall, rss, _ = measure(th.GOOD)
        print(f"{'good run (checkpoints/mnist-vae)':34s} exit {code}  {wall:6.2f} s  {rss:5d} MB")
        rows = []
        for name, path in cases.items():
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
            code, wall, rss, first = measure(path)
            rows.append((wall, rss, name))
            print(f"{name:34s} exit {code}  {wall:6.2f} s  {rss:5d} MB  ({size / 2**20:7.1f} MB on disk)  {first[:90]}")
            assert code == 2, f"{name}: exit {code}"
        wall, rss, name = max(rows)
        print(f"worst time: {name} {wall:.2f} s; worst memory: {max(r[1] for r in rows)} MB "
              f"({max(rows, key=lambda r: r[1])[2]})")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
