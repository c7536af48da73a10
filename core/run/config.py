"""config.json as one typed record: what a run folder says about how it was made.

core.runner builds a RunConfig, core.run.folder writes `to_dict()`, and every reader gets its dict through
core.run.schemas.check_config, which checks the schema and normalises through `from_dict` (so an older format
reads like the current one). Torch-free.

Format history:
  1: dataset {"name", "root", "sha256", ...}: "root" held the data folder of the training machine.
  2: no paths at all: the data set is recorded by name and checksum (sha256 of the loaded splits).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)


# config.json's key order: what the run is, how it was trained, on what, then provenance
JSON_ORDER = ("model", "class", "model_config", "train_config", "parameters", "dataset", "seed", "device", "started",
              "wall_time_s", "train_time_s", "encoder_time_s", "encoder_retrained", "quality_check", "best_epoch",
              "latent_map", "epochs_completed", "stopped_early", "versions", "git_commit", "format")


@dataclass
class DataRecord:
    name: str  # a core.datasets name
    sha256: str | None = None  # of the loaded train and test splits (core.data.checksum); None for synthetic data
    train_size: int | None = None
    test_size: int | None = None
    synthetic: bool = False  # tests' generated data, not the named data set's files


@dataclass
class RunConfig:
    model: str  # the family's name (core.families)
    model_class: str  # its class's name, a check that the weights are what the name says ("class" in JSON)
    model_config: dict  # the family's config dataclass, as a dict
    dataset: DataRecord
    parameters: int
    seed: int
    device: str  # e.g. "cpu (x86_64, 1 threads)" or "cuda (NVIDIA H100)"
    wall_time_s: float
    epochs_completed: int
    git_commit: str  # HEAD when training started, "+dirty" with uncommitted changes
    train_config: dict | None = None
    started: str | None = None  # UTC, ISO 8601
    train_time_s: float | None = None  # the training loop without the per-epoch quality checks
    encoder_time_s: float | None = None  # a GAN's encoder trained after the GAN
    encoder_retrained: dict | None = None  # when, by which code, a GAN's encoder was trained again (core.runner)
    quality_check: dict | None = None
    best_epoch: int | None = None
    latent_map: dict | None = None
    stopped_early: bool = False
    versions: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["class"] = d.pop("model_class")
        d = {k: d[k] for k in JSON_ORDER}
        if not d["dataset"]["synthetic"]:
            del d["dataset"]["synthetic"]
        if d["encoder_retrained"] is None:  # only a run whose encoder was trained again says so
            del d["encoder_retrained"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """From a config.json already checked by core.run.schemas.check_config; format 1 reads as format 2
        (its dataset.root, a path on the machine that trained it, is dropped)."""
        known = {f.name for f in dataclasses.fields(cls)} - {"model_class", "dataset"}
        ds = {k: v for k, v in d["dataset"].items() if k in {f.name for f in dataclasses.fields(DataRecord)}}
        rest = {k: v for k, v in d.items() if k in known}
        rest["format"] = FORMAT_VERSION
        return cls(model_class=d["class"], dataset=DataRecord(**ds), **rest)
