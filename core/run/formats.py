"""The binary files of a run, checked from their headers before anything is inflated: model.safetensors (header
length, tensor count, dtypes, offsets tiling the data), embeddings.npz (zip directory, members, .npy headers:
plain numbers only, never pickles) and PNGs (signature and IHDR dimensions)."""

from __future__ import annotations

import json
import math
import struct
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from core.run.layout import EMBEDDING_KEYS, OPTIONAL_EMBEDDING_KEYS, CheckpointError
from core.run.reading import (
    MAX_BYTES,
    MAX_EMBEDDED,
    MAX_NPZ_MEMBER,
    MAX_NPZ_MEMBERS,
    MAX_NPZ_TOTAL,
    MAX_PNG_SIDE,
    MAX_ST_HEADER,
    MAX_TENSORS,
    KiB,
    open_regular,
)

ST_DTYPES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
             "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_weights_header(f, size: int, rel: str) -> dict[str, dict]:
    """Parse and check a safetensors header from an open file: length and tensor count within limits,
    known dtypes, offsets that tile the data exactly. Returns {name: {"dtype", "shape", "data_offsets"}}."""
    if size < 8:
        raise CheckpointError(f"{rel}: corrupt or truncated ({size} bytes)")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > MAX_ST_HEADER:
        raise CheckpointError(f"{rel}: header of {n:,} bytes, over the limit of {MAX_ST_HEADER:,}")
    if 8 + n > size:
        raise CheckpointError(f"{rel}: corrupt or truncated (a header of {n:,} bytes in a file of {size:,})")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CheckpointError(f"{rel}: corrupt or truncated (the header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{rel}: corrupt (the header is not a JSON object)")
    meta = header.pop("__metadata__", None)
    if meta is not None and not (isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())):
        raise CheckpointError(f"{rel}: corrupt (__metadata__ must map names to strings)")
    if len(header) > MAX_TENSORS:
        raise CheckpointError(f"{rel}: {len(header):,} tensors, over the limit of {MAX_TENSORS:,}")
    data = size - 8 - n
    spans = []
    for name, t in header.items():
        ok = (isinstance(t, dict) and t.get("dtype") in ST_DTYPES and isinstance(t.get("shape"), list)
              and all(type(d) is int and 0 <= d < (1 << 40) for d in t["shape"]) and len(t["shape"]) <= 8
              and isinstance(t.get("data_offsets"), list) and len(t["data_offsets"]) == 2
              and all(type(o) is int for o in t["data_offsets"]))
        if not ok:
            raise CheckpointError(f"{rel}: corrupt (bad header entry for tensor {name[:80]!r})")
        begin, end = t["data_offsets"]
        if not 0 <= begin <= end <= data or end - begin != math.prod(t["shape"]) * ST_DTYPES[t["dtype"]]:
            raise CheckpointError(f"{rel}: corrupt or truncated (tensor {name[:80]!r}: its offsets do not fit its "
                                  "shape or the file)")
        spans.append((begin, end))
    spans.sort()
    pos = 0
    for begin, end in spans:
        if begin != pos:
            raise CheckpointError(f"{rel}: corrupt (tensor data overlaps or leaves gaps)")
        pos = end
    if pos != data:
        raise CheckpointError(f"{rel}: corrupt or truncated ({data - pos:,} bytes past the last tensor)")
    return header


def _zip_directory_ok(f, size: int, rel: str) -> None:
    """Bound the zip's central directory from its end record before zipfile reads it."""
    tail_len = min(size, 22 + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        raise CheckpointError(f"{rel}: corrupt or truncated (not a zip file)")
    entries, cd_size = struct.unpack("<HI", tail[at + 10:at + 16])
    if entries > MAX_NPZ_MEMBERS or cd_size > 64 * KiB:
        raise CheckpointError(f"{rel}: {entries} members / {cd_size:,}-byte directory, over the limit of "
                              f"{MAX_NPZ_MEMBERS} arrays")
    f.seek(0)


def check_embeddings_file(f, size: int, rel: str, latent_dim: int | None = None,
                          num_classes: int | None = None, image_hw: tuple[int, int] = (28, 28)) -> dict[str, tuple]:
    """Check an open embeddings.npz without inflating an array: members, their uncompressed sizes, the
    .npy headers (plain numeric dtypes only: never pickled objects) and the shapes. Returns {key: shape}."""
    _zip_directory_ok(f, size, rel)
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise CheckpointError(f"{rel}: corrupt or truncated ({type(err).__name__}: {err})") from None
    shapes: dict[str, tuple] = {}
    with zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > MAX_NPZ_TOTAL:
            raise CheckpointError(f"{rel}: expands to {total:,} bytes, over the limit of {MAX_NPZ_TOTAL:,}")
        for info in infos:
            key = info.filename.removesuffix(".npy")
            if key not in (*EMBEDDING_KEYS, *OPTIONAL_EMBEDDING_KEYS) or not info.filename.endswith(".npy"):
                raise CheckpointError(f"{rel}: unexpected member {info.filename[:80]!r}")
            if key in shapes:
                raise CheckpointError(f"{rel}: member {info.filename!r} appears twice")
            if info.file_size > MAX_NPZ_MEMBER:
                raise CheckpointError(f"{rel}: {key} expands to {info.file_size:,} bytes, over the limit of "
                                      f"{MAX_NPZ_MEMBER:,}")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                raise CheckpointError(f"{rel}: {key} uses an unsupported compression or encryption")
            try:
                with zf.open(info) as m:
                    version = npy.read_magic(m)
                    if version not in ((1, 0), (2, 0)):
                        raise CheckpointError(f"{rel}: {key} is a .npy of version {version}, not 1.0 or 2.0")
                    read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                    shape, _, dtype = read_header(m, max_header_size=10_000)
                    header_len = m.tell()
            except CheckpointError:
                raise
            except Exception as err:  # bad magic, bad header dict, unreadable member
                raise CheckpointError(f"{rel}: corrupt or truncated ({key}: {type(err).__name__}: {str(err)[:200]})"
                                      ) from None
            if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
                raise CheckpointError(f"{rel}: {key} has dtype {dtype.str}: only plain numbers are allowed "
                                      "(no pickled objects)")
            nbytes = math.prod(shape) * dtype.itemsize
            if header_len + nbytes != info.file_size:
                raise CheckpointError(f"{rel}: corrupt ({key}'s header says {shape} {dtype} but it holds "
                                      f"{info.file_size - header_len:,} bytes)")
            shapes[key] = (tuple(shape), np.dtype(dtype))
        missing = [k for k in EMBEDDING_KEYS if k not in shapes]
        if missing:
            raise CheckpointError(f"{rel}: missing arrays {missing}")
        n = shapes["indices"][0][:1]
        described = ", ".join(f"{k}{s}" for k, (s, _) in shapes.items())
        if (len(shapes["indices"][0]) != 1 or not n or any(s[:1] != n for s, _ in shapes.values())
                or shapes["tsne"][0][1:] != (2,) or len(shapes["labels"][0]) != 1 or len(shapes["codes"][0]) != 2):
            raise CheckpointError(f"{rel}: arrays disagree in length or t-SNE is not (N, 2): {described}")
        if n[0] > MAX_EMBEDDED:
            raise CheckpointError(f"{rel}: {n[0]:,} embedded digits, over the limit of {MAX_EMBEDDED:,}")
        if latent_dim is not None and shapes["codes"][0][1] != latent_dim:
            raise CheckpointError(f"{rel}: codes are {shapes['codes'][0][1]}-d but the model's latent size is "
                                  f"{latent_dim}")
        if "images" in shapes and (shapes["images"][0][1:] != tuple(image_hw) or shapes["images"][1] != np.uint8):
            raise CheckpointError(f"{rel}: images must be (N, {image_hw[0]}, {image_hw[1]}) uint8, "
                                  f"got {shapes['images'][0]} "
                                  f"{shapes['images'][1]}")
        if shapes["labels"][1].kind not in "iu":
            raise CheckpointError(f"{rel}: labels must be integers, got {shapes['labels'][1]}")
        try:  # the labels are small and now known to be sound: check their range
            with zf.open("labels.npy") as m:
                labels = npy.read_array(m, allow_pickle=False)
        except Exception as err:
            raise CheckpointError(f"{rel}: corrupt or truncated (labels: {type(err).__name__})") from None
    if num_classes is not None and len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise CheckpointError(f"{rel}: labels outside 0..{num_classes - 1}")
    return {k: s for k, (s, _) in shapes.items()}


def check_png(file: Path, rel: str) -> tuple[int, int]:
    """A PNG's signature and IHDR: width and height within MAX_PNG_SIDE (read from 33 bytes)."""
    f, _ = open_regular(file, rel, MAX_BYTES[".png"])
    with f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise CheckpointError(f"{rel}: not a PNG image")
    width, height, depth = struct.unpack(">IIB", head[16:25])
    if not (1 <= width <= MAX_PNG_SIDE and 1 <= height <= MAX_PNG_SIDE) or depth not in (1, 2, 4, 8, 16):
        raise CheckpointError(f"{rel}: {width} x {height} pixels, over the limit of {MAX_PNG_SIDE} a side")
    return width, height
