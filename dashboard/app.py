"""Entry point: `streamlit run dashboard/app.py`. Navigation plus the run picker every page shares."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import paths
from dashboard import components as ui
from dashboard import jobs_client, runs, share, uploads

HERE = Path(__file__).parent
# a local favicon: a ":material/...:" icon would be fetched from fonts.gstatic.com (the app works offline)
st.set_page_config(page_title="GAN vs VAE", page_icon=str(HERE / "favicon.png"), layout="wide")
st.html(ui.PHONE_CSS)  # a style sheet only: takes no space on the page


def broken_runs_card() -> None:
    """Runs whose config.json fails the check cannot go in a picker: one error card lists them on every page."""
    broken = runs.broken_runs()
    if broken:
        lines = [f"- {ui.code(r.name)}: {ui.code(r.error[:300])}" for r in broken[:20]]
        more = f"\n\n…and {len(broken) - 20} more." if len(broken) > 20 else ""
        st.sidebar.error(f"**{len(broken)} run(s) could not be loaded**\n\n" + "\n".join(lines) + more,
                         icon=":material/error:")


def pick(kind: str, dataset: str | None) -> None:
    """Sidebar select box for one model kind; defaults to the committed <dataset>-<kind> run."""
    choices = runs.runs_of(kind, dataset)
    key = f"pick_{kind}"
    options = [r.path for r in choices]
    if not options:
        st.sidebar.warning(f"No {runs.LABELS[kind]} run for this dataset.")
        st.session_state.pop(key, None)
        return
    if st.session_state.get(key) not in options:  # first render, or another data set: the URL's run, else the default
        shared = share.from_url(kind, share.choice(choices, names=lambda r: r.name))  # ?vae=<run folder name>
        default = next((r.path for r in choices if r.name == f"{dataset}-{kind}"),
                       next((r.path for r in choices if not r.error), options[0]))
        st.session_state[key] = shared.path if shared else default
    labels = {r.path: jobs_client.display_name(r) + (" ⚠" if r.error else "") for r in choices}
    now = next(r for r in choices if r.path == st.session_state[key])
    st.sidebar.selectbox(f"{runs.LABELS[kind]} run", options, key=key, format_func=labels.get,
                         help=f"{ui.text(runs.run_summary(now.path, now.name))}. Run folder: "
                              + ui.code(f"{Path(now.path).parent.name}/{now.name}"))
    share.publish(key, None, param=kind, encode=lambda path: Path(path).name)  # the folder name, never the path


pages = {
    "Compare": [
        st.Page(HERE / "views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page(HERE / "views/samples.py", title="Samples", icon=":material/grid_view:"),
        st.Page(HERE / "views/latent.py", title="Latent space", icon=":material/scatter_plot:"),
        st.Page(HERE / "views/curves.py", title="Training curves", icon=":material/show_chart:"),
        st.Page(HERE / "views/metrics.py", title="Metrics", icon=":material/leaderboard:"),
        st.Page(HERE / "views/runs.py", title="Runs", icon=":material/table_rows:"),
    ],
    "Explore": [st.Page(HERE / "views/explore.py", title="Explore", icon=":material/draw:")],
    "Train": [st.Page(HERE / "views/retrain.py", title="Retrain", icon=":material/model_training:")],
    "Learn": [st.Page(HERE / "views/concepts.py", title="Concepts", icon=":material/school:")],
}

uploads.start_sweeper()  # once per server: the uploads of closed tabs are freed
with ui.guarded("in the sidebar"):
    for message in runs.hub_messages():
        st.sidebar.caption(ui.text(ui.short_paths(message)))  # "pulled USER/run into checkpoints/run": no machine paths
    broken_runs_card()

    if not runs.datasets():  # no loadable run of a compared family
        pages["Compare"] = [st.Page(HERE / "views/no_runs.py", title="Get started", icon=":material/info:",
                                    default=True)]
    else:
        st.sidebar.title("GAN vs VAE")
        options = runs.datasets()
        # A visitor's run that just finished on the Retrain page (one run), or the runs picked on the Runs page
        # (a list): select its data set and the runs themselves.
        wanted = st.session_state.pop("select_run", None)
        for run in [wanted] if isinstance(wanted, dict) else wanted or []:
            if run["dataset"] in options:
                st.session_state["dataset"] = run["dataset"]
                st.session_state[f"pick_{run['kind']}"] = run["path"]
        if st.session_state.get("dataset") not in options:  # runs removed since: start over (from the URL)
            st.session_state.pop("dataset", None)
        dataset = share.widget(st.sidebar.selectbox, "Dataset", options, key="dataset",
                               default="mnist" if "mnist" in options else options[0], parse=share.choice(options))
        for kind in runs.KINDS:  # one picker per compared family (core.families)
            pick(kind, dataset)
        st.sidebar.caption(f"Runs from `{paths.checkpoints_dir().name}/` and `{paths.runs_dir().name}/`.")

page = st.navigation(pages)
with ui.guarded("on this page"):
    page.run()
