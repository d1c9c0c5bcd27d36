"""The Train page's Sweep mode: which hyperparameters to search around the form's config,
the budget, and Start (a background sweep, `fer_core.sweep_jobs`).

The search table is `fer_core.sweep_space.space_table` (one row per parameter the base
config uses, its declared range), edited in place; `space_from_table` checks it the way a
`--space` file is checked, so the page and the CLI accept the same spaces.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import streamlit as st

from fer_core import runs, sweep, sweep_jobs
from fer_core.config import ConfigError, TrainConfig
from fer_core.sweep_space import TABLE_COLUMNS, SpaceError, space_from_table, space_table
from ui.sweep_view import follow_sweep
from ui.train_form import model_defaults

STUDY_KEY = "sweep_study_name"


def sweep_form(base: TrainConfig, *, data_problem: str | None) -> None:
    """Draw the sweep set-up for `base` (the New run form's config) and start it."""
    defaults = model_defaults(base.model)
    st.caption(f"Each trial is a run of the config above ({base.model}, {base.epochs} "
               f"epochs) with the ticked parameters sampled by Optuna's TPE sampler; trials "
               f"that trail the median after an epoch are pruned. The first trial runs the "
               f"config's own values.")
    table = pd.DataFrame(space_table(base, defaults), columns=list(TABLE_COLUMNS))
    edited = st.data_editor(
        table, key=f"sweep_table_{base.model}", hide_index=True, width="stretch",
        disabled=["parameter", "base value"],
        column_config={
            "search": st.column_config.CheckboxColumn("search", help="sample this parameter"),
            "low": st.column_config.NumberColumn("low", format="%g"),
            "high": st.column_config.NumberColumn("high", format="%g"),
            "log": st.column_config.CheckboxColumn("log scale"),
            "step": st.column_config.NumberColumn("step", help="integers only", format="%g"),
            "choices": st.column_config.TextColumn(
                "choices", help="values separated by commas (replaces low/high)"),
        })
    space = None
    try:
        space = space_from_table(edited.to_dict("records"), base, defaults)
    except SpaceError as exc:
        st.error(str(exc))
    c1, c2, c3, c4 = st.columns(4)
    trials = c1.number_input("Trials", min_value=1, max_value=1000, value=20, step=1,
                             key="sweep_trials",
                             help="trials the study holds when the sweep ends")
    minutes = c2.number_input("Budget (minutes, 0 = none)", min_value=0, max_value=7 * 24 * 60,
                              value=60, step=10, key="sweep_minutes",
                              help="no trial starts that cannot finish an epoch in time; the "
                                   "running ones stop at the end")
    workers = c3.number_input("Workers", min_value=1, max_value=max(1, os.cpu_count() or 1),
                              value=1, step=1, key="sweep_workers",
                              help="trials trained at once here, each on its share of the "
                                   "cores (one uses them all)")
    st.session_state.setdefault(STUDY_KEY, sweep.new_study_name())
    study = c4.text_input("Study name", key=STUDY_KEY,
                          help="an existing study of this name is continued")
    st.caption(f"Stored in {sweep.safe_url(sweep.default_storage())}; other machines join "
               f"with `python -m fer_core sweep --storage URL --study NAME` against a shared "
               f"database (PostgreSQL).")
    if data_problem:
        st.error(data_problem)
    if st.button("Start sweep", key="sweep_start", type="primary",
                 disabled=space is None or data_problem is not None):
        _start(base, space, trials=int(trials), minutes=float(minutes) or None,
               workers=int(workers), study=study, defaults=defaults)


def _start(base: TrainConfig, space: Any, *, trials: int, minutes: float | None, workers: int,
           study: str, defaults: dict[str, Any]) -> None:
    try:
        plan = sweep.make_plan(base, space, trials=trials, minutes=minutes, study=study.strip(),
                               model_defaults=defaults)
        folder = sweep_jobs.start_sweep(plan, workers=workers)
    except runs.JobBusy as exc:
        st.error(f"{exc}. A sweep is a job too: only one runs at a time.")
    except (sweep.SweepError, SpaceError, ConfigError, runs.RunError, OSError) as exc:
        st.error(f"Could not start the sweep: {exc}")
    else:
        follow_sweep(folder)
        st.session_state.pop(STUDY_KEY, None)  # the next sweep gets a new name
        st.rerun()
