"""Latent space: the same 2,000 test images mapped through each model's encoder, side by side."""

import numpy as np
import streamlit as st

from dashboard import components as ui
from dashboard import runs, sampling, share, tsne

st.title("Latent space")
noun = runs.noun()  # "digit", "item": from the data set's record
st.caption(f"Each point is one test {noun}, placed by its latent code (VAE: posterior mean μ(x); GAN: E(x)). "
           "t-SNE keeps neighbours together but distorts distances and cluster sizes; PCA is linear and honest "
           f"about global layout. Select points (lasso or box) to see the {noun}s.")
# on a phone a map fills the screen's width: a swipe over it must scroll the page, so lassos wait for this switch
select = st.toggle("Lasso on the maps", value=not ui.touch_device(), key="map_select",
                   help="On: dragging over a map draws a lasso (the box is in the chart's toolbar). Off: a swipe over "
                        "a map scrolls the page, as on a phone, where it starts off.")

c1, c2, c3 = st.columns([2, 1, 1])
MAPS = {"t-SNE (precomputed)": "tsne-precomputed", "t-SNE (recompute)": "tsne", "PCA": "pca"}  # label -> URL name
method = share.widget(c1.radio, "Map", list(MAPS), horizontal=True, key="map_method", default="t-SNE (precomputed)",
                      parse=share.choice(MAPS, names=MAPS.get), encode=MAPS.get)
perplexity = share.widget(c2.slider, "Perplexity", 5, 100, disabled=method != "t-SNE (recompute)", key="map_perp",
                          default=30, parse=share.integer(5, 100))
size = share.widget(c3.select_slider, f"{noun.capitalize()}s", [250, 500, 1000, 2000],
                    disabled=method != "t-SNE (recompute)", key="map_size", default=2000,
                    parse=share.choice([250, 500, 1000, 2000]))
key = MAPS[method]
if key == "tsne":  # moving the sliders computes nothing: the button starts t-SNE outside the server, cached
    st.caption(f"t-SNE runs in a separate process, a few seconds per thousand {noun}s; results are kept for "
               "every visitor. Meanwhile the precomputed map is shown.")
    if st.button("Compute t-SNE", icon=":material/play_arrow:", key="map_go"):
        st.session_state["map_request"] = (float(perplexity), int(size))
        for info in filter(None, map(runs.selected, runs.KINDS)):
            if runs.check_run(info) is None and runs.family(info.model).has_encoder:
                try:
                    if tsne.tsne_recompute(info.path, perplexity, size) == "busy":
                        st.warning("Other visitors' t-SNE maps are being computed; try again in a minute.")
                except OSError:
                    st.error("t-SNE cannot be recomputed on this server now (its cache folder is not writable).")
request = st.session_state.get("map_request") if key == "tsne" else None
pending = []


def picked_ids(kind: str, widget: str, labels: np.ndarray, ids: np.ndarray) -> list[int]:
    """The test images selected on this family's map, by test-set index: a new lasso or box replaces them; a map
    drawn afresh (another method, the switch, a ring added) keeps them, and so does the chart's own reset of its
    selection when its figure changes. The first view takes them from the URL (?digits_vae=...)."""
    state = st.session_state.get(widget) if select else None
    points = (state or {}).get("selection", {}).get("points", [])
    rows = ui.selected_rows(points, labels)
    seen, used = f"_ids_{kind}", f"_used_{widget}"
    mark = sorted((p.get("curve_number"), p.get("point_index", p.get("point_number"))) for p in points)
    if rows and st.session_state.get(used) != mark:  # a selection not applied yet (a cleared one stays cleared)
        st.session_state[seen], st.session_state[used] = [int(ids[r]) for r in rows], mark
    position = {int(v): i for i, v in enumerate(ids)}
    rows = [position[v] for v in st.session_state.get(seen, []) if v in position]
    rows = share.selection(f"digits_{kind}", rows, ids)  # ?digits_vae=<test indices>, shared
    st.session_state[seen] = [int(ids[r]) for r in rows]
    return rows


maps = {}  # family -> (run, embeddings, coords, n); a map's selection is ringed on the others too
cols = st.columns(len(runs.KINDS))
for col, kind in zip(cols, runs.KINDS):
    with col:
        info = ui.loaded_run(kind)
        if info is None:
            continue
        if not runs.family(kind).has_encoder:
            st.info(f"The {runs.LABELS[kind]} has no encoder: it cannot place real {noun}s in its latent space.")
            continue
        emb = runs.embeddings(info.path)
        n = len(emb["indices"])
        coords = tsne.tsne_recomputed(info.path, *request) if key == "tsne" and request else None
        if coords is not None:
            n = len(coords)
            st.caption(f"t-SNE of {n} {noun}s, perplexity {request[0]:g}")
        elif key == "tsne" and request and tsne.tsne_pending(info.path, *request):
            pending.append(kind)
            st.info(f"Computing t-SNE of {request[1]} {noun}s (perplexity {request[0]:g})…",
                    icon=":material/hourglass_top:")
        coords = coords if coords is not None else tsne.map2d(info.path, "pca" if key == "pca" else
                                                              "tsne-precomputed")
        widget = f"map_{kind}_{key}"  # one chart per method: a new map never inherits another's lasso
        maps[kind] = (info, emb, coords, n, widget,
                      picked_ids(kind, widget, emb["labels"][:n], emb["indices"][:n]))
everywhere = {int(i) for info, emb, _, _, _, rows in maps.values() for i in emb["indices"][rows]}
for col, kind in zip(cols, runs.KINDS):
    if kind not in maps:
        continue
    info, emb, coords, n, widget, chosen = maps[kind]
    with col:
        fig = ui.latent_scatter(coords, emb["labels"][:n], emb["indices"][:n], runs.classes(info.path),
                                f"{runs.LABELS[kind]} · {info.name}", select=select)
        ringed = [r for r, i in enumerate(emb["indices"][:n]) if int(i) in everywhere]
        if ringed:
            ui.ring_points(fig, coords[ringed], f"selected ({len(everywhere)})")
        if select:
            st.plotly_chart(fig, on_select="rerun", key=widget, selection_mode=("points", "box", "lasso"))
        else:  # a chart without selections: Streamlit would otherwise give it a drag tool that takes every swipe
            st.plotly_chart(fig, key=f"still_{widget}")
        if chosen and "images" in emb:
            shown = np.array(chosen[:48])
            ui.image_grid(sampling.grid(emb["images"][shown], ncol=12),
                          caption=f"{len(chosen)} selected" + (" (first 48 shown)" if len(chosen) > 48 else ""),
                          download=f"{info.name}-selected-digits.png")
if everywhere:
    st.caption(f"Circled on every map: the {noun}s selected on any of them, so one model's cluster can be "
               "found in the other's layout. A new selection on a map replaces that map's.")
    if st.button("Clear the selections", icon=":material/deselect:", key="map_clear"):
        for kind in maps:
            st.session_state[f"_ids_{kind}"] = []
            share.selection(f"digits_{kind}", [], [])  # and out of the URL
        st.rerun()

if pending:  # poll (every 2 s, this visitor only) until the maps exist, then redraw the page
    @st.fragment(run_every=2.0)
    def _wait_for_maps():
        if not any(tsne.tsne_pending(runs.selected(k).path, *st.session_state["map_request"]) for k in pending):
            st.rerun(scope="app")

    _wait_for_maps()
