"""Reusable widgets: image grids, Plotly charts and cards. No disk access, no torch."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

COLORS = {"vae": "#2563eb", "gan": "#dc2626"}
# ten well-separated colours for digit classes (Plotly's D3 palette)
CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def image_grid(img: np.ndarray, caption: str | None = None) -> None:
    """Show one uint8 grid image at its native (already upscaled) size."""
    st.image(img, caption=caption, clamp=True, width="content")


def error_card(title: str, message: str) -> None:
    st.error(f"**{title}** could not be loaded.\n\n`{message}`\n\n"
             "The other model and the other pages keep working. Retrain it with `python -m core train ...` "
             "or pick another run in the sidebar.", icon=":material/error:")


def ema(values: list[float], smoothing: float) -> np.ndarray:
    """Exponential moving average (TensorBoard-style, bias-corrected); smoothing 0 = raw values."""
    out, avg = np.empty(len(values)), 0.0
    for i, v in enumerate(values):
        avg = smoothing * avg + (1 - smoothing) * v
        out[i] = avg / (1 - smoothing ** (i + 1)) if smoothing > 0 else v
    return out


def line_chart(series: list[dict], title: str, x_title: str, y_title: str, height: int = 300) -> go.Figure:
    """series: [{"x": [...], "y": [...], "name": str, "color": str, "dash": "solid"|"dot"}]."""
    fig = go.Figure()
    for s in series:
        fig.add_trace(go.Scatter(x=s["x"], y=s["y"], name=s["name"], mode="lines",
                                 line={"color": s.get("color"), "dash": s.get("dash", "solid"), "width": 1.8}))
    fig.update_layout(title=title, height=height, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis_title=x_title, yaxis_title=y_title, legend={"orientation": "h", "y": -0.25})
    tails = [np.asarray(s["y"], dtype=float)[len(s["y"]) // 50:] for s in series if len(s["y"]) > 50]
    if tails:  # frame the y axis on what follows the first 2% of steps: the opening drop would flatten the rest
        lo, hi = min(t.min() for t in tails), max(t.max() for t in tails)
        pad = 0.05 * (hi - lo or abs(hi) or 1.0)
        fig.update_yaxes(range=[lo - pad, hi + pad])
    return fig


def latent_scatter(coords: np.ndarray, labels: np.ndarray, indices: np.ndarray, class_names: list[str],
                   title: str) -> go.Figure:
    """2-D map of latent codes coloured by class; hover names the class and the test-set index."""
    fig = go.Figure()
    for k, name in enumerate(class_names):
        m = labels == k
        fig.add_trace(go.Scatter(
            x=coords[m, 0], y=coords[m, 1], mode="markers", name=name,
            marker={"size": 5, "color": CLASS_COLORS[k % 10], "opacity": 0.8},
            customdata=np.stack([indices[m], np.nonzero(m)[0]], axis=1),
            hovertemplate=f"<b>{name}</b><br>test #%{{customdata[0]}}<extra></extra>",
        ))
    fig.update_layout(title=title, height=460, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis={"showticklabels": False}, yaxis={"showticklabels": False},
                      legend={"itemsizing": "constant"}, dragmode="lasso")
    return fig


def bar_chart(x: list, series: list[dict], title: str, y_title: str, reference: float | None = None) -> go.Figure:
    fig = go.Figure([go.Bar(x=x, y=s["y"], name=s["name"], marker_color=s.get("color")) for s in series])
    if reference is not None:
        fig.add_hline(y=reference, line_dash="dot", annotation_text="uniform")
    fig.update_layout(title=title, barmode="group", height=320, yaxis_title=y_title,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def metric_cards(rows: list[tuple[str, str, str | None]]) -> None:
    """rows: (label, value, help). Shown as st.metric cards, four per row."""
    for start in range(0, len(rows), 4):
        cols = st.columns(4)
        for col, (label, value, help_text) in zip(cols, rows[start:start + 4]):
            col.metric(label, value, help=help_text, border=True)
