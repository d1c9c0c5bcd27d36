"""Train: configure a run, see what it costs, start it in the background, watch it learn,
stop it, and find it again later (resume, rename, delete); or sweep hyperparameters around
the configured run (an Optuna study of many runs) and load the best trial back into the form.

The job runs in its own process (`fer_core.jobs`); this page only reads its run folder (the
live panel, `ui.train_panel`), draws the form (`ui.train_form`, widgets from the fields'
declarations in `fer_core.config`) and the run browser (`ui.run_browser`).
"""

from __future__ import annotations

import json

import streamlit as st

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import jobs, runs
from fer_core import train_form as form
from fer_core.config import ConfigError, TrainConfig
from fer_core.data import DEMO, DataError
from fer_core.labels import PUBLIC_TEST
from fer_core.probe import SpeedEstimate
from fer_core.text import format_seconds
from ui import state, train_panel
from ui.frame import page_setup
from ui.run_browser import run_browser
from ui.sweep_form import sweep_form
from ui.sweep_view import sweeps_section
from ui.train_form import config_form

page_setup(__file__)
st.title("Train")


@st.cache_data(show_spinner="Reading the dataset's splits…", max_entries=4)
def _dataset_summary(source: str, skip_bad: bool) -> dict:
    """Split sizes of `source` loaded as a job loads it (no split made on the Dataset page),
    and how many bad rows skipping hides (a job would fail on them)."""
    ds = state.load_source(source, skip_bad=skip_bad)
    sizes = {name: int(sum(per.values())) for name, per in ds.counts().items()}
    return {"source": ds.source, "splits": sizes, "skipped": int(ds.skipped)}


@st.cache_data(show_spinner="Counting parameters…", max_entries=64)
def _param_count(model: str, kwargs_json: str) -> int:
    from fer_core.models import count_params, create_model

    return count_params(create_model(model, **json.loads(kwargs_json)))


@st.cache_data(show_spinner="Timing a few training steps…", max_entries=64)
def _timing(timing_json: str) -> SpeedEstimate:
    """Training speed of a config here, per `form.timing_key`: timed in a child process, so
    a native crash of TensorFlow there is an error message, not a dead server."""
    from fer_core.probe import measure_speed

    return measure_speed(TrainConfig.from_json(timing_json))


# ---------------------------------------------------------------- dataset

# A job process loads `config.data` itself, as the file is: `job_view` is what it will see.
source = state.active_source()
skip_bad = bool(st.session_state.get(state.ACTIVE_SKIP_BAD, False))
data_problem: str | None = None
try:
    state.load_active_dataset()  # fills the banner place the frame kept (ui.frame)
    job_view = _dataset_summary(source, skip_bad)
except DataError as exc:
    st.error(f"The active dataset cannot be loaded: {exc}")
    st.info("Choose another one on the Dataset page; training uses the demo set meanwhile.")
    source, job_view = DEMO, _dataset_summary(DEMO, False)
splits = job_view["splits"]
if job_view["skipped"]:
    data_problem = (f"{job_view['skipped']:,} bad rows of {job_view['source']} are skipped on "
                    f"the Dataset page, but a training job reads the file as it is and would "
                    f"stop at the first bad row: fix the file (or export the good rows) first.")
elif st.session_state.get(state.ACTIVE_SPLIT) and len(splits) == 1:
    st.info("The split made on the Dataset page is not applied by training: a job trains on "
            "all rows and validates on a seeded fraction of them (see Validation below).")
has_public = bool(splits.get(PUBLIC_TEST))
st.caption("Training sees: " + ", ".join(f"{name} {n:,}" for name, n in splits.items())
           + f" ({job_view['source']}). Change the dataset on the Dataset page.")

running = train_panel.live_panel()

# ---------------------------------------------------------------- configure

st.header("New run")
config = config_form(data=source, has_public_test=has_public)

# ---------------------------------------------------------------- cost and start

mode = st.segmented_control("Start", ["One run", "Sweep"], default="One run", key="train_mode",
                            help="One run trains the config above; a sweep trains many "
                                 "variations of it and keeps what scores best.")
if mode == "Sweep":
    if config is not None:
        sweep_form(config, data_problem=data_problem)
else:
    if config is not None:
        n_train = form.train_size(splits, config)
        for note in form.config_notes(config, n_train=n_train, has_public_test=has_public):
            st.info(note)
        params = _param_count(config.model, json.dumps(config.model_kwargs, sort_keys=True))
        timings = st.session_state.setdefault("train_timings", {})
        key = form.timing_key(config)
        m1, m2, m3 = st.columns(3)
        m1.metric("Parameters", f"{params:,}")
        m2.metric("Training images / epoch", f"{n_train:,}")
        measure = m3.button("Estimate time", key="train_estimate",
                            help="Times a few training steps of this model, batch size and "
                                 "augmentation on this machine (cached per configuration).")
        if measure:
            if running:
                st.warning("A job is training now: the timing shares the CPU with it and reads slow.")
            try:
                timings[key] = _timing(key)
            except (ConfigError, ValueError, RuntimeError) as exc:
                st.error(f"Could not time this configuration: {exc}")
        if key in timings:
            per_epoch = n_train / timings[key].images_per_second
            st.markdown(f"Estimated **{format_seconds(per_epoch)} per epoch** and "
                        f"**{format_seconds(per_epoch * config.epochs)} for {config.epochs} "
                        f"epochs** of training on this machine (early stopping may end it "
                        f"sooner), after about **{format_seconds(timings[key].startup_seconds)}** "
                        f"of start-up: a new process, TensorFlow, building and compiling the model "
                        f"(loading the data comes on top).")

    if data_problem:
        st.error(data_problem)
    start = st.button("Start training", key="train_start", type="primary",
                      disabled=config is None or data_problem is not None)
    if start and config is not None:
        try:
            started = jobs.start_job(config)
        except jobs.JobBusy as exc:
            holder = exc.run_id or "another job"
            st.error(f"A training job is already running ({holder}). Only one job runs at a "
                     f"time: stop it above or wait for it to finish, then start again.")
        except (ConfigError, DataError, runs.RunError, OSError) as exc:
            st.error(f"Could not start: {exc}")
        else:
            train_panel.follow_job()
            st.session_state["train_started"] = started.id
            st.rerun()
    if st.session_state.get("train_started") and not start:
        st.success(f"Started run `{st.session_state.pop('train_started')}` in the background; "
                   f"other pages stay usable while it trains.")

# ---------------------------------------------------------------- runs

st.header("Runs")
run_browser()

st.header("Sweeps")
sweeps_section()
