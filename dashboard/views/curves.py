"""Training curves: the VAE's terms of the ELBO and the GAN's two players, per step and per epoch."""

from pathlib import Path

import streamlit as st

from dashboard import components as ui
from dashboard import jobs_client, runs, series, share

st.title("Training curves")
st.info("**What to look for.** The VAE's −ELBO falls steadily and flattens: one objective, one optimiser. "
        "The GAN's D and G losses do not fall: after a few swings they jitter around a balance as each player "
        "adapts to the other, and mean D(x) and D(G(z)) settle between 0 and 1 (both at 1/2 would be the "
        "game's optimum; Concepts quotes the picked run's values). A D loss sliding to 0 while the "
        "G loss climbs (D(G(z)) near 0) means D has won and G learns little.",
        icon=":material/lightbulb:")
c1, c2 = st.columns(2)
VIEWS = ["per step", "share of training", "per epoch"]  # the share: runs of any length side by side
view = share.widget(c1.radio, "x axis", VIEWS, horizontal=True, key="curve_view", default="per step",
                    parse=share.choice(VIEWS),
                    help="Share of training: each run's steps as a percentage of its own, so a short run overlaid "
                         "on a long one is not squeezed against x = 0.")
smoothing = share.widget(c2.slider, "Smoothing", 0.0, 0.99, step=0.01, key="curve_smooth", disabled=view == "per epoch",
                         default=0.9, parse=share.number(0.0, 0.99, 0.01), encode=share.fmt_number,
                         help="Exponential moving average of the per-step values (0 = raw).")

DASHES = ["solid", "dot", "dash", "dashdot"]

for kind in runs.KINDS:
    choices = [r for r in runs.runs_of(kind) if not r.error]
    st.header(runs.LABELS[kind])
    if not choices:
        st.warning(f"No loadable {runs.LABELS[kind]} run.")
        continue
    picked = runs.selected(kind)
    default = [picked.path] if picked and not picked.error else [choices[0].path]
    names = {r.path: jobs_client.display_name(r) for r in choices}
    chosen = share.widget(st.multiselect, "Runs to overlay", list(names), format_func=names.get, key=f"overlay_{kind}",
                          default=default, parse=share.names(choices),
                          encode=lambda paths: ",".join(Path(p).name for p in paths),  # folder names, not paths
                          max_len=256 * len(choices))  # every run's folder name (at most 255 characters) and a comma
    lengths = [len(runs.history(p)["steps"].get("step", [])) for p in chosen]
    if view == "per step" and lengths and min(lengths) and max(lengths) > 10 * min(lengths):
        st.caption(f"These runs differ more than tenfold in length ({min(lengths):,} and {max(lengths):,} steps): "
                   "the x axis *share of training* draws each over its own length.")
    plots = runs.family(kind).curves  # the panels its record names
    cols = st.columns(max(1, len(plots)))
    for col, (title, y_title, keys) in zip(cols, plots):
        traces = []
        for i, path in enumerate(chosen):
            h = runs.history(path)
            name = names[path]
            for j, (key, suffix) in enumerate(keys):
                color = ui.CLASS_COLORS[(i * len(keys) + j) % 10]
                if view != "per epoch" and key in h["steps"]:
                    x, y = series.step_series(path, key, smoothing)  # smoothed + downsampled, cached per run
                    if view == "share of training" and len(x):
                        x = [100 * v / max(x[-1], 1) for v in x]
                    traces.append({"x": x, "y": y, "name": name + suffix, "color": color})
                elif view == "per epoch":
                    for part, dash in (("train", "solid"), ("test", "dot")):
                        if f"{part}/{key}" in h["epochs"]:
                            traces.append({"x": h["epochs"]["epoch"], "y": h["epochs"][f"{part}/{key}"],
                                           "name": f"{name}{suffix} ({part})", "color": color, "dash": dash})
        x_title = {"per step": "step", "share of training": "% of the run's steps"}.get(view, "epoch")
        col.plotly_chart(ui.line_chart(traces, title, x_title, y_title), key=f"chart_{kind}_{title}")

# --- quality over training: the per-epoch check (2,000 samples, the data set's classifier) --------------
st.header("Quality over training")
st.caption("After every epoch the trainer draws 2,000 samples and scores them against 2,000 training images in "
           "the evaluation classifier's features (the Metrics page's measures, on a smaller sample: Fréchet "
           "distance reads higher than there). Both models on shared axes: when did each get good, and does "
           "the GAN's quality swing from epoch to epoch?")
QUALITY = [("frechet_distance", "Fréchet distance ↓", "distance"), ("precision", "Precision ↑", "fraction"),
           ("recall", "Recall ↑", "fraction"), ("class_kl_to_uniform", "Class balance: KL to uniform ↓", "nats")]
axis = share.widget(st.radio, "x axis", ["epoch", "training minutes"], horizontal=True, key="quality_axis",
                    default="epoch", parse=share.choice(["epoch", "training minutes"]))
logged, missing = [], []
for kind in runs.KINDS:
    picked = runs.selected(kind)
    if picked is None or picked.error:
        continue
    h = runs.history(picked.path)["epochs"]
    (logged if "quality/frechet_distance" in h else missing).append((kind, picked, h))
for kind, picked, _ in missing:  # say why, from the run's config.json, never a guess
    cfg = runs.config(picked.path)
    if "quality_check" not in cfg:
        why = "it was trained before the trainer had the check"
    elif runs.classifier_path(picked.dataset) is None:
        why = f"this server has no {runs.dataset_record(picked.dataset).label} classifier to run it with"
    else:
        why = ("it was trained without it: the Retrain page leaves the check out to keep short runs short; "
               "`python -m core train` runs it when the data set's classifier exists")
    st.caption(f"{runs.LABELS[kind]} run {ui.text(jobs_client.display_name(picked))}: no per-epoch quality log, "
               f"because {why}.")
if logged:
    best = {kind: runs.config(picked.path).get("best_epoch") for kind, picked, _ in logged}
    for row in (QUALITY[:2], QUALITY[2:]):
        for col, (key, title, y_title) in zip(st.columns(2), row):
            traces = []
            for i, (kind, picked, h) in enumerate(logged):
                x = h["epoch"] if axis == "epoch" else [t / 60 for t in h["time_s"]]
                name = f"{runs.LABELS[kind]} ({jobs_client.display_name(picked)})"
                traces.append({"x": x, "y": h[f"quality/{key}"], "name": name,
                               "color": ui.CLASS_COLORS[i * 3 % 10]})
            fig = ui.line_chart(traces, title, axis, y_title).update_layout(showlegend=True)  # name even one model
            col.plotly_chart(fig, key=f"quality_{key}")
    kept = [f"{runs.LABELS[k]}: epoch {e}" for k, e in best.items() if e]
    if kept:
        st.caption("Kept weights (the epoch with the lowest per-epoch Fréchet distance): " + "; ".join(kept) + ".")
