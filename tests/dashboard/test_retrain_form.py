"""The Retrain form's parsing (dashboard/retrain_form.py): refused in words, never replaced."""

from __future__ import annotations

import pytest

from core.jobs import DEFAULT_SPEC, Caps
from dashboard import retrain_form


def test_form_values_are_refused_in_words_never_replaced():
    choices = {"model": "vae", "dataset": "mnist", "preset": "seed"}
    good = {"epochs": "2", "batch_size": "64", "latent_dim": "16", "seed": "7", "lr": ""}
    assert retrain_form.parse_form(choices, good, Caps()) == {**DEFAULT_SPEC, "epochs": 2, "batch_size": 64,
                                                      "latent_dim": 16, "seed": 7, "lr": None}
    bad = {"epochs": "1e9", "batch_size": "-3", "latent_dim": str(10**18), "seed": "x", "lr": "-0.1"}
    with pytest.raises(retrain_form.FormError) as info:
        retrain_form.parse_form(choices, bad, Caps())
    problems = info.value.problems
    assert [p.split(" must")[0] for p in problems] == ["Epochs", "Batch size", "Latent size", "Random seed",
                                                       "Learning rate"]
    assert "Epochs must be a whole number from 1 to 5 (you typed '1e9')" in problems
    for field, value in [("epochs", "2.5"), ("epochs", "0"), ("epochs", ""), ("lr", "nan"), ("lr", "0.5")]:
        with pytest.raises(retrain_form.FormError):
            retrain_form.parse_form(choices, {**good, field: value}, Caps())
