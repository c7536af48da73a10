"""Retrain: queue a short training run, watch it learn, evaluate it, compare it on the other pages."""

import streamlit as st

from core import datasets, families, paths
from core.jobs import DEFAULT_SPEC, JobError, models
from dashboard import components as ui
from dashboard import jobs_client, runs
from dashboard.retrain_form import FormError, form_limits, parse_form

st.title("Retrain")
st.caption("Train a small VAE or GAN here and watch it learn. Jobs of all visitors wait in one queue and train "
           "outside the web server (one at a time on this server, or on Hugging Face Jobs where the Space's owner "
           "set it up), so the dashboard stays responsive. Your finished run is selected in the sidebar and "
           "appears on every page, next to the committed runs.")
caps = jobs_client.retrain_caps()
MINE_POLL_S, OTHERS_POLL_S = 1.5, 5.0  # no polling at all while the queue is empty
TEXT_KEYS = {"epochs": "rt_epochs", "batch_size": "rt_batch", "lr": "rt_lr", "latent_dim": "rt_latent",
             "seed": "rt_seed"}
CHOICE_KEYS = {"model": "rt_model", "dataset": "rt_dataset", "preset": "rt_preset", "flavor": "rt_flavor"}


def minutes(seconds: float) -> str:
    return "under a minute" if seconds < 60 else f"about {seconds / 60:.0f} min"


def what(job: dict) -> str:
    s = job["spec"]
    if job.get("kind") == "evaluate":
        return f"evaluation of {s['run']}"
    return f"{s['model'].upper()} ({s['preset']}) on {s['dataset']}, {s['epochs']} epoch{'s' * (s['epochs'] > 1)}"


def loss_names(kind: str) -> dict[str, str]:
    """Each loss as the Training curves page names it (its family's curve legends: "D", "G", "−ELBO (loss)")."""
    return {key: suffix.strip() or title for title, _, keys in families.get(kind).curves for key, suffix in keys}


def charts(job: dict) -> None:
    """Live or final losses (per step and per epoch, with markers: a one-epoch run shows its point) and grid."""
    spec = job["spec"]
    named = loss_names(spec["model"])
    left, mid, right = st.columns([5, 4, 3])
    hist = job.get("history") or {}
    series = [{"x": hist["step"], "y": hist[k], "name": named.get(k, k), "color": ui.CLASS_COLORS[i]}
              for i, k in enumerate(families.get(spec["model"]).live_losses) if k in hist and "step" in hist]
    if series:
        fig = ui.line_chart(series, "Losses per step", "step", "loss")
        if len(hist["step"]) < 30:
            fig.update_traces(mode="lines+markers")
        left.plotly_chart(fig, key=f"live_steps_{job['job_id']}")
    epochs = job.get("epoch_history") or {}
    series = [{"x": epochs["epoch"], "y": epochs[f"{part}/{k}"], "name": f"{named.get(k, k)} ({part})",
               "color": ui.CLASS_COLORS[i], "dash": "solid" if part == "train" else "dot"}
              for i, k in enumerate(families.get(spec["model"]).live_losses) for part in ("train", "test")
              if f"{part}/{k}" in epochs and "epoch" in epochs]
    if series:
        fig = ui.line_chart(series, "Losses per epoch", "epoch", "loss")
        fig.update_traces(mode="lines+markers", marker={"size": 8})
        fig.update_xaxes(dtick=1)
        mid.plotly_chart(fig, key=f"live_epochs_{job['job_id']}")
    grid = jobs_client.job_grid(job)
    if grid:
        right.image(grid, caption=f"fixed-noise samples after epoch {job.get('grid_epoch')}", width=280)


def progress(job: dict) -> None:
    phase = job.get("phase", job["state"])
    text = {"starting": "starting the job…", "loading data": "loading the data set…",
            "finishing": "training done; computing the latent map and saving the run…",
            "evaluating": f"evaluating ({minutes(job.get('end_s', 0))} left)…"}.get(phase)
    if text is None:
        text = (f"epoch {job.get('epoch', 0)}/{job.get('epochs')} · step {job.get('step', 0)}/"
                f"{job.get('total_steps')} · {job.get('elapsed_s', 0):.0f} s elapsed · about "
                f"{job.get('eta_s', 0):.0f} s of training left, then the latent map and the save")
    # training fills the bar to 90 %: the latent map and the save after it take seconds more, so a full bar
    # would sit there looking finished
    done = 0.9 * min(job.get("step", 0) / max(job.get("total_steps") or 1, 1), 1.0)
    if phase == "finishing":
        done = 0.95
    st.progress(done, text=f"**Your job** ({what(job)}): {text}")


def cancel_button(job: dict, label: str) -> None:
    if st.button(label, key=f"cancel_{job['job_id']}"):
        try:
            jobs_client.cancel_job(job["job_id"])
        except JobError as err:
            st.error(str(err), icon=":material/block:")
            return
        st.rerun(scope="app")


def queue_view(mine: dict | None) -> None:
    """What every visitor sees of the queue, and the visitor's own active job with its controls."""
    try:
        active = jobs_client.job_queue()
        mine = next((j for j in active if mine and j["job_id"] == mine["job_id"]), None)
    except JobError as err:
        st.error(str(err), icon=":material/error:")
        return
    if (mine is None and st.session_state.get("rt_watching")) or (not active and st.session_state.get("rt_polling")):
        st.rerun(scope="app")  # the visitor's job ended, or the queue emptied: redraw (and stop polling)
    if active and active[0]["state"] == "running" and active[0] is not mine:
        run = active[0]
        st.info(f"Another visitor's job is running ({what(run)}); it should end in {minutes(run['end_s'])}. "
                f"{len(active) - 1} more waiting.", icon=":material/hourglass_top:")
    if mine is None:
        return
    if mine["state"] == "queued":
        st.info(f"**Your job** ({what(mine)}): position {mine['position']} in the queue, starts in "
                f"{minutes(mine['wait_s'])} and should end in {minutes(mine['end_s'])}.",
                icon=":material/schedule:")
        cancel_button(mine, "Remove my job from the queue")
        return
    progress(mine)
    if mine.get("kind", "train") == "train":
        charts(mine)
    cancel_button(mine, "Cancel my job")


def finished_view(job: dict) -> None:
    """The visitor's newest finished job: the result stays on the page until the next one."""
    if job["state"] == "cancelled":
        st.info(f"You cancelled your job ({what(job)}).", icon=":material/info:")
    elif job["state"] == "failed":
        st.error(f"Your job ({what(job)}) failed: {job.get('reason')}", icon=":material/error:")
    elif job.get("kind") == "evaluate":
        st.success(f"Evaluation of **{ui.text(job['run'])}** finished ({job.get('job_s', 0):.0f} s): the numbers "
                   "are on the Metrics page, with the run selected in the sidebar.", icon=":material/check_circle:")
        st.page_link("views/metrics.py", label="Open Metrics", icon=":material/leaderboard:")
    else:
        st.success(f"Your run **{ui.text(job['run'])}** is ready ({job.get('job_s', 0):.0f} s) and selected in the "
                   "sidebar: every page now shows it.", icon=":material/check_circle:")
    if job.get("kind", "train") == "train" and job.get("history"):
        charts(job)


def select_in_sidebar(job: dict) -> None:
    """Once per finished job: make the new run the sidebar's pick (app.py applies it before the pickers)."""
    if (st.session_state.get("rt_selected") == job["job_id"] or not job.get("run")
            or not jobs_client.run_exists(job["run"])):
        return
    st.session_state["rt_selected"] = job["job_id"]
    kind = job["spec"]["model"] if job.get("kind", "train") == "train" else runs.config(
        str(paths.runs_dir() / job["run"]))["model"]
    dataset = job["spec"].get("dataset") or runs.config(str(paths.runs_dir() / job["run"]))["dataset"]["name"]
    runs.refresh_runs()
    st.session_state["select_run"] = {"kind": kind, "dataset": dataset, "path": str(paths.runs_dir() / job["run"])}
    st.rerun()


try:
    jobs = jobs_client.my_jobs()
    active = jobs_client.job_queue()
except JobError as err:  # disk full, read-only or unreadable jobs folder: say so, keep the page
    st.error(str(err), icon=":material/error:")
    st.stop()

mine = next((j for j in jobs if j["state"] in ("queued", "running")), None)
st.session_state["rt_watching"] = mine is not None
poll = MINE_POLL_S if mine else OTHERS_POLL_S if active else None
st.session_state["rt_polling"] = poll is not None
st.fragment(run_every=poll)(ui.guarded("in the job queue")(queue_view))(mine)  # guarded: fragment reruns

if mine is None and jobs:
    last = jobs[0]
    if last["state"] == "done":
        select_in_sidebar(last)
    finished_view(last)
    last_train = next((j for j in jobs if j.get("kind", "train") == "train"), None)
    evaluated = any(j.get("kind") == "evaluate" and j["state"] == "done" and last_train
                    and j.get("run") == last_train.get("run") for j in jobs)
    if last_train and last_train["state"] == "done" and not evaluated and jobs_client.run_exists(last_train["run"]):
        noun = runs.noun(last_train.get("spec", {}).get("dataset"))
        st.caption(f"Measure {last_train['run']} against real {noun}s: 2,000 samples, one seed, about a minute "
                   "in the queue's worker. The results show on the Metrics page.")
        if st.button("Evaluate", key="evaluate", icon=":material/leaderboard:"):
            try:
                jobs_client.start_evaluation(last_train["run"])
                st.rerun()
            except (JobError, ValueError) as err:
                st.error(str(err), icon=":material/block:")

if mine is not None:
    st.stop()

available = [d for d in datasets.names() if jobs_client.dataset_available(d)]
if not available:
    st.error("No data set is available on this server, so nothing can be trained here. The Docker image "
             "downloads MNIST and Fashion-MNIST when it is built; elsewhere set DATA_DIR to a folder holding "
             "MNIST/raw.", icon=":material/error:")
    st.stop()

# The visitor's last values: widget state is dropped when they visit another page, so the form is refilled
# from a copy kept in the session (saved when they press Start).
saved = st.session_state.setdefault("rt_saved", {})
for key, value in saved.items():
    if key not in st.session_state:
        st.session_state[key] = value
limits = form_limits(caps)
try:
    flavors = {f["name"]: f for f in jobs_client.flavors()}  # hf-jobs: the owner's allowed hardware; local: none
except JobError as err:
    st.error(str(err), icon=":material/error:")
    st.stop()
defaults = {f: "" if DEFAULT_SPEC[f] is None else str(DEFAULT_SPEC[f]) for f in TEXT_KEYS}  # jobs' defaults
for field, key in TEXT_KEYS.items():
    st.session_state.setdefault(key, defaults[field])

with st.form("retrain"):
    c1, c2, c3 = st.columns(3)
    model = c1.radio("Model", models(), horizontal=True, format_func=runs.LABELS.get, key="rt_model")
    if st.session_state.get("rt_dataset") not in available:
        st.session_state.pop("rt_dataset", None)
    dataset = c2.selectbox("Dataset", available, key="rt_dataset")
    # every family's presets, the fast dense one first; whether the picked family has it is checked on Start
    presets = sorted({p for k in models() for p in families.get(k).presets if caps.allow_conv or p != "conv"},
                     key=lambda p: p != "seed")
    if st.session_state.get("rt_preset") not in presets:
        st.session_state.pop("rt_preset", None)
    preset = c3.radio("Preset", presets, horizontal=True, key="rt_preset",
                      help="seed: small dense nets, seconds per epoch. conv: the committed models' conv nets, "
                           "about ten times slower on a CPU.")
    cols = st.columns(5)
    for col, (field, key) in zip(cols, TEXT_KEYS.items()):
        label, lo, hi = limits[field]
        lr_defaults = ", ".join(f"{runs.LABELS[k]} {families.get(k).model_class().default_lr:g}" for k in models())
        hint = f"{lo:g} to {hi:g}; empty = the model's default ({lr_defaults})" if field == "lr" \
            else f"a whole number from {lo} to {hi}"
        col.text_input(label, key=key, help=hint, placeholder="model default" if field == "lr" else None)
    flavor = None
    if flavors:
        if st.session_state.get("rt_flavor") not in flavors:
            st.session_state.pop("rt_flavor", None)
        flavor = st.selectbox("Hardware (Hugging Face Jobs)", list(flavors), key="rt_flavor",
                              format_func=lambda n: f"{flavors[n]['label']} · ${flavors[n]['usd_per_hour']:.2f}/hour")
        most = {name: jobs_client.estimate({}, name)["max_usd"] for name in flavors}
        costs = [f"{name} (${f['usd_per_hour']:.2f}/hour): at most "
                 f"{'under $0.01' if most[name] < 0.01 else f'${most[name]:.2f}'}" for name, f in flavors.items()]
        st.caption(f"A job runs at most {jobs_client.estimate({}, next(iter(flavors)))['max_minutes']} min "
                   f"(the time cap plus start-up), billed per minute: {'; '.join(costs)}.")
    submitted = st.form_submit_button("Start training", type="primary")

if submitted:
    st.session_state["rt_saved"] = {k: st.session_state[k] for k in [*TEXT_KEYS.values(), *CHOICE_KEYS.values()]
                                    if k in st.session_state}
    try:
        spec = parse_form({"model": model, "dataset": dataset, "preset": preset},
                          {f: st.session_state[k] for f, k in TEXT_KEYS.items()}, caps)
        jobs_client.start_job(spec, flavor)
        st.rerun()
    except FormError as err:
        st.error("**Check the form**; nothing was started:\n\n" + "\n".join(f"- {p}" for p in err.problems),
                 icon=":material/edit:")
    except (JobError, ValueError) as err:  # already has a job, the queue is full, missing data, disk full
        st.error(str(err), icon=":material/block:")
st.caption(f"Caps on this server: at most {caps.max_epochs} epochs and {caps.time_budget_s:.0f} s of training "
           f"per job, {caps.max_queue} jobs waiting; the newest {caps.keep_runs} retrained runs are kept in "
           f"`{paths.runs_dir().name}/`. Set RETRAIN_* environment variables to change them.")
