"""What a visitor uploads: bounded before it is read, decoded once per file, and freed.

- Bounded: the server takes at most MAX_UPLOAD_MB per file (`server.maxUploadSize` in .streamlit/config.toml,
  kept equal by a test; the uploader refuses a larger file before sending it) and decodes at most MAX_PIXELS.
- Decoded once: the prepared digit (28x28 bytes) is cached by the file's content digest, in a bounded cache;
  a rerun (any slider move) finds it there instead of decoding a 25-megapixel image again.
- Freed: Streamlit drops a replaced file at once, but keeps the files of a closed tab's session for good once
  that session expires unresumed (its storage forgets the session without shutting it down). `sweep` drops
  the files of sessions the server no longer knows, and hands freed heap memory back to the system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import io
import logging
import threading
import time
from collections.abc import Callable

import numpy as np
import streamlit as st

MAX_UPLOAD_MB = 32  # a 25-megapixel phone photo (JPEG) is 5-15 MB, a 25-megapixel 8-bit grey PNG scan ~20 MB
MAX_PIXELS = 25_000_000
SWEEP_S = 30  # how often the files of sessions that are gone are looked for
log = logging.getLogger("dashboard")


def read_image(raw: bytes) -> np.ndarray:
    """Uploaded file bytes -> an RGBA uint8 array, at most 1024 pixels a side (raises ValueError for anything
    that is not an image, or one over MAX_PIXELS). 16-bit images (PNG scans: modes I;16, I) are scaled to 8
    bits first: converted directly they saturate to white, and shrinking them fails."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as img:  # raises DecompressionBombError past ~179 megapixels
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"image too large (over {MAX_PIXELS // 1_000_000} megapixels)")
            if img.mode.startswith("I") or img.mode == "F":  # 16 or 32 bits a pixel: to 0-255 by the range
                wide = np.asarray(img, dtype=np.float32)
                top = 65535.0 if img.mode.startswith("I;16") or wide.max() > 255 else 255.0
                narrow = Image.fromarray(np.clip(np.round(wide * (255.0 / top)), 0, 255).astype(np.uint8))
                narrow.info = img.info  # keeps an EXIF orientation
                img = narrow
            img.thumbnail((1024, 1024))
            return np.asarray(ImageOps.exif_transpose(img).convert("RGBA"))  # a phone photo, upright
    except Image.DecompressionBombError as err:
        raise ValueError(f"image too large (over {MAX_PIXELS // 1_000_000} megapixels)") from err
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError("not an image file PIL can read (PNG, JPEG, ...)") from err


@st.cache_data(max_entries=32, ttl=600, show_spinner=False)
def _prepared(digest: str, dataset: str, _upload) -> tuple[np.ndarray | None, str | None]:
    """(the prepared digit, or None when there is no ink; None) or (None; why it cannot be read), keyed by the
    content digest; `_upload` (left out of the key) is read only when the cache does not hold the digest."""
    from dashboard import explore_cache

    try:
        image = read_image(_upload.getvalue())
    except ValueError as err:
        return None, str(err)
    finally:
        trim()  # the decoded image's buffers, freed now, back to the system
    return explore_cache.image_to_digit(image, dataset), None


def prepared(upload, dataset: str) -> tuple[np.ndarray | None, str | None]:
    """An st.file_uploader file -> (digit, None) or (None, error). Its digest is taken once per uploaded file
    (kept in the session under the file's id): a rerun neither copies, hashes nor decodes the bytes again."""
    seen = st.session_state.get("_upload_digest")
    if not seen or seen[0] != upload.file_id:
        seen = (upload.file_id, hashlib.blake2b(upload.getvalue(), digest_size=16).hexdigest())
        st.session_state["_upload_digest"] = seen
    return _prepared(seen[1], dataset, upload)


# --- giving memory back ------------------------------------------------------------------------------
@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None (another C library: nothing to do). Looked up once: find_library runs a
    program."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def trim() -> None:
    """Return freed heap pages to the system."""
    malloc_trim = _malloc_trim()
    if malloc_trim is not None:
        malloc_trim(0)


def sweep(mgr=None, known: Callable[[str], bool] | None = None, media=None) -> int:
    """Drop the uploaded files (and the images shown) of every session the server no longer knows (closed
    and expired); returns how many sessions' files were dropped. The arguments default to the running
    server's file managers and sessions."""
    if mgr is None:
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return 0
        runtime = Runtime.instance()
        sessions = getattr(runtime, "_session_mgr", None)  # Streamlit's own: no public way to ask
        if not hasattr(sessions, "get_session_info"):
            return 0
        mgr, media = runtime.uploaded_file_mgr, runtime.media_file_mgr
        known = lambda sid: sessions.get_session_info(sid) is not None  # noqa: E731
    storage = getattr(mgr, "file_storage", None)  # MemoryUploadedFileManager's {session id: files}
    if storage is None:
        return 0
    gone = [sid for sid in list(storage) if not known(sid)]
    for sid in gone:
        mgr.remove_session_files(sid)
        if media is not None:
            media.clear_session_refs(sid)
    if gone:
        if media is not None:
            media.remove_orphaned_files()  # the session's images, now shown nowhere
        trim()
    return len(gone)


@st.cache_resource(show_spinner=False)
def start_sweeper(every_s: float = SWEEP_S) -> threading.Thread:
    """One thread per server process that sweeps every `every_s` seconds."""
    def loop() -> None:
        while True:
            time.sleep(every_s)
            try:
                sweep()
            except Exception:  # the sweep is housekeeping: never take the server down
                log.exception("sweeping uploaded files")

    thread = threading.Thread(target=loop, name="upload-sweeper", daemon=True)
    thread.start()
    return thread
