"""Metrics: measured answers to "which model is better at what", from each run's metrics.json."""

import plotly.graph_objects as go
import streamlit as st

from core import paths
from dashboard import components as ui
from dashboard import evaluation, jobs_client, runs, share

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
                  "Share of samples inside the real {noun}s' k-NN feature manifold, k = {knn_k} "
                  "(Kynkäänniemi et al. 2019). A mild blur raises it: real test {noun}s blurred by a Gaussian of "
                  "σ = 1 score higher than sharp ones in the features of two classifiers, a conv net and a dense "
                  "one, while their Fréchet distance, recall and legible share get worse "
                  "(bench/precision_vs_blur.py). Read it with those three"),
    "recall": ("Recall (coverage)", "higher", "Share of real {noun}s inside the samples' k-NN feature manifold"),
    "class_kl_to_uniform": ("Class balance: KL to uniform (nats)", "lower",
                            "KL(histogram of the classifier's predicted classes ‖ uniform): 0 = all classes equally"),
    "legible_share": ("Legible share (confidence > 0.9)", "higher",
                      "Share of samples the classifier reads with top-class probability above 0.9: {noun}s a "
                      "reader would name at once. Broken strokes and hybrids of two classes fall below it"),
    "mean_confidence": ("Mean classifier confidence", "higher",
                        "Mean top-class probability on samples: low = ambiguous shapes (an Inception-score analogue)"),
    "reconstruction_mse": ("Reconstruction MSE (pixels in [0, 1])", "lower",
                           "Pixel mean squared error of reconstructed test {noun}s (VAE: decoder(μ(x)); GAN: G(E(x)))"),
    "neg_elbo": ("−ELBO (nats per image)", "lower",
                 "On dynamically binarized test {noun}s: an upper bound on −log p(x)"),
    "neg_iwae": ("−log p(x), IWAE bound (nats per image)", "lower",
                 "Importance-weighted bound with k samples (Burda et al. 2016): a tighter upper bound on −log p(x)"),
    "nn_dist_samples_to_train": ("Distance to nearest training {noun} (L2, pixels)", "check",
                                 "Mean pixel distance of samples to their nearest training {noun}; the real-data "
                                 "column is the same for unseen test {noun}s. Far below it would mean memorization"),
}
ARROWS = {"lower": "↓ lower", "higher": "↑ higher", "check": "≈ real data"}


def kid_scale(evals: dict) -> float:
    """KID is customarily reported × 10³ when its values are small (Inception features); these classifier
    features give values in the hundreds already, which are shown as they are."""
    values = [abs(ev["metrics"]["kid"]["mean"]) for ev in evals.values() if "kid" in ev["metrics"]]
    return 1e3 if values and max(values) < 1 else 1.0


def floor_cell(key: str, evals: dict, scale: float) -> str:
    for ev in evals.values():
        if key == "nn_dist_samples_to_train" and "nn_dist_test_to_train" in ev["metrics"]:
            return evaluation.number(key, ev["metrics"]["nn_dist_test_to_train"]["mean"])
        ref = ev.get("reference", {}).get(key)
        if ref:
            v = ref["mean"] * (scale if key == "kid" else 1)
            if key == "kid" and v < 0:  # the unbiased estimator dips below 0 when the two sets match
                return f"≈ 0 ({v:.2g}) ¹"
            return f"{v:.2f}" if key == "kid" else evaluation.number(key, v)  # KID's floor is far below 1
    return "—"


evals, classes = {}, {}
for kind in runs.KINDS:
    info = ui.loaded_run(kind)
    if info is None:
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
names = {k: runs.selected(k).name for k in evals}
noun = runs.dataset_record(runs.selected(next(iter(evals))).dataset).noun  # "digit", "item"
differ = evaluation.differing(evals)
if differ:  # each run's own settings, and no ranking between them
    drawn = "; ".join(f"{runs.LABELS[k]} ({ui.text(names[k])}): {evaluation.settings_text(ev['settings'])}"
                      for k, ev in evals.items())
    st.warning(f"These runs were evaluated with different settings ({', '.join(differ)}), so their numbers do not "
               f"compare directly and no ✓ ranks them. {drawn}. Evaluate both the same way (Retrain page or "
               "`python -m core evaluate RUN`) to compare.", icon=":material/warning:")
else:
    drawn = f"Each model draws {evaluation.settings_text(settings)}"
train_images, test_images = settings.get("train_images"), settings.get("test_images")
st.caption(
    (f"{drawn}. " if differ else f"{drawn}, ")
    + ("They are" if differ else "and they are") + " compared with a fixed random subset of "
    f"{train_images:,} **training** {noun}s, in the penultimate-layer features of a classifier trained on the "
    f"same data set (`{settings.get('classifier')}`, test accuracy "
    f"{settings.get('classifier_test_accuracy', float('nan')):.2%}); Inception features mean nothing on 28×28 "
    f"images. The real-data column compares {test_images:,} unseen **test** {noun}s with the same training "
    "subset: the floor a perfect generator would reach. These numbers compare the models here; they are not on "
    "the scale of published FIDs."
    if isinstance(train_images, int) and isinstance(test_images, int) else f"{drawn}.")
collapsed = [k for k, ev in evals.items() if evaluation.collapsed(ev)]
# ✓ ranks models evaluated alike, and never one that collapsed onto a few classes (its precision and
# confidence look excellent: it draws one class well)
ranked = [] if differ else [k for k in evals if k not in collapsed]

scale = kid_scale(evals)
rows = []
for key, (name, direction, _) in ROWS.items():
    vals = {k: ev["metrics"][key] for k, ev in evals.items() if key in ev["metrics"]}
    if not vals:
        continue
    k_scale = scale if key == "kid" else 1.0
    best = None
    candidates = [k for k in ranked if k in vals]
    if len(candidates) >= 2 and direction != "check":
        pick = min if direction == "lower" else max
        best = pick(candidates, key=lambda k: vals[k]["mean"])
    row = {"metric": name.format(noun=noun) + (" × 10³" if key == "kid" and scale != 1 else ""),
           "better": ARROWS[direction]}
    for k in runs.KINDS:
        s = vals.get(k)
        row[runs.LABELS[k]] = "—" if s is None else (
            evaluation.number(key, s["mean"], evaluation.spread(s), scale=k_scale) + (" ✓" if best == k else ""))
    row["real data (floor)"] = floor_cell(key, evals, scale)
    rows.append(row)
memo = {k: ev["memorization"] for k, ev in evals.items() if "memorization" in ev}
MEMO_ROW = f"Samples nearer to training than 99 % of test {noun}s"
if memo:
    row = {"metric": MEMO_ROW, "better": "↓ lower"}
    for k in runs.KINDS:
        row[runs.LABELS[k]] = f"{memo[k]['fraction_samples_below_test_p1']:.2%}" if k in memo else "—"
    row["real data (floor)"] = f"{0.01:.2%}"  # by construction: the 1st percentile of the test digits
    rows.append(row)
st.table(rows)
several = {k for k, ev in evals.items() if len(ev["settings"].get("seeds") or []) > 1}
seeds = "; ".join(f"{runs.LABELS[k]} {', '.join(map(str, evals[k]['settings']['seeds']))}" for k in several) \
    if differ else ", ".join(map(str, settings.get("seeds") or []))
notes = [(f"± is the standard deviation over generator seeds ({seeds}) only (new samples each seed; the training "
          f"subset, the test {noun}s and the classifier stay fixed, so it does not cover their variation). Values "
          "without ± do not depend on the seed" + (" or come from one seed." if len(several) < len(evals) else ".")
          if several else "Each value comes from one seed: no spread over seeds is known.")]
if not differ:
    notes.append("✓ marks the better model where the direction is clear"
                 + (f", among those that did not collapse ({', '.join(runs.LABELS[k] for k in collapsed)} did)."
                    if collapsed else "."))
if "kid" in ROWS and any("kid" in ev["metrics"] for ev in evals.values()):
    notes.append("KID is a squared distance (an MMD²) between the two sets of classifier features under the kernel "
                 "(x·y/D + 1)³, D their size: its value follows the features' scale, which is why models score in "
                 "the hundreds while real test images against the training subset score below 1. Compare it "
                 "between the columns of this table, not with published KIDs (Inception features, often quoted "
                 "× 10³).")
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
                   help="One row per run, section (evaluation, reference = real test images, held_out) and metric: "
                        "mean, std over the seeds and the number of seeds.")
c2.download_button("Metrics (JSON)", data=lambda: share.metrics_json(stored), file_name=f"{stem}.json",
                   mime="application/json", icon=":material/download:", on_click="ignore", key="dl_metrics_json",
                   help="Both runs' metrics.json, with every setting that produced the numbers, under their run names.")
with st.expander("What each row measures"):
    values = {"kid_subsets": "?", "kid_subset_size": "?", "knn_k": "?", "noun": noun}
    values.update({k: f"{v:,}" for k, v in settings.items() if k in values and v is not None})
    lines = [f"- **{name.format(noun=noun)}** ({ARROWS[d]} is better): {what.format(**values)}." if d != "check"
             else f"- **{name.format(noun=noun)}**: {what.format(**values)}." for name, d, what in ROWS.values()]
    if memo:
        lines.append(f"- **{MEMO_ROW}** (↓ lower is better): the share of samples whose nearest training {noun} is "
                     f"nearer than the nearest training {noun} of 99 % of the test {noun}s. Real test {noun}s "
                     "give 1 % by construction; far above it, a model is copying training images.")
    st.markdown("\n".join(lines))

left, right = st.columns(2)
first = next(iter(evals))
series = [{"name": runs.LABELS[k], "y": ev["class_histogram"], "color": ui.COLORS[k]} for k, ev in evals.items()]
counts = {ev["settings"].get("samples") for ev in evals.values()}
of = (f"{counts.pop():,} samples" + (" per model" if len(evals) > 1 else "")
      if len(counts) == 1 and None not in counts else "each model's samples")
left.plotly_chart(ui.bar_chart(classes[first], series, f"Predicted class of {of}", "share of samples",
                               reference=0.1, percent=True), key="coverage")
for k, ev in evals.items():
    hist, names, n = ev["class_histogram"], classes[k], len(ev["class_histogram"])
    missing = evaluation.missing(ev)
    starved = [c for c in ev.get("starved_classes", []) if c not in missing]
    parts = [f"missing (under {0.1 / n:.0%} of samples): " + ", ".join(f"{names[c]} {hist[c]:.1%}" for c in missing),
             f"starved (under {0.5 / n:.0%}): " + ", ".join(f"{names[c]} {hist[c]:.1%}" for c in starved)]
    parts = [p for p, flagged in zip(parts, (missing, starved)) if flagged]
    if evaluation.collapsed(ev):
        top = max(range(n), key=hist.__getitem__)
        left.error(f"**{runs.LABELS[k]}**: {len(missing)} of {n} classes missing (each under {0.1 / n:.0%} of "
                   f"samples); {hist[top]:.0%} of its samples are read as {names[top]}. This is mode collapse: the "
                   "model draws a few classes only, so its precision and confidence say nothing about the rest.",
                   icon=":material/error:")
    elif parts:
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
                             name=f"real test {noun}s", marker={"size": 12, "color": "#444", "symbol": "diamond"}))
fig.update_layout(title=ui.chart_title("Precision (fidelity) vs recall (coverage)"), height=340, xaxis_title="recall",
                  yaxis_title="precision", xaxis_range=[-0.05, 1.05], yaxis_range=[-0.05, 1.08], **ui.LEGEND_BELOW)
fig.update_traces(cliponaxis=False)  # a dot at a corner, e.g. (0, 1) for a collapsed model, is drawn whole
right.plotly_chart(ui.scrollable(fig), key="pr")

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
