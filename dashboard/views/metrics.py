"""Metrics: measured answers to "which model is better at what", from each run's metrics.json."""

import plotly.graph_objects as go
import streamlit as st

from dashboard import components as ui
from dashboard import data

st.title("Metrics")
st.caption("Distribution metrics use the penultimate layer of a classifier trained on the same data set: "
           "Inception features mean nothing on 28×28 digits, and a data set's own classifier is the accepted "
           "substitute. So these numbers compare the two models here; they are not comparable with published FIDs.")

MEANING = {
    "frechet_distance": "Fréchet distance between Gaussians fitted to sample and test features (FID analogue)",
    "kid": "Kernel inception distance analogue: unbiased MMD², polynomial kernel",
    "precision": "Share of samples inside the real data's k-NN manifold: fidelity (Kynkäänniemi et al. 2019)",
    "recall": "Share of real images inside the samples' k-NN manifold: coverage",
    "class_kl_to_uniform": "KL(predicted-class histogram ‖ uniform): 0 = all classes equally often",
    "mean_confidence": "Mean top-class probability of the classifier on samples (Inception-score analogue)",
    "reconstruction_mse": "Pixel MSE of reconstructions of test digits (GAN: G(E(x)))",
    "neg_elbo": "−ELBO on dynamically binarized test digits (nats): an upper bound on −log p(x)",
    "neg_iwae": "IWAE bound, k samples (Burda et al. 2016): a tighter upper bound on −log p(x)",
    "nn_dist_samples_to_train": "Mean L2 distance of each sample to its nearest training image",
    "nn_dist_test_to_train": "The same for held-out test digits: samples much closer than this = memorization",
}

evals = {}
for kind in data.KINDS:
    info = data.selected(kind)
    error = data.check_run(info)
    if error:
        ui.error_card(f"{data.LABELS[kind]} run {info.name if info else ''}", error)
        continue
    ev = (data.metrics(info.path) or {}).get("evaluation")
    if ev:
        evals[kind] = ev
    else:
        st.info(f"{data.LABELS[kind]} run {info.name} has not been evaluated: "
                f"`python -m core evaluate {info.name}`.")
if not evals:
    st.stop()

names = [m for m in MEANING if any(m in ev["metrics"] for ev in evals.values())]
rows = []
for m in names:
    lower = next(ev.get("lower_is_better", {}).get(m) for ev in evals.values() if m in ev["metrics"])
    vals = {k: ev["metrics"][m]["mean"] for k, ev in evals.items() if m in ev["metrics"]}
    best = (min if lower else max)(vals, key=vals.get) if len(vals) == 2 and m not in (
        "nn_dist_samples_to_train", "nn_dist_test_to_train") else None
    row = {"metric": m, "better": "lower" if lower else "higher"}
    for k in data.KINDS:
        if k in evals and m in evals[k]["metrics"]:
            s = evals[k]["metrics"][m]
            row[data.LABELS[k]] = f"{s['mean']:.4g} ± {s['std']:.2g}" + (" ✓" if best == k else "")
        else:
            row[data.LABELS[k]] = "—"
    ref = next((ev.get("reference", {}).get(m) for ev in evals.values() if ev.get("reference", {}).get(m)), None)
    row["real data (floor)"] = f"{ref['mean']:.4g}" if ref else "—"
    row["meaning"] = MEANING[m]
    rows.append(row)
st.dataframe(rows, hide_index=True, width="stretch", height=36 * (len(rows) + 1) + 4)
settings = next(iter(evals.values()))["settings"]
st.caption(f"Mean ± standard deviation over seeds {settings.get('seeds')}; {settings.get('samples')} samples per seed; "
           f"classifier `{settings.get('classifier')}` (test accuracy "
           f"{settings.get('classifier_test_accuracy', float('nan')):.2%}). ✓ marks the better model.")

left, right = st.columns(2)
classes = data.classes(data.selected(next(iter(evals))).path)
series = [{"name": data.LABELS[k], "y": ev["class_histogram"], "color": ui.COLORS[k]} for k, ev in evals.items()]
left.plotly_chart(ui.bar_chart(classes, series, "Predicted class of 10,000 samples", "fraction", reference=0.1),
                  key="coverage")
for k, ev in evals.items():
    flagged = ev.get("missing_classes", []) + ev.get("starved_classes", [])
    if flagged:
        left.warning(f"{data.LABELS[k]}: missing {ev.get('missing_classes')} and starved "
                     f"{ev.get('starved_classes')} classes (mode dropping).")
fig = go.Figure()
for k, ev in evals.items():
    p, r = ev["metrics"].get("precision"), ev["metrics"].get("recall")
    if p and r:
        fig.add_trace(go.Scatter(x=[r["mean"]], y=[p["mean"]], mode="markers+text", text=[data.LABELS[k]],
                                 textposition="top center", name=data.LABELS[k],
                                 error_x={"array": [r["std"]]}, error_y={"array": [p["std"]]},
                                 marker={"size": 14, "color": ui.COLORS[k]}))
ref = next(iter(evals.values())).get("reference", {})
if "precision" in ref and "recall" in ref:
    fig.add_trace(go.Scatter(x=[ref["recall"]["mean"]], y=[ref["precision"]["mean"]], mode="markers+text",
                             text=["real test data"], textposition="bottom center", name="real data",
                             marker={"size": 12, "color": "#444", "symbol": "diamond"}))
fig.update_layout(title="Precision (fidelity) vs recall (coverage)", height=320, xaxis_title="recall",
                  yaxis_title="precision", xaxis_range=[0, 1.05], yaxis_range=[0, 1.05],
                  margin={"l": 10, "r": 10, "t": 40, "b": 10})
right.plotly_chart(fig, key="pr")

st.header("Memorization check: samples and their nearest training images")
cols = st.columns(2)
for col, kind in zip(cols, data.KINDS):
    info = data.selected(kind)
    png = data.nearest_png(info.path) if kind in evals else None
    with col:
        st.markdown(f"**{data.LABELS[kind]}**: top row samples, bottom row nearest training image (L2)")
        if png:
            st.image(png, width="stretch")
        else:
            st.info("No nearest-neighbour gallery in this run.")
