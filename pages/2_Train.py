"""Train: configure a run, see what it costs, start it in the background, watch it learn,
stop it, and find it again later (resume, rename, delete).

The job runs in its own process (`fer_core.jobs`); this page only reads its run folder. The
running job is found from the runs folder's lock, never from this session, so a reload or a
second tab shows the same job. Form values live in `st.session_state["train_form"]` (UI
state only); everything else comes from `fer_core`.
"""

from __future__ import annotations

import json

import streamlit as st

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import jobs, runs
from fer_core import train_form as form
from fer_core.config import (
    MONITORS,
    OPTIMIZERS,
    SCHEDULES,
    VAL_SOURCES,
    ConfigError,
    TrainConfig,
)
from fer_core.data import DEMO, DataError
from fer_core.labels import PUBLIC_TEST
from fer_core.models import list_models
from fer_core.text import escape_markdown
from ui import state

POLL_RUNNING_S = 1.0  # how often the live panel re-reads the run folder while a job runs
POLL_IDLE_S = 5.0  # how often it looks for a job started elsewhere (another tab, the CLI)
STORE = "train_form"  # session_state key of the form values (survives page switches)
WIDGET = "train_w_"  # prefix of the widgets' own keys

st.set_page_config(page_title="Train · FER workbench", page_icon=":material/model_training:",
                   layout="wide")
MODELS = {info.name: info for info in list_models()}
HELP = TrainConfig.field_help()

st.title("Train")


# ---------------------------------------------------------------- cached work


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
def _images_per_second(timing_json: str) -> float:
    """Training speed of a config here, per `form.timing_key`: timed in a child process, so
    a native crash of TensorFlow there is an error message, not a dead server."""
    from fer_core.probe import measure_speed

    return measure_speed(TrainConfig.from_json(timing_json))


# ---------------------------------------------------------------- form state


def _defaults(model: str) -> dict:
    return MODELS[model].defaults if model in MODELS else {}


def _store() -> dict:
    if STORE not in st.session_state:
        config = form.preset_config(form.DEFAULTS_PRESET)
        st.session_state[STORE] = form.form_values(config, _defaults(config.model))
    return st.session_state[STORE]


def _load_into_form(config: TrainConfig) -> None:
    """Show `config` in every widget (preset, reset, a run's config)."""
    values = form.form_values(config, _defaults(config.model))
    st.session_state[STORE] = values
    for name, value in values.items():
        st.session_state[WIDGET + name] = value


def _apply_preset() -> None:
    _load_into_form(form.preset_config(st.session_state["train_preset"]))


def _reset_to_defaults() -> None:
    """TrainConfig's defaults for the model now chosen (with that model's option defaults)."""
    _load_into_form(form.preset_config(form.DEFAULTS_PRESET, st.session_state[WIDGET + "model"]))


def _on_model_change() -> None:
    """A new model starts from its own option defaults."""
    model = st.session_state[WIDGET + "model"]
    for name, value in _defaults(model).items():
        st.session_state[WIDGET + form.OPTION_PREFIX + name] = value


def _w(name: str) -> str:
    """Key of the widget for form field `name`, seeded from the store on first draw."""
    key = WIDGET + name
    if key not in st.session_state:
        st.session_state[key] = _store().get(name)
    return key


def _help(name: str, inactive: dict[str, str]) -> str:
    text = HELP.get(name, "")
    return f"{text}. Disabled: {inactive[name]}." if name in inactive else text


# ---------------------------------------------------------------- dataset

# A job process loads `config.data` itself, as the file is: `job_view` is what it will see.
source = state.active_source()
skip_bad = bool(st.session_state.get(state.ACTIVE_SKIP_BAD, False))
data_problem: str | None = None
try:
    state.show_dataset_banner(state.load_active_dataset())
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


# ---------------------------------------------------------------- live panel


def _show_run_end(info: runs.RunInfo) -> None:
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
        best = form.best_val_accuracy(runs.read_history(info.dir))
        best_text = f"; best validation accuracy {100 * best:.2f}%" if best is not None else ""
        early = " (early stopping)" if info.status.get("early_stopped") else ""
        st.success(f"Run **{name}** finished after {info.epoch} epochs{early}{best_text}.")


def _live_panel() -> None:
    job = jobs.active_job()
    shown = st.session_state.get("train_live_active")
    if (job is not None) != bool(shown):  # a job started elsewhere or just ended
        st.session_state["train_live_active"] = job is not None
        if shown is not None:
            st.rerun()  # whole page: fast polling on or off, runs table refreshed
    all_runs = runs.list_runs()
    run_id = job.run_id if job else None
    if job and not run_id:
        run_id = next((r.id for r in all_runs if r.active), None)
    if run_id is None and all_runs:
        run_id = all_runs[0].id
    if run_id is None:
        st.info("No runs yet: configure one below and press Start.")
        return
    try:
        info = runs.get_run(run_id)
    except runs.RunError:
        st.info("The latest run was just removed.")
        return
    events = form.recent_events(info)
    history = runs.read_history(info.dir)
    progress = form.live_progress(info, events, history=history)
    title = "Training now" if job else "Latest run"
    model = info.config.model if info.config else "?"
    st.subheader(f"{title}: {escape_markdown(info.name)}")
    st.caption(f"{model} · run `{info.id}` · {info.state}")
    batch_text = f", batch {progress.batch}/{progress.steps}" if progress.running else ""
    st.progress(progress.epoch_fraction,
                text=f"Epoch {progress.epoch}/{progress.epochs}{batch_text}")
    st.progress(progress.run_fraction, text=f"Run {100 * progress.run_fraction:.0f}%")
    st.caption(form.progress_caption(progress))
    batches = form.batch_points(events, after_epoch=len(history)) if progress.running else None
    st.plotly_chart(form.curves_figure(history, batches, epochs=progress.epochs),
                    key="train_live_curves")
    if job is not None:
        if runs.stop_requested(info.dir):
            st.info("Stopping after the current batch…")
        elif st.button("Stop", key="train_stop", help="Stops after the current batch; the "
                       "best and last checkpoints are kept and the run can be resumed."):
            jobs.stop_job(info.id, wait=False)
            st.info("Stopping after the current batch…")
    else:
        _show_run_end(info)
    st.caption("TensorBoard for this run:")
    st.code(form.tensorboard_command(info), language="bash")


_running = jobs.active_job() is not None
st.session_state.setdefault("train_live_active", _running)
st.fragment(run_every=POLL_RUNNING_S if _running else POLL_IDLE_S)(_live_panel)()


# ---------------------------------------------------------------- configure

st.header("New run")
values = _store()
preset_col, apply_col, reset_col = st.columns([2, 1, 1], vertical_alignment="bottom")
preset_col.selectbox("Preset", form.preset_names(), key="train_preset",
                              help="Named starting points (fer_core.config.PRESETS).")
apply_col.button("Apply preset", key="train_apply_preset", on_click=_apply_preset)
reset_col.button("Reset to defaults", key="train_reset", on_click=_reset_to_defaults,
                 help="TrainConfig's defaults and the chosen model's own option defaults.")

# Widget values of this run, read as they are drawn; `inactive` greys out what does nothing.
current = {name: st.session_state.get(WIDGET + name, values.get(name)) for name in values}
inactive = form.inactive_fields(current, has_public_test=has_public)

model = st.selectbox("Model", list(MODELS), key=_w("model"), on_change=_on_model_change,
                     format_func=lambda name: f"{name} — {MODELS[name].description}")
specs = form.model_option_specs(_defaults(model))
if specs:
    cols = st.columns(len(specs))
    for col, spec in zip(cols, specs):
        key = _w(spec.key)
        value = st.session_state[key]
        if value is None or (spec.is_int and not isinstance(value, int)):
            st.session_state[key] = spec.default  # an option this model had no value for
        col.number_input(spec.label, min_value=spec.minimum, max_value=spec.maximum,
                         step=spec.step, format=spec.fmt, key=key,
                         help=f"{spec.help} (default {spec.default})")

st.subheader("Optimisation", divider="gray")
c1, c2, c3 = st.columns(3)
c1.number_input("Epochs", min_value=1, max_value=1000, step=1, key=_w("epochs"),
                help=HELP["epochs"])
c2.number_input("Batch size", min_value=1, max_value=4096, step=16, key=_w("batch_size"),
                help=HELP["batch_size"])
c3.selectbox("Optimizer", OPTIMIZERS, key=_w("optimizer"), help=HELP["optimizer"])
c1.number_input("Learning rate", min_value=1e-7, max_value=10.0, step=1e-4, format="%.2e",
                key=_w("learning_rate"), help=HELP["learning_rate"])
c2.number_input("Momentum", min_value=0.0, max_value=0.999, step=0.01, key=_w("momentum"),
                disabled="momentum" in inactive, help=_help("momentum", inactive))
c3.number_input("Weight decay", min_value=0.0, max_value=1.0, step=1e-4, format="%.2e",
                key=_w("weight_decay"), help=HELP["weight_decay"])
c1.selectbox("Schedule", SCHEDULES, key=_w("schedule"), help=HELP["schedule"])
c2.number_input("Plateau factor", min_value=0.01, max_value=0.99, step=0.05,
                key=_w("plateau_factor"), disabled="plateau_factor" in inactive,
                help=_help("plateau_factor", inactive))
c3.number_input("Plateau patience", min_value=0, max_value=100, step=1,
                key=_w("plateau_patience"), disabled="plateau_patience" in inactive,
                help=_help("plateau_patience", inactive))
c1.number_input("Minimum LR", min_value=0.0, max_value=1.0, step=1e-6, format="%.2e",
                key=_w("min_lr"), disabled="min_lr" in inactive, help=_help("min_lr", inactive))
c2.number_input("Cosine warm-up epochs", min_value=0, max_value=100, step=1,
                key=_w("warmup_epochs"), disabled="warmup_epochs" in inactive,
                help=_help("warmup_epochs", inactive))

st.subheader("Regularisation", divider="gray")
c1, c2, c3 = st.columns(3)
c1.number_input("Early-stopping patience", min_value=0, max_value=1000, step=1,
                key=_w("early_stop_patience"), help=HELP["early_stop_patience"])
c2.selectbox("Monitor", MONITORS, key=_w("early_stop_monitor"), help=HELP["early_stop_monitor"])
c3.number_input("Label smoothing", min_value=0.0, max_value=0.5, step=0.05,
                key=_w("label_smoothing"), help=HELP["label_smoothing"])
c1.number_input("Mixup alpha", min_value=0.0, max_value=2.0, step=0.1, key=_w("mixup_alpha"),
                help=HELP["mixup_alpha"])
c2.checkbox("Class weights", key=_w("class_weights"), help=HELP["class_weights"])

with st.expander("Augmentation", expanded=False):
    st.toggle("Augment training images", key=_w(form.AUGMENT_SWITCH),
              help="Off: the model sees the images as they are.")
    a1, a2, a3, a4 = st.columns(4)
    off = form.AUGMENT_SWITCH in inactive or not st.session_state[WIDGET + form.AUGMENT_SWITCH]
    a1.checkbox("Horizontal flip", key=_w("aug_flip"), disabled=off)
    a2.number_input("Shift (fraction)", 0.0, 0.5, step=0.05, key=_w("aug_shift"), disabled=off,
                    help="0 switches it off")
    a3.number_input("Rotation (°)", 0.0, 180.0, step=5.0, key=_w("aug_rotation"), disabled=off,
                    help="0 switches it off")
    a4.number_input("Zoom (fraction)", 0.0, 0.9, step=0.05, key=_w("aug_zoom"), disabled=off,
                    help="0 switches it off")
    a1.number_input("Brightness", 0.0, 1.0, step=0.05, key=_w("aug_brightness"), disabled=off,
                    help="0 switches it off")
    a2.number_input("Contrast", 0.0, 1.0, step=0.05, key=_w("aug_contrast"), disabled=off,
                    help="0 switches it off")
    a3.number_input("Random erasing (probability)", 0.0, 1.0, step=0.05, key=_w("aug_erasing"),
                    disabled=off, help="0 switches it off")

st.subheader("Validation and run", divider="gray")
c1, c2, c3 = st.columns(3)
c1.selectbox("Validation source", VAL_SOURCES, key=_w("val_source"), help=HELP["val_source"])
c2.number_input("Validation fraction", min_value=0.01, max_value=0.9, step=0.05,
                key=_w("val_fraction"), disabled="val_fraction" in inactive,
                help=_help("val_fraction", inactive))
c3.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key=_w("seed"),
                help=HELP["seed"])
st.text_input("Run name", key=_w("name"), max_chars=200, placeholder="optional",
              help=HELP["name"])

# Everything drawn: remember it (survives visits to other pages) and validate it.
for name in list(values):
    if WIDGET + name in st.session_state:
        values[name] = st.session_state[WIDGET + name]
for name, default in _defaults(model).items():
    values[form.OPTION_PREFIX + name] = st.session_state.get(
        WIDGET + form.OPTION_PREFIX + name, default)
config: TrainConfig | None = None
try:
    config = form.config_from_form(values, data=source, model_defaults=_defaults(model))
except ConfigError as exc:
    st.error(f"This combination cannot run: {exc.problem} (field `{exc.field}`).")

# ---------------------------------------------------------------- cost and start

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
        if _running:
            st.warning("A job is training now: the timing shares the CPU with it and reads slow.")
        try:
            timings[key] = _images_per_second(key)
        except (ConfigError, ValueError, RuntimeError) as exc:
            st.error(f"Could not time this configuration: {exc}")
    if key in timings:
        per_epoch = n_train / timings[key]
        st.markdown(f"Estimated **{form.format_seconds(per_epoch)} per epoch** and "
                    f"**{form.format_seconds(per_epoch * config.epochs)} for {config.epochs} "
                    f"epochs** on this machine (early stopping may end it sooner).")

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
        st.session_state["train_live_active"] = True
        st.session_state["train_started"] = started.id
        st.rerun()
if st.session_state.get("train_started") and not start:
    st.success(f"Started run `{st.session_state.pop('train_started')}` in the background; "
               f"other pages stay usable while it trains.")


# ---------------------------------------------------------------- runs

st.header("Runs")
all_runs = runs.list_runs()
if not all_runs:
    st.caption(f"No runs in {runs.runs_root()} yet.")
    st.stop()
st.dataframe(form.runs_frame(all_runs), hide_index=True, key="train_runs_table",
             column_config={"best val accuracy": st.column_config.NumberColumn(format="%.2f%%")})

by_id = {info.id: info for info in all_runs}
chosen = st.selectbox("Open a run", list(by_id), key="train_open_run",
                      format_func=lambda rid: f"{by_id[rid].name} · {by_id[rid].state} ({rid})")
info = by_id[chosen]
if not info.readable:
    st.error(f"Run `{info.id}` is unreadable: {info.problem}")
else:
    detail_curves, detail_config = st.columns([3, 2])
    with detail_curves:
        history = runs.read_history(info.dir)
        if history:
            st.plotly_chart(form.curves_figure(history, epochs=info.epochs),
                            key="train_run_curves")
        else:
            st.caption("No finished epoch yet.")
        if info.state == "failed":
            st.error(f"Failed: {info.status.get('error') or 'no reason recorded'}")
    with detail_config:
        st.caption("config.json")
        st.json(info.config.to_dict(), expanded=True)
        st.button("Load this config into the form", key="train_load_config",
                  on_click=_load_into_form, args=(info.config,))

    st.code(form.tensorboard_command(info), language="bash")
    can_resume = info.state in ("stopped", "failed") or (
        info.state == "finished" and info.config is not None)
    if can_resume and not info.active:
        r1, r2 = st.columns([1, 2], vertical_alignment="bottom")
        more = r1.number_input("Epochs in total", min_value=max(1, info.epoch), step=1,
                               value=max(info.epochs, info.epoch + (info.state == "finished")),
                               key=f"train_resume_epochs_{info.id}")
        if r2.button("Resume this run", key="train_resume"):
            try:
                jobs.resume_job(info.id, epochs=int(more) if more != info.epochs else None)
            except jobs.JobBusy:
                st.error("A training job is already running: stop it or wait for it first.")
            except (runs.RunError, ConfigError) as exc:
                st.error(f"Cannot resume: {exc}")
            else:
                st.session_state["train_live_active"] = True
                st.rerun()

    n1, n2 = st.columns([2, 1], vertical_alignment="bottom")
    new_name = n1.text_input("New name", value=info.name, key=f"train_rename_{info.id}")
    if n2.button("Rename", key="train_rename"):
        try:
            runs.rename_run(info.id, new_name)
        except (runs.RunError, ConfigError) as exc:
            st.error(f"Cannot rename: {exc}")
        else:
            st.rerun()

if info.active:
    st.caption("A running run cannot be deleted; stop it first.")
elif st.session_state.get("train_confirm_delete") == info.id:
    st.warning(f"Delete run **{escape_markdown(info.name)}** (`{info.id}`) and all its files? "
               f"This cannot be undone.")
    y, n = st.columns(2)
    if y.button("Yes, delete it", key="train_delete_yes", type="primary"):
        try:
            runs.delete_run(info.id)
        except runs.RunError as exc:
            st.error(f"Cannot delete: {exc}")
        else:
            st.session_state.pop("train_confirm_delete", None)
            st.rerun()
    if n.button("Cancel", key="train_delete_no"):
        st.session_state.pop("train_confirm_delete", None)
        st.rerun()
elif st.button("Delete…", key="train_delete"):
    st.session_state["train_confirm_delete"] = info.id
    st.rerun()
