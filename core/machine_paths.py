"""Machine paths in the files a run publishes: a published run must not say where it sat on the machine
that made it. Looked for in every JSON string and key, in the weights' metadata and in PNG text chunks;
PNG text chunks are stripped from what goes up anyway (`strip_png_text`).

A path is "/…" at the start of a text, "/a/…" (two segments, not inside a URL) or "~/…" anywhere, a drive
("C:\\…", "D:/…"), a UNC share ("\\\\server\\…"), or any file: URI. URLs, ratios ("1/2") and history
column names ("train/loss") are not paths.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

PATH = re.compile(
    r"^/"                                  # a text that starts as a path ("/data")
    r"|(?<![\w.:/~-])/[\w.-]+/"           # "/srv/alice" in the middle of a text, not "https://host/x"
    r"|(?<![\w/])~[/\\]"                  # "~/runs"
    r"|(?<![A-Za-z0-9])[A-Za-z]:[/\\]"     # "C:\Users", "D:/runs" (not "https://": 's' follows a letter)
    r"|\\\\[\w.$-]+\\"                     # "\\server\share"
    r"|(?i:\bfile:)")                      # "file:///…", "file://server/…"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_TEXT = {b"tEXt", b"zTXt", b"iTXt", b"eXIf"}  # text and metadata chunks; pixels never live in these
MAX_TEXT = 1 << 20  # bytes of decompressed text a chunk may hold before it is refused outright


def in_text(text: str) -> bool:
    return bool(PATH.search(text))


def in_json(obj, where: str = "") -> list[str]:
    """'<key path> = <value>' for every string and key of a JSON value that holds a path."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            at = f"{where}.{k}" if where else str(k)
            if in_text(str(k)):
                found.append(f"key {at[:80]!r}")
            found += in_json(v, at)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found += in_json(v, f"{where}[{i}]")
    elif isinstance(obj, str) and in_text(obj):
        found.append(f"{where} = {obj[:80]!r}")
    return found


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of each chunk of a PNG file; ValueError for anything that is not one."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    chunks, at = [], len(PNG_SIGNATURE)
    while at < len(data):
        if at + 8 > len(data):
            raise ValueError("truncated PNG chunk")
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        chunks.append((kind, data[at + 8:at + 8 + size]))
        at += 12 + size
    return chunks


def _inflate(data: bytes) -> bytes:
    inflate = zlib.decompressobj()
    out = inflate.decompress(data, MAX_TEXT)
    if inflate.unconsumed_tail:
        raise ValueError(f"a PNG text chunk inflates past {MAX_TEXT:,} bytes")
    return out


def png_texts(data: bytes) -> list[str]:
    """The words of every text and metadata chunk: tEXt (keyword\0text), zTXt (keyword\0method zlib-text),
    iTXt (keyword\0flag method language\0translated keyword\0text, zlib when flag is 1), eXIf (raw)."""
    out = []
    for kind, body in png_chunks(data):
        if kind not in PNG_TEXT:
            continue
        keyword, _, rest = body.partition(b"\0")
        if kind == b"zTXt":
            rest = _inflate(rest[1:])
        elif kind == b"iTXt":
            language, translated, text = (rest[2:].split(b"\0", 2) + [b"", b""])[:3]
            rest = b" ".join((language, translated, _inflate(text) if rest[:1] == b"\1" else text))
        elif kind == b"eXIf":
            keyword, rest = b"", body
        out.append((keyword + b" " + rest).decode("latin-1"))
    return out


def strip_png_text(data: bytes) -> bytes:
    """The PNG without its text and metadata chunks (the pixels' chunks are kept byte for byte)."""
    out = [PNG_SIGNATURE]
    at = len(PNG_SIGNATURE)
    for kind, body in png_chunks(data):
        if kind not in PNG_TEXT:
            out.append(data[at:at + 12 + len(body)])
        at += 12 + len(body)
    return b"".join(out)


def in_file(path: Path, rel: str) -> list[str]:
    """'<file>: <where> = <value>' for every path in a published file (JSON, PNG text, weights metadata)."""
    suffix = path.suffix
    if suffix == ".json":
        return [f"{rel}: {f}" for f in in_json(json.loads(path.read_text()))]
    if suffix == ".png":
        return [f"{rel}: text chunk {t[:80]!r}" for t in png_texts(path.read_bytes()) if in_text(t)]
    if suffix == ".safetensors":
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        return [f"{rel}: {f}" for f in in_json(header.get("__metadata__") or {}, "__metadata__")]
    return []
