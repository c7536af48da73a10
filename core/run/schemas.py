"""The schemas of a run's contents: config.json names a known model and data set and its model_config
constructs that model's config class (so any field the class accepts is accepted); numbers where numbers
belong in config.json, metrics.json and history.json (history values may also be null); the weights' names
and shapes, and the embeddings' sizes, match the model the config describes (built on the meta device: no
memory, no time). Torch is imported only to build that model."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import types
import typing
from pathlib import Path

import numpy as np

from core import datasets, families
from core.run.config import FORMAT_VERSION, READABLE_FORMATS, RunConfig
from core.run.formats import check_embeddings_file, check_weights_header
from core.run.layout import CONFIG, EMBEDDINGS, HISTORY, METRICS, WEIGHTS, CheckpointError, label_of, where
from core.run.reading import MAX_HISTORY_COLUMNS, MAX_HISTORY_POINTS, MAX_STRING, open_in_run, read_json


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
    """Schema of config.json (core.run.config.RunConfig, which core.runner.train_run writes). Returns the
    config as the current format's dict (RunConfig.from_dict(...).to_dict())."""
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
    if not isinstance(ds["name"], str) or ds["name"] not in datasets.DATASETS:
        raise CheckpointError(f"{rel}: unknown dataset {_short(ds['name'])} (known: {sorted(datasets.DATASETS)})")
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
    _object(rel, "encoder_retrained", cfg.get("encoder_retrained"), null=True)
    _number(rel, "encoder_time_s", cfg.get("encoder_time_s"), lo=0, null=True)
    return RunConfig.from_dict(cfg).to_dict()


def read_config(path: str | os.PathLike, label: str | None = None) -> dict:
    path = Path(path)
    return check_config(read_json(path, CONFIG, label), where(path, CONFIG, label))


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
    return check_history(read_json(path, HISTORY, label), where(path, HISTORY, label))


METRIC_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")  # "frechet_distance", "neg_elbo": shown and put in CSVs


def _metric_names(rel: str, key: str, d, null: bool = False) -> dict:
    """The object at `key`, its keys checked as metric names (a name starting with '=' is a formula in a CSV)."""
    d = _object(rel, key, d, null=null)
    for name in d:
        if not METRIC_NAME.fullmatch(name):
            raise CheckpointError(f"{rel}: {key} has a metric named {_short(name)}: metric names are letters, "
                                  "digits and '_', starting with a letter (at most 64)")
    return d


def _summaries(rel: str, key: str, d) -> None:
    for name, s in _metric_names(rel, key, d).items():
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
        for key, v in _metric_names(rel, section, m.get(section), null=True).items():
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
    for key, v in _metric_names(rel, "evaluation.memorization", ev.get("memorization"), null=True).items():
        _number(rel, f"evaluation.memorization.{key}", v)
    _numbers(rel, "evaluation.class_histogram", ev["class_histogram"], limit=1000)
    for key in ("missing_classes", "starved_classes"):
        if not isinstance(ev.get(key, []), list) or len(ev.get(key, [])) > 1000:
            raise CheckpointError(f"{rel}: evaluation.{key} must be a list")
    for key, v in _metric_names(rel, "evaluation.lower_is_better", ev.get("lower_is_better"), null=True).items():
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
    return check_metrics(read_json(path, METRICS, label), where(path, METRICS, label))


def expected_tensors(cfg: dict) -> dict[str, tuple[tuple[int, ...], str]]:
    """Names -> (shape, dtype) of the state dict the config describes, from the model built on the meta
    device (no memory is allocated, no weights initialised)."""
    import torch  # here, not at the top: reading embeddings (the t-SNE subprocess) needs no torch

    cls = families.get(cfg["model"]).model_class()
    config = model_config(cfg["model"], cfg["model_config"])
    try:
        with torch.device("meta"):
            model = cls(config)
    except Exception as err:  # a config the class accepted but cannot build: still the config's fault
        raise CheckpointError(f"{CONFIG}: bad model_config: cannot build the model ({str(err)[:200]})") from None
    return {k: (tuple(v.shape), str(v.dtype)) for k, v in model.state_dict().items()}


def check_weights(path: str | os.PathLike, cfg: dict, label: str | None = None) -> None:
    """model.safetensors: a sound header whose tensor names and shapes are those of the model `cfg` describes."""
    f, size, rel = open_in_run(Path(path), WEIGHTS, label)
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


def embedding_shape(cfg: dict | None) -> tuple[int | None, int | None, tuple[int, int]]:
    """(latent size, class count, image height and width) that a run's embeddings.npz must have."""
    if not cfg:
        return None, None, (28, 28)
    config = model_config(cfg["model"], cfg["model_config"])
    latent = config.latent_dim if families.get(cfg["model"]).generative else None
    ds = datasets.get(cfg["dataset"]["name"])
    return latent, ds.num_classes, (ds.image_size, ds.image_size)


def read_embeddings(path: str | os.PathLike, cfg: dict | None = None, label: str | None = None):
    """embeddings.npz checked, then loaded from the same open file: {key: array}. `cfg`, the run's checked
    config, adds the latent size and class count checks (default: the run's config.json when it is readable)."""
    path = Path(path)
    if cfg is None:
        with contextlib.suppress(CheckpointError):
            cfg = read_config(path, label)
    f, size, rel = open_in_run(path, EMBEDDINGS, label)
    with f:
        check_embeddings_file(f, size, rel, *embedding_shape(cfg))
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
        except Exception as err:  # zipfile.BadZipFile (CRC), ValueError, OSError, EOFError: "unreadable"
            raise CheckpointError(f"{rel}: corrupt or truncated ({type(err).__name__}: {str(err)[:200]})") from None
    return data
