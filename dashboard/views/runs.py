"""Runs: every run folder, committed and retrained, in one sortable table; pick two to compare."""

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import components as ui
from dashboard import jobs_client, runs, share

st.title("Runs")
st.caption("Every run folder under `checkpoints/` (committed) and `runs/` (retrained), with its settings and headline "
           "metrics from its metrics.json. Click a column header to sort. Select one VAE and one GAN of the same data "
           "set to compare them on every page; select one run to download its folder.")


def row(info: runs.RunInfo) -> dict:
    """One table row; what cannot be read stays empty (a broken run keeps its error)."""
    out = {"run": jobs_client.display_name(info), "folder": Path(info.path).parent.name,
           "family": runs.LABELS.get(info.model, info.model or "?"), "data set": info.dataset}
    try:
        cfg = runs.config(info.path)
        mc = cfg.get("model_config", {})
        out.update({"preset": mc.get("preset"), "latent size": mc.get("latent_dim"),
                    "epochs": cfg.get("epochs_completed"), "training min": cfg.get("wall_time_s", 0) / 60,
                    "device": str(cfg.get("device") or "").split(" (")[0]})  # "cpu (x86_64, 1 threads)": cpu
        m = runs.metrics(info.path) or {}
        ev = (m.get("evaluation") or {}).get("metrics", {})
        for key, column in (("frechet_distance", "Fréchet distance ↓"), ("precision", "precision ↑"),
                            ("recall", "recall ↑"), ("neg_elbo", "−ELBO ↓")):
            if key in ev:
                out[column] = ev[key]["mean"]
        if "−ELBO ↓" not in out and "neg_elbo" in (m.get("held_out") or {}):
            out["−ELBO ↓"] = m["held_out"]["neg_elbo"]
    except Exception:  # an unreadable config or metrics file: the run's error below says why
        pass
    out["error"] = info.error and ui.short_paths(info.error)
    return out


def run_width(infos: list[runs.RunInfo]) -> int:
    """Pixels for the longest run name (about 7 px a character and the cell's padding), at most 200."""
    return int(min(200, max(60, 20 + 7 * max(len(r.name) for r in infos))))


listed = runs.catalog()
if not listed:
    st.info("No run folders yet: train one with `python -m core train` or on the Retrain page.")
    st.stop()
table = pd.DataFrame([row(r) for r in listed], columns=[  # the headline metrics first, then the settings
    "run", "family", "Fréchet distance ↓", "precision ↑", "recall ↑", "−ELBO ↓", "data set", "epochs",
    "training min", "latent size", "preset", "device", "folder", "error"])
table = table.astype({"latent size": "Int64", "epochs": "Int64"})  # whole numbers, empty where unreadable
table[["preset", "device", "error"]] = table[["preset", "device", "error"]].fillna("")
number, text = st.column_config.NumberColumn, st.column_config.TextColumn
columns = {  # short headers (the frame keeps the full names), the detail in each header's tooltip
    # the run's name as wide as the longest (pinned), then its family and Fréchet distance: on a phone (358 px
    # for the table) these show without scrolling sideways
    "run": text(width=run_width(listed), pinned=True), "family": text(width=70), "data set": text(width=105),
    "Fréchet distance ↓": number("FD ↓", format="%.1f", width=55,
                                 help="Fréchet distance of the evaluation's samples in the classifier's features (the "
                                      "Metrics page's first row; mean over seeds). Lower is better."),
    "precision ↑": number("prec. ↑", format="%.3f", width=60, help="Precision (fidelity), mean over seeds"),
    "recall ↑": number(format="%.3f", width=70, help="Recall (coverage), mean over seeds"),
    "−ELBO ↓": number(format="%.1f", width=70,
                      help="Negative ELBO on the test images, nats per image (VAEs: evaluation, else held-out)"),
    "epochs": number(width=65), "training min": number("min", format="%.1f", width=55,
                                                       help="Training time in minutes (wall clock)"),
    "latent size": number("latent", width=60), "preset": text(width=60),
    "device": text(width=60, help="Where it was trained (the Overview gives the threads)"),
    "folder": text(width=100, help="checkpoints: committed; runs: retrained"),
    "error": text(width="large", help="Why the run cannot be loaded (empty: it loads)"),
}
event = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="multi-row", key="runs_table",
                     column_config=columns, placeholder="")  # not applicable or unreadable: an empty cell
broken = sum(r.error is not None for r in listed)
left, right = st.columns([4, 1])
left.caption(f"{len(listed)} runs"
             + (f", {broken} of them broken (their error in the last column)." if broken else "."))
right.download_button("Table (CSV)", data=lambda: share.table_csv(table), file_name="runs.csv", mime="text/csv",
                      icon=":material/download:", on_click="ignore", key="dl_runs_csv", width="stretch")

picked = [listed[i] for i in event.selection.rows if 0 <= i < len(listed)]
families = [r.model for r in picked]  # one run each of two or more compared families, one data set
comparable = (not any(r.error for r in picked) and set(families) <= set(runs.KINDS)
              and len(set(families)) == len(families) and len({r.dataset for r in picked}) == 1)
if len(picked) > 1 and comparable:  # a click away, never a jump away from the table
    names = " and ".join(ui.text(r.name) for r in picked)
    if st.button(f"Compare {names} on every page", icon=":material/compare_arrows:", type="primary",
                 key="compare_picked"):
        st.session_state["select_run"] = [{"kind": r.model, "dataset": r.dataset, "path": r.path} for r in picked]
        st.switch_page("views/overview.py")  # the sidebar takes the runs from select_run
elif len(picked) == 1:
    share.download_run(picked[0].path, picked[0].name, key="zip_picked")
elif picked:
    why = [f"{ui.code(r.name)} is broken" for r in picked if r.error]
    st.info("To compare, select one run each of two or more families (" + ", ".join(runs.LABELS[k] for k in runs.KINDS)
            + ") of the same data set" + (f"; {', '.join(why)}" if why else "") + ".")
