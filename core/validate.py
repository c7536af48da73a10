"""One validation of a run folder, shared by every reader: `show`, `evaluate`, `pull`/`HUB_RUNS`, the
dashboard's catalog and its pages.

A run folder may come from anywhere (a Hub repo, a retrain job, a copy), so nothing in it is trusted:

- **Files**: regular files only, opened without following symbolic links; no links, pipes or devices
  anywhere in the folder or its samples/, so nothing outside the folder is ever read.
- **Sizes, checked before reading**: each file's byte size; model.safetensors' header length and tensor
  count; embeddings.npz's member count and each member's uncompressed size (zip directory and .npy
  headers, before any array is inflated); PNG dimensions (IHDR); history.json's column lengths.
- **Schemas**: config.json names a known model and data set, and its model_config constructs that model's
  config class (so any field the class accepts is accepted); numbers where numbers belong in config.json,
  metrics.json and history.json (history values may also be null); the weights' names and shapes match
  the model the config describes (built on the meta device: no memory, no time).

Every failure raises CheckpointError "<run>/<file>: <problem>", the path relative to the runs folder,
never the server's absolute path. This module imports no torch at import time (only to build the
config-described model on the meta device, when weights are checked).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import stat
import struct
import types
import typing
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CONFIG, WEIGHTS, HISTORY, METRICS, EMBEDDINGS, SAMPLES = (
    "config.json", "model.safetensors", "history.json", "metrics.json", "embeddings.npz", "samples")
NEAREST = "nearest.png"
EMBEDDING_KEYS = ("indices", "labels", "codes", "tsne")
OPTIONAL_EMBEDDING_KEYS = ("images",)  # (N, H, W) uint8 test digits

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
# Limits: an order of magnitude or more above the committed runs (config 1 KB, metrics 5 KB, history 1.4 MB
# with 23,450 steps, weights 7 MB with 34 tensors, embeddings 1.2 MB, PNGs 250 x 250 px).
MAX_BYTES = {CONFIG: 64 * KiB, METRICS: 1 * MiB, HISTORY: 16 * MiB, WEIGHTS: 1 * GiB, EMBEDDINGS: 64 * MiB,
             ".png": 8 * MiB}
MAX_ST_HEADER = 1 * MiB  # safetensors JSON header, bytes
MAX_TENSORS = 4096
MAX_HISTORY_COLUMNS = 256  # per part ("steps", "epochs")
MAX_HISTORY_POINTS = 250_000  # per column
MAX_NPZ_MEMBERS = 8
MAX_NPZ_MEMBER = 32 * MiB  # uncompressed
MAX_NPZ_TOTAL = 64 * MiB  # uncompressed, all members
MAX_EMBEDDED = 70_000  # test digits in embeddings.npz
MAX_PNG_SIDE = 4096  # pixels
MAX_SAMPLE_GRIDS = 1000
MAX_ENTRIES = 256  # entries in a run folder (top level)
MAX_STRING = 1000  # characters of a string field in config.json
ST_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
             "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class CheckpointError(Exception):
    """A run folder is missing, corrupt, truncated, oversized or does not match its config."""


def label_of(path: str | os.PathLike, label: str | None = None) -> str:
    """How a run is named in messages: `label`, else the folder's name (relative to the runs folder)."""
    return label or Path(path).name


def _rel(path: Path, name: str, label: str | None) -> str:
    return f"{label_of(path, label)}/{name}"


# --- reading files safely --------------------------------------------------------------------------
def limit_for(name: str) -> int:
    """The byte limit of a run file, by name (PNGs by suffix)."""
    return MAX_BYTES.get(name) or MAX_BYTES.get(Path(name).suffix, MAX_BYTES[CONFIG])


def open_regular(file: Path, rel: str, limit: int | None = None):
    """Open a run file for reading: no symbolic link, a regular file (not a pipe or device), at most
    `limit` bytes (default: limit_for its name). Returns (binary file object, size)."""
    limit = limit_for(file.name) if limit is None else limit
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(file, flags)
    except FileNotFoundError:
        if os.path.islink(file):
            raise CheckpointError(f"{rel}: is a symbolic link; a run holds regular files only") from None
        raise CheckpointError(f"{rel}: missing") from None
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.EMLINK) or os.path.islink(file):
            raise CheckpointError(f"{rel}: is a symbolic link; a run holds regular files only") from None
        raise CheckpointError(f"{rel}: cannot be read ({err.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"{rel}: not a regular file")
        if st.st_size > limit:
            raise CheckpointError(f"{rel}: {st.st_size:,} bytes, over the limit of {limit:,}")
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: Path, name: str, label: str | None = None):
    """Parse a run's JSON file (size-limited, regular file); NaN and Infinity are refused."""
    rel = _rel(path, name, label)
    if not path.is_dir():
        raise CheckpointError(f"{label_of(path, label)}: no such run folder")
    f, _ = open_regular(path / name, rel)
    with f:
        raw = f.read(limit_for(name) + 1)
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise CheckpointError(f"{rel}: not valid JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError, over-long integers, NaN
        raise CheckpointError(f"{rel}: not valid JSON ({str(err)[:200]})") from None


# --- value checks ------------------------------------------------------------------------------------
def _kind(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def is_number(v) -> bool:
    """A finite JSON number (not a boolean), small enough to be a float."""
    if type(v) is int:
        return -(1 << 63) <= v < (1 << 63)
    return type(v) is float and math.isfinite(v)


def _number(rel: str, key: str, v, lo: float | None = None, integer: bool = False, null: bool = False):
    if v is None and null:
        return
    if not is_number(v) or (integer and type(v) is not int) or (lo is not None and v < lo):
        what = "an integer" if integer else "a number"
        raise CheckpointError(f"{rel}: {key} must be {what}{f' >= {lo}' if lo is not None else ''}"
                              f"{' or null' if null else ''}, got {_kind(v)} {_short(v)}")


def _string(rel: str, key: str, v, null: bool = False):
    if v is None and null:
        return
    if not isinstance(v, str) or len(v) > MAX_STRING:
        raise CheckpointError(f"{rel}: {key} must be a string of at most {MAX_STRING} characters, got {_kind(v)}")


def _object(rel: str, key: str, v, null: bool = False) -> dict:
    if v is None and null:
        return {}
    if not isinstance(v, dict):
        raise CheckpointError(f"{rel}: {key} must be an object, got {_kind(v)} {_short(v)}")
    return v


def _short(v) -> str:
    text = json.dumps(v) if isinstance(v, (str, int, float, bool, type(None))) else ""
    return text if len(text) <= 40 else text[:37] + "..."


def _numbers(rel: str, key: str, values, null: bool = False, limit: int | None = None) -> None:
    """A list of numbers (and nulls when `null`): type-checked per element, fast for long lists."""
    if not isinstance(values, list):
        raise CheckpointError(f"{rel}: {key} must be a list, got {_kind(values)} {_short(values)}")
    if limit is not None and len(values) > limit:
        raise CheckpointError(f"{rel}: {key} has {len(values):,} values, over the limit of {limit:,}")
    allowed = {int, float, type(None)} if null else {int, float}
    types = set(map(type, values))
    bad = types - allowed
    if bad:
        v = next(x for x in values if type(x) in bad)
        raise CheckpointError(f"{rel}: {key} must hold numbers{' or null' if null else ''}, "
                              f"found {_kind(v)} {_short(v)}")
    if float in types and not all(math.isfinite(x) for x in values if type(x) is float):
        raise CheckpointError(f"{rel}: {key} holds a number that is not finite")
    if int in types and not all(-(1 << 63) <= x < (1 << 63) for x in values if type(x) is int):
        raise CheckpointError(f"{rel}: {key} holds an integer too large for a float")


# --- config.json ----------------------------------------------------------------------------------
def _type_ok(value, hint) -> bool:
    """Does a JSON value fit a dataclass field's annotation? Unknown annotations accept anything (the
    config class's own checks have the last word)."""
    if hint is typing.Any:
        return True
    if hint is bool:
        return type(value) is bool
    if hint is int:
        return type(value) is int
    if hint is float:
        return type(value) in (int, float)
    if hint is str:
        return type(value) is str
    if hint is type(None):
        return value is None
    args = typing.get_args(hint)
    if args and typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in args)
    return True


def model_config(kind: str, mc: dict, rel: str = CONFIG):
    """The model's config object for a config.json `model_config`, built as load_model builds it (its class's
    `from_saved` when it has one): unknown fields, wrong types and out-of-range values are errors."""
    from core import families

    cfg_cls = families.get(kind).config_class()
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    unknown = sorted(set(mc) - fields)
    if unknown:
        raise CheckpointError(f"{rel}: bad model_config: {cfg_cls.__name__} has no field(s) {unknown[:5]}")
    try:
        hints = typing.get_type_hints(cfg_cls)
    except Exception:  # an annotation that does not resolve: leave the types to the class
        hints = {}
    for key, value in mc.items():
        if key in hints and not _type_ok(value, hints[key]):
            raise CheckpointError(f"{rel}: bad model_config: {key} has the wrong type ({_kind(value)} {_short(value)})")
    try:
        return cfg_cls.from_saved(mc) if hasattr(cfg_cls, "from_saved") else cfg_cls(**mc)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{rel}: bad model_config: {str(err)[:300]}") from None


def check_config(cfg, rel: str = CONFIG) -> dict:
    """Schema of config.json (core.run_config.RunConfig, which core.runner.train_run writes). Returns the
    config as the current format's dict (RunConfig.from_dict(...).to_dict())."""
    from core import families
    from core.datasets import DATASETS
    from core.run_config import FORMAT_VERSION, READABLE_FORMATS, RunConfig

    if not isinstance(cfg, dict):
        raise CheckpointError(f"{rel}: expected a JSON object, got {_kind(cfg)}")
    fmt = cfg.get("format", 1)
    if type(fmt) is not int or fmt not in READABLE_FORMATS:
        newer = type(fmt) is int and fmt > FORMAT_VERSION
        raise CheckpointError(f"{rel}: format {_short(fmt)} " + (
            f"is newer than this code reads (formats {READABLE_FORMATS[0]}-{FORMAT_VERSION}): update the code"
            if newer else f"is unknown (this code reads formats {READABLE_FORMATS[0]}-{FORMAT_VERSION})"))
    for key in ("model", "class", "model_config"):
        if key not in cfg:
            raise CheckpointError(f"{rel}: missing key {key!r}")
    kind = cfg["model"]
    if not isinstance(kind, str) or kind not in families.FAMILIES:
        raise CheckpointError(f"{rel}: unknown model {_short(kind)} (known: {sorted(families.FAMILIES)})")
    if families.get(kind).model_class().__name__ != cfg["class"]:
        raise CheckpointError(f"{rel}: class {_short(cfg['class'])} does not match model {kind!r}")
    model_config(kind, _object(rel, "model_config", cfg["model_config"]), rel)
    for key in ("dataset", "parameters", "epochs_completed", "wall_time_s", "seed", "device", "git_commit"):
        if key not in cfg:
            raise CheckpointError(f"{rel}: missing key {key!r}")
    ds = cfg["dataset"]
    if not isinstance(ds, dict) or "name" not in ds:
        raise CheckpointError(f"{rel}: dataset must be an object with a 'name', got {_kind(ds)} {_short(ds)}")
    if not isinstance(ds["name"], str) or ds["name"] not in DATASETS:
        raise CheckpointError(f"{rel}: unknown dataset {_short(ds['name'])} (known: {sorted(DATASETS)})")
    if fmt >= 2 and "root" in ds:
        raise CheckpointError(f"{rel}: dataset.root: format {fmt} records the data set by name and sha256, no path")
    _string(rel, "dataset.root", ds.get("root"), null=True)
    _string(rel, "dataset.sha256", ds.get("sha256"), null=True)
    for key in ("train_size", "test_size"):
        _number(rel, f"dataset.{key}", ds.get(key), lo=0, integer=True, null=True)
    if not isinstance(ds.get("synthetic", False), bool):
        raise CheckpointError(f"{rel}: dataset.synthetic must be true or false")
    _number(rel, "parameters", cfg["parameters"], lo=0, integer=True)
    _number(rel, "epochs_completed", cfg["epochs_completed"], lo=0, integer=True)
    _number(rel, "seed", cfg["seed"], integer=True)
    _number(rel, "wall_time_s", cfg["wall_time_s"], lo=0)
    _number(rel, "train_time_s", cfg.get("train_time_s"), lo=0, null=True)
    _number(rel, "best_epoch", cfg.get("best_epoch"), lo=0, integer=True, null=True)
    _number(rel, "format", cfg.get("format"), integer=True, null=True)
    for key in ("device", "git_commit"):
        _string(rel, key, cfg[key])
    _string(rel, "started", cfg.get("started"), null=True)
    if not isinstance(cfg.get("stopped_early", False), bool):
        raise CheckpointError(f"{rel}: stopped_early must be true or false")
    for key, v in _object(rel, "versions", cfg.get("versions"), null=True).items():
        _string(rel, f"versions.{key}", v)
    _object(rel, "train_config", cfg.get("train_config"), null=True)
    _object(rel, "quality_check", cfg.get("quality_check"), null=True)
    _object(rel, "latent_map", cfg.get("latent_map"), null=True)
    _number(rel, "encoder_time_s", cfg.get("encoder_time_s"), lo=0, null=True)
    return RunConfig.from_dict(cfg).to_dict()


def read_config(path: str | os.PathLike, label: str | None = None) -> dict:
    path = Path(path)
    return check_config(read_json(path, CONFIG, label), _rel(path, CONFIG, label))


# --- history.json ---------------------------------------------------------------------------------
def check_history(h, rel: str = HISTORY) -> dict:
    """{"steps": {column: [numbers]}, "epochs": {column: [numbers or null]}}, columns of a part equally long."""
    if not isinstance(h, dict) or not isinstance(h.get("steps"), dict) or not isinstance(h.get("epochs"), dict):
        raise CheckpointError(f"{rel}: expected {{'steps': {{...}}, 'epochs': {{...}}}}")
    if "encoder" in h and not isinstance(h["encoder"], dict):  # a GAN's encoder trained after the GAN
        raise CheckpointError(f"{rel}: 'encoder' must be an object of columns")
    for part, index in (("steps", "step"), ("epochs", "epoch"), ("encoder", "epoch")):
        if part not in h:
            continue
        cols = h[part]
        if len(cols) > MAX_HISTORY_COLUMNS:
            raise CheckpointError(f"{rel}: '{part}' has {len(cols)} columns, over the limit of {MAX_HISTORY_COLUMNS}")
        if cols and index not in cols:
            raise CheckpointError(f"{rel}: '{part}' has no '{index}' column")
        for key, values in cols.items():
            if len(key) > 200:
                raise CheckpointError(f"{rel}: a column name in '{part}' is over 200 characters")
            _numbers(rel, f"{part}.{key}", values, null=key != index, limit=MAX_HISTORY_POINTS)
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            raise CheckpointError(f"{rel}: columns of '{part}' have different lengths {sorted(lengths)}")
    return h


def read_history(path: str | os.PathLike, label: str | None = None) -> dict:
    path = Path(path)
    return check_history(read_json(path, HISTORY, label), _rel(path, HISTORY, label))


# --- metrics.json ---------------------------------------------------------------------------------
def _summaries(rel: str, key: str, d) -> None:
    for name, s in _object(rel, key, d).items():
        s = _object(rel, f"{key}.{name}", s)
        for part in ("mean", "std"):
            if part not in s:
                raise CheckpointError(f"{rel}: {key}.{name} has no '{part}'")
            _number(rel, f"{key}.{name}.{part}", s[part])
        if "values" in s:
            _numbers(rel, f"{key}.{name}.values", s["values"], limit=10_000)


def check_metrics(m, rel: str = METRICS) -> dict:
    """Numbers where the pages read numbers: held_out / test values, and the evaluation's summaries,
    reference, memorization, class histogram and settings that are shown."""
    if not isinstance(m, dict):
        raise CheckpointError(f"{rel}: expected a JSON object, got {_kind(m)}")
    for section in ("held_out", "test"):
        for key, v in _object(rel, section, m.get(section), null=True).items():
            _number(rel, f"{section}.{key}", v, null=True)
    _object(rel, "settings", m.get("settings"), null=True)
    if m.get("evaluation") is None:
        return m
    ev = _object(rel, "evaluation", m["evaluation"])
    for key in ("metrics", "class_histogram"):
        if key not in ev:
            raise CheckpointError(f"{rel}: evaluation has no '{key}'")
    _summaries(rel, "evaluation.metrics", ev["metrics"])
    if ev.get("reference") is not None:
        _summaries(rel, "evaluation.reference", ev["reference"])
    for key, v in _object(rel, "evaluation.memorization", ev.get("memorization"), null=True).items():
        _number(rel, f"evaluation.memorization.{key}", v)
    _numbers(rel, "evaluation.class_histogram", ev["class_histogram"], limit=1000)
    for key in ("missing_classes", "starved_classes"):
        if not isinstance(ev.get(key, []), list) or len(ev.get(key, [])) > 1000:
            raise CheckpointError(f"{rel}: evaluation.{key} must be a list")
    for key, v in _object(rel, "evaluation.lower_is_better", ev.get("lower_is_better"), null=True).items():
        if not isinstance(v, bool):
            raise CheckpointError(f"{rel}: evaluation.lower_is_better.{key} must be true or false")
    settings = _object(rel, "evaluation.settings", ev.get("settings"), null=True)
    for key in ("classifier_test_accuracy", "samples"):
        _number(rel, f"evaluation.settings.{key}", settings.get(key), null=True)
    if "seeds" in settings:
        _numbers(rel, "evaluation.settings.seeds", settings["seeds"], limit=1000)
    return m


def read_metrics(path: str | os.PathLike, label: str | None = None) -> dict | None:
    """metrics.json checked, or None when the run has none (a dangling link is not 'none': it is refused)."""
    path = Path(path)
    if not os.path.lexists(path / METRICS):
        return None
    return check_metrics(read_json(path, METRICS, label), _rel(path, METRICS, label))


# --- model.safetensors ------------------------------------------------------------------------------
def expected_tensors(cfg: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    """Names -> (shape, dtype) of the state dict the config describes, from the model built on the meta
    device (no memory is allocated, no weights initialised)."""
    import torch

    from core import families

    cls = families.get(cfg["model"]).model_class()
    config = model_config(cfg["model"], cfg["model_config"])
    try:
        with torch.device("meta"):
            model = cls(config)
    except Exception as err:  # a config the class accepted but cannot build: still the config's fault
        raise CheckpointError(f"{CONFIG}: bad model_config: cannot build the model ({str(err)[:200]})") from None
    return {k: (tuple(v.shape), str(v.dtype)) for k, v in model.state_dict().items()}


def check_weights_header(f, size: int, rel: str) -> dict[str, dict]:
    """Parse and check a safetensors header from an open file: length and tensor count within limits,
    known dtypes, offsets that tile the data exactly. Returns {name: {"dtype", "shape", "data_offsets"}}."""
    if size < 8:
        raise CheckpointError(f"{rel}: corrupt or truncated ({size} bytes)")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_ST_HEADER:
        raise CheckpointError(f"{rel}: header of {n:,} bytes, over the limit of {MAX_ST_HEADER:,}")
    if 8 + n > size:
        raise CheckpointError(f"{rel}: corrupt or truncated (a header of {n:,} bytes in a file of {size:,})")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CheckpointError(f"{rel}: corrupt or truncated (the header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{rel}: corrupt (the header is not a JSON object)")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise CheckpointError(f"{rel}: corrupt (__metadata__ must map names to strings)")
    if len(header) > MAX_TENSORS:
        raise CheckpointError(f"{rel}: {len(header):,} tensors, over the limit of {MAX_TENSORS:,}")
    data = size - 8 - n
    spans = []
    for name, t in header.items():
        ok = (isinstance(t, dict) and t.get("dtype") in ST_DTYPES and isinstance(t.get("shape"), list)
              and all(type(d) is int and 0 <= d < (1 << 40) for d in t["shape"]) and len(t["shape"]) <= 8
              and isinstance(t.get("data_offsets"), list) and len(t["data_offsets"]) == 2
              and all(type(o) is int for o in t["data_offsets"]))
        if not ok:
            raise CheckpointError(f"{rel}: corrupt (bad header entry for tensor {name[:80]!r})")
        begin, end = t["data_offsets"]
        if not 0 <= begin <= end <= data or end - begin != math.prod(t["shape"]) * ST_DTYPES[t["dtype"]]:
            raise CheckpointError(f"{rel}: corrupt or truncated (tensor {name[:80]!r}: its offsets do not fit its "
                                  "shape or the file)")
        spans.append((begin, end))
    spans.sort()
    pos = 0
    for begin, end in spans:
        if begin != pos:
            raise CheckpointError(f"{rel}: corrupt (tensor data overlaps or leaves gaps)")
        pos = end
    if pos != data:
        raise CheckpointError(f"{rel}: corrupt or truncated ({data - pos:,} bytes past the last tensor)")
    return header


def check_weights(path: str | os.PathLike, cfg: dict, label: str | None = None) -> None:
    """model.safetensors: a sound header whose tensor names and shapes are those of the model `cfg` describes."""
    path = Path(path)
    rel = _rel(path, WEIGHTS, label)
    f, size = open_regular(path / WEIGHTS, rel)
    with f:
        header = check_weights_header(f, size, rel)
    try:
        expected = expected_tensors(cfg)
    except CheckpointError as err:
        raise CheckpointError(f"{label_of(path, label)}/{err}") from None
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{rel}: does not match {CONFIG}: missing tensors {missing[:3]}"
                              f"{' ...' if len(missing) > 3 else ''}, unexpected {[k[:80] for k in unexpected[:3]]}"
                              f"{' ...' if len(unexpected) > 3 else ''}")
    for name, (shape, _) in expected.items():
        if tuple(header[name]["shape"]) != shape:
            raise CheckpointError(f"{rel}: does not match {CONFIG}: {name} has shape {tuple(header[name]['shape'])}, "
                                  f"the model has {shape}")


# --- embeddings.npz --------------------------------------------------------------------------------
def _zip_directory_ok(f, size: int, rel: str) -> None:
    """Bound the zip's central directory from its end record before zipfile reads it."""
    tail_len = min(size, 22 + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        raise CheckpointError(f"{rel}: corrupt or truncated (not a zip file)")
    entries, cd_size = struct.unpack("<HI", tail[at + 10:at + 16])
    if entries > MAX_NPZ_MEMBERS or cd_size > 64 * KiB:
        raise CheckpointError(f"{rel}: {entries} members / {cd_size:,}-byte directory, over the limit of "
                              f"{MAX_NPZ_MEMBERS} arrays")
    f.seek(0)


def check_embeddings_file(f, size: int, rel: str, latent_dim: int | None = None,
                          num_classes: int | None = None, image_hw: tuple[int, int] = (28, 28)) -> dict[str, tuple]:
    """Check an open embeddings.npz without inflating an array: members, their uncompressed sizes, the
    .npy headers (plain numeric dtypes only: never pickled objects) and the shapes. Returns {key: shape}."""
    import numpy as np
    from numpy.lib import format as npy

    _zip_directory_ok(f, size, rel)
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise CheckpointError(f"{rel}: corrupt or truncated ({type(err).__name__}: {err})") from None
    shapes: dict[str, tuple] = {}
    with zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > MAX_NPZ_TOTAL:
            raise CheckpointError(f"{rel}: expands to {total:,} bytes, over the limit of {MAX_NPZ_TOTAL:,}")
        for info in infos:
            key = info.filename.removesuffix(".npy")
            if key not in (*EMBEDDING_KEYS, *OPTIONAL_EMBEDDING_KEYS) or not info.filename.endswith(".npy"):
                raise CheckpointError(f"{rel}: unexpected member {info.filename[:80]!r}")
            if key in shapes:
                raise CheckpointError(f"{rel}: member {info.filename!r} appears twice")
            if info.file_size > MAX_NPZ_MEMBER:
                raise CheckpointError(f"{rel}: {key} expands to {info.file_size:,} bytes, over the limit of "
                                      f"{MAX_NPZ_MEMBER:,}")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                raise CheckpointError(f"{rel}: {key} uses an unsupported compression or encryption")
            try:
                with zf.open(info) as m:
                    version = npy.read_magic(m)
                    if version not in ((1, 0), (2, 0)):
                        raise CheckpointError(f"{rel}: {key} is a .npy of version {version}, not 1.0 or 2.0")
                    read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                    shape, _, dtype = read_header(m, max_header_size=10_000)
                    header_len = m.tell()
            except CheckpointError:
                raise
            except Exception as err:  # bad magic, bad header dict, unreadable member
                raise CheckpointError(f"{rel}: corrupt or truncated ({key}: {type(err).__name__}: {str(err)[:200]})"
                                      ) from None
            if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
                raise CheckpointError(f"{rel}: {key} has dtype {dtype.str}: only plain numbers are allowed "
                                      "(no pickled objects)")
            nbytes = math.prod(shape) * dtype.itemsize
            if header_len + nbytes != info.file_size:
                raise CheckpointError(f"{rel}: corrupt ({key}'s header says {shape} {dtype} but it holds "
                                      f"{info.file_size - header_len:,} bytes)")
            shapes[key] = (tuple(shape), np.dtype(dtype))
        missing = [k for k in EMBEDDING_KEYS if k not in shapes]
        if missing:
            raise CheckpointError(f"{rel}: missing arrays {missing}")
        n = shapes["indices"][0][:1]
        described = ", ".join(f"{k}{s}" for k, (s, _) in shapes.items())
        if (len(shapes["indices"][0]) != 1 or not n or any(s[:1] != n for s, _ in shapes.values())
                or shapes["tsne"][0][1:] != (2,) or len(shapes["labels"][0]) != 1 or len(shapes["codes"][0]) != 2):
            raise CheckpointError(f"{rel}: arrays disagree in length or t-SNE is not (N, 2): {described}")
        if n[0] > MAX_EMBEDDED:
            raise CheckpointError(f"{rel}: {n[0]:,} embedded digits, over the limit of {MAX_EMBEDDED:,}")
        if latent_dim is not None and shapes["codes"][0][1] != latent_dim:
            raise CheckpointError(f"{rel}: codes are {shapes['codes'][0][1]}-d but the model's latent size is "
                                  f"{latent_dim}")
        if "images" in shapes and (shapes["images"][0][1:] != tuple(image_hw) or shapes["images"][1] != np.uint8):
            raise CheckpointError(f"{rel}: images must be (N, {image_hw[0]}, {image_hw[1]}) uint8, "
                                  f"got {shapes['images'][0]} "
                                  f"{shapes['images'][1]}")
        if shapes["labels"][1].kind not in "iu":
            raise CheckpointError(f"{rel}: labels must be integers, got {shapes['labels'][1]}")
        try:  # the labels are small and now known to be sound: check their range
            with zf.open("labels.npy") as m:
                labels = npy.read_array(m, allow_pickle=False)
        except Exception as err:
            raise CheckpointError(f"{rel}: corrupt or truncated (labels: {type(err).__name__})") from None
    if num_classes is not None and len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise CheckpointError(f"{rel}: labels outside 0..{num_classes - 1}")
    return {k: s for k, (s, _) in shapes.items()}


def read_embeddings(path: str | os.PathLike, cfg: dict | None = None, label: str | None = None):
    """embeddings.npz checked (cfg: the run's checked config, for the latent size and class count), then
    loaded from the same open file: {key: array}."""
    import numpy as np

    path = Path(path)
    rel = _rel(path, EMBEDDINGS, label)
    if not path.is_dir():
        raise CheckpointError(f"{label_of(path, label)}: no such run folder")
    f, size = open_regular(path / EMBEDDINGS, rel)
    with f:
        check_embeddings_file(f, size, rel, *_embedding_shape(cfg))
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
        except Exception as err:  # zipfile.BadZipFile (CRC), ValueError, OSError, EOFError: "unreadable"
            raise CheckpointError(f"{rel}: corrupt or truncated ({type(err).__name__}: {str(err)[:200]})") from None
    return data


def _embedding_shape(cfg: dict | None) -> tuple[int | None, int | None, tuple[int, int]]:
    """(latent size, class count, image height and width) that a run's embeddings.npz must have."""
    if not cfg:
        return None, None, (28, 28)
    from core import datasets, families

    config = model_config(cfg["model"], cfg["model_config"])
    latent = config.latent_dim if families.get(cfg["model"]).generative else None
    ds = datasets.get(cfg["dataset"]["name"])
    return latent, ds.num_classes, (ds.image_size, ds.image_size)


# --- PNGs ------------------------------------------------------------------------------------------
def check_png(file: Path, rel: str) -> tuple[int, int]:
    """A PNG's signature and IHDR: width and height within MAX_PNG_SIDE (read from 33 bytes)."""
    f, _ = open_regular(file, rel, MAX_BYTES[".png"])
    with f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise CheckpointError(f"{rel}: not a PNG image")
    width, height, depth = struct.unpack(">IIB", head[16:25])
    if not (1 <= width <= MAX_PNG_SIDE and 1 <= height <= MAX_PNG_SIDE) or depth not in (1, 2, 4, 8, 16):
        raise CheckpointError(f"{rel}: {width} x {height} pixels, over the limit of {MAX_PNG_SIDE} a side")
    return width, height


# --- the folder --------------------------------------------------------------------------------------
def _entries(folder: Path, rel: str, limit: int) -> list[os.DirEntry]:
    out = []
    with os.scandir(folder) as it:
        for entry in it:
            out.append(entry)
            if len(out) > limit:
                raise CheckpointError(f"{rel}: more than {limit} entries")
    return out


def check_folder(path: str | os.PathLike, label: str | None = None) -> list[Path]:
    """The folder itself and everything in it (and in samples/): no symbolic links, no pipes, sockets or
    devices, bounded entry counts. Returns the sample grid PNGs in epoch order."""
    path = Path(path)
    name = label_of(path, label)
    try:
        st = os.lstat(path)
    except OSError:
        raise CheckpointError(f"{name}: no such run folder") from None
    if stat.S_ISLNK(st.st_mode):
        raise CheckpointError(f"{name}: the run folder is a symbolic link; runs must be real folders")
    if not stat.S_ISDIR(st.st_mode):
        raise CheckpointError(f"{name}: no such run folder")
    grids = []
    for entry in _entries(path, name, MAX_ENTRIES):
        rel = f"{name}/{entry.name}"
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            raise CheckpointError(f"{rel}: is a symbolic link; a run holds regular files only")
        if entry.name == SAMPLES:
            if not stat.S_ISDIR(mode):
                raise CheckpointError(f"{rel}: not a folder")
            for grid in _entries(Path(entry.path), rel, MAX_SAMPLE_GRIDS):
                grel = f"{rel}/{grid.name}"
                gmode = grid.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(gmode):
                    raise CheckpointError(f"{grel}: is a symbolic link; a run holds regular files only")
                if not (stat.S_ISREG(gmode) or stat.S_ISDIR(gmode)):
                    raise CheckpointError(f"{grel}: not a regular file")
                if grid.name.startswith("epoch_") and grid.name.endswith(".png"):
                    grids.append(Path(grid.path))
        elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise CheckpointError(f"{rel}: not a regular file")
    return sorted(grids)


@dataclass
class Checked:
    """What check_run read and checked (so loading need not read it again)."""

    config: dict
    history: dict
    metrics: dict | None
    grids: list[Path] = field(default_factory=list)


def check_run(path: str | os.PathLike, label: str | None = None) -> Checked:
    """Validate a whole run folder (see the module docstring); raises CheckpointError "<run>/<file>: ..."."""
    from core import families

    path = Path(path)
    grids = check_folder(path, label)
    cfg = read_config(path, label)
    check_weights(path, cfg, label)
    history = read_history(path, label)
    metrics = read_metrics(path, label)
    if families.get(cfg["model"]).has_encoder or os.path.lexists(path / EMBEDDINGS):
        rel = _rel(path, EMBEDDINGS, label)
        f, size = open_regular(path / EMBEDDINGS, rel)
        with f:
            check_embeddings_file(f, size, rel, *_embedding_shape(cfg))
    for grid in grids:
        check_png(grid, _rel(path, f"{SAMPLES}/{grid.name}", label))
    if os.path.lexists(path / NEAREST):
        check_png(path / NEAREST, _rel(path, NEAREST, label))
    return Checked(cfg, history, metrics, grids)


def stamp(path: str | os.PathLike) -> tuple:
    """A cheap fingerprint of a run folder for cache keys: (mtime_ns, size, inode) of the folder, its
    samples/ and the files a check reads. Any replacement (atomic rename) or edit changes it."""
    path = Path(path)
    out = []
    for name in ("", SAMPLES, CONFIG, WEIGHTS, HISTORY, METRICS, EMBEDDINGS, NEAREST):
        try:
            st = os.lstat(path / name if name else path)
            out.append((st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode))
        except OSError:
            out.append(None)
    return tuple(out)
