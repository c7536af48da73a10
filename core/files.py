"""Writing files so that a reader never sees half of one: a temporary file beside the destination, renamed
into place. Torch-free (the jobs dispatcher writes its status files before torch loads)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path


class DiskFull(OSError):
    """No space was left where a file was being written. Its message starts "disk full:" and says what could
    not be written and how much space is free there."""

    def __init__(self, message: str):
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror


def is_disk_full(err: BaseException) -> bool:
    """ENOSPC or EDQUOT, as an OSError or inside another library's message (safetensors: "(os error 28)")."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(err)
    return f"(os error {errno.ENOSPC})" in text or f"(os error {errno.EDQUOT})" in text or "No space left" in text


def free_space(path: str | os.PathLike) -> str:
    """"N MB free" on the disk holding `path` (or its nearest existing parent)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return f"{shutil.disk_usage(path).free / 2**20:,.0f} MB free"
    except OSError:
        return "free space unknown"


def disk_full(what: str, where: str | os.PathLike) -> DiskFull:
    return DiskFull(f"disk full: could not {what} ({free_space(where)} there)")


@contextlib.contextmanager
def replacing(dest: str | os.PathLike):
    """Yield a temporary path beside `dest`; when the block succeeds it replaces `dest` in one rename,
    when it fails it is removed."""
    dest = Path(dest)
    # the destination's suffix: numpy's savez appends ".npz" to a name without it
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}-", suffix=dest.suffix, dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes it private; runs and job status are meant to be read by others
        os.replace(tmp, dest)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, Exception) and is_disk_full(err) and not isinstance(err, DiskFull):
            raise disk_full(f"write {dest.name}", dest.parent) from err
        raise


def write_json(path: str | os.PathLike, obj, indent: int | None = 1) -> None:
    """JSON (no NaN or infinity: strict JSON readers refuse them), replaced atomically."""
    text = json.dumps(obj, indent=indent, allow_nan=False) + "\n"
    with replacing(path) as tmp:
        tmp.write_text(text)
