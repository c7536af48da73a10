"""What a job may ask for: the spec a visitor sends, the server's caps on it, owners, and the errors.

No torch, no files: the dashboard, the CLI and every backend check a spec the same way.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, fields

from core import datasets, families
from core.checks import LATENT_DIM_DEFAULT, LATENT_DIM_RANGE, check_int

KINDS = ("train", "evaluate")
DEFAULT_SPEC = {"model": "vae", "dataset": "mnist", "preset": "seed", "epochs": 3, "batch_size": 128,
                "lr": None, "latent_dim": LATENT_DIM_DEFAULT, "seed": 0}  # lr None = the model's default
DEBUG_KEYS = ("synthetic", "limit")
ACTIVE = ("queued", "running")
EVAL_SAMPLES, EVAL_SEEDS = 2000, (0,)  # the Retrain page's quick evaluation


def models() -> list[str]:
    """The families a visitor may train: the generative ones."""
    return [f.name for f in families.generative()]


def run_re() -> re.Pattern:
    """Names of the runs the Retrain page writes: ui-<model>-<data set>-<YYYYmmdd-HHMMSS>[-N]."""
    alt = lambda names: "|".join(re.escape(n) for n in names)  # noqa: E731
    return re.compile(rf"^ui-(?:{alt(models())})-(?:{alt(datasets.names())})-(\d{{8}}-\d{{6}})(?:-(\d+))?$")


class JobError(RuntimeError):
    """A job cannot be queued or read for a reason outside its spec (data missing, disk full, queue full)."""


class JobBusy(JobError):
    """The queue is full, or this owner already has a job waiting or running (`status`: that job)."""

    def __init__(self, message: str, status: dict | None = None):
        super().__init__(message)
        self.status = status


class NotOwner(JobError):
    """The token given is not the owner's: only the visitor who queued a job may cancel or remove it."""


@dataclass(frozen=True)
class Caps:
    """Limits on what the page may ask for; Caps.from_env() reads RETRAIN_<FIELD> (e.g. RETRAIN_MAX_EPOCHS)."""

    max_epochs: int = 5
    min_batch: int = 16
    max_batch: int = 512
    min_latent: int = LATENT_DIM_RANGE[0]
    max_latent: int = 128  # of the models' LATENT_DIM_RANGE: a bigger z only slows a short CPU run
    min_lr: float = 1e-5
    max_lr: float = 1e-2
    allow_conv: bool = True  # the conv preset is ~10x slower per epoch on a CPU
    time_budget_s: float = 600.0  # training stops (and the run is saved) after this long
    min_free_mb: float = 200.0  # refuse to start with less free space where runs go
    keep_runs: int = 5  # newest ui-* runs kept in runs_dir; older ones are deleted after a success
    # torch / OpenMP threads of the worker. One: on a shared 2-core box two threads were no faster, and
    # without OMP_WAIT_POLICY=PASSIVE they spun against other processes and ran 10x slower.
    threads: int = 1
    # test digits in the run's t-SNE map (as core.embed). 1,000 with scikit-learn's PCA-initialised t-SNE
    # keeps the job's latent map under 10 s on a 2-core CPU (bench/retrain_speed.py prints the time).
    embed_size: int = 1000
    max_queue: int = 8  # jobs waiting behind the running one, all visitors together

    def __post_init__(self):
        ok = (1 <= self.max_epochs and 1 <= self.min_batch <= self.max_batch
              and LATENT_DIM_RANGE[0] <= self.min_latent <= self.max_latent <= LATENT_DIM_RANGE[1]
              and 0 < self.min_lr <= self.max_lr <= 1.0
              and self.keep_runs >= 1 and self.threads >= 1 and self.embed_size >= 10
              and 0 < self.time_budget_s <= 1e7 and self.min_free_mb >= 0 and 1 <= self.max_queue <= 1000)
        if not ok:
            raise ValueError(f"inconsistent retrain caps: {self}")

    @classmethod
    def from_env(cls, env=None) -> Caps:
        env = os.environ if env is None else env
        kwargs = {}
        for f in fields(cls):
            name = f"RETRAIN_{f.name.upper()}"
            raw = env.get(name, "").strip()
            if not raw:
                continue
            try:
                if f.type == "bool":
                    if raw.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                        raise ValueError
                    kwargs[f.name] = raw.lower() in ("1", "true", "yes", "on")
                else:
                    kwargs[f.name] = int(raw) if f.type == "int" else float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a valid {f.type}") from None
        return cls(**kwargs)


def validate_spec(spec: dict, caps: Caps | None = None) -> dict:
    """The spec with defaults filled in; ValueError naming the first bad field."""
    caps = caps or Caps.from_env()
    unknown = sorted(set(spec) - set(DEFAULT_SPEC) - set(DEBUG_KEYS))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; known: {sorted(DEFAULT_SPEC)}")
    s = {**DEFAULT_SPEC, **spec}
    for name, choices in (("model", models()), ("dataset", datasets.names())):
        if s[name] not in choices:
            raise ValueError(f"{name} must be one of {list(choices)}, got {s[name]!r}")
    presets = families.get(s["model"]).presets
    if s["preset"] not in presets:
        raise ValueError(f"preset must be one of {list(presets)}, got {s['preset']!r}")
    if s["preset"] == "conv" and not caps.allow_conv:
        raise ValueError("preset 'conv' is disabled on this server (RETRAIN_ALLOW_CONV); choose 'seed'")
    check_int("epochs", s["epochs"], 1, caps.max_epochs)
    check_int("batch_size", s["batch_size"], caps.min_batch, caps.max_batch)
    check_int("latent_dim", s["latent_dim"], caps.min_latent, caps.max_latent)
    check_int("seed", s["seed"], 0, 2**31 - 1)
    lr = s["lr"]
    if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float))
                           or not caps.min_lr <= lr <= caps.max_lr):
        raise ValueError(f"lr must be a number in [{caps.min_lr:g}, {caps.max_lr:g}] (or None), got {lr!r}")
    for name in DEBUG_KEYS:
        if s.get(name) is not None:
            check_int(name, s[name], 16, 100_000)
    return s


def owner_id(token: str) -> str:
    """What job.json keeps of an owner's token: a digest, so the jobs folder never holds a usable token."""
    if not isinstance(token, str) or len(token) < 8:
        raise ValueError("an owner token is a string of at least 8 characters")
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def is_owner(status: dict | None, token: str | None) -> bool:
    return bool(status and token) and status.get("owner") == owner_id(token)
