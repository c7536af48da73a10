"""Writing files so that a reader never sees half of one: a temporary file beside the destination, renamed
into place. Torch-free (the jobs dispatcher writes its status files before torch loads)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


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
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj, indent: int | None = 1) -> None:
    """JSON (no NaN or infinity: strict JSON readers refuse them), replaced atomically."""
    text = json.dumps(obj, indent=indent, allow_nan=False) + "\n"
    with replacing(path) as tmp:
        tmp.write_text(text)
