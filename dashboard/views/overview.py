"""Overview: both models side by side on one screen."""

import streamlit as st

from dashboard import components as ui
from dashboard import evaluation, jobs_client, runs, sampling, share

st.title("GAN vs VAE")
noun = runs.noun()  # "digit", "item": from the data set's record
st.caption(f"Two generative models trained on the same {noun}s, fed the same latent codes. "
           "Pick other runs in the sidebar; every page follows.")

HEADLINE = [  # (metrics.json key, short label, help with the detail; {drawn}: the evaluation's settings)
    ("frechet_distance", "Fréchet distance ↓",
     "Fréchet distance between classifier features of the samples ({drawn}) and of a fixed subset of "
     "{train_images} training images (an FID analogue; not on the scale of published Inception FIDs). Lower is "
     "better."),
    ("precision", "Precision ↑",
     "Share of samples inside the real images' k-NN feature manifold: fidelity (Kynkäänniemi et al. 2019)."),
    ("recall", "Recall ↑", "Share of real images inside the samples' k-NN feature manifold: coverage."),
    ("legible_share", "Legible ↑",
     "Share of samples the evaluation classifier reads with confidence above 0.9: images a reader would name "
     "at once.{real}"),
    ("neg_iwae", "IWAE bound ↓",
     "Upper bound on −log p(x) in nats per image from k={iwae_k} importance samples (Burda et al. 2016). VAE only."),
]
picked = {kind: runs.selected(kind) for kind in runs.KINDS}
errors = {kind: runs.check_run(info) for kind, info in picked.items()}
with st.container(key="pair_samples"):  # the samples side by side, on a phone too
    cols = st.columns(len(runs.KINDS), gap="large")
for col, (kind, info) in zip(cols, picked.items()):
    with col:
        st.subheader(runs.LABELS[kind] + (f" · {ui.text(jobs_client.display_name(info))}" if info else ""))
        if errors[kind]:
            ui.error_card(f"{runs.LABELS[kind]} run {ui.text(info.name) if info else ''}", errors[kind])
            continue
        z = sampling.latent_codes(seed=0, n=64, dim=runs.latent_dim(info.path))
        ui.image_grid(sampling.grid(sampling.generate(info.path, z), ncol=8), caption="64 samples, latent seed 0",
                      download=f"{info.name}-samples-seed0.png")
for col, (kind, info) in zip(st.columns(len(runs.KINDS), gap="large"), picked.items()):
    if errors[kind]:
        continue
    with col:
        if len(picked) > 1:  # on a phone these columns stack: say whose facts follow (shown there only)
            st.container(key=f"phone_only_{kind}").markdown(
                f"**{runs.LABELS[kind]}** · {ui.text(jobs_client.display_name(info))}")
        st.table({k: str(v) for k, v in runs.facts(info.path).items()})
        share.download_run(info.path, info.name, key=f"zip_{kind}")
        m = runs.metrics(info.path) or {}
        ev = m.get("evaluation", {}).get("metrics", {})
        settings = m.get("evaluation", {}).get("settings", {})
        real = m.get("evaluation", {}).get("reference", {})
        where = f" Mean over {evaluation.settings_text(settings)}, as on *Metrics*."
        fill = {"drawn": evaluation.settings_text(settings), "iwae_k": settings.get("iwae_k") or "?",
                "train_images": f"{settings['train_images']:,}" if settings.get("train_images") else "the"}
        rows = [(label, evaluation.number(key, ev[key]["mean"]),  # the value alone: a half-width card holds no more
                 hint.format(**fill, real=f" Real test images: {evaluation.number(key, real[key]['mean'])}."
                             if key in real else "") + where)
                for key, label, hint in HEADLINE if key in ev]
        held = m.get("held_out", {})  # the family's own held-out numbers (its record says which) come first:
        cards = []  # the evaluation's value where it measured the same statistic, so Metrics shows the same number
        for key, label, _, hint in runs.family(kind).held_out:
            again = evaluation.EVALUATED_AS.get(key)
            if again in ev:
                cards.append((label, evaluation.number(again, ev[again]["mean"]), hint + where))
            elif isinstance(held.get(key), (int, float)):
                cards.append((label, evaluation.number(key, held[key]), hint + " At the end of training."))
        rows = cards + rows
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
  likelihood of every training {noun} (the ELBO). The GAN's generator never sees a training {noun}: it
  learns only from a discriminator's verdict on real versus generated images.
- **Why the VAE is blurrier.** Its Bernoulli decoder is rewarded for putting probability on every
  plausible pixel, so an uncertain stroke is drawn as a grey average. The GAN is rewarded only for fooling
  the discriminator, so it draws sharp strokes and may quietly ignore {noun}s it finds hard (mode dropping).
- **Latent spaces.** The VAE's KL term pulls codes towards N(0, I) and keeps them smooth. A GAN has no
  encoder, so here an encoder E inverts the generator: {encoder}. Compare them on *Latent space*.
- **Stability.** The VAE's loss falls steadily; the GAN's two losses oscillate as the players adapt to
  each other (see *Training curves*).
""")
