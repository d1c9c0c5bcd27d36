"""TrainConfig: validation names the field, JSON round-trips, presets and overrides."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fer_core.config import (
    FIELD_NAMES,
    PRESETS,
    ConfigError,
    TrainConfig,
    config_from_preset,
)

pytestmark = pytest.mark.usefixtures("fer_dirs")


def test_defaults_are_valid_and_round_trip() -> None:
    config = TrainConfig()
    assert TrainConfig.from_json(config.to_json()) == config
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config


def test_every_field_has_help() -> None:
    helps = TrainConfig.field_help()
    assert list(helps) == list(FIELD_NAMES)
    assert all(len(text) > 10 for text in helps.values())


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("epochs", 0, ">= 1"),
        ("epochs", 2.5, "whole number"),
        ("epochs", True, "integer"),
        ("batch_size", "64", "integer"),
        ("learning_rate", 0.0, "> 0"),
        ("learning_rate", float("nan"), "finite"),
        ("optimizer", "rmsprop", "adam, sgd, adamw"),
        ("schedule", "step", "plateau, cosine, none"),
        ("early_stop_monitor", "accuracy", "val_accuracy"),
        ("label_smoothing", 1.0, "[0, 1)"),
        ("plateau_factor", 1.5, "(0, 1)"),
        ("momentum", -0.1, "[0, 1)"),
        ("model_kwargs", [1], "object"),
        ("augment", "flip", "object"),
        ("class_weights", "yes", "true or false"),
        ("model", "  ", "empty"),
        ("val_source", "PrivateTest", "publictest, fraction"),
        ("mixup_alpha", -1, ">= 0"),
    ],
)
def test_bad_values_name_the_field(field: str, value: object, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(**{field: value})
    assert err.value.field == field
    assert f"TrainConfig.{field}" in str(err.value) and words in str(err.value)


def test_cross_field_checks() -> None:
    with pytest.raises(ConfigError, match="warmup_epochs"):
        TrainConfig(schedule="cosine", epochs=3, warmup_epochs=3)
    with pytest.raises(ConfigError, match="min_lr"):
        TrainConfig(learning_rate=1e-4, min_lr=1e-3)
    TrainConfig(schedule="none", learning_rate=1e-4, min_lr=1e-3)  # unused min_lr is fine


def test_unknown_keys_are_rejected_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="epocs.*known: name, model"):
        TrainConfig.from_dict({"epocs": 3})
    with pytest.raises(ConfigError, match="lr"):
        TrainConfig().replace(lr=1.0)


def test_normalises_and_copies() -> None:
    kwargs = {"width": 8}
    config = TrainConfig(optimizer=" SGD ", model_kwargs=kwargs, epochs=5.0)
    assert config.optimizer == "sgd" and config.epochs == 5 and isinstance(config.epochs, int)
    kwargs["width"] = 99
    assert config.model_kwargs == {"width": 8}
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3  # type: ignore[misc]
    assert TrainConfig(augment=None).augment is None


def test_presets() -> None:
    assert "quick" in PRESETS
    for name in PRESETS:
        assert isinstance(config_from_preset(name), TrainConfig)
    quick = config_from_preset("quick", epochs=7, name="mine")
    assert quick.epochs == 7 and quick.name == "mine" and quick.model == PRESETS["quick"]["model"]
    with pytest.raises(ConfigError, match="unknown preset 'nope'; known: .*quick"):
        config_from_preset("nope")
    with pytest.raises(ConfigError, match="batch_size"):
        config_from_preset("quick", batch_size=0)


def test_load_names_the_file(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"epochs": -1}')
    with pytest.raises(ConfigError, match=r"epochs.*c\.json"):
        TrainConfig.load(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.load(path)
    with pytest.raises(ConfigError, match="cannot read"):
        TrainConfig.load(tmp_path / "missing.json")


@settings(max_examples=60, deadline=None)
@given(
    epochs=st.integers(1, 1000),
    lr=st.floats(1e-6, 10.0),
    smoothing=st.floats(0.0, 0.99),
    optimizer=st.sampled_from(["adam", "sgd", "adamw"]),
    kwargs=st.dictionaries(st.text(min_size=1, max_size=5), st.integers(-5, 5), max_size=3),
    name=st.text(max_size=30),
)
def test_json_round_trip_property(epochs, lr, smoothing, optimizer, kwargs, name) -> None:
    config = TrainConfig(epochs=epochs, learning_rate=lr, label_smoothing=smoothing, min_lr=0.0,
                         optimizer=optimizer, model_kwargs=kwargs, name=name)
    assert TrainConfig.from_json(config.to_json()) == config



# ======================================== any value of any field (hypothesis)


_ANY_JSON = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                      st.lists(st.integers(), max_size=3),
                      st.dictionaries(st.text(max_size=5), st.integers(-3, 3), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(FIELD_NAMES), _ANY_JSON)
def test_any_value_of_any_field_is_accepted_or_named(field: str, value) -> None:
    """Bad input / hyperparameters: a config file can hold any JSON value in any field;
    loading it either works or raises ConfigError naming that field, nothing else."""
    try:
        config = TrainConfig.from_dict({field: value})
    except ConfigError as exc:
        assert exc.field in (field, "min_lr", "val_fraction", "warmup_epochs"), exc
        assert str(exc).startswith(f"TrainConfig.{exc.field}:")
    else:
        assert TrainConfig.from_json(config.to_json()) == config



# ==================================================== seeds and model options


@pytest.mark.parametrize("seed", [2**32, 2**40, float(2**33)])
def test_seeds_beyond_32_bits_are_refused_naming_the_field(seed) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(seed=seed)
    assert err.value.field == "seed" and "TrainConfig.seed" in str(err.value)
    assert TrainConfig(seed=2**32 - 1).seed == 2**32 - 1


@pytest.mark.parametrize(("options", "words"), [
    ({"width": True}, "width must be an integer"),
    ({"convs": False}, "convs must be an integer"),
    ({"convs": 0}, "convs must be >= 1"),
    ({"width": 0}, "width must be >= 1"),
    ({"width": 10**6}, "width must be <= 512"),
    ({"width": 2.5}, "width must be a whole number"),
    ({"width": "32"}, "width must be an integer"),
    ({"dropout": 1.0}, "dropout must be in [0, 1)"),
    ({"dropout": True}, "dropout must be a number"),
    ({"l2": -0.1}, "l2 must be in [0, 1]"),
    ({"l2": float("nan")}, "l2 must be finite"),
])
def test_model_options_are_checked(options, words) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(model="fernet", model_kwargs=options)
    assert err.value.field == "model_kwargs" and words in str(err.value)


def test_sane_model_options_are_kept() -> None:
    options = {"width": 16, "convs": 1, "dropout": 0.25, "l2": 0.001}
    assert TrainConfig(model="fernet", model_kwargs=options).model_kwargs == options
    assert TrainConfig(model="fernet", model_kwargs={"width": 16.0}).model_kwargs == {"width": 16}

