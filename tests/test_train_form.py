"""The Train page's form logic: form <-> TrainConfig, inactive fields, option widgets and
notes (no Streamlit, no training)."""

from __future__ import annotations

import pytest

import fer_core  # noqa: F401  (CPU flags before TensorFlow loads)
from fer_core import train_form as form
from fer_core.config import PRESETS, ConfigError, TrainConfig
from fer_core.models import list_models

MODELS = {info.name: info.defaults for info in list_models()}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_defaults_round_trip_for_every_model(model):
    config = TrainConfig(model=model)
    values = form.form_values(config, MODELS[model])
    assert {form.OPTION_PREFIX + k for k in MODELS[model]} <= set(values)
    assert form.config_from_form(values, data="demo", model_defaults=MODELS[model]) == config


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_round_trip(preset):
    config = form.preset_config(preset)
    values = form.form_values(config, MODELS[config.model])
    assert form.config_from_form(values, data=config.data,
                                 model_defaults=MODELS[config.model]) == config
    assert form.preset_names()[0] == "default" and preset in form.preset_names()


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
