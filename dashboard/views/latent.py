"""Latent space: the same 2,000 test digits mapped through each model's encoder, side by side."""

import numpy as np
import streamlit as st

from dashboard import components as ui
from dashboard import data

st.title("Latent space")
st.caption("Each point is one test digit, placed by its latent code (VAE: posterior mean μ(x); GAN: E(x)). "
           "t-SNE keeps neighbours together but distorts distances and cluster sizes; PCA is linear and honest "
           "about global layout. Select points (lasso or box) to see the digits.")

c1, c2, c3 = st.columns([2, 1, 1])
method = c1.radio("Map", ["t-SNE (precomputed)", "t-SNE (recompute)", "PCA"], horizontal=True, key="map_method")
perplexity = c2.slider("Perplexity", 5, 100, 30, disabled=method != "t-SNE (recompute)", key="map_perp")
size = c3.select_slider("Digits", [250, 500, 1000, 2000], 2000, disabled=method != "t-SNE (recompute)",
                        key="map_size")
key = {"t-SNE (precomputed)": "tsne-precomputed", "t-SNE (recompute)": "tsne", "PCA": "pca"}[method]

cols = st.columns(2)
for col, kind in zip(cols, data.KINDS):
    info = data.selected(kind)
    with col:
        error = data.check_run(info)
        if error:
            ui.error_card(f"{data.LABELS[kind]} run {info.name if info else ''}", error)
            continue
        emb = data.embeddings(info.path)
        n = size if key == "tsne" else len(emb["indices"])
        if key == "tsne":
            with st.spinner(f"t-SNE of {n} codes, perplexity {perplexity}…"):
                coords = data.map2d(info.path, key, perplexity, n)
        else:
            coords = data.map2d(info.path, key)
        fig = ui.latent_scatter(coords, emb["labels"][:n], emb["indices"][:n], data.classes(info.path),
                                f"{data.LABELS[kind]} · {info.name}")
        event = st.plotly_chart(fig, on_select="rerun", key=f"map_{kind}", selection_mode=("points", "box", "lasso"))
        chosen = sorted({p["customdata"][1] for p in (event.selection.points if event else []) if "customdata" in p})
        if chosen and "images" in emb:
            shown = np.array(chosen[:48])
            ui.image_grid(data.grid(emb["images"][shown], ncol=12),
                          caption=f"{len(chosen)} selected" + (" (first 48 shown)" if len(chosen) > 48 else ""))
