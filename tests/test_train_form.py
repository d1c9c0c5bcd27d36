"""The Train page's pure logic: form <-> TrainConfig, inactive fields, notes, runs table,
live progress and curves (no Streamlit, no training)."""

from __future__ import annotations

import math
import os
import time

import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import runs
from fer_core import train_form as form
from fer_core.config import PRESETS, ConfigError, TrainConfig
from fer_core.models import list_models

MODELS = {info.name: info.defaults for info in list_models()}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_defaults_round_trip_for_every_model(model):
    config = form.preset_config(form.DEFAULTS_PRESET, model)
    values = form.form_values(config, MODELS[model])
    assert {form.OPTION_PREFIX + k for k in MODELS[model]} <= set(values)
    assert form.config_from_form(values, data="demo", model_defaults=MODELS[model]) == config


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_round_trip(preset):
    config = form.preset_config(preset)
    values = form.form_values(config, MODELS[config.model])
    assert form.config_from_form(values, data=config.data,
                                 model_defaults=MODELS[config.model]) == config
    assert form.preset_names()[0] == form.DEFAULTS_PRESET and preset in form.preset_names()


def test_model_options_keep_only_changes_of_the_chosen_model():
    values = form.form_values(TrainConfig(model="fernet"), MODELS["fernet"])
    values.update({"opt_width": 8.0, "opt_dropout": 0.4, "opt_other_models_option": 3})
    config = form.config_from_form(values, data="demo", model_defaults=MODELS["fernet"])
    assert config.model_kwargs == {"width": 8}
    assert isinstance(config.model_kwargs["width"], int)


def test_augmentation_switch_values_and_errors():
    values = form.form_values(TrainConfig(), MODELS["mini_xception"])
    values.update({"aug_shift": 0.2, "aug_flip": False})
    config = form.config_from_form(values, data="demo", model_defaults=MODELS["mini_xception"])
    assert config.augment == {"shift": 0.2, "flip": False}
    values[form.AUGMENT_SWITCH] = False
    assert form.config_from_form(values, data="demo").augment is None
    values[form.AUGMENT_SWITCH] = True
    values["aug_rotation"] = 500.0
    with pytest.raises(ConfigError) as err:
        form.config_from_form(values, data="demo")
    assert err.value.field == "augment" and "rotation" in str(err.value)


def test_invalid_combinations_name_their_field():
    values = form.form_values(TrainConfig(), MODELS["mini_xception"])
    with pytest.raises(ConfigError) as err:
        form.config_from_form({**values, "min_lr": 0.1, "learning_rate": 0.01}, data="demo")
    assert err.value.field == "min_lr"
    with pytest.raises(ConfigError) as err:
        form.config_from_form({**values, "schedule": "cosine", "epochs": 3, "warmup_epochs": 3},
                              data="demo")
    assert err.value.field == "warmup_epochs"


def test_inactive_fields_follow_the_choices():
    base = form.form_values(TrainConfig(), MODELS["mini_xception"])
    why = form.inactive_fields(base, has_public_test=True)
    assert {"momentum", "warmup_epochs", "val_fraction"} <= set(why)
    assert "plateau_factor" not in why and "min_lr" not in why
    why = form.inactive_fields({**base, "optimizer": "sgd", "schedule": "cosine"},
                               has_public_test=False)
    assert "momentum" not in why and "warmup_epochs" not in why and "val_fraction" not in why
    assert {"plateau_factor", "plateau_patience"} <= set(why)
    why = form.inactive_fields({**base, "schedule": "none", form.AUGMENT_SWITCH: False},
                               has_public_test=True)
    assert "min_lr" in why and all(form.AUGMENT_PREFIX + n in why for n in form.AUGMENT_FIELDS)


def test_notes_explain_questionable_settings():
    config = TrainConfig(batch_size=512, early_stop_patience=2, plateau_patience=3,
                         mixup_alpha=0.2, label_smoothing=0.1)
    notes = " ".join(form.config_notes(config, n_train=100, has_public_test=False))
    assert "no PublicTest" in notes and "exceeds the 100" in notes
    assert "before the plateau" in notes and "Mixup and label smoothing" in notes
    assert form.config_notes(TrainConfig(), n_train=10_000, has_public_test=True) == []


def test_train_size_matches_the_validation_source():
    splits = {"Training": 1000, "PublicTest": 100}
    assert form.train_size(splits, TrainConfig()) == 1000
    assert form.train_size(splits, TrainConfig(val_source="fraction", val_fraction=0.2)) == 800
    assert form.train_size({"Training": 1000}, TrainConfig(val_fraction=0.1)) == 900
    assert form.train_size({}, TrainConfig()) == 0


def test_timing_key_ignores_what_does_not_change_speed():
    a = TrainConfig(model="fernet", batch_size=32)
    assert form.timing_key(a) == form.timing_key(a.replace(name="x", epochs=3, seed=9,
                                                           learning_rate=0.1))
    assert form.timing_key(a) != form.timing_key(a.replace(batch_size=64))
    assert TrainConfig.from_json(form.timing_key(a)).model == "fernet"


def test_option_specs_are_numbers_with_known_ones_first():
    specs = form.model_option_specs({"convs": 2, "l2": 0.0, "width": 32, "dropout": 0.4,
                                     "act": "relu", "extra": 3})
    assert [s.name for s in specs] == ["width", "dropout", "l2", "convs", "extra"]
    assert specs[0].is_int and not specs[1].is_int and specs[0].key == "opt_width"
    assert all(s.minimum <= s.default <= s.maximum for s in specs)


def _finished_run(root, name="done", rows=((0.7, 0.30), (0.6, 0.45), (0.65, 0.40))):
    info = runs.create_run(TrainConfig(name=name, model="fernet", epochs=len(rows)), root)
    history = [{"epoch": i + 1, "loss": 1.0 - i / 10, "accuracy": 0.3 + i / 10, "val_loss": vl,
                "val_accuracy": va, "lr": 1e-3, "seconds": 2.0}
               for i, (vl, va) in enumerate(rows)]
    runs.write_history(info.dir, history)
    runs.update_status(info.dir, state="finished", epoch=len(rows), elapsed=125.0,
                       started_at=time.time() - 130, finished_at=time.time())
    return runs.get_run(info.dir)


def test_runs_frame_lists_every_run_with_its_best_accuracy(tmp_path):
    done = _finished_run(tmp_path)
    queued = runs.create_run(TrainConfig(name="waiting", epochs=5), tmp_path)
    os.makedirs(tmp_path / "junk")
    frame = form.runs_frame(runs.list_runs(tmp_path))
    assert list(frame.columns) == list(form.RUNS_COLUMNS) and len(frame) == 3
    row = frame[frame["id"] == done.id].iloc[0]
    assert row["best val accuracy"] == 45.0 and row["epochs"] == "3/3"
    assert row["duration"] == "2 min 05 s" and row["model"] == "fernet"
    assert row["status"] == "finished" and row["name"] == "done"
    waiting = frame[frame["id"] == queued.id].iloc[0]
    assert waiting["status"] == "queued" and math.isnan(waiting["best val accuracy"])
    assert frame[frame["id"] == "junk"].iloc[0]["status"].startswith("unreadable")


def test_live_progress_while_running_and_after(tmp_path):
    info = runs.create_run(TrainConfig(epochs=4), tmp_path)
    runs.update_status(info.dir, state="running", pid=os.getpid(),
                       pid_start=runs.process_start_token(os.getpid()),
                       started_at=time.time() - 30, epoch=1)
    t = time.time()
    events = [
        {"kind": "started", "time": t - 30, "steps_per_epoch": 10, "lr": 1e-3},
        {"kind": "epoch", "time": t - 12, "epoch": 1, "loss": 1.5, "accuracy": 0.4,
         "val_accuracy": 0.35, "lr": 1e-3, "elapsed": 18.0, "eta": 54.0},
        {"kind": "batch", "time": t - 2, "epoch": 2, "batch": 5, "steps": 10, "loss": 1.2,
         "accuracy": 0.5, "lr": 5e-4, "elapsed": 28.0, "eta": 40.0},
    ]
    p = form.live_progress(runs.get_run(info.dir), events, now=t)
    assert p.running and (p.epoch, p.epochs, p.batch, p.steps) == (2, 4, 5, 10)
    assert p.epoch_fraction == 0.5 and p.run_fraction == pytest.approx(1.5 / 4)
    assert p.elapsed == pytest.approx(30.0) and p.eta == pytest.approx(38.0)
    assert p.lr == 5e-4 and p.loss == 1.2 and p.val_accuracy == 0.35
    caption = form.progress_caption(p)
    assert "ETA 38 s" in caption and "learning rate 0.0005" in caption
    points = form.batch_points(events, after_epoch=1)
    assert points.x.tolist() == [1.5]
    runs.update_status(info.dir, state="failed", error="boom", elapsed=31.0, epoch=1)
    p = form.live_progress(runs.get_run(info.dir), events, now=t)
    assert not p.running and p.error == "boom" and p.run_fraction == 0.25 and p.eta == 0.0


def test_curves_figure_draws_the_history(tmp_path):
    done = _finished_run(tmp_path)
    history = runs.read_history(done.dir)
    fig = form.curves_figure(history, epochs=3)
    names = [(t.name, t.xaxis) for t in fig.data]
    assert names == [("train", "x"), ("val", "x"), ("train", "x2"), ("val", "x2")]
    assert list(fig.data[1].y) == [0.7, 0.6, 0.65]
    assert list(fig.data[3].y) == [30.0, 45.0, 40.0]
    assert form.curve_frame([]).empty


@pytest.mark.parametrize("seconds,text", [(None, "—"), (4.25, "4.2 s"), (42, "42 s"),
                                          (185, "3 min 05 s"), (7620, "2 h 07 min")])
def test_format_seconds(seconds, text):
    assert form.format_seconds(seconds) == text


def test_recent_events_reads_the_tail_only(tmp_path):
    info = runs.create_run(TrainConfig(epochs=2), tmp_path)
    for i in range(200):
        runs.append_event(info.dir, "batch", epoch=1, batch=i + 1, steps=200, loss=1.0)
    with open(info.dir / "events.jsonl", "a") as fh:
        fh.write('{"kind": "batch", "epo')  # the trainer is mid-write
    events = form.recent_events(info, max_bytes=2000)
    assert 0 < len(events) < 200 and events[-1]["batch"] == 200
    assert [e["batch"] for e in events] == list(range(201 - len(events), 201))
    assert len(form.recent_events(info)) == 200
