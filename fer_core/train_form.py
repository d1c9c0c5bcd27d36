"""The Train page's logic, free of Streamlit: form values <-> TrainConfig, what is inactive
and why, per-model options, the runs table, live progress and curves of a run.

The page keeps one flat dict of widget values (keys below); `config_from_form` turns it into
a validated `TrainConfig` (or a `ConfigError` naming the field), `form_values` goes back,
so presets, "reset to defaults" and "load a run's config" are all `form_values(config)`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from fer_core import runs
from fer_core.config import PRESETS, ConfigError, TrainConfig, changed_options, config_from_preset
from fer_core.files import tail
from fer_core.labels import PUBLIC_TEST, TRAINING
from fer_core.pipeline import AugmentConfig

DEFAULTS_PRESET = "defaults"  # the preset picker's entry for TrainConfig's own defaults

# TrainConfig fields edited by a widget of the same name (name, data and the dicts aside).
PLAIN_FIELDS: tuple[str, ...] = (
    "name", "model", "epochs", "batch_size", "optimizer", "learning_rate", "momentum",
    "weight_decay", "schedule", "plateau_factor", "plateau_patience", "min_lr", "warmup_epochs",
    "early_stop_monitor", "early_stop_patience", "label_smoothing", "mixup_alpha",
    "class_weights", "val_source", "val_fraction", "seed",
)
AUGMENT_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AugmentConfig))
OPTION_PREFIX = "opt_"  # model option `width` -> form key `opt_width`
AUGMENT_PREFIX = "aug_"  # augmentation option `shift` -> form key `aug_shift`
AUGMENT_SWITCH = "aug_enabled"  # False -> config.augment is None (no augmentation at all)


@dataclass(frozen=True)
class OptionSpec:
    """How to draw one model option: a number input with these bounds."""

    name: str
    label: str
    default: int | float
    minimum: int | float
    maximum: int | float
    step: int | float
    help: str
    fmt: str | None = None  # printf format for floats (e.g. "%.4f" for small L2 factors)

    @property
    def key(self) -> str:
        return OPTION_PREFIX + self.name

    @property
    def is_int(self) -> bool:
        return isinstance(self.default, int) and not isinstance(self.default, bool)


# Known model options; anything else a builder takes is drawn from its default's type.
_OPTION_HINTS: dict[str, tuple[str, float, float, float, str, str | None]] = {
    "width": ("width (filters)", 1, 512, 1, ("filters of the first block; later blocks "
                                             "scale with it (cost grows about with its square)"),
              None),
    "dropout": ("dropout", 0.0, 0.9, 0.05, "dropout rate before the classifier", "%.2f"),
    "l2": ("L2 weight penalty", 0.0, 1.0, 0.001, "L2 factor of the conv kernels (0 = off)",
           "%.4f"),
    "convs": ("convs per block", 1, 6, 1, "convolutions per stage", None),
}


def model_option_specs(defaults: Mapping[str, Any]) -> list[OptionSpec]:
    """Widgets for a model's options (`ModelInfo.defaults`): numbers only, known ones first."""
    specs = []
    order = list(_OPTION_HINTS)
    for name in sorted(defaults, key=lambda n: (order.index(n) if n in order else len(order), n)):
        default = defaults[name]
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue  # not a number: left at its default (none of the registered models has one)
        label, low, high, step, help_text, fmt = _OPTION_HINTS.get(
            name, (name, 0, max(10 * abs(default), 1), 1 if isinstance(default, int) else 0.01,
                   f"model option {name}", None))
        if isinstance(default, int):
            low, high, step = int(low), int(max(high, default)), max(1, int(step))
        else:
            low, high, step = float(low), float(max(high, default)), float(step)
        specs.append(OptionSpec(name, label, default, low, high, step, help_text, fmt))
    return specs


# ---------------------------------------------------------------- form <-> config


def form_values(config: TrainConfig,
                model_defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The flat widget dict showing `config` (model options filled in from the model's defaults)."""
    values: dict[str, Any] = {name: getattr(config, name) for name in PLAIN_FIELDS}
    options = dict(model_defaults or {})
    options.update(config.model_kwargs)
    for name, value in options.items():
        values[OPTION_PREFIX + name] = value
    augment = AugmentConfig.from_dict(config.augment or {})
    values[AUGMENT_SWITCH] = config.augment is not None
    for name in AUGMENT_FIELDS:
        values[AUGMENT_PREFIX + name] = getattr(augment, name)
    return values


def config_from_form(values: Mapping[str, Any], *, data: str,
                     model_defaults: Mapping[str, Any] | None = None) -> TrainConfig:
    """A validated TrainConfig from the widget dict; raises ConfigError naming the field.

    Model options are taken for the chosen model only (`model_defaults` lists them), so
    switching models never carries another model's options along; options equal to the
    model's default are left out of `model_kwargs`, keeping run configs short.
    """
    plain = {name: values[name] for name in PLAIN_FIELDS if name in values}
    defaults = dict(model_defaults or {})
    options = changed_options({name: values[OPTION_PREFIX + name] for name in defaults
                               if OPTION_PREFIX + name in values}, defaults)
    augment: dict[str, Any] | None = None
    if values.get(AUGMENT_SWITCH, True):
        base = AugmentConfig()
        augment = {name: values[AUGMENT_PREFIX + name] for name in AUGMENT_FIELDS
                   if AUGMENT_PREFIX + name in values
                   and values[AUGMENT_PREFIX + name] != getattr(base, name)}
        try:
            AugmentConfig.from_dict(augment).validate()
        except (TypeError, ValueError) as exc:
            raise ConfigError("augment", str(exc)) from None
    return TrainConfig(**plain, model_kwargs=options, augment=augment, data=data)


def preset_config(preset: str, model: str | None = None) -> TrainConfig:
    """The config a preset stands for: `defaults` is TrainConfig's own (for `model`)."""
    if preset == DEFAULTS_PRESET:
        return TrainConfig() if model is None else TrainConfig(model=model)
    return config_from_preset(preset)


def preset_names() -> list[str]:
    return [DEFAULTS_PRESET, *sorted(PRESETS)]


def inactive_fields(values: Mapping[str, Any], *, has_public_test: bool) -> dict[str, str]:
    """Form keys whose widgets do nothing with the other choices -> why (the page disables
    them), so combinations that would be silently ignored cannot be set up by mistake."""
    why: dict[str, str] = {}
    if values.get("optimizer") != "sgd":
        why["momentum"] = "momentum is used by SGD only"
    if values.get("schedule") != "plateau":
        why["plateau_factor"] = why["plateau_patience"] = "used by the plateau schedule only"
    if values.get("schedule") != "cosine":
        why["warmup_epochs"] = "warm-up is part of the cosine schedule only"
    if values.get("schedule") == "none":
        why["min_lr"] = "no schedule: the learning rate stays constant"
    if values.get("val_source") == "publictest" and has_public_test:
        why["val_fraction"] = "validation uses the PublicTest split"
    if not values.get(AUGMENT_SWITCH, True):
        for name in AUGMENT_FIELDS:
            why[AUGMENT_PREFIX + name] = "augmentation is switched off"
    return why


def config_notes(config: TrainConfig, *, n_train: int, has_public_test: bool) -> list[str]:
    """Valid but questionable combinations, explained in one line each."""
    notes = []
    if config.val_source == "publictest" and not has_public_test:
        notes.append(f"This dataset has no {PUBLIC_TEST} split: validation falls back to a "
                     f"{config.val_fraction:g} fraction of {TRAINING}.")
    if n_train and config.batch_size > n_train:
        notes.append(f"Batch size {config.batch_size} exceeds the {n_train} training images: "
                     f"every epoch is one step of {n_train}.")
    if (config.schedule == "plateau" and config.early_stop_patience
            and config.early_stop_patience <= config.plateau_patience):
        notes.append(f"Early stopping (patience {config.early_stop_patience}) fires before the "
                     f"plateau schedule (patience {config.plateau_patience}) ever lowers the "
                     f"learning rate.")
    if config.early_stop_patience and config.early_stop_patience >= config.epochs:
        notes.append(f"Early-stopping patience {config.early_stop_patience} is not below the "
                     f"{config.epochs} epochs: it cannot stop the run early.")
    if config.mixup_alpha > 0 and config.label_smoothing > 0:
        notes.append("Mixup and label smoothing both soften the targets; together they "
                     "usually need more epochs.")
    if config.optimizer == "adam" and config.weight_decay > 0:
        notes.append("Adam applies weight decay too; AdamW is the usual choice for it.")
    return notes


def train_size(splits: Mapping[str, int], config: TrainConfig) -> int:
    """Training images one epoch sees, from split sizes (as `fer_core.train.split_data`)."""
    n = int(splits.get(TRAINING, 0))
    if config.val_source == "publictest" and splits.get(PUBLIC_TEST):
        return n
    return n - max(1, round(n * config.val_fraction)) if n else 0


def timing_key(config: TrainConfig) -> str:
    """What a speed measurement depends on (not name, epochs, schedule or seed): cache key."""
    keep = ("model", "model_kwargs", "batch_size", "optimizer", "augment", "mixup_alpha")
    return TrainConfig().replace(**{k: getattr(config, k) for k in keep}).to_json()


# ---------------------------------------------------------------- runs


RUNS_COLUMNS: tuple[str, ...] = (
    "name", "model", "status", "best val accuracy", "epochs", "duration", "created", "id",
)


def best_val_accuracy(history: Iterable[Mapping[str, float]]) -> float | None:
    values = [r.get("val_accuracy") for r in history]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return max(finite) if finite else None


def run_duration(info: runs.RunInfo, now: float | None = None) -> float | None:
    """Training seconds: the trainer's own count, or start to end (now, while running)."""
    status = info.status
    if status.get("elapsed") is not None and not info.active:
        return float(status["elapsed"])
    start = status.get("started_at")
    if not start:
        return None
    end = status.get("finished_at") if not info.active else None
    return max(0.0, float(end or now or time.time()) - float(start))


def runs_frame(infos: Iterable[runs.RunInfo]) -> pd.DataFrame:
    """One row per run, newest first, for the runs table (accuracy in %, readable times)."""
    rows = []
    for info in infos:
        best = best_val_accuracy(runs.read_history(info.dir)) if info.readable else None
        duration = run_duration(info)
        rows.append({
            "name": info.name if info.readable else info.id,
            "model": info.config.model if info.config else "?",
            "status": info.state if info.readable else f"unreadable: {info.problem}",
            "best val accuracy": None if best is None else round(100 * best, 2),
            "epochs": f"{info.epoch}/{info.epochs}" if info.readable else "",
            "duration": format_seconds(duration) if duration is not None else "",
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(info.created)),
            "id": info.id,
        })
    return pd.DataFrame(rows, columns=list(RUNS_COLUMNS))


def tensorboard_command(info: runs.RunInfo) -> str:
    return f"tensorboard --logdir {shlex.quote(str(info.dir / 'logs'))}"


def format_seconds(seconds: float | None) -> str:
    """`42 s`, `3 min 05 s`, `2 h 07 min`; an em dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# ---------------------------------------------------------------- live progress


@dataclass(frozen=True)
class LiveProgress:
    """What the progress panel draws for one run, from its status and latest events."""

    state: str
    epoch: int  # epoch in progress (1-based) while running, else epochs completed
    epochs: int
    batch: int
    steps: int
    epoch_fraction: float  # 0..1 of the current epoch
    run_fraction: float  # 0..1 of all epochs
    elapsed: float | None
    eta: float | None
    lr: float | None
    loss: float | None
    accuracy: float | None
    val_accuracy: float | None
    error: str | None

    @property
    def running(self) -> bool:
        return self.state in runs.ACTIVE_STATES


def recent_events(info: runs.RunInfo, max_bytes: int = 1 << 19) -> list[dict[str, Any]]:
    """The last events of a run (about `max_bytes` of events.jsonl), enough for the live
    panel: a run of hours logs megabytes of batch events, and the panel reads every second."""
    events = []
    for line in tail(info.dir / "events.jsonl", max_bytes=max_bytes):
        try:
            event = json.loads(line)
        except ValueError:
            continue  # the trainer is mid-write, or the cut landed inside a line
        if isinstance(event, dict):
            events.append(event)
    return events


def live_progress(info: runs.RunInfo, events: list[dict[str, Any]],
                  now: float | None = None,
                  history: list[Mapping[str, float]] | None = None) -> LiveProgress:
    """Progress of a run from its status, its latest events and optionally its history (for
    the validation accuracy when no epoch event is among the events). While it runs, elapsed
    and ETA are advanced by the time since the latest event so they tick smoothly."""
    now = time.time() if now is None else now
    epochs = max(1, info.epochs)
    last = next((e for e in reversed(events) if e.get("kind") in ("batch", "epoch")), None)
    start = next((e for e in reversed(events) if e.get("kind") in ("started", "resumed")), None)
    epoch_events = [e for e in events if e.get("kind") == "epoch"]
    # the epoch event lands a moment before status.json catches up: trust whichever is ahead
    done = max(info.epoch, int(epoch_events[-1].get("epoch", 0)) if epoch_events else 0)
    steps = int((start or {}).get("steps_per_epoch") or (last or {}).get("steps") or 0)
    batch, epoch_fraction = 0, 0.0
    lr = (last or start or {}).get("lr")
    elapsed = info.status.get("elapsed")
    eta = info.status.get("eta") if info.active else 0.0
    if info.active:
        current = done + 1
        if last and last["kind"] == "batch" and int(last.get("epoch", 0)) == current:
            batch, steps = int(last["batch"]), int(last.get("steps") or steps)
            epoch_fraction = batch / max(1, steps)
        if last:
            since = max(0.0, now - float(last.get("time", now)))
            elapsed = float(last.get("elapsed") or 0.0) + since
            eta = None if last.get("eta") is None else max(0.0, float(last["eta"]) - since)
        elif info.status.get("started_at"):
            elapsed = now - float(info.status["started_at"])
    else:
        current = done
        epoch_fraction = 1.0 if done else 0.0
        if elapsed is None:
            elapsed = run_duration(info, now)
    run_fraction = 1.0 if info.state == "finished" else (done + (epoch_fraction if info.active
                                                                   else 0.0)) / epochs
    last_epoch = epoch_events[-1] if epoch_events else (dict(history[-1]) if history else {})
    source = last if last and last.get("kind") == "batch" and info.active else last_epoch
    return LiveProgress(
        state=info.state, epoch=min(current, epochs), epochs=epochs, batch=batch, steps=steps,
        epoch_fraction=min(1.0, epoch_fraction), run_fraction=min(1.0, max(0.0, run_fraction)),
        elapsed=elapsed, eta=eta, lr=lr, loss=source.get("loss"),
        accuracy=source.get("accuracy"), val_accuracy=last_epoch.get("val_accuracy"),
        error=info.status.get("error"),
    )


def progress_caption(p: LiveProgress) -> str:
    """One line under the bars: elapsed, ETA, learning rate, latest numbers."""
    parts = [f"elapsed {format_seconds(p.elapsed)}"]
    if p.running:
        parts.append(f"ETA {format_seconds(p.eta)}" if p.eta is not None else "ETA measuring…")
    if p.lr is not None:
        parts.append(f"learning rate {p.lr:.3g}")
    if p.loss is not None and math.isfinite(p.loss):
        parts.append(f"loss {p.loss:.4f}")
    if p.accuracy is not None:
        parts.append(f"train acc {100 * p.accuracy:.1f}%")
    if p.val_accuracy is not None:
        parts.append(f"val acc {100 * p.val_accuracy:.1f}%")
    return " · ".join(parts)


# ---------------------------------------------------------------- curves


def curve_frame(history: list[Mapping[str, float]]) -> pd.DataFrame:
    """Long table (epoch, metric, split, value) of loss and accuracy, training and validation."""
    rows = []
    for row in history:
        for metric in ("loss", "accuracy"):
            for split, column in (("train", metric), ("val", f"val_{metric}")):
                value = row.get(column)
                if value is not None and math.isfinite(value):
                    rows.append({"epoch": int(row["epoch"]), "metric": metric, "split": split,
                                 "value": float(value)})
    return pd.DataFrame(rows, columns=["epoch", "metric", "split", "value"])


def batch_points(events: list[dict[str, Any]], after_epoch: int) -> pd.DataFrame:
    """Running training loss/accuracy inside unfinished epochs (x = fractional epoch), so the
    curves move before the first epoch ends; epochs already in the history are left out."""
    rows = []
    for e in events:
        if e.get("kind") != "batch" or int(e.get("epoch", 0)) <= after_epoch:
            continue
        x = int(e["epoch"]) - 1 + int(e["batch"]) / max(1, int(e.get("steps") or 1))
        rows.append({"x": x, "loss": e.get("loss"), "accuracy": e.get("accuracy")})
    return pd.DataFrame(rows, columns=["x", "loss", "accuracy"])


_COLOURS = {"train": "#1f77b4", "val": "#d62728"}


def curves_figure(history: list[Mapping[str, float]], batches: pd.DataFrame | None = None,
                  *, epochs: int | None = None) -> go.Figure:
    """Loss (left) and accuracy (right) per epoch, train and val; dotted: the epoch in progress.

    Two x axes side by side set up by hand (not `make_subplots`, ten times slower), since the
    live panel redraws this every second while a job runs."""
    frame = curve_frame(history)
    fig = go.Figure()
    for col, metric in enumerate(("loss", "accuracy"), start=1):
        axes = {"xaxis": "x" if col == 1 else "x2", "yaxis": "y" if col == 1 else "y2"}
        scale = 100.0 if metric == "accuracy" else 1.0
        for split in ("train", "val"):
            part = frame[(frame.metric == metric) & (frame.split == split)]
            fig.add_trace(go.Scatter(
                x=part.epoch.tolist(), y=(part.value * scale).round(4).tolist(),
                mode="lines+markers", name=split, legendgroup=split, showlegend=col == 1,
                line={"color": _COLOURS[split]}, **axes,
                hovertemplate=f"epoch %{{x}}<br>{split} {metric} %{{y}}<extra></extra>"))
        if batches is not None and len(batches):
            values = batches[metric].astype(float) * scale
            fig.add_trace(go.Scatter(
                x=batches.x.round(3).tolist(), y=values.round(4).tolist(), mode="lines",
                name="train (this epoch)", legendgroup="batch", showlegend=col == 1,
                line={"color": _COLOURS["train"], "dash": "dot"}, **axes,
                hovertemplate=f"epoch %{{x:.2f}}<br>running train {metric} %{{y}}<extra></extra>"))
    x_range = [0, max(epochs, 1) + 0.2] if epochs else None
    x_common = {"title": {"text": "epoch"}, "rangemode": "tozero", "range": x_range}
    fig.update_layout(
        xaxis={**x_common, "domain": [0.0, 0.45]},
        xaxis2={**x_common, "domain": [0.55, 1.0], "anchor": "y2"},
        yaxis={"title": {"text": "loss"}},
        yaxis2={"title": {"text": "accuracy %"}, "anchor": "x2"},
        height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig
