"""Push runs to and pull runs from the Hugging Face Hub: one model repo holds one run folder.

A run goes up as its data files only (*.safetensors, *.json, *.png, *.npz: tensors, JSON and images, never
pickles or code, nothing hidden) plus a generated model card. It comes down into a hidden staging folder
beside its destination that must pass core.run.folder.load_run (every check of core.run, then strict
loading) before it is renamed into place, so a bad, oversized or half-downloaded run is never visible.
Tokens come from the argument, HF_TOKEN or the cached login (`hf auth login`) and are never printed:
every hub error is re-raised as HubError with tokens masked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from core import datasets, families, machine_paths
from core.run import reading
from core.run.folder import Run, load_run, move_into_place
from core.run.layout import CheckpointError, list_runs, run_path

ALLOWED = ("*.safetensors", "*.json", "*.png", "*.npz")  # the hub's allow_patterns ('*' spans folders)
SUFFIXES = {".safetensors", ".json", ".png", ".npz"}
HUB_RUNS = "HUB_RUNS"  # env var: comma-separated repo ids the dashboard pulls at start-up


class HubError(Exception):
    """A run could not be pushed or pulled. The message says why and never holds a token."""


def is_offline() -> bool:
    """HF_HUB_OFFLINE as set now (huggingface_hub itself reads it once, at import)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"} or constants.HF_HUB_OFFLINE


def redact(text: str, token: str | None = None) -> str:
    """Mask the given token, HF_TOKEN, the cached login and anything shaped like a token or bearer header."""
    from huggingface_hub import get_token

    for secret in {token, os.environ.get("HF_TOKEN"), get_token()}:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)
    return re.sub(r"(?i)(bearer\s+)\S+", r"\1***", text)


def _hub_error(what: str, err: BaseException, token: str | None) -> HubError:
    return HubError(redact(f"{what}: {type(err).__name__}: {err}", token))


def shareable_files(folder: str | os.PathLike, follow_links: bool = False) -> list[Path]:
    """Paths (relative, sorted) of the files a run shares: allowed suffixes, no hidden parts, no links
    unless follow_links (the hub's cache is made of links to blobs)."""
    folder = Path(folder)
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):  # never descends into linked folders
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            p = Path(dirpath) / f
            if (not f.startswith(".") and p.suffix in SUFFIXES and p.is_file()
                    and (follow_links or not p.is_symlink())):
                out.append(p.relative_to(folder))
    return sorted(out)


def _copy(src: Path, dst: Path, files: list[Path], strip_text: bool = False) -> None:
    for rel in files:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        if strip_text and rel.suffix == ".png":  # text chunks (tool names, paths) never go up
            (dst / rel).write_bytes(machine_paths.strip_png_text((src / rel).read_bytes()))
        else:
            shutil.copyfile(src / rel, dst / rel)  # follows links: copies the blob, not the link


# --- model card --------------------------------------------------------------------------------
def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return f"`{json.dumps(v)}`" if isinstance(v, (dict, list)) else str(v)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows = []
    for k, v in d.items():
        rows += _flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else [(f"{prefix}{k}", v)]
    return rows


def model_card(run: Run, repo_id: str):
    """A huggingface_hub.ModelCard for a loaded run: metadata, config summary, metrics, samples, usage."""
    from huggingface_hub import ModelCard, ModelCardData

    c = run.config
    kind, dataset = c["model"], c["dataset"]["name"]
    family, hub_id = families.get(kind), datasets.get(dataset).hub_id
    generative = family.generative
    data = ModelCardData(
        library_name="pytorch",
        tags=["pytorch", "safetensors", kind, dataset] + (["generative-model"] if generative else []),
        datasets=[hub_id] if hub_id else None,
        pipeline_tag="unconditional-image-generation" if generative else "image-classification",
        model_name=repo_id.split("/")[-1],
    )
    summary = [("model", f"{c['class']} (`{kind}`)"), ("parameters", c.get("parameters")), ("dataset", dataset),
               ("epochs", c.get("epochs_completed")), ("seed", c.get("seed")), ("device", c.get("device")),
               ("wall time (s)", c.get("wall_time_s")), ("git commit", c.get("git_commit")),
               ("versions", c.get("versions"))]
    lines = [f"# {repo_id.split('/')[-1]}", "",
             f"A {c['class']} trained on {dataset}: one run folder of the gan-vae-compare project "
             "(weights in safetensors, everything else JSON, NumPy without pickles and PNG).", "",
             "## Configuration", "", "| | |", "| --- | --- |"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in summary if v is not None]
    lines += ["", f"model_config: `{json.dumps(c['model_config'])}`", "",
              f"train_config: `{json.dumps(c.get('train_config', {}))}`", ""]
    if run.metrics:
        lines += ["## Metrics", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in _flatten(run.metrics)] + [""]
    if run.grids:
        last = run.grids[-1].relative_to(run.path).as_posix()
        lines += ["## Samples", "", f"Fixed-noise samples after the last epoch (`{last}`):", "",
                  f"![samples]({last})", ""]
    name = repo_id.split("/")[-1]
    lines += ["## How to load", "",
              "With this project's `core` package (strict loading: every file is checked):", "", "```bash",
              f"python -m core pull {repo_id} --root checkpoints", f"python -m core show {name}", "```", "",
              "```python", "from core.run.folder import load_run", "from core.hub import pull_run", "",
              f'run = load_run(pull_run("{repo_id}", "checkpoints"))', "run.model  # the nn.Module, in eval mode",
              "```", ""]
    if family.paper:
        lines += ["## Citation", "", family.paper, ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


# --- push / pull -------------------------------------------------------------------------------
def absolute_paths(folder: str | os.PathLike, files: list[Path]) -> list[str]:
    """"<file>: <where> = '<value>'" for every machine path among `files`: JSON strings and keys, PNG text
    chunks, the weights' metadata (core.machine_paths)."""
    found = []
    for rel in files:
        try:
            found += machine_paths.in_file(Path(folder) / rel, rel.as_posix())
        except (ValueError, OSError) as err:  # a file that cannot be searched cannot be vouched for
            found.append(f"{rel.as_posix()}: cannot be searched ({err})")
    return found


def push_run(run_path: str | os.PathLike, repo_id: str, token: str | None = None, private: bool = False,
             revision: str | None = None) -> str:
    """Upload a run folder (allowed files + a model card) to the model repo `repo_id`; returns its URL.

    Refuses runs that fail strict loading. token=None uses HF_TOKEN or the cached login.
    """
    import huggingface_hub as hf

    folder = Path(run_path)
    try:
        run = load_run(folder)
    except CheckpointError as err:
        raise HubError(f"refusing to push {folder}: it fails strict loading: {err}") from None
    if is_offline():
        raise HubError(f"cannot push {folder}: HF_HUB_OFFLINE is set")
    if not (token or hf.get_token()):
        raise HubError("no Hugging Face token: pass one, set HF_TOKEN or run `hf auth login`")
    files = shareable_files(folder)
    paths = absolute_paths(folder, files)
    if paths:  # a published run must not say where it sat on the machine that made it
        raise HubError(f"refusing to push {folder.name}: it holds machine paths ({'; '.join(paths[:5])}). "
                       "Remove them (config.json format 2 records the data set by name and sha256 only).")
    with tempfile.TemporaryDirectory(prefix="hub-push-") as tmp:
        _copy(folder, Path(tmp), files, strip_text=True)
        model_card(run, repo_id).save(Path(tmp) / "README.md")
        try:
            api = hf.HfApi(token=token)
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
            # delete_patterns: files of these kinds left over from an earlier push (e.g. more epochs) go
            api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision, repo_type="model",
                              commit_message=f"Upload run {run.name}", delete_patterns=list(ALLOWED))
        except Exception as err:  # any hub failure becomes one masked message
            raise _hub_error(f"could not push {folder} to {repo_id}", err, token) from None
    return str(url)


def pull_run(repo_id: str, runs_root: str | os.PathLike, name: str | None = None, revision: str | None = None,
             overwrite: bool = False, token: str | None = None) -> Path:
    """Download the run in `repo_id` into runs_root/<name> (default: the repo's name); returns its path.

    Uses the hub cache, so it works offline (HF_HUB_OFFLINE=1) for runs pulled before. The run is
    strictly loaded from a staging folder first; a run that fails is refused and leaves nothing behind.
    """
    import huggingface_hub as hf
    from huggingface_hub.errors import IncompleteSnapshotError, LocalEntryNotFoundError

    name = name or repo_id.rstrip("/").split("/")[-1]
    try:
        dest = run_path(runs_root, name)
    except CheckpointError as err:
        raise HubError(f"could not pull {repo_id}: {err} (choose another name)") from None
    shown = f"{dest.parent.name}/{dest.name}"  # messages name the run by its folder, never by a machine path
    if dest.exists() and not overwrite:
        raise HubError(f"could not pull {repo_id}: {shown} exists (pass --overwrite to replace it)")
    offline = is_offline()
    try:
        snapshot = Path(hf.snapshot_download(repo_id, revision=revision, allow_patterns=list(ALLOWED),
                                             local_files_only=offline, token=token))
    except (LocalEntryNotFoundError, IncompleteSnapshotError) as err:
        if offline:
            raise HubError(f"offline: could not pull {repo_id}: HF_HUB_OFFLINE is set and it is not (completely) in "
                           "the local Hugging Face cache (unset HF_HUB_OFFLINE to download it)") from None
        raise _hub_error(f"could not pull {repo_id} (is the Hub reachable?)", err, token) from None
    except Exception as err:  # not found, private, bad revision, network...
        raise _hub_error(f"could not pull {repo_id}", err, token) from None
    files = shareable_files(snapshot, follow_links=True)
    if not files:
        raise HubError(f"could not pull {repo_id}: it holds no run files ({', '.join(ALLOWED)})")
    for rel in files:  # sizes before copying: the checks of core.run would refuse these anyway
        size, limit = (snapshot / rel).stat().st_size, reading.limit_for(rel.name)
        if size > limit:
            raise HubError(f"refusing {repo_id}: {rel.as_posix()} is {size:,} bytes, over the limit of {limit:,}")

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=dest.parent))  # same disk: rename is atomic
    os.chmod(tmp, 0o755)
    try:
        _copy(snapshot, tmp, files)
        try:
            load_run(tmp, label=repo_id)  # core.run.folder.check_run, then strict loading
        except CheckpointError as err:
            raise HubError(f"refusing {repo_id}: the pulled run fails strict loading: {err}") from None
        move_into_place(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def pull_missing(repos: str | Iterable[str] | None, runs_root: str | os.PathLike) -> list[str]:
    """Pull each repo whose run (named after the repo) is not under runs_root yet; never raises.

    `repos`: repo ids as a list or a comma-separated string; None reads $HUB_RUNS. Returns one
    human-readable line per repo pulled or failed (e.g. "offline: could not pull user/x: ...").
    """
    if repos is None:
        repos = os.environ.get(HUB_RUNS, "")
    if isinstance(repos, str):
        repos = repos.split(",")
    have = set(list_runs(runs_root))
    messages = []
    for repo_id in (r.strip() for r in repos):
        if not repo_id or repo_id.rstrip("/").split("/")[-1] in have:
            continue
        try:
            path = pull_run(repo_id, runs_root)
            messages.append(f"pulled {repo_id} into {path.parent.name}/{path.name}")
        except Exception as err:  # the dashboard must start whatever the Hub says
            messages.append(redact(str(err)) if isinstance(err, HubError) else
                            redact(f"could not pull {repo_id}: {type(err).__name__}: {err}"))
    return messages
