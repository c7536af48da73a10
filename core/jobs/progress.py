"""Training progress as log lines and back: how a job on another machine feeds the same live charts.

A job run by `python -m core train --progress json` prints, at most once a second and at every epoch's end,
    @progress {"epoch": 1, "epochs": 3, "step": 40, "total_steps": 1407, "elapsed_s": 2.1, "eta_s": 71.3,
               "losses": {...}}
    @epoch {"epoch": 1, "epochs": 3, "step": 469, "row": {"epoch": 1, "train/neg_elbo": ..., ...}}
`parse` turns a job's log (fetched with huggingface_hub.fetch_job_logs) into the fields of a local job's
status.json: losses, step history averaged down to HISTORY_POINTS points, per-epoch history.
"""

from __future__ import annotations

import json
import time

PROGRESS, EPOCH = "@progress ", "@epoch "
INTERVAL_S = 1.0
HISTORY_POINTS = 200  # the loss history shown live is averaged down to at most this many points


def downsample(steps: dict[str, list]) -> dict[str, list]:
    """Average consecutive steps so the history has at most HISTORY_POINTS points (the step is each chunk's last)."""
    n = len(steps["step"])
    k = max(1, -(-n // HISTORY_POINTS))  # ceil(n / HISTORY_POINTS) steps per point
    out = {"step": [steps["step"][min(i + k, n) - 1] for i in range(0, n, k)]}
    for key, v in steps.items():
        if key != "step":
            out[key] = [round(sum(v[i:i + k]) / len(v[i:i + k]), 5) for i in range(0, n, k)]
    return out


class LineReporter:
    """on_step / on_epoch callbacks of core.train that print one progress line a second through `emit`.

    Every step's losses go out, averaged over the steps since the last line, so the reader's history is
    the run's whole curve at a one-second resolution."""

    def __init__(self, emit):
        self.emit, self.last, self.pending = emit, 0.0, []

    def on_step(self, p: dict) -> None:
        self.pending.append(p["losses"])
        if p["step"] == 1 or time.monotonic() - self.last >= INTERVAL_S or p["step"] == p["total_steps"]:
            mean = {k: round(sum(d[k] for d in self.pending) / len(self.pending), 5) for k in self.pending[0]}
            self.emit(PROGRESS + json.dumps({"epoch": p["epoch"], "epochs": p.get("epochs"), "step": p["step"],
                                             "total_steps": p["total_steps"], "elapsed_s": round(p["elapsed_s"], 2),
                                             "eta_s": round(p["eta_s"], 1), "losses": mean}))
            self.pending, self.last = [], time.monotonic()

    def on_epoch(self, p: dict) -> None:
        self.emit(EPOCH + json.dumps({"epoch": p["epoch"], "epochs": p["epochs"], "step": p["step"],
                                      "row": {k: round(v, 5) for k, v in p["row"].items()}}))


def parse(lines) -> dict:
    """A job's log lines -> status fields (empty when no progress line was printed yet)."""
    steps: dict[str, list] = {"step": []}
    epochs: dict[str, list] = {}
    out: dict = {}
    for line in lines:
        line = line.strip()
        try:
            if line.startswith(PROGRESS):
                p = json.loads(line[len(PROGRESS):])
                steps["step"].append(p["step"])
                for k, v in p["losses"].items():
                    steps.setdefault(k, []).append(v)
                out.update(phase="training", epoch=p["epoch"], step=p["step"], total_steps=p["total_steps"],
                           elapsed_s=p["elapsed_s"], eta_s=p["eta_s"], losses=p["losses"])
                if p.get("epochs"):
                    out["epochs"] = p["epochs"]
            elif line.startswith(EPOCH):
                p = json.loads(line[len(EPOCH):])
                for k, v in p["row"].items():
                    epochs.setdefault(k, []).append(v)
                last = p["epoch"] == p["epochs"]
                out.update(phase="finishing" if last else "training", epoch=p["epoch"],
                           epoch_losses=p["row"], epoch_history=epochs, eta_s=0.0 if last else out.get("eta_s"))
        except (ValueError, KeyError, TypeError, ZeroDivisionError):
            continue  # a line cut by the log service, or not ours: skip it
    if steps["step"]:
        out["history"] = downsample(steps)
    return out
