"""core.hub without a network: HfApi methods and snapshot_download are replaced by fakes over a folder
(or the real snapshot_download runs with HF_HUB_OFFLINE=1 over a cache the test builds)."""

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import RepositoryNotFoundError

from core import hub
from core.__main__ import build_parser
from core.hub import HubError, model_card, pull_missing, pull_run, push_run
from core.run.folder import load_run
from core.run.layout import list_runs

SECRET = "hf_SENTINELsentinel0123456789abcd"  # shaped like a real token; must never be shown
RUN_FILES = {"config.json", "model.safetensors", "history.json", "metrics.json", "embeddings.npz",
             "samples/epoch_001.png", "samples/epoch_002.png"}


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(autouse=True)
def hub_env(monkeypatch, tmp_path):
    """A sentinel token, an empty hub cache, online unless a test says otherwise, no HUB_RUNS."""
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv(hub.HUB_RUNS, raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture
def runs(tmp_path, tiny_runs) -> Path:
    dst = tmp_path / "local"
    shutil.copytree(tiny_runs, dst)
    return dst


class FakeHub:
    """Stands in for the Hub: a model repo is a folder under `remote`; every call is recorded."""

    def __init__(self, remote: Path):
        self.remote, self.calls = remote, []

    def install(self, monkeypatch):
        fake = self

        def create_repo(self, repo_id, **kw):
            fake.calls.append(("create_repo", repo_id, kw))
            (fake.remote / repo_id).mkdir(parents=True, exist_ok=True)
            return f"https://huggingface.co/{repo_id}"

        def create_branch(self, repo_id, **kw):
            fake.calls.append(("create_branch", repo_id, kw))

        def upload_folder(self, *, repo_id, folder_path, **kw):
            fake.calls.append(("upload_folder", repo_id, {**kw, "files": files_under(Path(folder_path))}))
            shutil.copytree(folder_path, fake.remote / repo_id, dirs_exist_ok=True)

        def snapshot_download(repo_id, **kw):
            fake.calls.append(("snapshot_download", repo_id, kw))
            if not (fake.remote / repo_id).is_dir():
                url = f"https://huggingface.co/api/models/{repo_id}"
                raise RepositoryNotFoundError("404 Repository Not Found", response=httpx2.Response(
                    404, request=httpx2.Request("GET", url)))
            return str(fake.remote / repo_id)

        for name, fn in [("create_repo", create_repo), ("create_branch", create_branch),
                         ("upload_folder", upload_folder)]:
            monkeypatch.setattr(huggingface_hub.HfApi, name, fn)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
        return self

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture
def fake_hub(monkeypatch, tmp_path) -> FakeHub:
    return FakeHub(tmp_path / "remote").install(monkeypatch)


# --- model card ----------------------------------------------------------------------------------
def test_model_card_content(tiny_runs):
    card = model_card(load_run(tiny_runs / "mnist-vae"), "alice/mnist-vae")
    assert card.data.library_name == "pytorch" and "vae" in card.data.tags
    assert card.data.datasets == ["ylecun/mnist"]
    text = card.text
    assert "## Configuration" in text and '"latent_dim": 8' in text and "| parameters |" in text
    assert "## Metrics" in text and "held_out.neg_elbo" in text
    assert "![samples](samples/epoch_002.png)" in text  # the last epoch's grid, a path inside the repo
    assert "python -m core pull alice/mnist-vae" in text and "load_run" in text
    assert "Kingma & Welling" in text and "1312.6114" in text
    # the card round-trips through huggingface_hub's parser
    again = huggingface_hub.ModelCard(str(card))
    assert again.data.pipeline_tag == "unconditional-image-generation"

    gan = model_card(load_run(tiny_runs / "mnist-gan"), "bob/gan").text
    assert "Goodfellow et al." in gan and "1406.2661" in gan and "Kingma" not in gan


def test_model_card_without_metrics(runs):
    (runs / "mnist-gan" / "metrics.json").unlink()
    text = model_card(load_run(runs / "mnist-gan"), "bob/gan").text
    assert "## Metrics" not in text and "## Samples" in text


# --- push ----------------------------------------------------------------------------------------
def test_push_uploads_only_run_files(runs, fake_hub):
    run = runs / "mnist-vae"
    (run / "evil.pkl").write_bytes(b"\x80\x04pickle")
    (run / "notes.py").write_text("import os\n")
    (run / ".secret.json").write_text("{}")
    (run / "samples" / ".hidden.png").write_bytes(b"png")
    (run / ".cache").mkdir()
    (run / ".cache" / "x.json").write_text("{}")
    outside = runs.parent / "outside.json"
    outside.write_text('{"private": true}')
    (run / "leak.json").symlink_to(outside)  # a link could point anywhere: a run holding one is refused
    with pytest.raises(HubError, match=r"refusing to push .*: mnist-vae/leak\.json: is a symbolic link"):
        push_run(run, "alice/mnist-vae", private=True)
    assert fake_hub.calls == []
    (run / "leak.json").unlink()

    url = push_run(run, "alice/mnist-vae", private=True)

    assert url == "https://huggingface.co/alice/mnist-vae"
    assert fake_hub.names() == ["create_repo", "upload_folder"]
    _, repo, kw = fake_hub.calls[0]
    assert repo == "alice/mnist-vae" and kw["exist_ok"] is True and kw["private"] is True
    upload = fake_hub.calls[1][2]
    assert upload["files"] == RUN_FILES | {"README.md"}
    assert set(upload["delete_patterns"]) == set(hub.ALLOWED)
    assert "![samples](samples/epoch_002.png)" in (fake_hub.remote / repo / "README.md").read_text()


def test_push_to_a_branch(runs, fake_hub):
    push_run(runs / "mnist-gan", "alice/gan", revision="experiment")
    assert fake_hub.names() == ["create_repo", "create_branch", "upload_folder"]
    assert fake_hub.calls[1][2]["branch"] == "experiment" and fake_hub.calls[2][2]["revision"] == "experiment"


def test_push_refuses_a_run_that_fails_strict_loading(runs, fake_hub):
    f = runs / "mnist-vae" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(HubError, match=r"refusing to push .*fails strict loading.*corrupt or truncated"):
        push_run(runs / "mnist-vae", "alice/mnist-vae")
    assert fake_hub.calls == []


def test_push_needs_a_token_and_the_network(runs, fake_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        push_run(runs / "mnist-vae", "alice/x")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)  # no cached login either
    with pytest.raises(HubError, match="no Hugging Face token"):
        push_run(runs / "mnist-vae", "alice/x")
    assert fake_hub.calls == []


# --- pull ----------------------------------------------------------------------------------------
def test_pull_offline_with_nothing_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the real snapshot_download, which must not go online
    root = tmp_path / "checkpoints"
    with pytest.raises(HubError, match=r"offline: could not pull alice/mnist-vae: HF_HUB_OFFLINE is set .*cache"):
        pull_run("alice/mnist-vae", root)
    assert not root.exists() or list(root.iterdir()) == []


def test_pull_offline_from_the_hub_cache(tmp_path, tiny_runs, monkeypatch):
    """The real snapshot_download over a cache laid out like huggingface_hub's (files are links to blobs)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = Path(hf_constants.HF_HUB_CACHE) / "models--alice--mnist-vae"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    for rel in RUN_FILES:
        data = (tiny_runs / "mnist-vae" / rel).read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))

    path = pull_run("alice/mnist-vae", tmp_path / "checkpoints")
    assert path == (tmp_path / "checkpoints" / "mnist-vae").resolve()
    assert files_under(path) == RUN_FILES and not any(p.is_symlink() for p in path.rglob("*"))
    assert load_run(path).config["model"] == "vae"


def test_pull_through_the_hub(tmp_path, tiny_runs, fake_hub):
    remote = fake_hub.remote / "alice" / "mnist-vae"
    shutil.copytree(tiny_runs / "mnist-vae", remote)
    (remote / "README.md").write_text("# card")
    (remote / "evil.pkl").write_bytes(b"\x80\x04")  # a pattern slip on the hub side is still dropped

    path = pull_run("alice/mnist-vae", tmp_path / "checkpoints", name="vae-from-hub", revision="v1")

    _, repo, kw = fake_hub.calls[0]
    assert repo == "alice/mnist-vae" and kw["revision"] == "v1" and set(kw["allow_patterns"]) == set(hub.ALLOWED)
    assert kw["local_files_only"] is False
    assert path.name == "vae-from-hub" and files_under(path) == RUN_FILES
    assert load_run(path).config["model"] == "vae"
    assert list_runs(tmp_path / "checkpoints") == ["vae-from-hub"]


def test_push_then_pull_round_trip(runs, tmp_path, fake_hub):
    push_run(runs / "mnist-gan", "alice/mnist-gan")
    path = pull_run("alice/mnist-gan", tmp_path / "pulled")
    for rel in RUN_FILES:
        assert (path / rel).read_bytes() == (runs / "mnist-gan" / rel).read_bytes()


def test_pull_refuses_a_corrupt_run_and_leaves_nothing(tmp_path, tiny_runs, fake_hub):
    remote = fake_hub.remote / "alice" / "broken"
    shutil.copytree(tiny_runs / "mnist-vae", remote)
    f = remote / "embeddings.npz"
    f.write_bytes(f.read_bytes()[:200])
    root = tmp_path / "checkpoints"
    with pytest.raises(HubError, match=r"refusing alice/broken: .*fails strict loading: alice/broken/embeddings"):
        pull_run("alice/broken", root)
    assert list(root.iterdir()) == []  # no run, no hidden staging folder


def test_pull_names_and_overwrite(tmp_path, tiny_runs, fake_hub):
    shutil.copytree(tiny_runs / "mnist-vae", fake_hub.remote / "alice" / "mnist-vae")
    root = tmp_path / "checkpoints"
    with pytest.raises(HubError, match="invalid run name"):
        pull_run("alice/mnist-vae", root, name="../escape")
    pull_run("alice/mnist-vae", root)
    with pytest.raises(HubError, match="exists"):
        pull_run("alice/mnist-vae", root)
    (root / "mnist-vae" / "stale.json").write_text("{}")
    pull_run("alice/mnist-vae", root, overwrite=True)
    assert files_under(root / "mnist-vae") == RUN_FILES and sorted(os.listdir(root)) == ["mnist-vae"]
    with pytest.raises(HubError, match=r"could not pull alice/absent: RepositoryNotFoundError"):
        pull_run("alice/absent", root)


def test_pull_missing_pulls_only_what_is_lacking(tmp_path, tiny_runs, fake_hub, monkeypatch):
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_runs / "mnist-gan", root / "mnist-gan")
    shutil.copytree(tiny_runs / "mnist-vae", fake_hub.remote / "alice" / "mnist-vae")
    monkeypatch.setenv(hub.HUB_RUNS, " alice/mnist-gan, alice/mnist-vae ,bob/absent,")

    messages = pull_missing(None, root)

    assert [c[1] for c in fake_hub.calls] == ["alice/mnist-vae", "bob/absent"]  # mnist-gan is there already
    assert messages[0].startswith("pulled alice/mnist-vae into ")
    assert messages[1].startswith("could not pull bob/absent")
    assert list_runs(root) == ["mnist-gan", "mnist-vae"]
    assert pull_missing(None, root) == [m for m in messages[1:]]  # nothing left to pull but the absent one


def test_pull_missing_offline_reports_instead_of_raising(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    messages = pull_missing(["alice/mnist-vae"], tmp_path / "checkpoints")
    assert len(messages) == 1 and messages[0].startswith("offline: could not pull alice/mnist-vae")
    assert pull_missing("", tmp_path / "checkpoints") == []


# --- tokens never shown --------------------------------------------------------------------------
def test_no_token_in_any_output(runs, tmp_path, fake_hub, monkeypatch, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    leaky = f"401 Unauthorized for url; headers={{'authorization': 'Bearer {SECRET}'}} token={SECRET}"

    def boom(*args, **kw):
        raise RuntimeError(leaky)

    parser = build_parser()

    # success through the command line
    args = parser.parse_args(["push", "mnist-vae", "--root", str(runs), "--repo", "alice/mnist-vae"])
    args.func(args)
    args = parser.parse_args(["pull", "alice/mnist-vae", "--root", str(tmp_path / "pulled")])
    args.func(args)
    out = capsys.readouterr()
    assert "pushed" in out.out and "pulled" in out.out

    # failures, with the token in the hub's error message
    errors = []
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", boom)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", boom)
    with pytest.raises(HubError) as push_err:
        push_run(runs / "mnist-vae", "alice/mnist-vae", token=SECRET)
    errors.append(push_err.value)
    with pytest.raises(HubError) as pull_err:
        pull_run("alice/other", tmp_path / "pulled")
    errors.append(pull_err.value)
    messages = pull_missing("alice/other", tmp_path / "pulled")

    for err in errors:
        assert "401 Unauthorized" in str(err) and "***" in str(err)
        assert err.__cause__ is None and err.__suppress_context__  # the hub's own exception is not chained
    out = capsys.readouterr()
    shown = "\n".join([*map(str, errors), *messages, out.out, out.err, caplog.text, str(fake_hub.calls)])
    assert SECRET not in shown and "SENTINEL" not in shown
    assert messages and "could not pull alice/other" in messages[0]


def test_redact():
    assert hub.redact(f"a {SECRET} b") == "a *** b"
    assert hub.redact("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert hub.redact("x hf_abcdefghijklmnop y") == "x hf_*** y"
    assert hub.redact("my-explicit-token!", token="my-explicit-token!") == "***"


@pytest.mark.parametrize("case", ["config-dataset-string", "config-unknown-dataset", "npz-bomb", "weights-many-tensors",
                                  "history-string-value", "png-huge-dimensions"])
def test_pull_and_hub_runs_refuse_hostile_runs(tmp_path, fake_hub, case):
    """The one validation (core.run.folder.check_run) guards pull and HUB_RUNS: the run is refused with the
    repo and the file named, nothing is left behind, and no machine path is in the message."""
    from .test_hostile import make_case

    built = make_case(case, tmp_path / "built", tmp_path / "outside")
    shutil.copytree(built, fake_hub.remote / "mallory" / case)
    root = tmp_path / "checkpoints"
    root.mkdir()
    with pytest.raises(HubError, match=rf"refusing mallory/{case}: .*: mallory/{case}/") as err:
        pull_run(f"mallory/{case}", root)
    assert str(tmp_path) not in str(err.value)
    assert list(root.iterdir()) == []
    messages = pull_missing(f"mallory/{case}", root)
    assert len(messages) == 1 and messages[0].startswith(f"refusing mallory/{case}")
    assert str(tmp_path) not in messages[0]
    assert list(root.iterdir()) == []


def test_pull_checks_sizes_before_copying(tmp_path, tiny_runs, fake_hub, monkeypatch):
    shutil.copytree(tiny_runs / "mnist-vae", fake_hub.remote / "alice" / "big")
    os.truncate(fake_hub.remote / "alice" / "big" / "history.json", 64 << 20)  # sparse: no disk used
    copied = []
    monkeypatch.setattr(hub.shutil, "copyfile", lambda *a: copied.append(a))
    root = tmp_path / "checkpoints"
    with pytest.raises(HubError, match=r"refusing alice/big: history\.json is 67,108,864 bytes, over the limit"):
        pull_run("alice/big", root)
    assert copied == []


def test_push_refuses_a_run_holding_a_machine_path(runs, fake_hub):
    """Format 1 recorded the training machine's data folder; such a run still loads, but is not published."""
    run = runs / "mnist-vae"
    cfg = json.loads((run / "config.json").read_text())
    cfg["format"], cfg["dataset"]["root"] = 1, "/home/alice/data"
    (run / "config.json").write_text(json.dumps(cfg))
    assert "root" not in load_run(run).config["dataset"]  # read as format 2: the path is dropped
    with pytest.raises(HubError, match=r"machine paths \(config.json: dataset.root = '/home/alice/data'\)"):
        push_run(run, "alice/mnist-vae")
    metrics = json.loads((run / "metrics.json").read_text())
    cfg["dataset"]["root"] = None
    (run / "config.json").write_text(json.dumps(cfg))
    metrics["settings"]["note"] = r"C:\Users\alice\runs"  # anywhere in any JSON file that goes up
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(HubError, match="metrics.json: settings.note"):
        push_run(run, "alice/mnist-vae")


def png_with_text(png: bytes, keyword: bytes, text: bytes, kind: bytes = b"tEXt") -> bytes:
    """The PNG with one text chunk inserted after IHDR (tEXt: keyword\\0text; zTXt: keyword\\0\\0zlib(text))."""
    import struct
    import zlib

    body = keyword + b"\0" + (b"\0" + zlib.compress(text) if kind == b"zTXt" else
                              b"\0\0\0\0" + text if kind == b"iTXt" else text)
    chunk = struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    end_of_ihdr = 8 + 4 + 4 + 13 + 4
    return png[:end_of_ihdr] + chunk + png[end_of_ihdr:]


@pytest.mark.parametrize("where, value", [
    ("string", "trained from data in /srv/alice/mnist, 2 threads"),
    ("string", "see file:///C:/Users/alice/run for the log"),
    ("string", "data file://server/share/mnist"),
    ("string", "copied from ~/runs/x"),
    ("string", r"note: D:\runs\x"),
    ("key", "/home/alice/data"),
    ("key", "file:///tmp/x"),
])
def test_push_refuses_a_machine_path_anywhere_in_json(runs, fake_hub, where, value):
    run = runs / "mnist-vae"
    metrics = json.loads((run / "metrics.json").read_text())
    if where == "key":
        metrics["settings"][value] = 1
    else:
        metrics["settings"]["note"] = value
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(HubError, match="machine paths.*metrics.json"):
        push_run(run, "alice/mnist-vae")
    assert "upload_folder" not in fake_hub.names()


@pytest.mark.parametrize("kind", [b"tEXt", b"zTXt", b"iTXt"])
def test_push_refuses_a_png_text_chunk_holding_a_machine_path(runs, fake_hub, kind):
    run = runs / "mnist-vae"
    grid = run / "samples" / "epoch_001.png"
    grid.write_bytes(png_with_text(grid.read_bytes(), b"Source", b"/home/alice/runs/x/epoch_001.png", kind))
    load_run(run)  # the image itself is sound
    with pytest.raises(HubError, match="machine paths.*samples/epoch_001.png"):
        push_run(run, "alice/mnist-vae")
    assert "upload_folder" not in fake_hub.names()


def test_push_refuses_a_machine_path_in_the_weights_metadata(runs, fake_hub):
    from safetensors.torch import load_file, save_file

    run = runs / "mnist-vae"
    save_file(load_file(run / "model.safetensors"), run / "model.safetensors",
              metadata={"source": "/home/alice/runs/mnist-vae"})
    with pytest.raises(HubError, match="machine paths.*model.safetensors"):
        push_run(run, "alice/mnist-vae")


def test_push_strips_png_text_chunks_and_plain_text_passes(runs, fake_hub):
    """Text that is no path (a URL, a ratio, a history column name) goes up; PNG text chunks do not."""
    from PIL import Image

    run = runs / "mnist-vae"
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["settings"]["note"] = "https://huggingface.co/docs, 1/2 of the digits, train/loss, nats/image"
    (run / "metrics.json").write_text(json.dumps(metrics))
    grid = run / "samples" / "epoch_001.png"
    grid.write_bytes(png_with_text(grid.read_bytes(), b"Software", b"some tool 1.0"))
    push_run(run, "alice/mnist-vae")
    up = fake_hub.remote / "alice/mnist-vae/samples/epoch_001.png"
    assert b"tEXt" not in up.read_bytes() and Image.open(up).text == {}
    assert (Image.open(up).tobytes() == Image.open(grid).tobytes())  # the pixels are the same


def test_png_writers_write_no_text_chunks(tmp_path):
    import numpy as np

    from core.run.folder import write_png
    from dashboard.share import png_bytes

    write_png(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    for data in ((tmp_path / "a.png").read_bytes(), png_bytes(np.zeros((8, 8), np.uint8))):
        assert not any(kind in data for kind in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"))
