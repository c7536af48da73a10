"""Explore: draw or upload a digit and see what each model makes of it; walk the latent dimensions;
interpolate between two real test digits."""

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from dashboard import components as ui
from dashboard import explore_cache, runs, sampling, share, tsne, uploads

MAPS = ["PCA", "t-SNE"]
PATHS = ["spherical", "linear"]

st.title("Explore")
picked, ok = ui.picked_runs()  # error cards for the others
if not ok:
    st.stop()
dataset = runs.config(picked[ok[0]].path)["dataset"]["name"]
classes = runs.classes(picked[ok[0]].path)
record = runs.dataset_record(dataset)
noun, side = record.noun, record.image_size  # "digit" or "item"; the images' side in pixels
a_noun = ("an " if noun[0] in "aeiou" else "a ") + noun
readers = [k for k in ok if explore_cache.has_encoder(picked[k].path)]  # runs that can map an image to a code
for k in ok:
    if k not in readers:
        st.warning(f"The {runs.LABELS[k]} run {ui.code(picked[k].name)} has no trained encoder: it cannot read a "
                   f"drawing or a real {noun}, so it is left out of the reconstructions, maps and interpolations "
                   "below.",
                   icon=":material/info:")


def how(k: str) -> str:
    return runs.family(k).reconstruction_label


def big(images: np.ndarray, ncol: int | None = None, scale: int = 4) -> np.ndarray:
    return sampling.grid(images, ncol=ncol, scale=scale)


@st.fragment  # drawing reruns this section only, not the whole page
@ui.guarded("in the drawing section")  # the fragment's own reruns bypass the page's guard
def draw_section() -> None:
    st.header(f"Draw or upload {a_noun}")
    box = record.ink_box or side
    fit = (f"its bounding box fitted into {box}×{box} pixels keeping the aspect ratio, anti-aliased to grey levels, "
           f"then placed in a {side}×{side} field with its centre of mass at the centre" if box < side else
           f"its bounding box fitted into the {side}×{side} field keeping the aspect ratio (longest edge {side} "
           "pixels), anti-aliased to grey levels, centred by its centre of mass")
    st.caption(f"Draw on the black square (white on black, as {record.label}'s images are), or upload a photo or "
               "scan.")
    left, right = st.columns([1, 2], gap="large")
    with left:
        canvas = st_canvas(stroke_width=20, stroke_color="#ffffff", background_color="#000000", height=280,
                           width=280, return_image_data=True, key="ex_canvas")
    # the results come above the upload box: on a phone the columns stack, and they must follow the canvas
    results = right.container()
    upload = right.file_uploader("…or upload an image", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"],
                                 key="ex_upload", max_upload_size=uploads.MAX_UPLOAD_MB,
                                 help=f"An uploaded image is used instead of the drawing: up to "
                                      f"{uploads.MAX_UPLOAD_MB} MB and {uploads.MAX_PIXELS // 1_000_000} megapixels.")
    right.caption(f"The ink is prepared as {record.label}'s images were made: {fit}. Dark ink on a light background "
                  "is inverted.")
    digit = None
    if upload is not None:
        digit, error = uploads.prepared(upload, dataset)  # decoded once per file, not on every rerun
        if error:
            results.error(f"{ui.code(upload.name)} could not be read: {ui.text(error)}.")
            return
    elif canvas.image_data is not None:
        digit = explore_cache.image_to_digit(canvas.image_data, dataset)
    if digit is None:
        results.info(f"Draw {a_noun} on the black square, or upload an image, to see what the models make of it.",
                     icon=":material/draw:")
        return
    with results:
        with st.container(key="pair_reconstructions"):  # in one row, on a phone too
            cols = st.columns(1 + len(readers))
        with cols[0]:
            ui.image_grid(big(digit[None]), caption=f"your {noun}, {side}×{side}")
        for col, k in zip(cols[1:], readers):
            with col:
                ui.image_grid(big(sampling.reconstruct(picked[k].path, digit[None])),
                              caption=f"{runs.LABELS[k]}: {how(k)}")
        probs = explore_cache.classify(dataset, digit[None])
        if probs is None:
            st.info(f"No classifier for {record.label} (`checkpoints/{dataset}-classifier`): no reading of the {noun}.")
        else:
            top = int(np.argmax(probs[0]))
            st.markdown(f"The {record.label} classifier reads **{classes[top]}** ({probs[0][top]:.0%}).")
        for k in readers:
            if explore_cache.has_posterior(picked[k].path):
                mine = explore_cache.neg_elbo(picked[k].path, digit[None])
                stats = explore_cache.posterior_stats(picked[k].path)
                st.metric(f"{runs.LABELS[k]} −ELBO of your {noun}", f"{mine['neg_elbo'][0]:.1f} nats", border=True,
                          help="−ELBO = reconstruction + KL, an upper bound on −log p(x): lower means likelier. "
                               "Grey levels count as the probability that a pixel is on, as in training.")
                terms = f"reconstruction {mine['reconstruction'][0]:.1f} + KL {mine['kl'][0]:.1f} nats."
                if stats is None:
                    st.caption(terms + f" (This run's embeddings.npz holds no test {noun}s to compare with.)")
                    continue
                test = stats["test_neg_elbo"]
                lower = float((test < mine["neg_elbo"][0]).mean())
                st.caption(f"{terms} The run's {len(test):,} test {noun}s: median {np.median(test):.1f} nats; "
                           f"{lower:.0%} of them have a lower −ELBO than your {noun}.")
    if probs is not None:
        st.plotly_chart(ui.bar_chart(classes, [{"y": probs[0].tolist(), "name": f"p(class | your {noun})",
                                                "color": "#4b5563"}], "Classifier's reading", "probability",
                                     percent=True), key="ex_probs")

    if readers:
        method = share.widget(st.radio, "Where it lands", MAPS, horizontal=True, key="ex_map", default="PCA",
                              parse=share.choice(MAPS))
        if method == "PCA":
            st.caption(f"PCA is linear: the star is the exact projection of your {noun}'s code onto the map's two "
                       "axes.")
        else:
            st.caption("t-SNE cannot place a new point on a finished map: the star sits at the mean position of the 5 "
                       f"test {noun}s whose codes are nearest to your {noun}'s code in latent space (circled).")
        cols = st.columns(len(readers))
        for col, k in zip(cols, readers):
            path = picked[k].path
            emb = runs.embeddings(path)
            code = explore_cache.embed_images(path, digit[None])[0]
            coords = tsne.map2d(path, "pca" if method == "PCA" else "tsne-precomputed")
            xy, neighbours = explore_cache.map_position(path, code, "pca" if method == "PCA" else "tsne")
            fig = ui.latent_scatter(coords, emb["labels"], emb["indices"], classes,
                                    f"{runs.LABELS[k]} · {picked[k].name}")
            ring = None if neighbours is None else coords[neighbours]
            col.plotly_chart(ui.mark_point(fig, xy, f"your {noun}", ring), key=f"ex_map_{k}")

    near = explore_cache.nearest_train(dataset, digit)
    if near is not None:
        imgs, idx, _ = near
        ui.image_grid(big(imgs, ncol=len(imgs), scale=2),
                      caption=f"nearest training {noun}s (pixel distance): " + ", ".join(f"#{i}" for i in idx))
    elif (near := explore_cache.nearest_test(picked[ok[0]].path, digit)) is None:
        st.info(f"The {record.label} training set is not on this server and this run's embeddings.npz holds no test "
                f"{noun}s: no nearest {noun}s to show.")
    else:
        imgs, idx, _ = near
        ui.image_grid(big(imgs, ncol=len(imgs), scale=2),
                      caption=f"The {record.label} training set is not on this server: the nearest of the run's "
                              f"test {noun}s (pixel distance) instead: " + ", ".join(f"test #{i}" for i in idx))


draw_section()

# --- latent dimensions -------------------------------------------------------------------------------------
st.header("Latent dimensions")
for k in ok:
    if explore_cache.has_posterior(picked[k].path):
        stats = explore_cache.posterior_stats(picked[k].path)
        if stats is None:
            st.info(f"The {runs.LABELS[k]} run's embeddings.npz holds no test {noun}s: no KL per dimension. "
                    "Recompute it with `python -m core embed RUN`.")
            continue
        bars = ui.kl_bars(stats["kl"], stats["activity"], explore_cache.ACTIVE_THRESHOLD, ui.COLORS[k])
        st.plotly_chart(bars, key=f"ex_kl_{k}")
        st.caption(f"{runs.LABELS[k]} {ui.code(picked[k].name)}, on its {stats['n']:,} test {noun}s: "
                   "KL(q(z_j|x) ‖ N(0, 1)) per "
                   f"dimension, summing to the ELBO's KL term ({stats['kl'].sum():.1f} nats). A unit is *active* when "
                   "Cov_x(E_q[z_j]) > 0.01 (Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR "
                   "2016); units with grey labels are inactive (their bars are near zero): their posterior stays at "
                   f"the prior whatever the {noun} (posterior collapse), so the decoder ignores them.")
c1, c2, c3 = st.columns(3)
seed = share.widget(c1.number_input, "Seed of the code to start from", 0, 2**31 - 1, key="ex_seed", default=0,
                    parse=share.integer(0, 2**31 - 1),
                    help="The same code z ~ N(0, I) as that seed's first sample on the Samples page.")
rows = share.widget(c2.slider, "Rows", 1, 8, key="ex_rows", default=5, parse=share.integer(1, 8))
steps = share.widget(c3.slider, "Steps from −3σ to +3σ", 5, 13, step=2, key="ex_steps", default=9,
                     parse=share.choice(range(5, 14, 2)))
cols = st.columns(len(ok))
for col, k in zip(cols, ok):
    path = picked[k].path
    with col:
        st.markdown(f"**{runs.LABELS[k]}**")
        if explore_cache.has_posterior(path):
            activity = explore_cache.activity(path)
            dims = np.argsort(-activity, kind="stable")[:rows]
            directions = explore_cache.axis_directions(dims, len(activity))
            scales = np.sqrt(activity[dims])
            names = [f"z{j}" for j in dims]
            what = ("the most active latent dimensions (largest Cov_x(E_q[z_j])), one per row; σ is the spread "
                    f"of the test {noun}s' μ_j")
        elif k in readers:
            pca = explore_cache.principal(path)
            n = min(rows, len(pca["std"]))
            directions, scales = pca["directions"][:n], pca["std"][:n]
            names = [f"PC{i + 1} ({pca['explained'][i]:.0%})" for i in range(n)]
            what = (f"principal directions of E's codes of the test {noun}s (PCA; % of their variance), not latent "
                    "dimensions; σ is the codes' spread along each")
        else:
            st.info(f"No trained encoder: no codes of real {noun}s to find principal directions in.")
            continue
        ui.image_grid(sampling.grid(explore_cache.traversal(path, directions, scales, int(seed), steps), ncol=steps),
                      caption="rows: " + ", ".join(names), download=f"traversal-{picked[k].name}-seed{seed}.png")
        st.caption(f"Along {what}. The rest of the seed's code stays as it is.")

# --- interpolate real digits -------------------------------------------------------------------------------
st.header(f"Interpolate real {noun}s")
pool = runs.embeddings(picked[ok[0]].path)
if not readers:
    st.info(f"Neither run has a trained encoder: real {noun}s cannot be mapped to codes.")
    st.stop()
if "images" not in pool:
    st.warning("This run's embeddings.npz has no test images; recompute it with `python -m core embed RUN`.")
    st.stop()
PICKS = ["by class", "by test-set index"]
by = share.widget(st.radio, f"Pick two test {noun}s", PICKS, horizontal=True, key="ex_pick", default=PICKS[0],
                  parse=share.choice(PICKS))
c1, c2, c3, c4 = st.columns(4)
if by == "by class":
    ids = range(len(classes))
    a_cls = share.widget(c1.selectbox, "First class", ids, format_func=classes.__getitem__, key="ex_class_a",
                         default=1, parse=share.choice(ids))
    b_cls = share.widget(c2.selectbox, "Second class", ids, format_func=classes.__getitem__, key="ex_class_b",
                         default=7, parse=share.choice(ids))
    which = share.widget(c3.number_input, "Which of them", 0, 100, key="ex_which", default=0,
                         parse=share.integer(0, 100),
                         help=f"0: the first {noun} of that class in the test subset, 1: the second, …")
    picks = []
    for cls in (a_cls, b_cls):
        members = np.flatnonzero(pool["labels"] == cls)
        picks.append(int(members[which % len(members)]) if len(members) else 0)
else:
    wanted = [share.widget(col.number_input, f"{nth} test {noun} #", 0, 9_999, key=f"ex_index_{ab}",
                           default=int(pool["indices"][i]), parse=share.integer(0, 9_999))
              for i, (col, nth, ab) in enumerate([(c1, "First", "a"), (c2, "Second", "b")])]
    picks = [int(np.argmin(np.abs(pool["indices"] - w))) for w in wanted]  # the nearest index the run carries
    if any(pool["indices"][p] != w for p, w in zip(picks, wanted)):
        st.caption(f"The runs carry {len(pool['indices']):,} of the test {noun}s: the nearest index is used.")
with c4:
    steps_i = share.widget(st.slider, "Steps", 3, 16, key="ex_int_steps", default=10, parse=share.integer(3, 16))
mode = share.widget(st.radio, "Path", PATHS, horizontal=True, key="ex_int_mode", default=PATHS[0],
                    parse=share.choice(PATHS),
                    help="Spherical (slerp) keeps |z| typical of N(0, I); linear passes close to the origin.")
pair = pool["images"][picks]
st.caption(f"From test #{pool['indices'][picks[0]]} ({classes[pool['labels'][picks[0]]]}) to test "
           f"#{pool['indices'][picks[1]]} ({classes[pool['labels'][picks[1]]]}). First and last columns: the two "
           f"{noun}s themselves; between them, each model's decoding of the path between their codes.")
for k in readers:
    path = picked[k].path
    z = explore_cache.embed_images(path, pair)
    path_images = sampling.render(path, sampling.interpolation(z[0], z[1], steps_i, mode))
    row = np.concatenate([pair[:1] / 255.0, path_images, pair[1:] / 255.0]).astype(np.float32)
    st.markdown(f"**{runs.LABELS[k]}**: codes {runs.family(k).code_label}")
    ends = "-".join(str(pool["indices"][p]) for p in picks)
    ui.image_grid(sampling.grid(row, ncol=steps_i + 2),
                  download=f"interpolation-{picked[k].name}-test{ends}-{mode}.png")
