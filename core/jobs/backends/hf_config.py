"""What the hf-jobs backend needs: the Space owner's settings, the API client, and a job's command line."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.jobs.spec import Caps, JobError

MOUNT = "/bucket"  # where a job sees the bucket volume
INCOMING = "incoming"  # <bucket>/incoming/<run>/ and <run>.complete (or <run>.evaluated-<entry>)
START_MARGIN_S = 600  # added to the owner's time cap for the hard timeout: image pull, data, latent map, saving
LABEL_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclass(frozen=True)
class HfJobsConfig:
    """What the Space owner sets (docs/deploy.md); from_env() names the first missing variable."""

    token: str = field(repr=False)
    bucket: str  # "user/bucket": mounted into every job at MOUNT
    bucket_dir: Path | None  # where this server sees the same bucket (its volume); None on the CLI
    image: str  # "hf.co/spaces/user/space" (the Space's own image) or a Docker image with this repository
    flavors: tuple[str, ...] = ("cpu-basic",)
    max_concurrent: int = 1
    namespace: str | None = None
    app: str = "gan-vae-retrain"
    data_dir: str | None = None  # DATA_DIR inside the image, when it is not the image's default

    @classmethod
    def from_env(cls, env=None, need_bucket_dir: bool = True) -> HfJobsConfig:
        env = os.environ if env is None else env

        def need(name: str, why: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise JobError(f"the hf-jobs backend needs {name} ({why}); see docs/deploy.md")
            return value

        token = need("HF_TOKEN", "a token with the Jobs permission, as a secret")
        bucket = need("RETRAIN_HF_BUCKET", "the bucket runs are written to, e.g. user/retrain-runs")
        bucket_dir = Path(need("RETRAIN_HF_BUCKET_DIR", "where the Space mounts that bucket")) \
            if need_bucket_dir else None
        space = env.get("SPACE_ID", "").strip()
        image = env.get("RETRAIN_HF_IMAGE", "").strip() or (f"hf.co/spaces/{space}" if space else "")
        if not image:
            raise JobError("the hf-jobs backend needs RETRAIN_HF_IMAGE (outside a Space); see docs/deploy.md")
        flavors = tuple(f.strip() for f in env.get("RETRAIN_FLAVORS", "cpu-basic").split(",") if f.strip())
        try:
            k = int(env.get("RETRAIN_MAX_CONCURRENT", "1"))
        except ValueError:
            raise JobError("RETRAIN_MAX_CONCURRENT must be a whole number") from None
        if not flavors or not 1 <= k <= 100:
            raise JobError("RETRAIN_FLAVORS must name at least one flavor and RETRAIN_MAX_CONCURRENT be 1 to 100")
        app = env.get("RETRAIN_HF_APP", "").strip() or (re.sub(r"[^A-Za-z0-9_-]", "-", space) or "gan-vae-retrain")
        return cls(token=token, bucket=bucket, bucket_dir=bucket_dir, image=image, flavors=flavors,
                   max_concurrent=k, namespace=env.get("RETRAIN_HF_NAMESPACE", "").strip() or None, app=app[:100],
                   data_dir=env.get("RETRAIN_HF_DATA_DIR", "").strip() or None)


def _stage(info) -> str:
    stage = info.status.stage
    return stage.value if hasattr(stage, "value") else str(stage)


def api(config: HfJobsConfig):
    from huggingface_hub import HfApi

    # HF_ENDPOINT is read here, not at import: a test (or a staging Hub) may set it after the import
    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=config.token)


def _short(err: Exception) -> str:
    """An API error in one line, never with a token (huggingface_hub's messages hold none; cut anyway)."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)[:300]


def torch_pins() -> tuple[str, str]:
    """This server's torch and torchvision versions without a local build tag (2.14.1+cpu -> 2.14.1)."""
    from importlib.metadata import version

    return version("torch").split("+")[0], version("torchvision").split("+")[0]


def on_flavor(command: list[str], flavor: str) -> list[str]:
    """`command` as a job on `flavor` runs it. The Space's image ships a CPU-only torch; on a GPU flavor (any
    flavor not named cpu-*) a job whose image has no CUDA build of torch first installs PyPI's build of the
    same pins into the user's site (the image's own packages stay as they are), then runs the command."""
    if flavor.startswith("cpu"):
        return command
    torch_v, vision_v = torch_pins()
    prelude = ('if command -v nvidia-smi >/dev/null 2>&1 && ! python -c "import sys, torch; '
               'sys.exit(torch.version.cuda is None)" 2>/dev/null; then echo "installing the CUDA build of torch"; '
               f'pip install --quiet --user --ignore-installed torch=={torch_v} torchvision=={vision_v} || exit 3; '
               'fi; exec "$@"')
    return ["sh", "-c", prelude, "sh", *command]


def train_command(spec: dict, out: str, caps: Caps, data_dir: str | None) -> list[str]:
    """`python -m core train ...` for a checked spec, writing the run to `out` and its marker last."""
    cmd = ["python", "-m", "core", "train", "--model", spec["model"], "--dataset", spec["dataset"],
           "--preset", spec["preset"], "--epochs", str(spec["epochs"]), "--batch-size", str(spec["batch_size"]),
           "--latent-dim", str(spec["latent_dim"]), "--seed", str(spec["seed"]),
           "--time-budget", str(caps.time_budget_s), "--quality", "none", "--progress", "json",
           "--out", out, "--marker", f"{out}.complete"]
    if spec.get("lr") is not None:
        cmd += ["--lr", repr(float(spec["lr"]))]
    if spec.get("limit"):
        cmd += ["--limit", str(spec["limit"])]
    if spec.get("synthetic"):
        cmd += ["--synthetic", str(spec["synthetic"])]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    return cmd
