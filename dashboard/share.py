"""Shareable views and downloads: the page state that matters lives in the URL (st.query_params), and the
files behind the download buttons (PNG grids, metrics as CSV and JSON, a run folder as a zip) are built here.

A widget is bound to a query parameter by `widget(...)`: at its first render in a session the value comes from
the URL when it passes the widget's parser, else the default (a hostile or stale value never raises); after
each render the URL carries the value, and drops the parameter when the value is the default. Streamlit's own
`bind="query-params"` raises on `?gen_seed=1e9999` and can only put a select box's label in the URL, where
the run pickers need run folder names (their values are paths on the server), hence this module.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from core.run import layout, reading
from core.run.layout import CheckpointError

MAX_PARAM = 200  # characters: a longer query value is ignored
Parser = Callable[[str], Any]  # raises ValueError (or returns None) for a value it refuses


# --- parsers: query string -> widget value, or ValueError ------------------------------------------------
def integer(lo: int, hi: int) -> Parser:
    def parse(text: str) -> int:
        if not re.fullmatch(r"-?\d{1,12}", text):
            raise ValueError(text)
        value = int(text)
        if not lo <= value <= hi:
            raise ValueError(text)
        return value

    return parse


def number(lo: float, hi: float, step: float | None = None) -> Parser:
    """A finite float in [lo, hi], snapped to the slider's step."""
    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value) or not lo <= value <= hi:
            raise ValueError(text)
        if step:
            value = round(lo + round((value - lo) / step) * step, 10)
        return min(max(value, lo), hi)

    return parse


def choice(options: Iterable, names: Callable[[Any], str] = str) -> Parser:
    """One of `options`, matched by its name in the URL (`names(option)`; str by default)."""
    by_name = {}
    for o in options:
        by_name.setdefault(names(o), o)  # the first of equal names wins (a committed run before a retrained one)

    def parse(text: str):
        if text not in by_name:
            raise ValueError(text)
        return by_name[text]

    return parse


def names(runs: Iterable, separator: str = ",") -> Parser:
    """Run folder names joined by `separator` -> the runs' paths (for a multiselect of runs); every name must
    be one of `runs` (RunInfo-like: .name, .path), repeated names are dropped."""
    parse_one = choice(runs, names=lambda r: r.name)

    def parse(text: str) -> list[str]:
        if not text:  # none picked (the URL never carries an empty value: from_url ignores it)
            return []
        out = []
        for name in text.split(separator):
            path = parse_one(name).path
            if path not in out:
                out.append(path)
        return out

    return parse


def from_url(param: str, parse: Parser, max_len: int = MAX_PARAM):
    """The parsed value of ?param=..., or None when it is absent, longer than max_len or refused by the parser."""
    text = st.query_params.get(param)
    if not isinstance(text, str) or not text or len(text) > max_len:
        return None
    try:
        return parse(text)
    except (ValueError, TypeError, KeyError, OverflowError):
        return None


def to_url(param: str, text: str | None) -> None:
    """Put ?param=text in the URL (None removes it); sends nothing when the URL already says so."""
    if text is None:
        if param in st.query_params:
            del st.query_params[param]
    elif st.query_params.get(param) != text:
        st.query_params[param] = text


def bind(key: str, default, parse: Parser, param: str | None = None, encode: Callable[[Any], str] = str,
         max_len: int = MAX_PARAM) -> None:
    """Before the widget `key` is created: at its first render in this session, seed its value from the URL
    (or the default); later, a value its parser now refuses (another run with fewer epochs, say) becomes the
    default again. The widget itself must be created without a value/index of its own."""
    if key not in st.session_state:
        value = from_url(param or key, parse, max_len)
        st.session_state[key] = default if value is None else value
        return
    try:
        parse(encode(st.session_state[key]))
    except (ValueError, TypeError, KeyError, OverflowError):
        st.session_state[key] = default


def publish(key: str, default, param: str | None = None, encode: Callable[[Any], str] = str) -> None:
    """After the widget: the URL carries its value; the default is left out to keep links short."""
    value = st.session_state.get(key)
    to_url(param or key, None if value is None or value == default else encode(value))


def widget(make: Callable, label: str, *args, key: str, default, parse: Parser, param: str | None = None,
           encode: Callable[[Any], str] = str, max_len: int = MAX_PARAM, **kwargs):
    """`make(label, *args, key=key, **kwargs)` (st.slider, a column's number_input, ...) bound to ?param=
    (default: the key; a longer value than max_len is ignored). Returns the widget's value."""
    bind(key, default, parse, param, encode, max_len)
    value = make(label, *args, key=key, **kwargs)
    publish(key, default, param, encode)
    return value


def selection(param: str, rows: list[int], ids, limit: int = 48) -> list[int]:
    """Rows picked on a chart (a Plotly selection cannot be set from Python), shared as ?param=<ids>, the rows'
    ids (test-set indices) joined by commas, the first `limit` of them. Until the visitor selects something on
    the chart, the URL's ids pick the rows (ids this map lacks are skipped); from then on the selection does."""
    ids = [int(i) for i in ids]
    seen = f"_selected_{param}"
    if rows:
        st.session_state[seen] = True
    elif not st.session_state.get(seen):
        wanted = from_url(param, lambda text: [integer(0, 10**9)(t) for t in text.split(",")[:limit]],
                          max_len=limit * 11)  # as many ids as are written below, each up to 10 digits and a comma
        position = {v: i for i, v in enumerate(ids)}
        rows = [position[v] for v in wanted or [] if v in position]
    to_url(param, ",".join(str(ids[r]) for r in rows[:limit]) or None)
    return rows


def fmt_number(value: float) -> str:
    return f"{value:g}"


# --- downloads -------------------------------------------------------------------------------------------
def png_bytes(img: np.ndarray) -> bytes:
    """A uint8 (H, W) or (H, W, 3) image as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG")
    return buf.getvalue()


def download_png(img: np.ndarray, file_name: str, key: str | None = None) -> None:
    """A small PNG download button under an image grid; the PNG is encoded only when it is clicked."""
    _png_button(lambda: png_bytes(img), file_name, key)


def file_bytes(path: str | os.PathLike) -> bytes:
    """A run file's bytes: no symbolic link, a regular file, within its size limit (core.run.reading)."""
    f, size = reading.open_regular(Path(path), Path(path).name)
    with f:
        return f.read(size)


def download_file(path: str | os.PathLike, file_name: str, key: str | None = None) -> None:
    """A PNG download button for an image file of a run (read when the button is clicked)."""
    _png_button(lambda: file_bytes(path), file_name, key)


def _png_button(data: Callable[[], bytes], file_name: str, key: str | None) -> None:
    file_name = safe_name(file_name)
    st.download_button("PNG", data=data, file_name=file_name, mime="image/png", icon=":material/download:",
                       on_click="ignore", key=key or f"dl_{file_name}", help=f"Download `{file_name}`")


def safe_name(text: str) -> str:
    """A file-name-safe rendering of a run name or label (letters, digits, '.', '_', '-')."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"


RUN_FILES = (layout.CONFIG, layout.HISTORY, layout.METRICS, layout.WEIGHTS, layout.EMBEDDINGS,
             layout.NEAREST)
MAX_ZIP_BYTES = 256 * reading.MiB  # all files of a run together, before compression


SAMPLE_NAME = re.compile(r"epoch_\d{1,6}\.png")  # the grids training writes; nothing else goes in a zip


def _own_file(path: Path) -> bool:
    """A regular file that is the run's alone: not a symbolic link (lstat never follows one) and not a hard
    link (st_nlink > 1: the same content is reachable from outside the run, and may be anyone's file)."""
    try:
        st_file = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st_file.st_mode) and st_file.st_nlink == 1


def run_members(path: str | os.PathLike) -> list[tuple[str, Path]]:
    """(name in the archive, file) for the run's own files, by a plain allow-list: the known top-level files
    and samples/epoch_<n>.png (no backslash, no '..', nothing else), each a regular file with one link
    (symbolic links, hard links, folders, pipes and anything else are left out)."""
    root = Path(path)
    st_root = os.lstat(root)
    if stat.S_ISLNK(st_root.st_mode) or not stat.S_ISDIR(st_root.st_mode):
        raise CheckpointError(f"{root.name}: not a run folder")
    if layout.name_problem(root.name):
        raise CheckpointError(f"{root.name!r}: {layout.name_problem(root.name)}")
    members = [(name, root / name) for name in RUN_FILES if _own_file(root / name)]
    samples = root / layout.SAMPLES
    try:
        samples_mode = os.lstat(samples).st_mode
    except OSError:
        samples_mode = 0
    if stat.S_ISDIR(samples_mode):  # a real folder, not a link to one
        pngs = sorted(e.name for e in os.scandir(samples) if e.name.endswith(".png"))
        if len(pngs) > reading.MAX_SAMPLE_GRIDS:
            raise CheckpointError(f"{root.name}/samples: more than {reading.MAX_SAMPLE_GRIDS} images")
        members += [(f"{layout.SAMPLES}/{n}", samples / n) for n in pngs
                    if SAMPLE_NAME.fullmatch(n) and _own_file(samples / n)]
    return members


def run_zip(path: str | os.PathLike, limit: int = MAX_ZIP_BYTES) -> bytes:
    """The run folder as a zip built in memory, its files under `<run name>/`. Each file is opened without
    following links and read within its own size limit (core.run.reading); raises CheckpointError when a file
    is over its limit or the run is over `limit` bytes in all."""
    root = Path(path)
    members = run_members(root)
    zip_size(root, members, limit)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, file in members:
            f, size = reading.open_regular(file, f"{root.name}/{name}")
            with f:
                if os.fstat(f.fileno()).st_nlink != 1:  # linked since it was listed: the same check, on what is read
                    raise CheckpointError(f"{root.name}/{name}: is a hard link; a run holds its own files only")
                content = f.read(size + 1)
            if len(content) != size:
                raise CheckpointError(f"{root.name}/{name}: changed while it was read")
            info = zipfile.ZipInfo(f"{root.name}/{name}", date_time=_zip_time(file))
            info.external_attr = 0o644 << 16
            # JSON compresses well; weights, arrays and PNGs are compressed already
            info.compress_type = zipfile.ZIP_DEFLATED if name.endswith(".json") else zipfile.ZIP_STORED
            zf.writestr(info, content)
    return buf.getvalue()


def zip_size(root: Path, members: list[tuple[str, Path]], limit: int = MAX_ZIP_BYTES) -> int:
    """Bytes of the members together; CheckpointError when over `limit`."""
    total = sum(os.lstat(f).st_size for _, f in members)
    if total > limit:
        raise CheckpointError(f"{root.name}: {total:,} bytes, over the download limit of {limit:,}")
    return total


def _zip_time(file: Path) -> tuple:
    import time

    return time.gmtime(max(os.lstat(file).st_mtime, 315532800))[:6]  # zip dates start in 1980


def metrics_records(runs: dict[str, dict]) -> list[dict]:
    """Flat rows from several runs' metrics.json ({run name: metrics}): one row per (run, section, metric),
    section "evaluation", "reference" (real test digits against the same training subset) or "held_out"."""
    rows = []
    for run, m in runs.items():
        m = m or {}
        ev = m.get("evaluation") or {}
        for section, values in (("evaluation", ev.get("metrics")), ("reference", ev.get("reference"))):
            for metric, s in (values or {}).items():
                vals = s.get("values") or []
                rows.append({"run": run, "section": section, "metric": metric, "mean": s.get("mean"),
                             "std": s.get("std"), "seeds": len(vals) or None})
        for metric, value in (m.get("held_out") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                rows.append({"run": run, "section": "held_out", "metric": metric, "mean": value, "std": None,
                             "seeds": None})
    return rows


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may read as the start of a formula


def csv_cell(value):
    """A CSV cell a spreadsheet shows as text (OWASP's CSV injection rule): text starting with = + - @ tab or
    CR gets a leading quote; numbers (including negative ones) and empty cells stay as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def table_csv(frame) -> str:
    """A pandas table as CSV text, every text cell (headers too) through csv_cell."""
    safe = frame.map(csv_cell).rename(columns=csv_cell)
    return safe.to_csv(index=False, lineterminator="\r\n")  # RFC 4180: a cell holding CR or LF is quoted


def metrics_csv(runs: dict[str, dict]) -> str:
    """metrics_records as CSV text (empty cells for missing values), every cell through csv_cell."""
    out = io.StringIO()
    # RFC 4180's CRLF: the writer then quotes a cell holding either (with "\n" alone, a bare CR split a row)
    w = csv.DictWriter(out, ["run", "section", "metric", "mean", "std", "seeds"], lineterminator="\r\n")
    w.writeheader()
    w.writerows({k: csv_cell(v) for k, v in row.items()} for row in metrics_records(runs))
    return out.getvalue()


def metrics_json(runs: dict[str, dict]) -> str:
    """The runs' metrics.json as they are, under their run names."""
    return json.dumps(runs, indent=2, sort_keys=True)


def download_run(path: str | os.PathLike, name: str, key: str) -> None:
    """A button that downloads the run folder as a zip, built when it is clicked (its size is checked now)."""
    try:
        size = zip_size(Path(path), run_members(path))
    except (CheckpointError, OSError) as err:
        from dashboard.components import text

        st.caption(f"This run folder cannot be downloaded: {text(_why(err))}")
        return

    def build() -> bytes:
        try:
            return run_zip(path)
        except (CheckpointError, OSError) as err:  # changed since: a short text saying why, not a traceback
            return f"{name}: the run could not be packed ({_why(err)})\n".encode()

    st.download_button(f"Run folder (zip, {size / reading.MiB:.1f} MB)", data=build,
                       file_name=f"{safe_name(name)}.zip", mime="application/zip", icon=":material/folder_zip:",
                       on_click="ignore", key=key,
                       help="config.json, model.safetensors, history.json, metrics.json, embeddings.npz and the "
                            "sample grids: unzip it into checkpoints/ to load the run with `python -m core show`.")


def _why(err: Exception) -> str:
    """A short reason without machine paths (an OSError's text names the file's full path)."""
    return str(err)[:300] if isinstance(err, CheckpointError) else (err.strerror or type(err).__name__)
