"""Metrics: measured answers to "which model is better at what", from each run's metrics.json."""

import plotly.graph_objects as go
import streamlit as st

from core import paths
from dashboard import components as ui
from dashboard import jobs_client, runs, share

st.title("Metrics")

# key -> (name with unit, direction, what it measures). Direction: "lower"/"higher" is better, or "check"
# for the memorization row, where samples should sit about as far from the training set as real test digits.
ROWS = {
    "frechet_distance": ("Fréchet distance (classifier features)", "lower",
                         "Fréchet distance between Gaussians fitted to sample and real features: an FID analogue"),
    "kid": ("Kernel distance, KID (classifier features)", "lower",
            "Unbiased MMD² with a cubic polynomial kernel (Bińkowski et al. 2018), mean over {kid_subsets} random "
            "subsets of {kid_subset_size} images"),
    "precision": ("Precision (fidelity)", "higher",
                  "Share of samples inside the real digits' k-NN feature manifold, k = {knn_k} "
                  "(Kynkäänniemi et al. 2019). Blur raises it: real test digits blurred by a 3×3 Gaussian score "
                  "higher than sharp ones (bench/precision_vs_blur.py), so read it with Fréchet distance and recall"),
    "recall": ("Recall (coverage)", "higher", "Share of real digits inside the samples' k-NN feature manifold"),
    "class_kl_to_uniform": ("Class balance: KL to uniform (nats)", "lower",
                            "KL(histogram of the classifier's predicted classes ‖ uniform): 0 = all classes equally"),
    "legible_share": ("Legible share (confidence > 0.9)", "higher",
                      "Share of samples the classifier reads with top-class probability above 0.9: digits a "
                      "reader would name at once. Broken loops and hybrids of two digits fall below it"),
    "mean_confidence": ("Mean classifier confidence", "higher",
                        "Mean top-class probability on samples: low = ambiguous shapes (an Inception-score analogue)"),
    "reconstruction_mse": ("Reconstruction MSE (pixels in [0, 1])", "lower",
                           "Pixel mean squared error of reconstructed test digits (VAE: decoder(μ(x)); GAN: G(E(x)))"),
    "neg_elbo": ("−ELBO (nats per image)", "lower",
                 "On dynamically binarized test digits: an upper bound on −log p(x)"),
    "neg_iwae": ("−log p(x), IWAE bound (nats per image)", "lower",
                 "Importance-weighted bound with k samples (Burda et al. 2016): a tighter upper bound on −log p(x)"),
    "nn_dist_samples_to_train": ("Distance to nearest training digit (L2, pixels)", "check",
                                 "Mean pixel distance of samples to their nearest training digit; the real-data "
                                 "column is the same for unseen test digits. Far below it would mean memorization"),
}
ARROWS = {"lower": "↓ lower", "higher": "↑ higher", "check": "≈ real data"}


def kid_scale(evals: dict) -> float:
    """KID is customarily reported × 10³ when its values are small (Inception features); these classifier
    features give values in the hundreds already, which are shown as they are."""
    values = [abs(ev["metrics"]["kid"]["mean"]) for ev in evals.values() if "kid" in ev["metrics"]]
    return 1e3 if values and max(values) < 1 else 1.0


def fmt(value: float, std: float | None = None) -> str:
    text = f"{value:.4g}"
    return text if std is None else f"{text} ± {std:.2g}"


def floor_cell(key: str, evals: dict, scale: float) -> str:
    for ev in evals.values():
        if key == "nn_dist_samples_to_train" and "nn_dist_test_to_train" in ev["metrics"]:
            return fmt(ev["metrics"]["nn_dist_test_to_train"]["mean"])
        ref = ev.get("reference", {}).get(key)
        if ref:
            v = ref["mean"] * (scale if key == "kid" else 1)
            if key == "kid" and v < 0:  # the unbiased estimator dips below 0 when the two sets match
                return f"≈ 0 ({v:.2g}) ¹"
            return fmt(v)
    return "—"


evals, classes = {}, {}
for kind in runs.KINDS:
    info = runs.selected(kind)
    error = runs.check_run(info)
    if error:
        ui.error_card(f"{runs.LABELS[kind]} run {ui.text(info.name) if info else ''}", error)
        continue
    ev = (runs.metrics(info.path) or {}).get("evaluation")
    if ev:
        evals[kind], classes[kind] = ev, runs.classes(info.path)
    else:
        retrained = jobs_client.run_exists(info.name) and str(paths.runs_dir() / info.name) == info.path
        st.info(f"{runs.LABELS[kind]} run {ui.text(info.name)} has not been evaluated: "
                + ("press **Evaluate** on the Retrain page after training it (2,000 samples, one seed), or run "
                   if retrained else "") + ui.code(f"python -m core evaluate {info.name}") + ".")
if not evals:
    st.stop()

settings = next(iter(evals.values()))["settings"]
st.caption(
    f"Each model draws {settings.get('samples'):,} samples per seed, and they are compared with a fixed random "
    f"subset of {settings.get('train_images'):,} **training** digits, in the penultimate-layer features of a "
    f"classifier trained on the same data set (`{settings.get('classifier')}`, test accuracy "
    f"{settings.get('classifier_test_accuracy', float('nan')):.2%}); Inception features mean nothing on 28×28 "
    f"digits. The real-data column compares {settings.get('test_images'):,} unseen **test** digits with the "
    "same training subset: the floor a perfect generator would reach. These numbers compare the models here; "
    "they are not on the scale of published FIDs.")

scale = kid_scale(evals)
rows = []
for key, (name, direction, _) in ROWS.items():
    vals = {k: ev["metrics"][key] for k, ev in evals.items() if key in ev["metrics"]}
    if not vals:
        continue
    k_scale = scale if key == "kid" else 1.0
    best = None
    if len(vals) > 1 and direction != "check":
        pick = min if direction == "lower" else max
        best = pick(vals, key=lambda k: vals[k]["mean"])
    row = {"metric": name + (" × 10³" if key == "kid" and scale != 1 else ""), "better": ARROWS[direction]}
    for k in runs.KINDS:
        s = vals.get(k)
        row[runs.LABELS[k]] = "—" if s is None else (
            fmt(s["mean"] * k_scale, s["std"] * k_scale if len(s.get("values", [0, 0])) > 1 else None)
            + (" ✓" if best == k else ""))
    row["real data (floor)"] = floor_cell(key, evals, scale)
    rows.append(row)
memo = {k: ev["memorization"] for k, ev in evals.items() if "memorization" in ev}
if memo:
    row = {"metric": "Samples nearer to training than 99 % of test digits", "better": "↓ lower"}
    for k in runs.KINDS:
        row[runs.LABELS[k]] = f"{memo[k]['fraction_samples_below_test_p1']:.2%}" if k in memo else "—"
    row["real data (floor)"] = f"{0.01:.2%}"  # by construction: the 1st percentile of the test digits
    rows.append(row)
st.table(rows)
seeds = settings.get("seeds")
notes = [f"± is the standard deviation over generator seeds {seeds} only (new samples each seed; the training "
         "subset, the test digits and the classifier stay fixed, so it does not cover their variation). Values "
         "without ± do not depend on the seed. ✓ marks the better model where the direction is clear."]
if any(ev.get("reference", {}).get("kid", {}).get("mean", 0) < 0 for ev in evals.values()):
    notes.append("¹ KID is an unbiased estimate: for two samples of the same distribution it scatters around 0 "
                 "and can come out slightly negative.")
st.caption(" ".join(notes))
picked = {k: runs.selected(k) for k in evals}
stored = {info.name: runs.metrics(info.path) for info in picked.values()}  # each run's metrics.json as it is
stem = share.safe_name("metrics-" + "-".join(stored))
c1, c2, _ = st.columns([1, 1, 3])
c1.download_button("Metrics (CSV)", data=lambda: share.metrics_csv(stored), file_name=f"{stem}.csv", mime="text/csv",
                   icon=":material/download:", on_click="ignore", key="dl_metrics_csv",
                   help="One row per run, section (evaluation, reference = real test digits, held_out) and metric: "
                        "mean, std over the seeds and the number of seeds.")
c2.download_button("Metrics (JSON)", data=lambda: share.metrics_json(stored), file_name=f"{stem}.json",
                   mime="application/json", icon=":material/download:", on_click="ignore", key="dl_metrics_json",
                   help="Both runs' metrics.json, with every setting that produced the numbers, under their run names.")
with st.expander("What each row measures"):
    values = {"kid_subsets": "?", "kid_subset_size": "?", "knn_k": "?"}
    values.update({k: f"{v:,}" for k, v in settings.items() if k in values and v is not None})
    st.markdown("\n".join(f"- **{name}** ({ARROWS[d]} is better): {what.format(**values)}." if d != "check" else
                          f"- **{name}**: {what}." for name, d, what in ROWS.values()))

left, right = st.columns(2)
first = next(iter(evals))
series = [{"name": runs.LABELS[k], "y": ev["class_histogram"], "color": ui.COLORS[k]} for k, ev in evals.items()]
left.plotly_chart(ui.bar_chart(classes[first], series, f"Predicted class of {settings.get('samples'):,} samples",
                               "share of samples", reference=0.1, percent=True), key="coverage")
for k, ev in evals.items():
    hist, names, n = ev["class_histogram"], classes[k], len(ev["class_histogram"])
    missing = ev.get("missing_classes", [])
    starved = [c for c in ev.get("starved_classes", []) if c not in missing]
    parts = [f"missing (under {0.1 / n:.0%} of samples): " + ", ".join(f"{names[c]} {hist[c]:.1%}" for c in missing),
             f"starved (under {0.5 / n:.0%}): " + ", ".join(f"{names[c]} {hist[c]:.1%}" for c in starved)]
    parts = [p for p, flagged in zip(parts, (missing, starved)) if flagged]
    if parts:
        left.warning(f"**{runs.LABELS[k]}**, classes {'; '.join(parts)}. A balanced model gives each "
                     f"{1 / n:.0%}: this is partial mode dropping.")

fig = go.Figure()
for k, ev in evals.items():
    p, r = ev["metrics"].get("precision"), ev["metrics"].get("recall")
    if p and r:
        fig.add_trace(go.Scatter(x=[r["mean"]], y=[p["mean"]], mode="markers", name=runs.LABELS[k],
                                 error_x={"array": [r["std"]]}, error_y={"array": [p["std"]]},
                                 marker={"size": 14, "color": ui.COLORS[k]}))
ref = next(iter(evals.values())).get("reference", {})
if "precision" in ref and "recall" in ref:
    fig.add_trace(go.Scatter(x=[ref["recall"]["mean"]], y=[ref["precision"]["mean"]], mode="markers",
                             name="real test digits", marker={"size": 12, "color": "#444", "symbol": "diamond"}))
fig.update_layout(title="Precision (fidelity) vs recall (coverage)", height=340, xaxis_title="recall",
                  yaxis_title="precision", xaxis_range=[0, 1.05], yaxis_range=[0, 1.05], **ui.LEGEND_BELOW)
right.plotly_chart(fig, key="pr")

st.header("Memorization check: samples and their nearest training images")
cols = st.columns(len(runs.KINDS))
for col, kind in zip(cols, runs.KINDS):
    info = runs.selected(kind)
    png = runs.nearest_png(info.path) if kind in evals else None
    with col:
        st.markdown(f"**{runs.LABELS[kind]}**: top row samples, bottom row nearest training image (L2)")
        if png:
            st.image(png, width="stretch")
            share.download_file(png, f"{info.name}-nearest.png", key=f"dl_nearest_{kind}")
        else:
            st.info("No nearest-neighbour gallery in this run.")
