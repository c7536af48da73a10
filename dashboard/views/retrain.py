"""Retrain: start a short training run in a background process, watch it learn, compare it."""

import streamlit as st

from dashboard import components as ui
from dashboard import data

st.title("Retrain")
st.caption("Train a small VAE or GAN here and watch it learn. One job runs at a time for every visitor; it trains "
           "in its own process, so the dashboard stays responsive. Finished runs appear in the sidebar's run "
           "picker and on Training curves, next to the committed runs.")
caps = data.retrain_caps()
LOSSES = {"vae": ["neg_elbo", "reconstruction", "kl"], "gan": ["d_loss", "g_loss"]}


def show_job(job: dict) -> None:
    spec = job["spec"]
    done = job.get("step", 0) / max(job.get("total_steps") or 1, 1)
    phase = job.get("phase", job["state"])
    text = {"starting": "starting the training process…", "loading data": "loading the data set…",
            "finishing": "training done; computing the latent map and saving the run…"}.get(phase)
    if text is None:
        text = (f"epoch {job.get('epoch', 0)}/{job['epochs']} · step {job.get('step', 0)}/{job.get('total_steps')} · "
                f"{job.get('elapsed_s', 0):.0f} s elapsed · about {job.get('eta_s', 0):.0f} s left")
    st.progress(min(done, 1.0), text=f"**{spec['model'].upper()}** ({spec['preset']}) on {spec['dataset']}: {text}")
    left, right = st.columns([3, 2])
    hist = job.get("history") or {}
    series = [{"x": hist["step"], "y": hist[k], "name": k, "color": ui.CLASS_COLORS[i]}
              for i, k in enumerate(LOSSES[spec["model"]]) if k in hist and "step" in hist]
    if series:
        left.plotly_chart(ui.line_chart(series, "Live losses", "step", "loss"), key="live_losses")
    if job.get("grid"):
        right.image(job["grid"], caption=f"fixed-noise samples after epoch {job.get('grid_epoch')}", width=300)


@st.fragment(run_every=1.0)
def live() -> None:
    job = data.current_job()
    was_running = st.session_state.get("job_running", False)
    st.session_state["job_running"] = job is not None
    if (job is None) == was_running:  # a job started or ended since the last run: redraw the whole page
        st.rerun(scope="app")
    if job is None:
        return
    st.warning("**Busy:** a training job is running. Its progress is shown to every visitor; "
               "a new one can start when it ends.", icon=":material/hourglass_top:")
    show_job(job)
    if st.button("Cancel this job", type="secondary", key="cancel"):
        final = data.cancel_job()
        st.session_state["job_running"] = False
        st.toast(f"Job {final['state'] if final else 'ended'}.")
        st.rerun(scope="app")


live()
if data.current_job() is not None:
    st.stop()

last = data.last_job()
if last:
    if last["state"] == "done":
        st.success(f"Last job finished: run **{last['run']}** is in the run picker "
                   f"({last.get('elapsed_s', 0):.0f} s).", icon=":material/check_circle:")
    elif last["state"] in ("failed", "cancelled"):
        st.error(f"Last job {last['state']}: {last.get('reason')}", icon=":material/error:")

available = [d for d in ("mnist", "fashion-mnist") if data.dataset_available(d)]
if not available:
    st.error(f"No data set is available on this server (looked under `{data.data_root()}`). "
             "Set DATA_DIR to a folder holding MNIST/raw, or download it below (needs internet).")
    if st.button("Download MNIST"):
        try:
            with st.spinner("Downloading MNIST…"):
                data.download_dataset("mnist")
            st.rerun()
        except Exception as err:  # no network, disk full: say so, keep the page
            st.error(f"Download failed: {err}")
    st.stop()

with st.form("retrain"):
    c1, c2, c3 = st.columns(3)
    model = c1.radio("Model", ["vae", "gan"], horizontal=True, format_func=str.upper, key="rt_model")
    dataset = c2.selectbox("Dataset", available, key="rt_dataset")
    presets = ["seed", "conv"] if caps.allow_conv else ["seed"]
    preset = c3.radio("Preset", presets, horizontal=True, key="rt_preset",
                      help="seed: small dense nets, seconds per epoch. conv: the committed models' conv nets, "
                           "about ten times slower on a CPU.")
    c1, c2, c3, c4, c5 = st.columns(5)
    epochs = c1.number_input("Epochs", min_value=0, value=3, step=1, key="rt_epochs",
                             help=f"1 to {caps.max_epochs} on this server")
    batch = c2.number_input("Batch size", min_value=0, value=128, step=16, key="rt_batch",
                            help=f"{caps.min_batch} to {caps.max_batch}")
    lr = c3.number_input("Learning rate (0 = model default)", min_value=0.0, value=0.0, step=1e-4, format="%.5f",
                         key="rt_lr", help=f"{caps.min_lr:g} to {caps.max_lr:g}; default VAE 1e-3, GAN 2e-4")
    latent = c4.number_input("Latent size", min_value=0, value=32, step=1, key="rt_latent",
                             help=f"{caps.min_latent} to {caps.max_latent}")
    seed = c5.number_input("Seed", min_value=0, value=0, step=1, key="rt_seed")
    submitted = st.form_submit_button("Start training", type="primary")

if submitted:
    spec = {"model": model, "dataset": dataset, "preset": preset, "epochs": int(epochs), "batch_size": int(batch),
            "lr": float(lr) or None, "latent_dim": int(latent), "seed": int(seed)}
    try:
        data.start_job(spec)
        st.session_state["job_running"] = True
        st.rerun()
    except ValueError as err:
        st.error(f"Check the form: {err}", icon=":material/edit:")
    except Exception as err:  # JobBusy (someone was faster), missing data, disk full
        st.error(str(err), icon=":material/block:")
st.caption(f"Caps on this server: at most {caps.max_epochs} epochs and {caps.time_budget_s:.0f} s of training "
           f"per job; the newest {caps.keep_runs} retrained runs are kept in `{data.runs_dir().name}/`. "
           "Set RETRAIN_* environment variables to change them.")
