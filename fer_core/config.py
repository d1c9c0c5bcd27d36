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
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPTIMIZERS: tuple[str, ...] = ("adam", "sgd", "adamw")
SCHEDULES: tuple[str, ...] = ("plateau", "cosine", "none")
MONITORS: tuple[str, ...] = ("val_accuracy", "val_loss")
VAL_SOURCES: tuple[str, ...] = ("publictest", "fraction")
MAX_SEED = 2**32 - 1  # numpy's and TensorFlow's seeding take 32-bit seeds
# Sane ranges of the registered models' options (their builders' defaults in
# fer_core.models.list_models(): width and convs are ints, dropout and l2 floats), checked
# here without TensorFlow: (type, low, high, high excluded). Unknown names are
# train.check_config's, which knows each model's own options.
MODEL_OPTION_RANGES: dict[str, tuple[type, float, float, bool]] = {
    "width": (int, 1, 512, False),
    "convs": (int, 1, 6, False),
    "dropout": (float, 0.0, 1.0, True),
    "l2": (float, 0.0, 1.0, False),
}


class ConfigError(ValueError):
    """A config value is invalid; `field` names it, the message says what is wrong."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"TrainConfig.{field_name}: {problem}")
        self.field = field_name
        self.problem = problem


def _f(default: Any, help_text: str) -> Any:
    """A dataclass field whose help text doubles as its comment and its CLI --help."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help_text})
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class TrainConfig:
    """Every hyperparameter of one training run (frozen; use `.replace(...)` to change)."""

    name: str = _f("", "display name of the run (free text; the run id never changes)")
    model: str = _f("mini_xception", "registered model name (see fer_core.models.list_models)")
    model_kwargs: dict = _f({}, "keyword options passed to the model builder, e.g. widths")
    data: str = _f("demo", "dataset: path to fer2013.csv(.gz/.zip) or image folder, or 'demo'")
    val_source: str = _f("publictest", "validation split: PublicTest when present, or 'fraction'")
    val_fraction: float = _f(0.1, "seeded share of Training held out when PublicTest is not used")
    epochs: int = _f(30, "passes over the training set")
    batch_size: int = _f(64, "images per optimizer step (global, across all devices)")
    optimizer: str = _f("adam", "adam | sgd (with Nesterov momentum) | adamw")
    learning_rate: float = _f(1e-3, "initial (peak, for cosine) learning rate")
    momentum: float = _f(0.9, "SGD momentum (Nesterov); ignored by adam/adamw")
    weight_decay: float = _f(0.0, "decoupled weight decay (adamw; also applied by adam/sgd if > 0)")
    schedule: str = _f("plateau", "learning-rate schedule: plateau | cosine | none")
    plateau_factor: float = _f(0.5, "plateau: multiply the LR by this when the monitor stalls")
    plateau_patience: int = _f(3, "plateau: epochs without improvement before reducing the LR")
    min_lr: float = _f(1e-6, "lowest LR for plateau reductions and the end of the cosine")
    warmup_epochs: int = _f(0, "cosine: epochs of linear warm-up from ~0 to learning_rate")
    early_stop_monitor: str = _f("val_accuracy", "metric for early stopping, best weights, plateau")
    early_stop_patience: int = _f(10, "epochs without improvement before stopping; 0 = off")
    label_smoothing: float = _f(0.0, "label smoothing of the cross-entropy, 0 <= x < 1")
    augment: dict | None = _f({}, "AugmentConfig options ({} = its defaults, null = no augment)")
    mixup_alpha: float = _f(0.0, "mixup Beta(alpha, alpha) strength; 0 = off")
    class_weights: bool = _f(False, "weight the loss by inverse class frequency (helps 'disgust')")
    seed: int = _f(0, "seed for shuffling, augmentation, the validation split and weights")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _check(f.name, getattr(self, f.name)))
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
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainConfig))

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
    # The shipped default model (models/default.keras, see models/MODEL_CARD.md): our
    # residual `fernet` with SGD + Nesterov, one warm-up epoch then cosine decay, label
    # smoothing and the standard augmentations; width 32 for 40 epochs took 95 minutes on a
    # 2-core CPU. The shipped file is `python -m fer_core export RUN --weights mean`.
    "default": {
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


def _int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"must be an integer, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise ConfigError(name, f"must be a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(name, f"must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(name, f"must be <= {maximum}, got {value!r}")
    return int(value)


def _float(name: str, value: Any, *, low: float, high: float = math.inf,
           low_open: bool = False, high_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(name, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(name, f"must be finite, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        if math.isinf(high):
            raise ConfigError(name, f"must be {'>' if low_open else '>='} {low:g}, got {value!r}")
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise ConfigError(name, f"must be in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return value


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value.strip().lower()


def _json_dict(name: str, value: Any) -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ConfigError(name, f"must be an object with string keys, got {value!r}")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(name, f"must be JSON-serialisable: {exc}") from None
    return copy.deepcopy(value)


def _model_kwargs(name: str, value: Any) -> dict:
    """The options object, each known option checked against MODEL_OPTION_RANGES (a bool
    is not a number: {"width": true} would build width 1)."""
    options = _json_dict(name, value)
    for key, option in options.items():
        if key not in MODEL_OPTION_RANGES:
            continue
        kind, low, high, high_open = MODEL_OPTION_RANGES[key]
        try:
            options[key] = (_int(key, option, minimum=int(low), maximum=int(high)) if kind is int
                            else _float(key, option, low=low, high=high, high_open=high_open))
        except ConfigError as exc:
            raise ConfigError(name, f"{key} {exc.problem}") from None
    return options


def _check(name: str, value: Any) -> Any:
    """Validate and normalise one field; raises ConfigError naming it."""
    if name in ("name", "model", "data"):
        if not isinstance(value, str):
            raise ConfigError(name, f"must be a string, got {value!r}")
        value = value.strip()
        if name != "name" and not value:
            raise ConfigError(name, "must not be empty")
        if name == "name" and len(value) > 200:
            raise ConfigError(name, f"must be at most 200 characters, got {len(value)}")
        return value
    if name == "model_kwargs":
        return _model_kwargs(name, value)
    if name == "augment":
        return None if value is None else _json_dict(name, value)
    if name == "val_source":
        return _choice(name, value, VAL_SOURCES)
    if name == "optimizer":
        return _choice(name, value, OPTIMIZERS)
    if name == "schedule":
        return _choice(name, value, SCHEDULES)
    if name == "early_stop_monitor":
        return _choice(name, value, MONITORS)
    if name == "class_weights":
        if not isinstance(value, bool):
            raise ConfigError(name, f"must be true or false, got {value!r}")
        return value
    if name in ("epochs", "batch_size"):
        return _int(name, value, minimum=1)
    if name == "seed":
        return _int(name, value, minimum=0, maximum=MAX_SEED)
    if name in ("plateau_patience", "warmup_epochs", "early_stop_patience"):
        return _int(name, value, minimum=0)
    if name == "learning_rate":
        return _float(name, value, low=0.0, low_open=True)
    if name == "min_lr":
        return _float(name, value, low=0.0)
    if name == "val_fraction":
        return _float(name, value, low=0.0, high=1.0, high_open=True)
    if name == "momentum":
        return _float(name, value, low=0.0, high=1.0, high_open=True)
    if name == "plateau_factor":
        return _float(name, value, low=0.0, high=1.0, low_open=True, high_open=True)
    if name == "label_smoothing":
        return _float(name, value, low=0.0, high=1.0, high_open=True)
    if name in ("weight_decay", "mixup_alpha"):
        return _float(name, value, low=0.0)
    raise ConfigError(name, "no validation rule (add one in fer_core/config.py)")
