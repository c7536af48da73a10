"""Uploads on the Explore page: bounded before they are read (the server's limit is what the page needs),
decoded once per file (not on every rerun), 16-bit scans read right, and the bytes of sessions that are gone
handed back. bench/upload_memory.py measures the server's RSS and CPU with a real browser."""

from __future__ import annotations

import io
import tomllib

import numpy as np
import pytest
from PIL import Image

from dashboard import uploads

from ..conftest import REPO
from .test_dashboard import goto, images, open_app


def png(img: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, **kw).save(buf, format="PNG")
    return buf.getvalue()


def stroke(side: int, paper: int, ink: int, dtype=np.uint8) -> np.ndarray:
    """A dark vertical stroke (a "1") on light paper."""
    img = np.full((side, side), paper, dtype)
    img[side // 6: 5 * side // 6, side // 2 - side // 20: side // 2 + side // 20] = ink
    return img


def test_the_servers_upload_limit_is_what_the_page_needs():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == uploads.MAX_UPLOAD_MB <= 50  # not Streamlit's 200 MB
    # a 25-megapixel scan the page accepts fits: an 8-bit grey PNG of noisy paper is about 18 MB
    assert uploads.MAX_UPLOAD_MB * 2**20 > 20 * 2**20


@pytest.fixture
def explore(monkeypatch, tiny_runs, tmp_path):
    import torch

    torch.set_num_threads(1)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "no-data"))
    return goto(open_app(monkeypatch, tiny_runs), "explore")


def test_the_uploader_says_its_limit(explore):
    uploader = explore.get("file_uploader")[0]
    assert uploader.proto.max_upload_size_mb == uploads.MAX_UPLOAD_MB
    assert f"{uploads.MAX_UPLOAD_MB} MB" in uploader.proto.help


def test_an_upload_is_decoded_once_not_on_every_rerun(explore, monkeypatch):
    decoded = []
    real = uploads.read_image
    monkeypatch.setattr(uploads, "read_image", lambda raw: decoded.append(len(raw)) or real(raw))
    at = explore
    at.file_uploader(key="ex_upload").set_value(("one.png", png(stroke(400, 250, 10)), "image/png")).run()
    shown = images(at)
    assert len(decoded) == 1 and len(shown) == 8
    for rows in (3, 4, 5):  # slider moves rerun the whole page, the drawing section too
        at.slider(key="ex_rows").set_value(rows).run()
        assert not at.exception
    assert len(decoded) == 1
    at.file_uploader(key="ex_upload").set_value(("two.png", png(stroke(300, 240, 30)), "image/png")).run()
    assert len(decoded) == 2  # another file: decoded once more


@pytest.mark.parametrize("side", [1000, 4096])
def test_a_16_bit_scan_is_read_like_its_8_bit_twin(side):
    wide = uploads.read_image(png(stroke(side, 60000, 1000, np.uint16)))
    narrow = uploads.read_image(png(stroke(side, 60000 // 257, 1000 // 257)))
    assert wide.dtype == np.uint8 and wide.shape == narrow.shape
    assert np.abs(wide.astype(int) - narrow.astype(int)).max() <= 1
    from dashboard import explore_cache

    digit = explore_cache.image_to_digit(wide)
    assert digit is not None and digit.max() > 200  # the stroke is ink, the paper is not


def test_files_of_sessions_the_server_no_longer_knows_are_dropped():
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.runtime.uploaded_file_manager import UploadedFileRec

    mgr = MemoryUploadedFileManager("/upload")
    for session in ("live", "gone"):
        mgr.add_file(session, UploadedFileRec(f"{session}-f", "x.png", "image/png", b"\0" * 1000))
    assert uploads.sweep(mgr, known=lambda sid: sid == "live") == 1
    assert mgr.get_files("live", ["live-f"]) and not mgr.get_files("gone", ["gone-f"])
    assert uploads.sweep(mgr, known=lambda sid: sid == "live") == 0
