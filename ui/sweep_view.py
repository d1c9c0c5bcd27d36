"""The Train page's Sweeps section: a sweep's trials filling in while it runs, Stop, then
what it found (summary, Optuna's plots) and a button that loads the best trial's config
into the New run form.

The trials table is a fragment that re-reads the study every POLL_S while the sweep runs
(from the study's storage, so a reload, another tab or the CLI's sweep shows the same);
when the sweep ends the whole page reruns and draws the plots once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from fer_core import sweep, sweep_jobs
from fer_core.text import escape_markdown, format_seconds
from ui.train_form import load_into_form

POLL_S = 5.0
OPEN_KEY = "sweep_open"  # session_state: the sweep folder to show


def follow_sweep(folder: Path) -> None:
    """Show `folder`'s sweep from the next run on (the one this session just started)."""
    st.session_state[OPEN_KEY] = str(folder)


@st.cache_resource(show_spinner=False, max_entries=8)
def _study(storage: str, name: str):
    """The study object (its database engine), opened once per server."""
    return sweep.open_study(storage, name)


def sweeps_section() -> None:
    folders = sweep_jobs.list_sweeps()
    if not folders:
        st.caption("No sweeps yet: choose **Sweep** above to search hyperparameters.")
        return
    by_name = {f.name: f for f in folders}
    wanted = Path(st.session_state.get(OPEN_KEY, "")).name
    active = sweep_jobs.active_sweep()
    default = wanted if wanted in by_name else (active.name if active else folders[0].name)
    chosen = st.selectbox("Open a sweep", list(by_name), index=list(by_name).index(default),
                          key="sweep_open_select")
    folder = by_name[chosen]
    running = sweep_jobs.sweep_alive(folder)
    st.fragment(run_every=POLL_S if running else None)(_progress)(folder, running)
    if not running:
        _results(folder)


def _progress(folder: Path, was_running: bool) -> None:
    status = sweep_jobs.sweep_status(folder)
    if status.alive != was_running:
        st.rerun()  # it ended (or started elsewhere): the whole page redraws
    if status.plan is None:
        st.error(f"Sweep `{folder.name}` cannot be read: {status.problem}")
        return
    plan = status.plan
    try:
        study = _study(plan.storage, plan.study)
    except sweep.SweepError as exc:
        st.error(str(exc))
        return
    rows = sweep.trial_rows(study)
    done = sum(r["state"] in ("complete", "pruned", "fail") for r in rows)
    budget = ""
    if plan.deadline is not None and status.alive:
        budget = f", {format_seconds(max(0.0, plan.deadline - time.time()))} of budget left"
    if status.alive:
        state = "stopping after the running trials' current batch" if status.stopping else "running"
        st.subheader(f"Sweep {escape_markdown(plan.study)}: {state}")
        st.progress(min(1.0, done / plan.trials),
                    text=f"{done} of {plan.trials} trials done{budget}")
    else:
        st.subheader(f"Sweep {escape_markdown(plan.study)}")
    st.caption(f"{plan.base.model}, {plan.base.epochs} epochs a trial on {plan.base.data} · "
               f"study in {sweep.safe_url(plan.storage)} · searching: "
               + "; ".join(plan.space.describe()))
    if rows:
        frame = pd.DataFrame(rows)
        frame["val_accuracy"] = frame["val_accuracy"] * 100
        st.dataframe(frame, hide_index=True, key="sweep_trials_table",
                     column_config={"val_accuracy": st.column_config.NumberColumn(
                         "best val accuracy", format="%.2f%%")})
    else:
        st.info("The first trial is starting (loading the data and building the model).")
    if status.alive and not status.stopping:
        if st.button("Stop sweep", key="sweep_stop",
                     help="The running trials stop after their current batch (their "
                          "checkpoints are kept) and no new trial starts."):
            sweep_jobs.stop_sweep(folder)
            st.info("Stopping after the running trials' current batch…")
    if not status.alive and status.log_tail and not status.summary:
        with st.expander("End of job.log"):
            st.code(status.log_tail, language="text")


def _results(folder: Path) -> None:
    status = sweep_jobs.sweep_status(folder)
    if status.plan is None:
        return
    try:
        study = _study(status.plan.storage, status.plan.study)
    except sweep.SweepError:
        return
    summary = sweep.summarize(study, status.plan)
    for line in sweep.summary_lines(summary):
        st.markdown(escape_markdown(line))
    best = sweep.best_config(study, status.plan.runs_dir)
    if best is not None:
        st.button("Load the best trial's config into the form", key="sweep_load_best",
                  on_click=load_into_form, args=(best,),
                  help="The New run form above takes the best trial's settings (as a run "
                       "of its own, not a trial).")
    charts = sweep.figures(study)
    for tab, (title, figure) in zip(st.tabs(list(charts)), charts.items()):
        with tab:
            if isinstance(figure, str):
                st.caption(figure)
            else:
                st.plotly_chart(figure, key=f"sweep_chart_{title}")
