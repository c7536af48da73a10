"""Wall time of `python -m core evaluate` per run, against the one-minute budget on a 2-core CPU.

    python bench/eval_speed.py [--runs checkpoints/mnist-vae checkpoints/mnist-gan]
                               [--classifier checkpoints/mnist-classifier] [--data-dir DIR] [--write]

The reference measured in the same process is one classifier pass over the 10k test images, the cost
that evaluation repeats about five times (train subset, test set, three seeds of samples); the ratio
makes numbers from different machines comparable. Nothing is written unless --write is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from core import data
from core.evaluate import classify, evaluate_run, load_classifier

BUDGET_S = 60.0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", default=["checkpoints/mnist-vae", "checkpoints/mnist-gan"])
    p.add_argument("--classifier", default="checkpoints/mnist-classifier")
    p.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR or data/)")
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--write", action="store_true", help="store the results in each run's metrics.json")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    clf, _ = load_classifier(args.classifier)
    test = data.load_split("mnist", args.data_dir, train=False)[0]
    classify(clf, test[:1000])  # warm-up
    t = time.perf_counter()
    classify(clf, test)
    ref = time.perf_counter() - t
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; reference: classifier pass over "
          f"{len(test)} test images {ref:.2f} s")
    for run in args.runs:
        t = time.perf_counter()
        ev = evaluate_run(run, args.classifier, args.data_dir, samples=args.samples, seeds=tuple(args.seeds),
                          write=args.write)
        wall = time.perf_counter() - t
        stages = ", ".join(f"{k} {v:.1f}" for k, v in ev["settings"]["time_s_by_stage"].items())
        print(f"{Path(run).name:24s} {wall:6.1f} s  ({wall / ref:.1f}x reference; {wall / BUDGET_S:.0%} of the "
              f"{BUDGET_S:.0f} s budget)  stages: {stages}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
