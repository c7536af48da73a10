"""Hostile run folders: each class of attack, built by copying the committed checkpoints/mnist-vae and
breaking one thing. Each is refused by `python -m core show` (exit 2, a message naming the file relative to
the runs folder), by pull, and, placed beside good runs, leaves every page rendering with an error card for
it. bench/hostile_runs.py times the same cases (and a full-size 2 GiB bomb and 1.5 M-tensor header)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import tomllib
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from core.__main__ import main
from core.run import folder, formats, reading, schemas
from core.run.folder import load_run
from core.run.layout import CheckpointError

REPO = Path(__file__).resolve().parents[2]
GOOD = REPO / "checkpoints" / "mnist-vae"


# --- builders ----------------------------------------------------------------------------------------
def edit_json(run: Path, name: str, change) -> None:
    obj = json.loads((run / name).read_text())
    change(obj)
    (run / name).write_text(json.dumps(obj))


def replace_text(run: Path, name: str, old: str, new: str) -> None:
    text = (run / name).read_text()
    assert old in text
    (run / name).write_text(text.replace(old, new, 1))


def nan_wall_time(run: Path) -> None:
    """config.json with a NaN where a number belongs (JSON has no NaN; Python's json writes and reads it)."""
    edit_json(run, "config.json", lambda c: c.update(wall_time_s=float("nan")))
    assert '"wall_time_s": NaN' in (run / "config.json").read_text().replace('"wall_time_s":NaN', '"wall_time_s": NaN')


def link_outside(run: Path, name: str, outside: Path) -> None:
    """Replace a run file by a link to a copy of it outside the run folder (content valid: the link is the fault)."""
    target = outside / f"outside-{name.replace('/', '-')}"
    shutil.copyfile(run / name, target)
    (run / name).unlink()
    os.symlink(target, run / name)


def safetensors_bytes(header: dict, data: bytes = b"", claimed: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if claimed is None else claimed) + raw + data


def many_tensors(count: int) -> bytes:
    """A safetensors file whose header lists `count` empty tensors (no data at all)."""
    parts = [f'"t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}' for i in range(count)]
    raw = ("{" + ",".join(parts) + "}").encode()
    return struct.pack("<Q", len(raw)) + raw


def npy_header(shape: tuple, dtype: str = "<f4") -> bytes:
    """A version 1.0 .npy header (padded to 64 bytes as numpy writes it)."""
    d = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}"
    pad = 64 - (10 + len(d) + 1) % 64
    body = (d + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body


def write_bomb_npz(file: Path, rows: int, latent: int = 32, n: int = 2000) -> None:
    """embeddings.npz whose `codes` member inflates to rows x latent float32 zeros from a tiny compressed
    stream (written in chunks, never held in memory); the other arrays are sound."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, arr in (("indices", np.arange(n)), ("labels", np.zeros(n, np.int64)),
                         ("tsne", np.zeros((n, 2), np.float32))):
            with zf.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array(f, arr)
        with zf.open("codes.npy", "w", force_zip64=True) as f:
            f.write(npy_header((rows, latent)))
            chunk = bytes(1 << 20)
            left = rows * latent * 4
            while left:
                f.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))


def write_npz_raw(file: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)


def npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def good_embedding_members(run: Path) -> dict[str, bytes]:
    with np.load(run / "embeddings.npz") as npz:
        return {f"{k}.npy": npy_bytes(npz[k]) for k in npz.files}


def png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (formats.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def weights_header(run: Path) -> tuple[dict, bytes]:
    raw = (run / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _mkfifo(run: Path, name: str) -> None:
    (run / name).unlink()
    os.mkfifo(run / name)


def _shape_lie(run: Path) -> None:
    header, data = weights_header(run)
    name = next(k for k in header if k != "__metadata__")
    header[name]["shape"] = [10**6, 10**6]
    (run / "model.safetensors").write_bytes(safetensors_bytes(header, data))


def _renamed_tensor(run: Path) -> None:
    header, data = weights_header(run)
    name = next(k for k in header if k != "__metadata__")
    header["evil." + name] = header.pop(name)
    (run / "model.safetensors").write_bytes(safetensors_bytes(header, data))


def _npz_members(run: Path, **override: bytes) -> None:
    members = good_embedding_members(run)
    members.update({f"{k}.npy": v for k, v in override.items()})
    write_npz_raw(run / "embeddings.npz", members)


# name -> (file the message must name, what breaks it). Each builder gets (run folder, a folder outside it).
CASES = {
    # config.json
    "config-dataset-string": ("config.json", lambda r, o: edit_json(r, "config.json",
                                                                    lambda c: c.update(dataset="mnist"))),
    "config-unknown-dataset": ("config.json", lambda r, o: edit_json(r, "config.json",
                                                                     lambda c: c["dataset"].update(name="cifar"))),
    "config-parameters-string": ("config.json", lambda r, o: edit_json(r, "config.json",
                                                                       lambda c: c.update(parameters="1,700,609"))),
    "config-model-config-type": ("config.json", lambda r, o: edit_json(
        r, "config.json", lambda c: c["model_config"].update(latent_dim="32"))),
    "config-model-config-field": ("config.json", lambda r, o: edit_json(
        r, "config.json", lambda c: c["model_config"].update(evil=1))),
    "config-unknown-model": ("config.json", lambda r, o: edit_json(r, "config.json", lambda c: c.update(model="rnn"))),
    "config-nan": ("config.json", lambda r, o: nan_wall_time(r)),
    "config-huge-integer": ("config.json", lambda r, o: replace_text(r, "config.json", '"parameters": 1700609',
                                                                     '"parameters": ' + "9" * 5000)),
    "config-deep-nesting": ("config.json", lambda r, o: (r / "config.json").write_text("[" * 60000)),
    "config-oversized": ("config.json", lambda r, o: (r / "config.json").write_text(
        (r / "config.json").read_text() + " " * (reading.MAX_BYTES["config.json"] + 1))),
    "config-symlink": ("config.json", lambda r, o: link_outside(r, "config.json", o)),
    "config-not-object": ("config.json", lambda r, o: (r / "config.json").write_text("[1, 2, 3]")),
    # history.json
    "history-string-value": ("history.json", lambda r, o: edit_json(
        r, "history.json", lambda h: h["epochs"]["test/neg_elbo"].__setitem__(3, "low"))),
    "history-column-not-list": ("history.json", lambda r, o: edit_json(
        r, "history.json", lambda h: h["steps"].update(kl={"a": 1}))),
    "history-too-long": ("history.json", lambda r, o: (r / "history.json").write_text(json.dumps(
        {"steps": {"step": [0] * (reading.MAX_HISTORY_POINTS + 1)}, "epochs": {}}))),
    "history-oversized": ("history.json", lambda r, o: os.truncate(r / "history.json",
                                                                    reading.MAX_BYTES["history.json"] + 1)),
    "history-symlink": ("history.json", lambda r, o: link_outside(r, "history.json", o)),
    "history-fifo": ("history.json", lambda r, o: _mkfifo(r, "history.json")),
    # metrics.json
    "metrics-string-value": ("metrics.json", lambda r, o: edit_json(
        r, "metrics.json", lambda m: m["evaluation"]["metrics"]["frechet_distance"].update(mean="low"))),
    "metrics-held-out-string": ("metrics.json", lambda r, o: edit_json(
        r, "metrics.json", lambda m: m["held_out"].update(neg_elbo="90"))),
    "metrics-not-object": ("metrics.json", lambda r, o: (r / "metrics.json").write_text("[]")),
    # a metric name is shown and written to CSV: a formula there is refused like any bad field
    "metrics-formula-name": ("metrics.json", lambda r, o: edit_json(
        r, "metrics.json", lambda m: m["evaluation"]["metrics"].update(
            {'=HYPERLINK("http://evil.example","x")': {"mean": 1.0, "std": 0.0}}))),
    "metrics-held-out-formula-name": ("metrics.json", lambda r, o: edit_json(
        r, "metrics.json", lambda m: m["held_out"].update({"-2+3+cmd|' /C calc'!A0": 1.0}))),
    "metrics-symlink": ("metrics.json", lambda r, o: link_outside(r, "metrics.json", o)),
    # model.safetensors
    "weights-many-tensors": ("model.safetensors", lambda r, o: (r / "model.safetensors").write_bytes(
        many_tensors(reading.MAX_TENSORS + 1))),
    "weights-header-oversized": ("model.safetensors", lambda r, o: (r / "model.safetensors").write_bytes(
        many_tensors(25_000))),
    "weights-header-length-lie": ("model.safetensors", lambda r, o: (r / "model.safetensors").write_bytes(
        safetensors_bytes({}, claimed=1000))),
    "weights-shape-lie": ("model.safetensors", lambda r, o: _shape_lie(r)),
    "weights-renamed-tensor": ("model.safetensors", lambda r, o: _renamed_tensor(r)),
    "weights-oversized-sparse": ("model.safetensors", lambda r, o: os.truncate(
        r / "model.safetensors", reading.MAX_BYTES["model.safetensors"] + 1)),
    "weights-symlink": ("model.safetensors", lambda r, o: link_outside(r, "model.safetensors", o)),
    # embeddings.npz
    "npz-bomb": ("embeddings.npz", lambda r, o: write_bomb_npz(r / "embeddings.npz",
                                                                reading.MAX_NPZ_MEMBER // 128 + 1)),
    "npz-pickle": ("embeddings.npz", lambda r, o: _npz_members(r, labels=npy_bytes(np.array([{"a": 1}] * 2000)))),
    "npz-shape-lie": ("embeddings.npz", lambda r, o: _npz_members(r, codes=npy_header((10**9, 32)) + bytes(256))),
    "npz-many-members": ("embeddings.npz", lambda r, o: write_npz_raw(
        r / "embeddings.npz", {**good_embedding_members(r), **{f"x{i}.npy": b"" for i in range(2000)}})),
    "npz-wrong-latent-size": ("embeddings.npz", lambda r, o: _npz_members(
        r, codes=npy_bytes(np.zeros((2000, 7), np.float32)))),
    "npz-labels-out-of-range": ("embeddings.npz", lambda r, o: _npz_members(
        r, labels=npy_bytes(np.full(2000, 99, np.int64)))),
    "npz-strings": ("embeddings.npz", lambda r, o: _npz_members(r, tsne=npy_bytes(np.array([["a", "b"]] * 2000)))),
    "npz-symlink": ("embeddings.npz", lambda r, o: link_outside(r, "embeddings.npz", o)),
    # PNGs and the folder
    "png-huge-dimensions": ("samples/epoch_050.png", lambda r, o: (r / "samples" / "epoch_050.png").write_bytes(
        png_header(100_000, 100_000))),
    "png-not-png": ("nearest.png", lambda r, o: (r / "nearest.png").write_bytes(b"GIF89a" + bytes(64))),
    "png-symlink": ("samples/epoch_001.png", lambda r, o: link_outside(r, "samples/epoch_001.png", o)),
    "samples-symlink": ("samples", lambda r, o: (shutil.move(r / "samples", o / "samples"),
                                                  os.symlink(o / "samples", r / "samples"))),
    "folder-too-many-entries": ("more than", lambda r, o: [(r / f"junk{i}.txt").touch()
                                                           for i in range(reading.MAX_ENTRIES + 1)]),
}
# the run folder itself a link to a (good) run elsewhere
FOLDER_LINK = "folder-symlink"


def make_case(name: str, root: Path, outside: Path) -> Path:
    """Copy the committed mnist-vae to root/<name> and break it as CASES[name] says."""
    outside.mkdir(parents=True, exist_ok=True)
    if name == FOLDER_LINK:
        target = outside / "real-run"
        if not target.exists():
            shutil.copytree(GOOD, target)
        os.symlink(target, root / name)
        return root / name
    run = root / name
    shutil.copytree(GOOD, run)
    CASES[name][1](run, outside)
    return run


ALL = [*CASES, FOLDER_LINK]


def expected_file(name: str) -> str:
    return "the run folder is a symbolic link" if name == FOLDER_LINK else CASES[name][0]


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    outside = tmp_path_factory.mktemp("outside")
    for name in ALL:
        make_case(name, root, outside)
    return root


# --- the command line and the loader ------------------------------------------------------------------
def test_the_base_run_is_good():
    assert load_run(GOOD).config["model"] == "vae"


@pytest.mark.parametrize("name", ALL)
def test_show_refuses_each_hostile_folder(hostile_root, name, capsys):
    assert main(["show", str(hostile_root / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {name}") and expected_file(name) in err, err
    assert str(hostile_root) not in err and "Traceback" not in err  # relative paths, one line
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("name", ALL)
def test_check_run_and_load_run_agree(hostile_root, name):
    with pytest.raises(CheckpointError) as checked:
        folder.check_run(hostile_root / name)
    with pytest.raises(CheckpointError) as loaded:
        load_run(hostile_root / name)
    assert str(checked.value) == str(loaded.value)


def test_show_of_a_hostile_folder_as_a_program(hostile_root):
    """The real command line, in its own process: exit status 2 and one line on stderr."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "core", "show", str(hostile_root / "npz-bomb")], cwd=REPO,
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error: npz-bomb/embeddings.npz: codes expands to")


def test_limits_are_checked_before_reading(tmp_path, monkeypatch):
    """The bomb is refused from the zip directory: no member is inflated (zipfile.ZipExtFile.read never runs),
    and an oversized header is refused from its first 8 bytes."""
    outside = tmp_path / "outside"
    bomb = make_case("npz-bomb", tmp_path, outside)
    reads = []
    real_read = zipfile.ZipExtFile.read
    monkeypatch.setattr(zipfile.ZipExtFile, "read", lambda self, n=-1: reads.append(n) or real_read(self, n))
    with pytest.raises(CheckpointError, match="expands to"):
        folder.check_run(bomb)
    assert all(n is not None and 0 <= n <= 4096 for n in reads)  # .npy headers only, never a whole member
    big = make_case("weights-header-oversized", tmp_path, outside)
    opened = []
    real_open = reading.open_regular

    def spy(file, rel, limit=None):
        f, size = real_open(file, rel, limit)
        opened.append(f)
        return f, size

    monkeypatch.setattr(reading, "open_regular", spy)  # check_weights opens the weights through it
    with pytest.raises(CheckpointError, match="header of .* over the limit"):
        schemas.check_weights(big, schemas.read_config(big))
    assert opened[-1].closed


def test_show_accepts_null_history_values(tmp_path, capsys):
    """Null in a history column (an epoch without a quality check) is allowed and shown as null."""
    run = tmp_path / "run"
    shutil.copytree(GOOD, run)
    edit_json(run, "history.json", lambda h: h["epochs"].update(
        {"quality/frechet_distance": [None] * (len(h["epochs"]["epoch"]) - 1) + [12.5]}))
    edit_json(run, "history.json", lambda h: h["epochs"]["test/kl"].__setitem__(-1, None))
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert '"quality/frechet_distance": 12.5' in out and '"test/kl": null' in out


def test_any_model_config_the_class_accepts_is_accepted(tmp_path):
    """The schema follows the config class: a field it has (with a value it accepts) passes; others do not."""
    import dataclasses

    from core import families

    vae_cls, gan_cls = families.get("vae").config_class(), families.get("gan").config_class()
    cfg = json.loads((GOOD / "config.json").read_text())
    for f in dataclasses.fields(vae_cls):
        assert schemas.model_config("vae", {f.name: getattr(vae_cls(), f.name)})
    with pytest.raises(CheckpointError, match="latent_dim"):
        schemas.model_config("vae", {**cfg["model_config"], "latent_dim": 10**6})
    gan_fields = {f.name for f in dataclasses.fields(gan_cls)}
    assert schemas.model_config("gan", {k: getattr(gan_cls(), k) for k in gan_fields})


# --- the dashboard ----------------------------------------------------------------------------------------
PAGES = ("overview", "samples", "latent", "curves", "metrics", "concepts", "explore")


def all_text(at) -> str:
    return " ".join(e.value for kind in ("error", "warning", "info") for e in at.get(kind))


def test_every_page_renders_beside_hostile_runs(monkeypatch, tmp_path, tiny_runs, hostile_root):
    """Every hostile folder in the checkpoints folder (pickers label those by folder name), good runs in the
    runs folder."""
    from ..dashboard.test_dashboard import goto, images, open_app

    at = open_app(monkeypatch, hostile_root, runs=tiny_runs)
    assert not at.exception
    assert at.selectbox(key="dataset").options == ["mnist"]  # "cifar" never reaches the data-set picker
    assert Path(at.session_state["pick_vae"]).name == "mnist-vae" and len(images(at)) == 2  # both good runs
    listed = " ".join(at.selectbox(key="pick_vae").options)
    for page in PAGES:
        goto(at, page)
        text = all_text(at)
        for name in ALL:  # every hostile run has its card: in the sidebar, or (sound config) in its picker
            assert name in text or f"{name} ⚠" in listed, (page, name)
    goto(at, "overview")
    sidebar_card = " ".join(e.value for e in at.sidebar.error)
    assert "config-dataset-string/config.json" in sidebar_card and str(hostile_root) not in sidebar_card
    assert len(images(at)) == 2


def test_picking_a_hostile_run_shows_its_error_card_on_every_page(monkeypatch, tiny_runs, hostile_root):
    from dashboard import runs

    from ..dashboard.test_dashboard import goto, open_app

    at = open_app(monkeypatch, hostile_root, runs=tiny_runs)
    pickable = [r for r in runs.runs_of("vae", "mnist") if r.error]
    assert len(pickable) > 20  # every hostile run whose config.json is sound is filed under VAE / mnist
    for info in pickable:
        at.selectbox(key="pick_vae").set_value(info.path).run()
        for page in ("overview", "samples", "latent", "metrics", "explore"):
            goto(at, page)
            cards = [e.value for e in at.error if info.name in e.value]
            assert cards and "could not be loaded" in cards[0], (info.name, page)
            assert str(hostile_root) not in cards[0]
        goto(at, "curves")  # lists the loadable runs only


def test_a_bad_run_is_checked_once_not_per_page_view(monkeypatch, tmp_path, tiny_runs):
    from core.run import folder

    from ..dashboard.test_dashboard import goto, open_app

    root = tmp_path / "ck"
    shutil.copytree(tiny_runs, root)
    bad = make_case("npz-bomb", root, tmp_path / "outside")
    calls = []
    real = folder.check_run
    monkeypatch.setattr(folder, "check_run", lambda path, label=None: calls.append(Path(path).name)
                        or real(path, label))
    at = open_app(monkeypatch, root)
    at.selectbox(key="pick_vae").set_value(str(bad)).run()
    for page in PAGES * 2:
        goto(at, page)
    from dashboard import runs

    runs._catalog.clear()  # the 5 s catalogue expires: the run is stamped again, not checked again
    goto(at, "overview")
    assert calls.count("npz-bomb") == 1
    (bad / "embeddings.npz").write_bytes((tiny_runs / "mnist-vae" / "embeddings.npz").read_bytes())
    runs._catalog.clear()
    goto(at, "overview")
    assert calls.count("npz-bomb") == 2  # a changed file is a new stamp: checked again (and now fails on latent size)


# --- no tracebacks to visitors --------------------------------------------------------------------------
def test_streamlit_shows_no_error_details():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"


def test_an_unexpected_page_error_is_a_short_message_with_a_reference(monkeypatch, tiny_runs):
    import logging

    from dashboard import runs

    from ..dashboard.test_dashboard import goto, open_app

    secret = "/srv/secret/server/path.py"

    def boom(path):
        raise RuntimeError(f"unexpected failure in {secret}")

    monkeypatch.setattr(runs, "facts", boom)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("dashboard").addHandler(handler)
    try:
        at = open_app(monkeypatch, tiny_runs)
    finally:
        logging.getLogger("dashboard").removeHandler(handler)
    assert not at.exception
    message = next(e.value for e in at.error if "Something went wrong" in e.value)
    ref = message.split("reference `")[1].split("`")[0]
    assert secret not in message and "Traceback" not in message and len(ref) == 8
    assert any(ref in r.getMessage() and r.exc_info and secret in str(r.exc_info[1]) for r in records)
    goto(at, "concepts")  # the other pages keep working
