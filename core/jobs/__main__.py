"""`python -m core.jobs work <jobs_dir>` (the dispatcher) | `run <jobdir>` (one job) | `promote <state_dir>`
(hf-jobs: submits waiting jobs): started by the backends, never by hand."""

from __future__ import annotations

import sys
from pathlib import Path

from core.jobs.dispatcher import hand_over, run_dispatcher
from core.jobs.worker import run_worker


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "run":
        try:
            return run_worker(argv[1])
        finally:
            hand_over(Path(argv[1]).resolve())
    if len(argv) == 2 and argv[0] == "work":
        return run_dispatcher(argv[1])
    if len(argv) == 2 and argv[0] == "promote":  # the hf-jobs backend's: submits waiting jobs as slots free
        from core.jobs.backends.hf_promoter import run_promoter

        return run_promoter(argv[1])
    print("usage: python -m core.jobs run <jobdir> | work <jobs_dir> | promote <state_dir>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
