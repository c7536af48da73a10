"""`python -m core`: help without torch, defaults in every help line, one-line errors, runs found in runs/."""

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.__main__ import build_parser, main

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["train", "list", "show", "embed", "encoder", "evaluate", "push", "pull"]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_is_listed():
    assert sorted(subcommands()) == sorted(COMMANDS)


def test_help_imports_no_torch():
    """--help of the program and of every command parses without importing torch (so it answers at once)."""
    probe = ("import json, sys\nfrom core.__main__ import main\nout = {}\n"
             f"for argv in [[]] + [[c] for c in {COMMANDS!r}]:\n"
             "    try:\n        main(argv + ['--help'])\n    except SystemExit as e:\n"
             "        out[' '.join(argv) or 'top'] = e.code\n"
             "print(json.dumps({'codes': out, 'torch': 'torch' in sys.modules}))\n")
    res = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["codes"] == {"top": 0, **{c: 0 for c in COMMANDS}}
    assert result["torch"] is False


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_and_shows_its_default(command):
    parser = subcommands()[command]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.dest} has no help"
        if action.option_strings and not action.required and action.default is not False:
            assert "default" in formatter._get_help_string(action), f"{command} {action.dest}: default not shown"
    assert "(default: 0)" in subcommands()["train"].format_help()  # --seed 0 is a default, not "no default"


def test_cuda_without_a_gpu_is_one_line(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "--model", "vae", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --device cuda") and "\n" not in err


def test_list_of_a_missing_folder_says_so(tmp_path, capsys):
    assert main(["list", "--root", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_show_and_list_find_retrained_runs(tmp_path, tiny_runs, monkeypatch, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(tiny_runs / "mnist-gan", runs / "ui-gan-mnist-1")
    monkeypatch.setenv("RUNS_DIR", str(runs))
    monkeypatch.setenv("CHECKPOINT_DIR", str(tmp_path / "checkpoints"))  # the default --root, absent for now
    assert main(["show", "ui-gan-mnist-1"]) == 0
    assert "GAN on mnist" in capsys.readouterr().out
    assert main(["show", "missing-run", "--root", str(tiny_runs)]) == 2
    err = capsys.readouterr().err
    assert str(tiny_runs / "missing-run") in err and str(runs / "missing-run") in err
    (tmp_path / "checkpoints").mkdir()
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "ui-gan-mnist-1" in out and "runs/" in out


def test_evaluate_reports_each_stage(tmp_path, tiny_runs, splits, monkeypatch, capsys):
    """The CLI's progress bar is driven by evaluate_run's stages: load, real features, one per seed, ..."""
    from core import evaluate

    from ..conftest import make_tiny_run
    from .test_metrics import SMALL

    root = tmp_path / "ck"
    shutil.copytree(tiny_runs, root)
    make_tiny_run("classifier", root / "mnist-classifier", splits, width=4, feature_dim=8)
    stages = []
    evaluate.evaluate_run(root / "mnist-vae", root / "mnist-classifier", splits=splits, write=False,
                          progress=stages.append, **SMALL)
    assert stages == ["load", "real features", "samples, seed 0", "samples, seed 1", "reconstruction",
                      "IWAE bound", "reference"]

    real = evaluate.evaluate_run
    monkeypatch.setattr(evaluate, "evaluate_run", lambda *a, **k: real(*a, **{**k, **SMALL, "splits": splits}))
    assert main(["evaluate", "mnist-gan", "--root", str(root), "--seeds", "0", "1"]) == 0
    captured = capsys.readouterr()
    assert "6/6" in captured.err  # load, real, 2 seeds, reconstruction, reference: the bar ends full
    assert "frechet_distance" in captured.out


def test_every_make_bench_command_starts():
    """`make bench` runs each benchmark as written in the Makefile; each must at least import (its --help)."""
    import re

    recipe = re.search(r"^bench:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M).group(1)
    commands = [line.strip().split()[1:] for line in recipe.splitlines()]
    assert len(commands) == 4
    for args in commands:
        args = [a for a in args if "$(" not in a and a != "--data-dir"]
        out = subprocess.run([sys.executable, *args, "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, (args, out.stderr[-500:])


def test_the_cli_finds_retrained_runs_on_persistent_storage(tmp_path, tiny_runs, monkeypatch, capsys):
    """The CLI and the dashboard resolve the retrained runs' folder alike (core.paths): with no $RUNS_DIR, a
    writable $PERSISTENT_DIR (a Space's /data) holds them."""
    monkeypatch.delenv("RUNS_DIR", raising=False)
    monkeypatch.setenv("PERSISTENT_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHECKPOINT_DIR", str(tmp_path / "checkpoints"))
    shutil.copytree(tiny_runs / "mnist-gan", tmp_path / "data" / "runs" / "ui-gan-mnist-2")
    assert main(["show", "ui-gan-mnist-2"]) == 0
    assert "GAN on mnist" in capsys.readouterr().out


def test_the_gan_vae_command_is_this_program(monkeypatch, capsys):
    """pyproject.toml's console script points at a function of this module, which runs the same parser."""
    import importlib
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    module, _, name = project["scripts"]["gan-vae"].partition(":")
    cli = getattr(importlib.import_module(module), name)
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/gan-vae", "--help"])
    with pytest.raises(SystemExit) as exit_:
        cli()
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("usage: gan-vae ")
    assert "version" in project["dynamic"] and all(">=" in d for d in project["dependencies"])  # ranges; pins:
    pins = {line.split("==")[0] for line in (REPO / "requirements.txt").read_text().splitlines() if "==" in line}
    assert {re.split(r"[<>=]", d)[0].lower().replace("_", "-") for d in project["dependencies"]} == {
        p.lower().replace("_", "-") for p in pins}  # the same packages as requirements.txt


def test_every_config_field_is_a_flag_and_a_bad_value_is_one_line(tmp_path, capsys):
    """The model options come from the config dataclasses (core.flags): each field but the shape is a flag."""
    import dataclasses

    from core import families

    train_help = subcommands()["train"].format_help()
    for family in families.FAMILIES.values():
        for f in dataclasses.fields(family.config_class()):
            if f.name not in ("preset", "image_size", "channels", "num_classes"):
                assert f"--{f.name.replace('_', '-')}" in train_help, f.name
    assert main(["train", "--model", "gan", "--loss", "sideways", "--dataset", "mnist", "--data-dir", str(tmp_path),
                 "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "error: loss must be one of" in err and "sideways" in err
