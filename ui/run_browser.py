"""The Train page's run browser: the runs table, then one run opened: its curves and
config (loadable into the form), resume, rename and delete (with confirmation)."""

from __future__ import annotations

import streamlit as st

from fer_core import charts, jobs, runs
from fer_core.config import ConfigError
from fer_core.run_table import runs_frame, tensorboard_command
from fer_core.text import escape_markdown
from ui.train_form import load_into_form
from ui.train_panel import follow_job


def run_browser() -> None:
    all_runs = runs.list_runs()
    if not all_runs:
        st.caption(f"No runs in {runs.runs_root()} yet.")
        return
    st.dataframe(runs_frame(all_runs), hide_index=True, key="train_runs_table",
                 column_config={"best val accuracy": st.column_config.NumberColumn(
                     format="%.2f%%")})
    by_id = {info.id: info for info in all_runs}
    # no state in the label: the table and the panel show it live, a label would go stale
    chosen = st.selectbox("Open a run", list(by_id), key="train_open_run",
                          format_func=lambda rid: f"{by_id[rid].name} ({rid})")
    info = by_id[chosen]
    if info.readable:
        _details(info)
    else:
        st.error(f"Run `{info.id}` is unreadable: {info.problem}")
    _delete(info)


def _details(info: runs.RunInfo) -> None:
    detail_curves, detail_config = st.columns([3, 2])
    with detail_curves:
        history = runs.read_history(info.dir)
        if info.active:  # drawn once, live, by the panel above; this page run would go stale
            st.info("Training now: its progress and curves are in the panel above.")
        elif history:
            st.plotly_chart(charts.training_curves_figure(history, epochs=info.epochs),
                            key="train_run_curves")
        else:
            st.caption("No finished epoch yet.")
        if info.state == "failed":
            st.error(f"Failed: {info.status.get('error') or 'no reason recorded'}")
    with detail_config:
        st.caption("config.json")
        st.json(info.config.to_dict(), expanded=True)
        st.button("Load this config into the form", key="train_load_config",
                  on_click=load_into_form, args=(info.config,))
    st.code(tensorboard_command(info), language="bash")
    if runs.can_resume(info):
        _resume(info)
    n1, n2 = st.columns([2, 1], vertical_alignment="bottom")
    new_name = n1.text_input("New name", value=info.name, key=f"train_rename_{info.id}")
    if n2.button("Rename", key="train_rename"):
        try:
            runs.rename_run(info.id, new_name)
        except (runs.RunError, ConfigError) as exc:
            st.error(f"Cannot rename: {exc}")
        else:
            st.rerun()


def _resume(info: runs.RunInfo) -> None:
    r1, r2 = st.columns([1, 2], vertical_alignment="bottom")
    total = r1.number_input("Epochs in total", min_value=max(1, info.epoch), step=1,
                            value=max(info.epochs, info.epoch + (info.state == "finished")),
                            key=f"train_resume_epochs_{info.id}")
    if r2.button("Resume this run", key="train_resume"):
        try:
            jobs.resume_job(info.id, epochs=int(total) if total != info.epochs else None)
        except jobs.JobBusy:
            st.error("A training job is already running: stop it or wait for it first.")
        except (runs.RunError, ConfigError) as exc:
            st.error(f"Cannot resume: {exc}")
        else:
            follow_job()
            st.rerun()


def _delete(info: runs.RunInfo) -> None:
    if info.active:
        st.caption("A running run cannot be deleted; stop it first.")
    elif st.session_state.get("train_confirm_delete") == info.id:
        st.warning(f"Delete run **{escape_markdown(info.name)}** (`{info.id}`) and all its "
                   f"files? This cannot be undone.")
        yes, no = st.columns(2)
        if yes.button("Yes, delete it", key="train_delete_yes", type="primary"):
            try:
                runs.delete_run(info.id)
            except runs.RunError as exc:
                st.error(f"Cannot delete: {exc}")
            else:
                st.session_state.pop("train_confirm_delete", None)
                st.rerun()
        if no.button("Cancel", key="train_delete_no"):
            st.session_state.pop("train_confirm_delete", None)
            st.rerun()
    elif st.button("Delete…", key="train_delete"):
        st.session_state["train_confirm_delete"] = info.id
        st.rerun()
