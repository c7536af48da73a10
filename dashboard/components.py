"""Reusable widgets: image grids, Plotly charts and cards. No disk access of their own (errors are logged and
the picked runs read through dashboard.runs)."""

from __future__ import annotations

import contextlib
import html
import re

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core import families
from dashboard import runs, share

COLORS = families.Attr("color")  # each family's colour, from its record (core.families)
# ten well-separated colours for digit classes (Plotly's D3 palette)
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


@contextlib.contextmanager
def guarded(where: str):
    """An unexpected error in the block becomes a short message with a reference; the server log has the
    traceback under that reference. (st.stop / st.rerun are BaseExceptions and pass through.) Also a decorator,
    for fragments: a fragment's own reruns do not pass through the page's guard in app.py."""
    try:
        yield
    except Exception:
        ref = runs.log_error(f"rendering {where}")
        st.error(f"Something went wrong {where} (reference `{ref}`). The other pages keep working; "
                 "the server log has the details under this reference.", icon=":material/error:")


def picked_runs() -> tuple[dict, list[str]]:
    """The sidebar's run per compared family, and the families whose run loads; an error card for each that
    does not (a family is never dropped silently)."""
    picked = {k: runs.selected(k) for k in runs.KINDS}
    return picked, [k for k in runs.KINDS if loaded_run(k, picked[k])]


def loaded_run(kind: str, info=None):
    """The sidebar's run of one family (or `info`) when it loads, else None after an error card in its place."""
    info = info or runs.selected(kind)
    error = runs.check_run(info)
    if error:
        error_card(f"{runs.LABELS[kind]} run {text(info.name) if info else ''}", error)
        return None
    return info


def image_grid(img: np.ndarray, caption: str | None = None, download: str | None = None) -> None:
    """Show one uint8 grid image at its native (already upscaled) size; `download`: a file name for a PNG
    download button under it."""
    st.image(img, caption=caption, clamp=True, width="content")
    if download:
        share.download_png(img, download)


_ABS_PATH = re.compile(r"(?:[A-Za-z]:)?[/\\](?:[^\s/\\:'\"`]+[/\\])*([^\s/\\:'\"`]+[/\\][^\s/\\:'\"`]+)")


# A phone's or tablet's browser names itself so in its User-Agent (the server cannot see the screen's width)
TOUCH_AGENT = re.compile(r"Mobi|Android|iPhone|iPad|Tablet")


def touch_device() -> bool:
    """Whether the visitor browses on a phone or tablet. There a finger swiping over a chart must scroll the
    page, so charts open without a drag tool (a drag tool takes every touch: a swipe drew a lasso)."""
    return bool(TOUCH_AGENT.search(st.context.headers.get("User-Agent") or ""))


def scrollable(fig: go.Figure) -> go.Figure:
    """On a touch device: no drag tool, so swipes scroll the page (the toolbar still zooms, pans, selects)."""
    if touch_device():
        fig.update_layout(dragmode=False)
    return fig


# Plotly's toolbar (zoom, select, full screen) covers a chart's top 28 px when hovered or tapped, across the
# whole width on a phone: titles sit below that band.
TOOLBAR_BAND = 36


def chart_title(text: str) -> dict:
    return {"text": plain(text), "yref": "container", "y": 1, "yanchor": "top", "pad": {"t": TOOLBAR_BAND}}


TITLE_MARGIN = TOOLBAR_BAND + 30  # the band, then the title's line


# Narrow screens (Streamlit stacks columns below 640 px): the blocks keyed "pair..." keep their columns side by
# side, so the models' images stay next to each other on a phone rather than a screen apart; blocks keyed
# "phone_only..." (a reminder of whose column follows, where columns stack) show on narrow screens only.
PHONE_CSS = """<style>
@media (max-width: 640px) {
  [class*="st-key-pair"] > [data-testid="stLayoutWrapper"] > [data-testid="stHorizontalBlock"],
  [class*="st-key-pair"] > [data-testid="stHorizontalBlock"] { flex-wrap: nowrap; gap: 0.75rem; }
  [class*="st-key-pair"] [data-testid="stColumn"] { min-width: 0 !important; }
}
@media (min-width: 641px) { [class*="st-key-phone_only"] { display: none; } }
</style>"""


def short_paths(message: str) -> str:
    """Absolute paths cut to their last two parts ("mnist-gan/model.safetensors"): no machine paths on screen."""
    return _ABS_PATH.sub(r"\1", message)


# --- names and messages as text: a run's name is a folder name anyone can choose ------------------------
# every ASCII punctuation character but '-' (CommonMark escapes each); a '-' starts a list only at a line's start
_PUNCTUATION = re.compile(r"([!-,./:-@\[-`{-~])")


def text(value: object) -> str:
    """Markdown that shows `value` as itself: punctuation backslash-escaped (no link, autolink, emphasis, heading,
    :colour[] directive or $math$ can start), line breaks as spaces, a leading '-' escaped too."""
    out = _PUNCTUATION.sub(r"\\\1", " ".join(str(value).splitlines()))
    return "\\" + out if out.startswith("-") else out


def code(value: object) -> str:
    """An inline code span showing `value` verbatim, whatever backticks it holds (fenced by a longer run)."""
    value = " ".join(str(value).splitlines())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", value)), default=0) + 1)
    pad = " " if value[:1] == "`" or value[-1:] == "`" else ""  # CommonMark strips one such space each side
    return f"{fence}{pad}{value}{pad}{fence}"


def plain(value: object) -> str:
    """Text for a Plotly trace name or title: Plotly draws <a href>, <b>, <br> there; escaped, they show as typed."""
    return html.escape(str(value), quote=False)


def error_card(title: str, message: str) -> None:
    """`title` is Markdown the caller built (names through text()); `message` is shown as code."""
    st.error(f"**{title}** could not be loaded.\n\n{code(short_paths(message))}\n\n"
             "The other model and the other pages keep working. Retrain it with `python -m core train ...` "
             "or pick another run in the sidebar.", icon=":material/error:")


def encoder_schedule(model_config: dict) -> str:
    """How a GAN run's encoder E was trained, from its model config (configs without the option: alongside G)."""
    n = model_config.get("encoder_epochs", 0)
    if n:
        return (f"trained after the GAN, for {n} epoch{'s' if n > 1 else ''} against the final, fixed generator "
                "(never changing G or D)")
    return ("trained alongside G: one E step after each G step, on that batch's fakes and real digits "
            "(never changing G or D)")


def line_chart(series: list[dict], title: str, x_title: str, y_title: str, height: int = 300) -> go.Figure:
    """series: [{"x": [...], "y": [...], "name": str, "color": str, "dash": "solid"|"dot"}]."""
    fig = go.Figure()
    for s in series:
        few = len(s["x"]) <= MARKER_POINTS  # per-epoch series: one or two epochs must still show
        # numpy arrays, not lists: plotly then copies and sends each as one typed array (base64), where a list
        # is validated, deep-copied and JSON-encoded number by number (most of a chart's server CPU)
        x, y = np.asarray(s["x"], dtype=float), np.asarray(s["y"], dtype=float)  # None -> NaN: a gap, as before
        fig.add_trace(go.Scatter(x=x, y=y, name=plain(s["name"]), mode="lines+markers" if few else "lines",
                                 marker={"size": 6}, line={"color": s.get("color"), "dash": s.get("dash", "solid"),
                                                           "width": 1.8}))
    fig.update_layout(title=chart_title(title), height=height, xaxis_title=x_title, yaxis_title=y_title,
                      **LEGEND_BELOW)
    scrollable(fig)
    ys = [np.asarray(s["y"], dtype=float) for s in series]
    if any(len(y) > FRAME_POINTS for y in ys):  # frame the y axis on what follows the first 2% of a long series
        # (the opening drop would flatten the rest), and on every point of a short one: an overlaid 50-epoch
        # run must stay in view next to an 86-epoch one
        shown = np.concatenate([y[len(y) // FRAME_POINTS:] if len(y) > FRAME_POINTS else y for y in ys])
        shown = shown[np.isfinite(shown)]
        if shown.size:
            lo, hi = float(shown.min()), float(shown.max())
            pad = 0.05 * (hi - lo or abs(hi) or 1.0)
            fig.update_yaxes(range=[lo - pad, hi + pad])
    return fig


MARKER_POINTS = 60  # series this short are drawn with markers
FRAME_POINTS = 50  # a longer series frames the y axis without its first 1/FRAME_POINTS (its opening drop)
# the legend goes under the plot, anchored below the x-axis title (container coordinates, so the plot
# shrinks to make room instead of the legend sliding over the axis title)
LEGEND_BELOW = {"legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0},
                "margin": {"l": 10, "r": 10, "t": TITLE_MARGIN, "b": 10, "autoexpand": True}}


def latent_scatter(coords: np.ndarray, labels: np.ndarray, indices: np.ndarray, class_names: list[str],
                   title: str, select: bool = True) -> go.Figure:
    """2-D map of latent codes coloured by class; hover names the class and the test-set index. `select`: a drag
    draws a lasso; without it a drag does nothing, so a swipe scrolls the page on a phone."""
    fig = go.Figure()
    for k, name in enumerate(class_names):
        m = labels == k
        fig.add_trace(go.Scatter(
            x=coords[m, 0], y=coords[m, 1], mode="markers", name=name,
            marker={"size": 5, "color": CLASS_COLORS[k % 10], "opacity": 0.8},
            customdata=indices[m].tolist(),  # plain ints: hover only; selections map back by point index
            hovertemplate=f"<b>{name}</b><br>test #%{{customdata}}<extra></extra>",
        ))
    fig.update_layout(title=chart_title(title), height=460, margin={"l": 10, "r": 10, "t": TITLE_MARGIN, "b": 10},
                      xaxis={"showticklabels": False}, yaxis={"showticklabels": False},
                      legend={"itemsizing": "constant"}, dragmode="lasso" if select else False)
    return fig


def ring_points(fig: go.Figure, xy: np.ndarray, name: str) -> go.Figure:
    """Circle points of a latent map (those selected on another map); drawn last, so a selection's trace numbers
    still name the classes (`selected_rows` skips this trace)."""
    xy = np.asarray(xy, float)
    fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", name=plain(name), hoverinfo="skip",
                             marker={"size": 9, "color": "rgba(0,0,0,0)", "line": {"width": 1.2, "color": "#111"}}))
    return fig


def selected_rows(points: list[dict], labels: np.ndarray) -> list[int]:
    """Rows of the map's arrays picked by a box/lasso selection on `latent_scatter` (one trace per class).

    Uses each point's trace number and index within the trace, never `customdata`, whose shape in the
    selection event depends on how Plotly serialised it (plotly 7 sends 2-D numpy arrays back as dicts).
    """
    members = {}
    rows = set()
    for p in points:
        k, i = p.get("curve_number"), p.get("point_index", p.get("point_number"))
        if k is None or i is None:
            continue
        if k not in members:
            members[k] = np.flatnonzero(labels == k)
        if 0 <= i < len(members[k]):
            rows.add(int(members[k][i]))
    return sorted(rows)


def bar_chart(x: list, series: list[dict], title: str, y_title: str, reference: float | None = None,
              percent: bool = False) -> go.Figure:
    """Grouped bars with every category labelled on the x axis (long names are tilted, never skipped)."""
    fig = go.Figure([go.Bar(x=list(x), y=s["y"], name=plain(s["name"]), marker_color=s.get("color")) for s in series])
    if reference is not None:  # named in the legend: a label on the line sat under the bars
        fig.add_hline(y=reference, line_dash="dot", line_color="#111")
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line={"dash": "dot", "color": "#111"},
                                 name=f"uniform ({reference:.0%})" if percent else "uniform"))
    long_names = max((len(str(v)) for v in x), default=0) > 3
    fig.update_xaxes(type="category", tickmode="array", tickvals=list(x), ticktext=list(x),
                     tickangle=-35 if long_names else 0, automargin=True)
    if percent:
        fig.update_yaxes(tickformat=".0%")
    fig.update_layout(title=chart_title(title), barmode="group", height=340, yaxis_title=y_title, **LEGEND_BELOW)
    return scrollable(fig)


def metric_cards(rows: list[tuple[str, str, str | None]], per_row: int = 2) -> None:
    """rows: (short label, short value, help with the detail). st.metric cards, two per row by default:
    four cards in half a page's width truncate labels and values at common screen widths."""
    for start in range(0, len(rows), per_row):
        cols = st.columns(per_row)
        for col, (label, value, help_text) in zip(cols, rows[start:start + per_row]):
            col.metric(label, value, help=help_text, border=True)


# --- Explore page -------------------------------------------------------------------------------------
def kl_bars(kl: np.ndarray, activity: np.ndarray, threshold: float, color: str) -> go.Figure:
    """Per-dimension KL (nats) as bars, active units (Cov_x(E_q[z_j]) > threshold) in the model's colour,
    inactive (collapsed) ones grey, their axis labels too (their bars are near zero, too short to see); hover gives
    both numbers."""
    active = np.asarray(activity) > threshold
    dims = [f"z{j}" for j in range(len(kl))]
    labels = [d if a else f'<span style="color:#9ca3af">{d}</span>' for d, a in zip(dims, active)]
    fig = go.Figure(go.Bar(
        x=dims, y=np.asarray(kl, float).tolist(), marker_color=[color if a else "#9ca3af" for a in active],
        customdata=np.asarray(activity, float).tolist(),
        hovertemplate="%{x}: KL %{y:.2f} nats<br>Cov<sub>x</sub>(E<sub>q</sub>[z]) = %{customdata:.3f}<extra></extra>"))
    fig.update_xaxes(type="category", tickangle=0 if len(dims) <= 16 else -90, tickmode="array", tickvals=dims,
                     ticktext=labels)
    fig.update_layout(title=chart_title(f"KL per dimension: {int(active.sum())} of {len(kl)} units active"), height=300,
                      yaxis_title="nats per image", margin={"l": 10, "r": 10, "t": TITLE_MARGIN, "b": 10})
    return scrollable(fig)


def mark_point(fig: go.Figure, xy, name: str, neighbours=None) -> go.Figure:
    """A latent map (`latent_scatter`) with one extra point drawn as a black star, and optionally the
    neighbours that placed it circled."""
    if neighbours is not None and len(neighbours):
        nb = np.asarray(neighbours, float)
        ring = {"size": 11, "color": "rgba(0,0,0,0)", "line": {"width": 1.5, "color": "#111"}}
        fig.add_trace(go.Scatter(x=nb[:, 0], y=nb[:, 1], mode="markers", name="its neighbours", hoverinfo="skip",
                                 marker=ring))
    name = plain(name)
    fig.add_trace(go.Scatter(x=[float(xy[0])], y=[float(xy[1])], mode="markers", name=name,
                             marker={"symbol": "star", "size": 20, "color": "#111",
                                     "line": {"width": 1.5, "color": "#fff"}},
                             hovertemplate=f"<b>{name}</b><extra></extra>"))
    fig.update_layout(height=380, dragmode=False if touch_device() else "pan")
    return fig
