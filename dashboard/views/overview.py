"""Overview: both models side by side on one screen."""

import streamlit as st

from dashboard import components as ui
from dashboard import runs, sampling, share

st.title("GAN vs VAE")
st.caption("Two generative models trained on the same digits, fed the same latent codes. "
           "Pick other runs in the sidebar; every page follows.")

HEADLINE = [  # (metrics.json key, short label, format, help with the detail)
    ("frechet_distance", "Fréchet distance ↓", "{:.1f}",
     "Fréchet distance between classifier features of 10,000 samples and of a fixed 10,000-digit training "
     "subset (an FID analogue; not on the scale of published Inception FIDs). Lower is better."),
    ("precision", "Precision ↑", "{:.3f}",
     "Share of samples inside the real digits' k-NN feature manifold: fidelity (Kynkäänniemi et al. 2019)."),
    ("recall", "Recall ↑", "{:.3f}", "Share of real digits inside the samples' k-NN feature manifold: coverage."),
    ("legible_share", "Legible ↑", "{:.1%}",
     "Share of samples the evaluation classifier reads with confidence above 0.9: digits a reader would name "
     "at once. In brackets: real test digits."),
    ("neg_iwae", "IWAE bound ↓", "{:.1f}",
     "Upper bound on −log p(x) in nats per image from k=100 importance samples (Burda et al. 2016). VAE only."),
]
cols = st.columns(len(runs.KINDS), gap="large")
for col, kind in zip(cols, runs.KINDS):
    with col:
        info = runs.selected(kind)
        st.subheader(runs.LABELS[kind] + (f" · {ui.text(info.name)}" if info else ""))
        error = runs.check_run(info)
        if error:
            ui.error_card(f"{runs.LABELS[kind]} run {ui.text(info.name) if info else ''}", error)
            continue
        z = sampling.latent_codes(seed=0, n=64, dim=runs.latent_dim(info.path))
        ui.image_grid(sampling.grid(sampling.generate(info.path, z), ncol=8), caption="64 samples, latent seed 0",
                      download=f"{info.name}-samples-seed0.png")
        st.table({k: str(v) for k, v in runs.facts(info.path).items()})
        share.download_run(info.path, info.name, key=f"zip_{kind}")
        m = runs.metrics(info.path) or {}
        ev = m.get("evaluation", {}).get("metrics", {})
        seeds = m.get("evaluation", {}).get("settings", {}).get("seeds")
        real = m.get("evaluation", {}).get("reference", {})
        rows = [(label, fmt.format(ev[key]["mean"]) + (f" (real {fmt.format(real[key]['mean'])})"
                                                        if key == "legible_share" and key in real else ""),
                 f"{hint} Mean over seeds {seeds}; details on *Metrics*.")
                for key, label, fmt, hint in HEADLINE if key in ev]
        held = m.get("held_out", {})  # the family's own held-out numbers (its record says which) come first
        rows = [(label, fmt.format(held[key]), hint) for key, label, fmt, hint in runs.family(kind).held_out
                if isinstance(held.get(key), (int, float))] + rows
        if rows:
            ui.metric_cards(rows)
        else:
            st.info("No metrics yet: run " + ui.code(f"python -m core evaluate {info.name}") + ".")

if not {"vae", "gan"} <= set(runs.KINDS):  # what follows compares these two families: shown when both are
    st.stop()
gan = runs.selected("gan")
encoder = "trained on the generator's own samples"
if gan is not None and not runs.check_run(gan):
    encoder = f"{ui.encoder_schedule(runs.config(gan.path)['model_config'])}, in this run"
st.divider()
st.subheader("What differs, and why")
st.markdown(f"""
- **What each learns.** The VAE learns an encoder *and* a decoder by maximising a lower bound on the
  likelihood of every training digit (the ELBO). The GAN's generator never sees a training digit: it
  learns only from a discriminator's verdict on real versus generated images.
- **Why the VAE is blurrier.** Its Bernoulli decoder is rewarded for putting probability on every
  plausible pixel, so an uncertain stroke is drawn as a grey average. The GAN is rewarded only for fooling
  the discriminator, so it draws sharp strokes and may quietly ignore digits it finds hard (mode dropping).
- **Latent spaces.** The VAE's KL term pulls codes towards N(0, I) and keeps them smooth. A GAN has no
  encoder, so here an encoder E inverts the generator: {encoder}. Compare them on *Latent space*.
- **Stability.** The VAE's loss falls steadily; the GAN's two losses oscillate as the players adapt to
  each other (see *Training curves*).
""")
