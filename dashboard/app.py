"""Entry point: `streamlit run dashboard/app.py`. Navigation plus the run picker every page shares."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # make `dashboard` and `core` importable

from dashboard import data  # noqa: E402

st.set_page_config(page_title="GAN vs VAE", page_icon=":material/compare:", layout="wide")
HERE = Path(__file__).parent


def pick(kind: str, dataset: str | None) -> None:
    """Sidebar select box for one model kind; defaults to the committed <dataset>-<kind> run."""
    runs = data.runs_of(kind, dataset)
    key = f"pick_{kind}"
    paths = [r.path for r in runs]
    if not paths:
        st.sidebar.warning(f"No {data.LABELS[kind]} run for this dataset.")
        st.session_state.pop(key, None)
        return
    if st.session_state.get(key) not in paths:
        default = next((r.path for r in runs if r.name == f"{dataset}-{kind}"), paths[0])
        st.session_state[key] = default
    labels = {r.path: r.label + (" ⚠" if r.error else "") for r in runs}
    st.sidebar.selectbox(f"{data.LABELS[kind]} run", paths, key=key, format_func=labels.get)


pages = {
    "Compare": [
        st.Page(HERE / "views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(HERE / "views/samples.py", title="Samples", icon=":material/grid_view:"),
        st.Page(HERE / "views/latent.py", title="Latent space", icon=":material/scatter_plot:"),
        st.Page(HERE / "views/curves.py", title="Training curves", icon=":material/show_chart:"),
        st.Page(HERE / "views/metrics.py", title="Metrics", icon=":material/leaderboard:"),
    ],
    "Train": [st.Page(HERE / "views/retrain.py", title="Retrain", icon=":material/model_training:")],
    "Learn": [st.Page(HERE / "views/concepts.py", title="Concepts", icon=":material/school:")],
}

for message in data.hub_messages():
    st.sidebar.caption(message)

if not any(r.model in data.KINDS for r in data.catalog()):
    pages["Compare"] = [st.Page(HERE / "views/no_runs.py", title="Get started", icon=":material/info:",
                                default=True)]
else:
    st.sidebar.title("GAN vs VAE")
    options = data.datasets()
    dataset = st.sidebar.selectbox("Dataset", options, key="dataset",
                                   index=options.index("mnist") if "mnist" in options else 0)
    pick("vae", dataset)
    pick("gan", dataset)
    st.sidebar.caption(f"Runs from `{data.checkpoint_dir().name}/` and `{data.runs_dir().name}/`.")

st.navigation(pages).run()
