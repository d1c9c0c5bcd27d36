"""The Train page's live panel: the run being trained (or the latest one), its progress,
a Stop button, how it ended, and its curves.

Two fragments poll the runs folder, never this session, so a reload or a second tab shows
the same job: the progress every POLL_RUNNING_S while a job runs, the plotly curves more
slowly (CURVES_RUNNING_S; a plotly chart costs the server far more than two bars, and the
Live page shares its CPU). When a job starts or ends the whole page reruns, switching the
polling on or off and refreshing the runs table.
"""

from __future__ import annotations

import streamlit as st

from fer_core import charts, jobs, runs
from fer_core.progress import (
    EVENTS_TAIL_BYTES,
    best_val_accuracy,
    live_progress,
    progress_caption,
)
from fer_core.run_table import tensorboard_command
from fer_core.text import escape_markdown, format_seconds

POLL_RUNNING_S = 2.0  # how often the panel re-reads the run folder while a job runs
POLL_IDLE_S = 5.0  # how often it looks for a job started elsewhere (another tab, the CLI)
CURVES_RUNNING_S = 10.0  # how often the curves are redrawn while a job runs
LIVE_ACTIVE = "train_live_active"  # session_state: whether the panel last saw a job


def follow_job() -> None:
    """After this session started or resumed a job: poll fast from the next run on."""
    st.session_state[LIVE_ACTIVE] = True


def live_panel() -> bool:
    """Draw the panel; whether a job is training now."""
    running = jobs.active_job() is not None
    st.session_state.setdefault(LIVE_ACTIVE, running)
    st.fragment(run_every=POLL_RUNNING_S if running else POLL_IDLE_S)(_progress)()
    st.fragment(run_every=CURVES_RUNNING_S if running else None)(_curves)()
    return running


def _progress() -> None:
    job = jobs.active_job()
    shown = st.session_state.get(LIVE_ACTIVE)
    if (job is not None) != bool(shown):  # a job started elsewhere or just ended
        st.session_state[LIVE_ACTIVE] = job is not None
        if shown is not None:
            st.rerun()  # whole page: fast polling on or off, runs table refreshed
    info = jobs.run_to_show(job, runs.list_runs())
    if info is None:
        st.info("No runs yet: configure one below and press **Start training**.")
        return
    progress = live_progress(info, runs.read_events(info.dir, max_bytes=EVENTS_TAIL_BYTES),
                             history=runs.read_history(info.dir))
    model = info.config.model if info.config else "?"
    st.subheader(f"{'Training now' if job else 'Latest run'}: {escape_markdown(info.name)}")
    trial = info.config.sweep if info.config else None
    st.caption(f"{model} · run `{info.id}` · {info.state}"
               + (f" · trial {trial.get('trial')} of sweep {escape_markdown(str(trial.get('study')))}"
                  " (Stop ends this trial; the sweep goes on: stop it under Sweeps below)"
                  if trial and job else ""))
    if progress.phase:  # nothing measured yet: say what is happening, draw no empty bars
        st.info(f"{progress.phase} (elapsed {format_seconds(progress.elapsed)})")
    else:
        batch_text = f", batch {progress.batch}/{progress.steps}" if progress.running else ""
        st.progress(progress.epoch_fraction,
                    text=f"Epoch {progress.epoch}/{progress.epochs}{batch_text}")
        st.progress(progress.run_fraction, text=f"Run {100 * progress.run_fraction:.0f}%")
        st.caption(progress_caption(progress))
    if job is not None:
        if runs.stop_requested(info.dir):
            st.info("Stopping after the current batch…")
        elif st.button("Stop", key="train_stop", help="Stops after the current batch; the "
                       "best and last checkpoints are kept and the run can be resumed."):
            jobs.stop_job(info.id, wait=False)
            st.info("Stopping after the current batch…")
    else:
        _run_end(info)
    st.caption("TensorBoard for this run:")
    st.code(tensorboard_command(info), language="bash")


def _curves() -> None:
    """The curves of the run training now; once it ends, the run browser below draws them
    (the newest run is the one it opens), so they are never on the page twice."""
    info = jobs.run_to_show(jobs.active_job(), runs.list_runs())
    if info is None or not info.active:
        return
    history = runs.read_history(info.dir)
    batches = None
    if info.active:
        events = runs.read_events(info.dir, max_bytes=EVENTS_TAIL_BYTES)
        batches = charts.batch_curve_points(events, after_epoch=len(history))
    if not history and (batches is None or batches.empty):  # an empty chart with meaningless axes says nothing
        st.caption("The loss and accuracy curves appear here after the first batches.")
        return
    st.plotly_chart(charts.training_curves_figure(history, batches, epochs=info.epochs),
                    key="train_live_curves")


def _run_end(info: runs.RunInfo) -> None:
    error = info.status.get("error")
    name = escape_markdown(info.name)  # a run name is free text: never links or images
    if info.state == "failed":
        st.error(f"Run **{name}** failed: {error or 'no reason recorded'}")
        log = jobs.job_status(info.dir).log_tail
        if log:
            with st.expander("End of job.log"):
                st.code(log, language="text")
    elif info.state == "stopped":
        st.warning(f"Run **{name}** was stopped after {info.epoch} of {info.epochs} "
                   f"epochs{': ' + error if error else ''}. It can be resumed below.")
    elif info.state == "finished":
        best = best_val_accuracy(runs.read_history(info.dir))
        best_text = f"; best validation accuracy {100 * best:.2f}%" if best is not None else ""
        early = " (early stopping)" if info.status.get("early_stopped") else ""
        st.success(f"Run **{name}** finished after {info.epoch} epochs{early}{best_text}.")
