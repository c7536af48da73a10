"""Plain training loop shared by every model: one `step()` per batch, one loop over epochs."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from core.data import batches
from core.images import make_grid  # noqa: F401  (re-exported)
from core.models.base import GenerativeModel
from core.models.layers import check_range


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; training stopped and nothing was written."""


PRECISIONS = ("auto", "fp32", "bf16")
CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


@dataclass
class TrainConfig:
    epochs: int = 10  # passes over the training set
    batch_size: int = 128
    lr: float | None = None  # Adam learning rate; None = the model's default (VAE 1e-3, GAN 2e-4)
    beta1: float | None = None  # Adam betas; None = the model's default (GAN: DCGAN's 0.5, 0.999)
    beta2: float | None = None
    seed: int = 0  # seeds weights, shuffling, noise and the fixed sample grid
    device: str = "auto"  # auto = cuda > mps > cpu
    lr_schedule: str = "constant"  # "constant", or "cosine": anneal every learning rate to 0 over the run
    time_budget_s: float | None = None  # stop early (after the current step) once this much time has passed
    grid_size: int = 64  # images in the per-epoch fixed-noise sample grid
    keep_best: bool = False  # end with the weights of the epoch whose quality score was best (needs `quality`)
    # "bf16": training steps under torch.autocast(bfloat16): convolutions and matrix products in bfloat16,
    # weights, optimizer state and losses in float32. "auto" = bf16 on a CPU with native bfloat16
    # instructions (AVX-512 BF16 or AMX), fp32 elsewhere. The runner records the resolved value.
    precision: str = "auto"
    # what time_budget_s and the epochs' "time_s" count: "wall" seconds, or "process" CPU seconds of this
    # process (on a shared machine, the work done; with N threads it runs up to N times faster than wall)
    clock: str = "wall"

    def __post_init__(self):
        check_range("epochs", self.epochs, 1, 10_000)
        check_range("batch_size", self.batch_size, 1, 65_536)
        for name in ("lr", "beta1", "beta2", "time_budget_s"):
            value = getattr(self, name)
            if value is not None:
                hi = {"lr": 1.0, "beta1": 0.9999, "beta2": 0.99999, "time_budget_s": 1e7}[name]
                check_range(name, value, 0.0 if name.startswith("beta") else 1e-12, hi)
        check_range("grid_size", self.grid_size, 1, 1024)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, got {self.clock!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.device != "auto" and self.device.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device must be auto, cpu, cuda[:N] or mps, got {self.device!r}")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (x86 AVX-512 BF16 or AMX); elsewhere bf16 is emulated
    and slower than fp32."""
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, name, None)
        if check is not None and check():
            return True
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """"auto" -> "bf16" on a CPU with native bfloat16, "fp32" on anything else; other values as given."""
    if name != "auto":
        return name
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def autocast(precision: str, device: torch.device):
    """The context one training step runs in: bfloat16 autocast for "bf16", nothing for "fp32"."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)  # seeds the CPU and every CUDA device
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def fixed_noise(n: int, latent_dim: int, seed: int, device) -> torch.Tensor:
    """The latent codes behind the per-epoch sample grids: the same for every epoch of a run."""
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randn(n, latent_dim, generator=g).to(device)


def _check_finite(losses: dict[str, float], epoch: int, step: int) -> None:
    for k, v in losses.items():
        if not math.isfinite(v):
            raise TrainingDiverged(
                f"{k} became {v} at epoch {epoch}, step {step}: training stopped and nothing was written. "
                "Try a lower learning rate or a different seed."
            )


def fit(
    model: torch.nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor] | None,
    cfg: TrainConfig,
    on_step: Callable[[dict], None] | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    quality: Callable[[torch.nn.Module], dict[str, float]] | None = None,
) -> dict:
    """Train `model` in place on uint8 (images, labels) already on the model's device.

    Returns {"history": {"steps": {...}, "epochs": {...}}, "grids": {epoch: uint8 array}, "wall_time_s": s,
    "stopped_early": bool}. Histories are columnar: each key maps to a list, one entry per step or epoch.
    `on_step` / `on_epoch` receive progress dicts (used by the CLI's tqdm bar and by core.jobs).
    `quality(model)` runs after every epoch (e.g. core.evaluate.QualityProbe); its numbers go into the epoch
    history as "quality/<name>", and with `cfg.keep_best` the epoch with the lowest "score" is kept
    ("best_epoch" in the result). Its time is not counted in the epochs' "time_s" (training time only).
    """
    device = train[0].device
    optimizers = model.configure_optimizers(cfg.lr or model.default_lr,
                                            (cfg.beta1 if cfg.beta1 is not None else model.default_betas[0],
                                             cfg.beta2 if cfg.beta2 is not None else model.default_betas[1]))
    shuffle_gen = torch.Generator().manual_seed(cfg.seed)
    generative = isinstance(model, GenerativeModel)  # draws a fixed-noise sample grid after every epoch
    noise = fixed_noise(cfg.grid_size, model.latent_dim, cfg.seed, device) if generative else None
    steps: dict[str, list] = {"step": [], "epoch": []}
    epochs: dict[str, list] = {"epoch": [], "time_s": []}
    grids: dict[int, np.ndarray] = {}
    n_batches = math.ceil(train[0].shape[0] / cfg.batch_size)
    total_steps = cfg.epochs * n_batches
    schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
                  for opt in optimizers.values()] if cfg.lr_schedule == "cosine" else []
    clock = CLOCKS[cfg.clock]
    wall_start, start = time.perf_counter(), clock()
    step, stopped_early = 0, False
    paused = 0.0  # seconds spent in quality checks, left out of the training clock
    best: dict = {"score": math.inf, "epoch": None, "state": None}

    for epoch in range(1, cfg.epochs + 1):
        model.train()
        sums: dict[str, float] = {}
        seen = 0
        for x, y in batches(*train, cfg.batch_size, shuffle=True, generator=shuffle_gen):
            with autocast(cfg.precision, device):
                losses = model.step(x, y)
            for sched in schedulers:
                sched.step()
            step += 1
            _check_finite(losses, epoch, step)
            steps["step"].append(step)
            steps["epoch"].append(epoch)
            for k, v in losses.items():
                steps.setdefault(k, []).append(round(v, 6))
                sums[k] = sums.get(k, 0.0) + v * x.shape[0]
            seen += x.shape[0]
            elapsed = clock() - start - paused
            if on_step:
                on_step({"epoch": epoch, "step": step, "total_steps": total_steps, "elapsed_s": elapsed,
                         "eta_s": elapsed / step * (total_steps - step), "losses": losses})
            if cfg.time_budget_s is not None and elapsed > cfg.time_budget_s:
                stopped_early = True
                break
        epochs["epoch"].append(epoch)
        epochs["time_s"].append(round(clock() - start - paused, 3))
        for k, v in sums.items():
            epochs.setdefault(f"train/{k}", []).append(round(v / seen, 6))
        if test is not None:
            for k, v in model.evaluate(*test).items():
                _check_finite({f"test/{k}": v}, epoch, step)
                epochs.setdefault(f"test/{k}", []).append(round(v, 6))
        if noise is not None:
            model.eval()
            grids[epoch] = make_grid(model.sample(noise).cpu().numpy())
        if quality is not None:
            t = clock()
            q = quality(model)
            for k, v in q.items():
                epochs.setdefault(f"quality/{k}", []).append(round(v, 6))
            if cfg.keep_best and q["score"] < best["score"]:
                best = {"score": q["score"], "epoch": epoch,
                        "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            paused += clock() - t
        if on_epoch:
            on_epoch({"epoch": epoch, "epochs": cfg.epochs, "step": step,
                      "row": {k: v[-1] for k, v in epochs.items()}, "grid": grids.get(epoch)})
        if stopped_early:
            break
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return {"history": {"steps": steps, "epochs": epochs}, "grids": grids,
            "wall_time_s": round(time.perf_counter() - wall_start, 2),
            "train_time_s": round(clock() - start - paused, 2),
            "stopped_early": stopped_early, "best_epoch": best["epoch"]}
