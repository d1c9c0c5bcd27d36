"""`TrainConfig`: every hyperparameter of a training run, validated, JSON round-trippable.

The config is written to each run folder as `config.json` and is enough to rebuild the
model and repeat the run. `PRESETS` holds named starting points; `config_from_preset`
applies overrides on top of one. Validation is cheap and import-light (no TensorFlow);
checks that need the model registry or the pipeline live in `fer_core.train.check_config`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_core.params import (
    ConfigError,
    Param,
    Search,
    When,
    check,
    check_fields,
    param,
    params_of,
)

__all__ = [
    "AUGMENT_PARAMS", "FIELD_NAMES", "MAX_SEED", "MODEL_OPTIONS", "MONITORS", "NO_AUGMENT",
    "OPTIMIZERS", "PRESETS", "SCHEDULES", "TRAIN_PARAMS", "VAL_SOURCES", "AugmentConfig",
    "ConfigError", "TrainConfig", "changed_options", "config_from_preset",
]

OPTIMIZERS: tuple[str, ...] = ("adam", "sgd", "adamw")
SCHEDULES: tuple[str, ...] = ("plateau", "cosine", "none")
MONITORS: tuple[str, ...] = ("val_accuracy", "val_loss")
VAL_SOURCES: tuple[str, ...] = ("publictest", "fraction")
MAX_SEED = 2**32 - 1  # numpy's and TensorFlow's seeding take 32-bit seeds

# Sane ranges of the registered models' options (their builders' defaults are in
# fer_core.models.list_models(); width and convs are ints, dropout and l2 floats), checked
# here without TensorFlow, in the order the Train form shows them. Unknown names are
# train.check_config's, which knows each model's own options.
MODEL_OPTIONS: dict[str, Param] = {
    "width": Param("int", "filters of the first block; later blocks scale with it (cost "
                   "grows about with its square)", label="width (filters)", low=1, high=512,
                   step=1, search=Search(16, 48, step=8)),
    "dropout": Param("float", "dropout rate before the classifier", label="dropout", low=0.0,
                     high=1.0, high_open=True, step=0.05, fmt="%.2f",
                     search=Search(0.1, 0.6)),
    "l2": Param("float", "L2 factor of the conv kernels (0 = off)", label="L2 weight penalty",
                low=0.0, high=1.0, step=0.001, fmt="%.4f",
                search=Search(1e-5, 1e-2, log=True, on=False)),
    "convs": Param("int", "convolutions per stage", label="convs per block", low=1, high=6,
                   step=1, search=Search(choices=(1, 2, 3), on=False)),
}

# Each augmentation does something only while augmentation is on (config.augment not None).
_AUGMENTING = When("augment", "augmentation is switched off", unless=(None,))
_PLATEAU = When("schedule", "used by the plateau schedule only", among=("plateau",))


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation (`TrainConfig.augment`); a zero (or False) switches one
    transform off. Applied by `fer_core.pipeline`."""

    flip: bool = param(True, "mirror left-right with probability 0.5", label="Horizontal flip",
                       active=_AUGMENTING, search=Search(choices=(True, False), on=False))
    shift: float = param(0.1, "max translation, fraction of the image side", low=0.0, high=0.5,
                         step=0.05, label="Shift (fraction)", active=_AUGMENTING,
                         search=Search(0.0, 0.2))
    rotation: float = param(10.0, "max rotation, degrees either way", low=0.0, high=180.0,
                            step=5.0, label="Rotation (°)", active=_AUGMENTING,
                            search=Search(0.0, 20.0))
    zoom: float = param(0.1, "max scale change, fraction either way", low=0.0, high=0.9,
                        step=0.05, label="Zoom (fraction)", active=_AUGMENTING,
                        search=Search(0.0, 0.2))
    brightness: float = param(0.1, "max brightness offset, fraction of full range either way",
                              low=0.0, high=1.0, step=0.05, active=_AUGMENTING,
                              search=Search(0.0, 0.3, on=False))
    contrast: float = param(0.2, "max contrast change, fraction either way", low=0.0, high=1.0,
                            step=0.05, active=_AUGMENTING, search=Search(0.0, 0.4, on=False))
    erasing: float = param(0.0, "probability of erasing one random rectangle (random erasing)",
                           low=0.0, high=1.0, step=0.05, label="Random erasing (probability)",
                           active=_AUGMENTING, search=Search(0.0, 0.5))

    def __post_init__(self) -> None:
        try:
            check_fields(self)
        except ConfigError as exc:
            raise ConfigError("augment", f"{exc.field} {exc.problem}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> AugmentConfig:
        """From `TrainConfig.augment`'s options (missing ones take defaults, unknown fail)."""
        return cls(**check("augment", TRAIN_PARAMS["augment"], values or {}))

    @property
    def enabled(self) -> bool:
        return bool(self.flip or self.shift or self.rotation or self.zoom or self.brightness
                    or self.contrast or self.erasing)


NO_AUGMENT = AugmentConfig(flip=False, shift=0.0, rotation=0.0, zoom=0.0, brightness=0.0,
                           contrast=0.0, erasing=0.0)
AUGMENT_PARAMS: dict[str, Param] = params_of(AugmentConfig)


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of one training run (frozen; use `.replace(...)` to change).

    One `param(default, help, bounds...)` per field: validation, the CLI's train flags and
    the Train page's widgets all read it."""

    name: str = param("", "display name of the run (free text; the run id never changes)",
                      max_len=200, label="Run name")
    model: str = param("mini_xception", "registered model name (see fer_core.models.list_models)",
                       required=True)
    model_kwargs: dict = param({}, "keyword options passed to the model builder, e.g. widths",
                               items=MODEL_OPTIONS)
    data: str = param("demo", "dataset: path to fer2013.csv(.gz/.zip) or image folder, or 'demo'",
                      required=True)
    val_source: str = param("publictest", "validation split: PublicTest when present, or "
                            "'fraction'", choices=VAL_SOURCES, label="Validation source",
                            choice_labels={"publictest": "PublicTest",
                                           "fraction": "a fraction of Training"})
    val_fraction: float = param(0.1, "seeded share of Training held out when PublicTest is not "
                                "used", low=0.0, high=1.0, high_open=True, step=0.05,
                                label="Validation fraction",
                                active=When("val_source", "validation uses the PublicTest split",
                                            among=("fraction",)))
    epochs: int = param(30, "passes over the training set", low=1, step=1,
                        search=Search(5, 60, step=5, on=False))
    batch_size: int = param(64, "images per optimizer step (global, across all devices)", low=1,
                            step=16, search=Search(choices=(32, 64, 128), on=False))
    optimizer: str = param("adam", "adam | sgd (with Nesterov momentum) | adamw",
                           choices=OPTIMIZERS, search=Search(choices=OPTIMIZERS, on=False))
    learning_rate: float = param(1e-3, "initial (peak, for cosine) learning rate", low=0.0,
                                 low_open=True, step=1e-4, fmt="%.2e",
                                 search=Search(factor=4.0, log=True))
    momentum: float = param(0.9, "SGD momentum (Nesterov); ignored by adam/adamw", low=0.0,
                            high=1.0, high_open=True, step=0.01,
                            active=When("optimizer", "momentum is used by SGD only",
                                        among=("sgd",)),
                            search=Search(0.8, 0.95, on=False))
    weight_decay: float = param(0.0, "decoupled weight decay (adamw; also applied by adam/sgd "
                                "if > 0)", low=0.0, step=1e-4, fmt="%.2e",
                                search=Search(1e-5, 2e-3, log=True))
    schedule: str = param("plateau", "learning-rate schedule: plateau | cosine | none",
                          choices=SCHEDULES, search=Search(choices=SCHEDULES, on=False))
    plateau_factor: float = param(0.5, "plateau: multiply the LR by this when the monitor stalls",
                                  low=0.0, high=1.0, low_open=True, high_open=True, step=0.05,
                                  active=_PLATEAU)
    plateau_patience: int = param(3, "plateau: epochs without improvement before reducing the LR",
                                  low=0, step=1, active=_PLATEAU)
    min_lr: float = param(1e-6, "lowest LR for plateau reductions and the end of the cosine",
                          low=0.0, step=1e-6, fmt="%.2e", label="Minimum LR",
                          active=When("schedule", "no schedule: the learning rate stays "
                                      "constant", unless=("none",)))
    warmup_epochs: int = param(0, "cosine: epochs of linear warm-up from ~0 to learning_rate",
                               low=0, step=1, label="Cosine warm-up epochs",
                               active=When("schedule", "warm-up is part of the cosine schedule "
                                           "only", among=("cosine",)),
                               search=Search(0, 3, on=False))
    early_stop_monitor: str = param("val_accuracy", "metric for early stopping, best weights, "
                                    "plateau", choices=MONITORS, label="Monitor")
    early_stop_patience: int = param(10, "epochs without improvement before stopping; 0 = off",
                                     low=0, step=1, label="Early-stopping patience")
    label_smoothing: float = param(0.0, "label smoothing of the cross-entropy, 0 <= x < 1",
                                   low=0.0, high=1.0, high_open=True, step=0.05,
                                   search=Search(0.0, 0.2))
    augment: dict | None = param({}, "AugmentConfig options ({} = its defaults, null = no "
                                 "augment)", nullable=True, items=AUGMENT_PARAMS, closed=True)
    mixup_alpha: float = param(0.0, "mixup Beta(alpha, alpha) strength; 0 = off", low=0.0,
                               step=0.1, search=Search(0.0, 0.4))
    class_weights: bool = param(False, "weight the loss by inverse class frequency (helps "
                                "'disgust')", search=Search(choices=(False, True), on=False))
    teacher: str = param("", "a teacher's probabilities of the Training split (a .teacher.npz "
                         "file from `python -m fer_core teacher`) to distil; '' = labels only",
                         max_len=1000, label="Teacher file (distillation)")
    distill_weight: float = param(0.5, "share of each target taken from the teacher's "
                                  "probabilities, the rest from the label", low=0.0, high=1.0,
                                  step=0.05, label="Distillation weight",
                                  active=When("teacher", "no teacher file is set",
                                              unless=("",)),
                                  search=Search(0.2, 0.9, on=False))
    drop_test_overlap: bool = param(False, "leave out Training faces that also appear, exactly "
                                    "or nearly, in PublicTest or PrivateTest (a leak)",
                                    label="Drop Training faces found in test splits")
    seed: int = param(0, "seed for shuffling, augmentation, the validation split and weights",
                      low=0, high=MAX_SEED, step=1)
    sweep: dict | None = param(None, "the sweep this run is a trial of ({study, trial}; written "
                               "by `python -m fer_core sweep`, null for a run trained by hand)",
                               nullable=True, closed=True,
                               items={"study": Param("str", "Optuna study name", required=True,
                                                     max_len=200),
                                      "trial": Param("int", "trial number in the study",
                                                     low=0)})

    def __post_init__(self) -> None:
        check_fields(self)
        if self.val_source == "fraction" and not 0 < self.val_fraction < 1:
            raise ConfigError("val_fraction", f"must be between 0 and 1, got {self.val_fraction}")
        if self.schedule != "none" and self.min_lr > self.learning_rate:
            raise ConfigError(
                "min_lr", f"must not exceed learning_rate ({self.learning_rate:g}), got {self.min_lr:g}"
            )
        if self.warmup_epochs >= self.epochs and self.schedule == "cosine" and self.warmup_epochs:
            raise ConfigError(
                "warmup_epochs", f"must be less than epochs ({self.epochs}), got {self.warmup_epochs}"
            )

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied (validated; unknown names raise ConfigError)."""
        _reject_unknown(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(dataclasses.asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict (e.g. config.json); missing keys take defaults, unknown ones fail."""
        if not isinstance(values, dict):
            raise ConfigError("*", f"expected a JSON object, got {type(values).__name__}")
        _reject_unknown(values)
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("*", f"not valid JSON: {exc}") from None
        return cls.from_dict(values)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a config JSON file; errors name the file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError("*", f"cannot read {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError("*", f"cannot read {path}: not UTF-8 text (a JSON file?)") from None
        try:
            return cls.from_json(text)
        except ConfigError as exc:
            raise ConfigError(exc.field, f"{exc.problem} (in {path})") from None

    @classmethod
    def field_help(cls) -> dict[str, str]:
        """Field name -> one-line description (used by the CLI and the Train page)."""
        return {name: spec.help for name, spec in TRAIN_PARAMS.items()}


TRAIN_PARAMS: dict[str, Param] = params_of(TrainConfig)
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainConfig))

# The recipe of the shipped default model (models/default.keras, see models/MODEL_CARD.md):
# our residual `fernet` with SGD + Nesterov, one warm-up epoch then cosine decay, label
# smoothing and the standard augmentations, width 32. The preset trains for 40 epochs (about
# 95 minutes on 2 cores); the shipped file was trained with
# `--epochs 64 --seed 4 --augment '{"erasing": 0.3}'` and written
# by `python -m fer_core export RUN --weights mean` (its training time and results are in the card).
_DEFAULT_RECIPE: dict[str, Any] = {
    "name": "default",
    "model": "fernet",
    # fernet's own defaults: width 32, two convs per stage, head dropout 0.4 (a preset
    # lists only options that differ, as the Train page's form records them).
    "model_kwargs": {},
    "epochs": 40,
    "batch_size": 64,
    "optimizer": "sgd",
    "learning_rate": 0.05,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "schedule": "cosine",
    "warmup_epochs": 1,
    "min_lr": 1e-5,
    "early_stop_patience": 0,
    "label_smoothing": 0.1,
    "augment": {},
    "seed": 0,
}

# Named starting points; `config_from_preset(name, **overrides)` applies overrides on top.
PRESETS: dict[str, dict[str, Any]] = {
    # A smoke run: small mini-Xception, a few epochs, finishes in about a minute on FER2013.
    "quick": {
        "name": "quick",
        "model": "mini_xception",
        "epochs": 3,
        "batch_size": 64,
        "optimizer": "adam",
        "learning_rate": 3e-3,
        "schedule": "cosine",
        "warmup_epochs": 0,
        "early_stop_patience": 0,
    },
    "default": _DEFAULT_RECIPE,
    # `default`'s recipe taught by the shipped `accurate` ensemble (issue 15): each target is
    # 0.7 of the ensemble's probabilities of the face (`models/accurate.teacher.npz`, written
    # by `python -m fer_core teacher accurate --data ...`) and 0.3 of its label. Same network
    # and cost per face as `default`; run from the repository root, where the path resolves.
    "distill": {
        **_DEFAULT_RECIPE,
        "name": "distill",
        "label_smoothing": 0.0,  # the teacher's rows are soft already
        "teacher": "models/accurate.teacher.npz",
        "distill_weight": 0.7,
    },
}


def changed_options(options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The model options in `options` that differ from the builder's `defaults` (the form of
    `model_kwargs` kept in configs): whole floats become ints where the default is an int."""
    changed = {}
    for name, default in defaults.items():
        value = options.get(name, default)
        if value != default:
            changed[name] = (int(value) if isinstance(default, int) and not isinstance(value, bool)
                             and float(value).is_integer() else value)
    return changed


def config_from_preset(name: str, /, **overrides: Any) -> TrainConfig:
    """The preset `name` with `overrides` applied; unknown names raise ConfigError."""
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    _reject_unknown(overrides)
    values = copy.deepcopy(PRESETS[name])
    values.update(overrides)
    return TrainConfig.from_dict(values)


def _reject_unknown(values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(
            unknown[0], f"unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELD_NAMES)}"
        )
