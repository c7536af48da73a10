"""Background processes started by the library and the dashboard (retrain jobs, t-SNE recomputes): the
environment a child runs in, and whether a process is still alive. Torch-free."""

from __future__ import annotations

import os

from core import paths


def child_env(threads: int | None = None, **extra: str) -> dict[str, str]:
    """This process's environment for a `python -m core...` child: the project importable from any working
    folder (ahead of any PYTHONPATH), output unbuffered, and with `threads`, OpenMP and MKL held to that many
    threads that wait passively (they would otherwise take every core)."""
    path = os.pathsep.join(filter(None, [str(paths.PROJECT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    env.update(extra)
    return env


def alive(pid) -> bool:
    """Whether a process with this id exists (one of another user counts: it cannot be signalled, but it runs)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
