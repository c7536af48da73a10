"""The Retrain form's typed values -> a checked job spec, every refused field named in words."""

from __future__ import annotations

import re

from core.jobs.spec import Caps, validate_spec


class FormError(ValueError):
    """The Retrain form's typed values, refused; `problems` holds one sentence per field, named in words."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


INT_RE = re.compile(r"^[+-]?\d{1,30}$")


def form_limits(caps: Caps) -> dict[str, tuple[str, float, float]]:
    """The form's numeric fields: spec key -> (label in words, lowest, highest)."""
    return {"epochs": ("Epochs", 1, caps.max_epochs), "batch_size": ("Batch size", caps.min_batch, caps.max_batch),
            "latent_dim": ("Latent size", caps.min_latent, caps.max_latent), "seed": ("Random seed", 0, 2**31 - 1),
            "lr": ("Learning rate", caps.min_lr, caps.max_lr)}


def parse_form(choices: dict, typed: dict[str, str], caps: Caps | None = None) -> dict:
    """The spec from the form: `choices` (model, dataset, preset from pickers) and `typed` (the text the
    visitor typed per numeric field). Nothing is rounded, clamped or replaced: a value that is not a whole
    number (or, for the learning rate, a number) or lies outside the limits is refused, every such field
    named in words in FormError.problems. An empty learning rate means the model's default."""
    caps = caps or Caps.from_env()
    spec, problems = dict(choices), []
    for key, (label, lo, hi) in form_limits(caps).items():
        raw = str(typed.get(key, "")).strip()
        if key == "lr":
            if not raw:
                spec["lr"] = None
                continue
            try:
                value = float(raw)
            except ValueError:
                value = None
            if value is None or value != value or not lo <= value <= hi:
                problems.append(f"{label} must be a number from {lo:g} to {hi:g}, or empty for the model's "
                                f"default (you typed {raw[:40]!r})")
                continue
        else:
            value = int(raw) if INT_RE.match(raw) else None
            if value is None or not lo <= value <= hi:
                problems.append(f"{label} must be a whole number from {lo} to {hi} (you typed {raw[:40]!r})"
                                if raw else f"{label} is empty: type a whole number from {lo} to {hi}")
                continue
        spec[key] = value
    if problems:
        raise FormError(problems)
    try:
        return validate_spec(spec, caps)
    except ValueError as err:
        raise FormError([str(err)]) from None
