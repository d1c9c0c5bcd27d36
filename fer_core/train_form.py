"""The Train page's form, free of Streamlit: form values <-> TrainConfig, which widgets do
nothing with the other choices, the chosen model's option widgets, and notes on a config.

The page keeps one flat dict of widget values (keys: TrainConfig field names, `opt_<option>`
for model options, `aug_<option>` and `aug_enabled` for augmentation); `config_from_form`
turns it into a validated `TrainConfig` (or a `ConfigError` naming the field), `form_values`
goes back, so presets, "reset to defaults" and "load a run's config" are all
`form_values(config)`. Bounds, steps, labels and when a field is active are the fields' own
declarations (`fer_core.config.TRAIN_PARAMS`, `AUGMENT_PARAMS`, `MODEL_OPTIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fer_core.config import (
    AUGMENT_PARAMS,
    MODEL_OPTIONS,
    PRESETS,
    TRAIN_PARAMS,
    AugmentConfig,
    TrainConfig,
    changed_options,
    config_from_preset,
)
from fer_core.labels import PUBLIC_TEST, TRAINING
from fer_core.params import Param, inactive


# TrainConfig fields edited by a widget of the same name (the data and the dicts aside; a
# run made from the form is no sweep's trial, so `sweep` is never carried into it).
PLAIN_FIELDS: tuple[str, ...] = tuple(
    name for name in TRAIN_PARAMS if name not in ("model_kwargs", "data", "augment", "sweep"))
AUGMENT_FIELDS: tuple[str, ...] = tuple(AUGMENT_PARAMS)
OPTION_PREFIX = "opt_"  # model option `width` -> form key `opt_width`
AUGMENT_PREFIX = "aug_"  # augmentation option `shift` -> form key `aug_shift`
AUGMENT_SWITCH = "aug_enabled"  # False -> config.augment is None (no augmentation at all)


@dataclass(frozen=True)
class ModelOption:
    """One option of the chosen model, drawn as a number input: its declaration (bounds,
    step, label) and the builder's default."""

    name: str
    spec: Param
    default: int | float

    @property
    def key(self) -> str:
        return OPTION_PREFIX + self.name

    @property
    def is_int(self) -> bool:
        return self.spec.kind == "int"

    @property
    def minimum(self) -> int | float:
        low = self.spec.bounds()[0]
        return self.default if low is None else min(low, self.default)

    @property
    def maximum(self) -> int | float:
        high = self.spec.bounds()[1]
        return self.default if high is None else max(high, self.default)


def model_option_specs(defaults: Mapping[str, Any]) -> list[ModelOption]:
    """Widgets for a model's options (`ModelInfo.defaults`): numbers only, declared ones
    (`MODEL_OPTIONS`) first in their order, others with bounds guessed from the default."""
    order = list(MODEL_OPTIONS)
    specs = []
    for name in sorted(defaults, key=lambda n: (order.index(n) if n in order else len(order), n)):
        default = defaults[name]
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue  # not a number: left at its default (none of the registered models has one)
        is_int = isinstance(default, int)
        spec = MODEL_OPTIONS.get(name) or Param(
            "int" if is_int else "float", f"model option {name}", label=name, low=0,
            high=max(10 * abs(default), 1), step=1 if is_int else 0.01)
        specs.append(ModelOption(name, spec, default))
    return specs


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
    switching models never carries another model's options along; options (and
    augmentations) equal to their default are left out, keeping run configs short.
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
    return TrainConfig(**plain, model_kwargs=options, augment=augment, data=data)


def preset_config(preset: str) -> TrainConfig:
    """The config a preset (`fer_core.config.PRESETS`) stands for."""
    return config_from_preset(preset)


def preset_names() -> list[str]:
    """The presets, the shipped recipe (`default`) first. TrainConfig's own field defaults
    are not a preset: one name per thing, and `default` is the shipped model everywhere."""
    return ["default", *sorted(set(PRESETS) - {"default"})]


def inactive_fields(values: Mapping[str, Any], *, has_public_test: bool) -> dict[str, str]:
    """Form keys whose widgets do nothing with the other choices -> why (the page disables
    them), so combinations that would be silently ignored cannot be set up by mistake. The
    rules are the fields' `active` declarations."""
    view = {name: values.get(name) for name in PLAIN_FIELDS}
    view["augment"] = {} if values.get(AUGMENT_SWITCH, True) else None
    if not has_public_test:
        view["val_source"] = "fraction"  # validation falls back to a fraction of Training
    why = inactive(TRAIN_PARAMS, view)
    why.update({AUGMENT_PREFIX + name: text
                for name, text in inactive(AUGMENT_PARAMS, view).items()})
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
