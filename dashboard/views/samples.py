"""Samples: live generation from shared latent codes, interpolation, reconstructions, learning over epochs."""

import numpy as np
import streamlit as st

from dashboard import components as ui
from dashboard import runs, sampling, share

st.title("Samples")
noun = runs.noun()  # "digit", "item": from the data set's record
picked, ok = ui.picked_runs()  # error cards for the others
if not ok:
    st.stop()
dims = {k: runs.latent_dim(picked[k].path) for k in ok}
if len(set(dims.values())) > 1:
    st.info(f"The latent sizes differ ({dims}): each model gets its own codes drawn from the same seed.")

st.header("Same latent codes, two generators")
st.caption("The same codes z ~ N(0, t² I) go through both generators. VAE images are the decoder's Bernoulli "
           "means (each pixel is p(xᵢ = 1 | z)), not binary draws from p(x | z); GAN images are G(z).")
c1, c2, c3 = st.columns(3)
SEED = share.integer(0, 2**31 - 1)
seed = share.widget(c1.number_input, "Seed", 0, 2**31 - 1, key="gen_seed", default=0, parse=SEED)
count = share.widget(c2.select_slider, "Images", [16, 36, 64, 100], key="gen_count", default=64,
                     parse=share.choice([16, 36, 64, 100]))
temperature = share.widget(c3.slider, "Temperature (scale of z)", 0.1, 2.0, step=0.1, key="gen_temp", default=1.0,
                           parse=share.number(0.1, 2.0, 0.1), encode=share.fmt_number,
                           help="Codes are z ~ N(0, t² I) (a mixture GAN: each mode narrowed by t). Below 1 trades "
                                "variety for typical-looking images.")
with st.container(key="pair_generated"):  # side by side, on a phone too
    cols = st.columns(max(1, len(ok)))
for col, k in zip(cols, ok):
    codes = sampling.codes_of(picked[k].path, sampling.latent_codes(int(seed), count, dims[k]), temperature)
    col.markdown(f"**{runs.LABELS[k]}**")
    with col:
        ui.image_grid(sampling.grid(sampling.render(picked[k].path, codes), ncol=int(np.sqrt(count))),
                      download=f"{picked[k].name}-samples-seed{seed}-n{count}-t{temperature:g}.png")

st.header("Interpolation")
c1, c2, c3, c4 = st.columns(4)
seed_a = share.widget(c1.number_input, "Start seed", 0, 2**31 - 1, key="int_a", default=1, parse=SEED)
seed_b = share.widget(c2.number_input, "End seed", 0, 2**31 - 1, key="int_b", default=2, parse=SEED)
steps = share.widget(c3.slider, "Steps", 3, 16, key="int_steps", default=10, parse=share.integer(3, 16))
mode = share.widget(c4.radio, "Path", ["spherical", "linear"], horizontal=True, key="int_mode", default="spherical",
                    parse=share.choice(["spherical", "linear"]),
                    help="Spherical (slerp) keeps |z| typical of N(0, I); linear passes close to the origin.")
for k in ok:
    ends = np.concatenate([sampling.latent_codes(int(s), 1, dims[k]) for s in (seed_a, seed_b)])
    c0, c1 = sampling.codes_of(picked[k].path, ends)  # a mixture GAN: the path runs between its modes' draws
    st.markdown(f"**{runs.LABELS[k]}**")
    codes = sampling.interpolation(c0, c1, steps, mode)
    ui.image_grid(sampling.grid(sampling.render(picked[k].path, codes), ncol=steps),
                  download=f"{picked[k].name}-interpolation-{seed_a}-{seed_b}-{steps}-{mode}.png")

st.header(f"Reconstructions of the same test {noun}s")
st.caption(f"Top: test {noun}s. Then the VAE's decoder(μ(x)) and the GAN's G(E(x)), E an encoder trained to "
           "invert G.")
c1, c2 = st.columns(2)
rec_seed = share.widget(c1.number_input, f"Pick {noun}s with seed", 0, 10_000, key="rec_seed", default=0,
                        parse=share.integer(0, 10_000))
rec_n = share.widget(c2.slider, f"{noun.capitalize()}s", 4, 16, key="rec_n", default=12, parse=share.integer(4, 16))
coded = [k for k in ok if runs.family(k).has_encoder]  # families that map images to codes
emb = runs.embeddings(picked[coded[0]].path) if coded else {}
if not coded:
    st.info(f"None of the picked models has an encoder, so none can reconstruct a test {noun}.")
elif "images" not in emb:
    st.warning("This run's embeddings.npz has no test images; recompute it with `python -m core embed RUN`.")
else:
    pick = np.random.default_rng(int(rec_seed)).choice(len(emb["images"]), rec_n, replace=False)
    originals = emb["images"][pick]
    rows = [originals.astype(np.float32) / 255.0] + [sampling.reconstruct(picked[k].path, originals) for k in coded]
    ui.image_grid(sampling.grid(np.concatenate(rows), ncol=rec_n),
                  caption="rows: original · " + " · ".join(runs.LABELS[k] for k in coded),
                  download=f"reconstructions-{'-'.join(picked[k].name for k in coded)}-seed{rec_seed}-n{rec_n}.png")

st.header("Watch them learn")
with st.container(key="pair_epochs"):
    cols = st.columns(max(1, len(ok)))
for col, k in zip(cols, ok):
    files = runs.sample_grid_files(picked[k].path)
    with col:
        st.markdown(f"**{runs.LABELS[k]}**: fixed noise, end of each epoch")
        if not files:
            st.info("No per-epoch grids in this run.")
            continue
        epoch = share.widget(st.slider, "Epoch", 1, len(files), key=f"epoch_{k}", default=len(files),
                             parse=share.integer(1, len(files))) if len(files) > 1 else 1
        st.image(files[epoch - 1], width=360)
        share.download_file(files[epoch - 1], f"{picked[k].name}-epoch{epoch:03d}.png", key=f"dl_epoch_{k}")
