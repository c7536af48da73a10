import json
import shutil

import numpy as np
import pytest
import torch

from core.__main__ import main
from core.run import schemas
from core.run.folder import load_model, load_run
from core.run.layout import CheckpointError, list_runs, run_path

from ..conftest import make_tiny_run


@pytest.fixture
def run(tmp_path, tiny_runs):
    dst = tmp_path / "copy"
    shutil.copytree(tiny_runs / "mnist-vae", dst)
    return dst


def test_round_trip(tiny_runs):
    for kind in ("vae", "gan"):
        r = load_run(tiny_runs / f"mnist-{kind}")
        cfg = r.config
        assert cfg["model"] == kind and cfg["seed"] == 0 and cfg["versions"]["torch"] == torch.__version__
        for key in ("train_config", "model_config", "dataset", "device", "wall_time_s", "git_commit", "started"):
            assert key in cfg
        assert len(r.grids) == 2 and r.embeddings["codes"].shape == (64, 8)
        assert r.embeddings["tsne"].shape == (64, 2)
        z = torch.randn(3, 8)
        again = load_model(tiny_runs / f"mnist-{kind}")
        assert torch.equal(r.model.sample(z), again.sample(z))
    assert list_runs(tiny_runs) == ["mnist-gan", "mnist-vae"]


def test_load_run_reads_and_checks_each_file_once(run, monkeypatch):
    """One load, one check per file: the weights' header and embeddings.npz are not checked again by the loaders."""
    from core.run import formats, reading

    opened = []
    real_open = reading.open_regular

    def spy(file, rel, limit=None):
        opened.append(file.name)
        return real_open(file, rel, limit)

    monkeypatch.setattr(reading, "open_regular", spy)  # every run file is opened through it
    monkeypatch.setattr(formats, "open_regular", spy)  # (PNG headers)
    loaded = load_run(run)
    assert loaded.embeddings is not None and set(loaded.embeddings) >= {"codes", "tsne"}
    for name in ("config.json", "model.safetensors", "history.json", "embeddings.npz"):
        assert opened.count(name) == 1, (name, opened)


def test_missing_files_are_named(run):
    (run / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors: missing"):
        load_model(run)
    with pytest.raises(CheckpointError, match="no such run folder"):
        load_model(run.parent / "nothing-here")


def test_truncated_weights(run):
    f = run / "model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: corrupt or truncated"):
        load_model(run)


def test_garbage_weights(run):
    (run / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        load_model(run)


def test_mismatched_config(run):
    cfg = json.loads((run / "config.json").read_text())
    cfg["model_config"]["latent_dim"] = 9
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: does not match config\.json"):
        load_model(run)


@pytest.mark.parametrize("text,msg", [("{not json", "not valid JSON"), ('{"model": "vae"}', "missing key"),
                                      ('{"model": "x", "class": "X", "model_config": {}}', "unknown model"),
                                      ('{"model": "vae", "class": "GAN", "model_config": {}}', "does not match")])
def test_corrupt_config(run, text, msg):
    (run / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=rf"config\.json: .*{msg}"):
        load_model(run)


def test_corrupt_history_and_embeddings(run):
    (run / "history.json").write_text('{"steps": {"step": [1, 2]}, "epochs": {"epoch": [1], "c": [1, 2]}}')
    with pytest.raises(CheckpointError, match=r"history\.json: columns"):
        load_run(run)
    f = run / "embeddings.npz"
    f.write_bytes(f.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"embeddings\.npz: corrupt or truncated"):
        schemas.read_embeddings(run)
    np.savez(f, indices=np.arange(3), labels=np.arange(3), codes=np.zeros((3, 2)), tsne=np.zeros((4, 2)))
    with pytest.raises(CheckpointError, match="disagree"):
        schemas.read_embeddings(run)


def test_pickled_embeddings_are_refused(run):
    np.savez(run / "embeddings.npz", indices=np.array([{"a": 1}], dtype=object), labels=np.arange(1),
             codes=np.zeros((1, 2)), tsne=np.zeros((1, 2)))
    with pytest.raises(CheckpointError, match=r"embeddings\.npz: indices has dtype \|O: .*no pickled objects"):
        schemas.read_embeddings(run)


def test_interrupted_save_leaves_no_run(tmp_path, splits, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(KeyboardInterrupt):
        make_tiny_run("vae", tmp_path / "run", splits, epochs=1)
    assert list(tmp_path.iterdir()) == []  # neither the run nor its temporary folder
    assert list_runs(tmp_path) == []


def test_existing_run_is_not_overwritten(tmp_path, splits):
    path = make_tiny_run("vae", tmp_path / "run", splits, epochs=1)
    before = (path / "model.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match="exists"):
        make_tiny_run("vae", path, splits, epochs=1, latent_dim=4)
    assert (path / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("name", ["../evil", "/etc", ".hidden", "", "a/b", ".."])
def test_run_names_cannot_escape(tmp_path, name):
    with pytest.raises(CheckpointError):
        run_path(tmp_path, name)
    assert run_path(tmp_path, "ok-name_1") == (tmp_path / "ok-name_1").resolve()


def test_cli_show_and_list(tiny_runs, run, capsys):
    assert main(["show", "mnist-vae", "--root", str(tiny_runs)]) == 0
    assert "VAE on mnist" in capsys.readouterr().out
    assert main(["list", "--root", str(tiny_runs)]) == 0
    assert "mnist-gan" in capsys.readouterr().out
    (run / "model.safetensors").write_bytes(b"junk")
    assert main(["show", str(run)]) == 2
    assert "model.safetensors" in capsys.readouterr().err


def test_embeddings_carry_the_test_digits(tiny_runs, splits):
    emb = schemas.read_embeddings(tiny_runs / "mnist-vae")
    test_images, test_labels = splits[1]
    assert emb["images"].shape == (64, 28, 28) and emb["images"].dtype == np.uint8
    assert np.array_equal(emb["images"], test_images[emb["indices"], 0].numpy())
    assert np.array_equal(emb["labels"], test_labels[emb["indices"]].numpy())


@pytest.mark.parametrize("fmt, root, error", [
    (3, None, "format 3 is newer than this code reads \\(formats 1-2\\): update the code"),
    ("2", None, 'format "2" is unknown'),
    (2, "/data", "dataset.root: format 2 records the data set by name and sha256, no path"),
    (1, "/data", None),  # format 1 had the path: read, and the path dropped
])
def test_config_format_is_checked(tiny_runs, tmp_path, fmt, root, error):
    from core.run.schemas import read_config

    run = shutil.copytree(tiny_runs / "mnist-vae", tmp_path / "run")
    cfg = json.loads((run / "config.json").read_text())
    cfg["format"] = fmt
    if root:
        cfg["dataset"]["root"] = root
    (run / "config.json").write_text(json.dumps(cfg))
    if error:
        with pytest.raises(CheckpointError, match=error):
            read_config(run)
    else:
        got = read_config(run)
        assert got["format"] == 2 and "root" not in got["dataset"]
