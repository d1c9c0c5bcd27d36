"""A sweep's search space: which hyperparameters each trial samples, from which range.

The ranges are declared beside the hyperparameters (`Param.search` in `fer_core.config`):
the default space is every declaration marked `on`, skipping what the base config does not
use (momentum under Adam, augmentations with augmentation off) and model options its model
lacks. A space file replaces that default; it is a JSON object, one entry per name:

    {"learning_rate": true,                      the declared range
     "weight_decay": {"low": 1e-5, "high": 1e-3, "log": true},
     "model_kwargs.width": [16, 24, 32],         choices
     "epochs": 8}                                a fixed value, not searched

Names are TrainConfig fields, model options as `model_kwargs.<option>` and augmentations as
`augment.<option>`. Every bound is checked against the parameter's own declaration, so a
space cannot ask for a value a config would refuse. Neither Optuna nor TensorFlow is
imported: `suggest` takes any object with Optuna's `suggest_*` methods.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_core.config import AUGMENT_PARAMS, MODEL_OPTIONS, TRAIN_PARAMS, ConfigError, TrainConfig
from fer_core.params import Param, Search, check

MODEL_PREFIX = "model_kwargs."
AUGMENT_PREFIX = "augment."
# Fields a space may not set: where the data comes from, the run's label, the whole dicts
# (their options are named one by one) and the sweep record itself.
NOT_IN_SPACE: tuple[str, ...] = ("data", "name", "model", "model_kwargs", "augment", "sweep")


class SpaceError(ValueError):
    """A search space entry is invalid; the message names the entry and the file."""


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: a numeric range (`log` scale, `step` for ints) or choices."""

    name: str
    kind: str  # "int", "float" or "choice"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def to_json(self) -> Any:
        """This dimension as a space file entry."""
        if self.kind == "choice":
            return list(self.choices)
        entry: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            entry["log"] = True
        if self.step is not None:
            entry["step"] = self.step
        return entry

    def describe(self) -> str:
        if self.kind == "choice":
            return f"{self.name}: one of {', '.join(map(str, self.choices))}"
        scale = " (log scale)" if self.log else f" (step {self.step:g})" if self.step else ""
        return f"{self.name}: {self.low:g} .. {self.high:g}{scale}"


@dataclass(frozen=True)
class Space:
    """What a trial samples (`dimensions`) and what it sets without searching (`fixed`)."""

    dimensions: dict[str, Dimension]
    fixed: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The space as a space file's object (loading it gives the same space)."""
        out: dict[str, Any] = {name: dim.to_json() for name, dim in self.dimensions.items()}
        out.update(self.fixed)
        return out

    def describe(self) -> list[str]:
        lines = [dim.describe() for dim in self.dimensions.values()]
        lines += [f"{name} = {value!r} (fixed)" for name, value in self.fixed.items()]
        return lines


def param_for(name: str) -> Param:
    """The declaration behind a space name (`learning_rate`, `model_kwargs.width`, ...)."""
    if name.startswith(MODEL_PREFIX):
        option = name[len(MODEL_PREFIX):]
        if option in MODEL_OPTIONS:
            return MODEL_OPTIONS[option]
    elif name.startswith(AUGMENT_PREFIX):
        option = name[len(AUGMENT_PREFIX):]
        if option in AUGMENT_PARAMS:
            return AUGMENT_PARAMS[option]
    elif name in TRAIN_PARAMS and name not in NOT_IN_SPACE:
        return TRAIN_PARAMS[name]
    raise SpaceError(f"{name!r} is not a hyperparameter a sweep can set; searchable: "
                     f"{', '.join(searchable())}")


def searchable() -> dict[str, Param]:
    """Every name with a declared search range, in declaration order."""
    names = [n for n in TRAIN_PARAMS if n not in NOT_IN_SPACE]
    names += [MODEL_PREFIX + n for n in MODEL_OPTIONS] + [AUGMENT_PREFIX + n for n in AUGMENT_PARAMS]
    return {name: spec for name in names if (spec := param_for(name)).search is not None}


def base_value(base: TrainConfig, name: str, model_defaults: Mapping[str, Any]) -> Any:
    """What `base` sets for `name` (a model option's builder default when it sets none)."""
    if name.startswith(MODEL_PREFIX):
        option = name[len(MODEL_PREFIX):]
        return base.model_kwargs.get(option, model_defaults.get(option))
    if name.startswith(AUGMENT_PREFIX):
        from fer_core.config import AugmentConfig

        return getattr(AugmentConfig.from_dict(base.augment or {}), name[len(AUGMENT_PREFIX):])
    return getattr(base, name)


def unused(base: TrainConfig, name: str, model_defaults: Mapping[str, Any],
           searched: Iterable[str] = ()) -> str | None:
    """Why `name` does nothing for `base` (None when it is used). A condition on a field
    that is itself searched (`optimizer` for `momentum`) counts as met."""
    if name.startswith(MODEL_PREFIX):
        option = name[len(MODEL_PREFIX):]
        if option not in model_defaults:
            return f"model {base.model} has no option {option!r}"
        return None
    spec = param_for(name)
    if name.startswith(AUGMENT_PREFIX) and base.augment is None:
        return "augmentation is switched off in the base config"
    when = spec.active
    if when is None or when.field in searched:
        return None
    return None if when.holds(base.to_dict()) else when.why


def dimension(name: str, search: Search, base: Any) -> Dimension:
    """The range a declaration's `Search` stands for (a `factor` is taken around `base`)."""
    spec = param_for(name)
    if search.choices:
        return _checked(name, spec, Dimension(name, "choice", choices=tuple(search.choices)))
    low, high = search.low, search.high
    if search.factor is not None:
        if not isinstance(base, (int, float)) or base <= 0:
            raise SpaceError(f"{name}: a range of x/{search.factor:g}..x{search.factor:g} needs a "
                             f"positive base value, the base config has {base!r}")
        low, high = base / search.factor, base * search.factor
        if spec.high is not None:
            high = min(high, spec.high)
    kind = "int" if spec.kind == "int" else "float"
    step = search.step if kind == "int" else None
    return _checked(name, spec, Dimension(name, kind, low=low, high=high, log=search.log,
                                          step=step if step is not None or kind != "int" else 1))


def default_space(base: TrainConfig, model_defaults: Mapping[str, Any]) -> Space:
    """Every declared range marked `on` that `base` uses."""
    dims = {}
    for name, spec in searchable().items():
        if spec.search.on and unused(base, name, model_defaults) is None:
            dims[name] = dimension(name, spec.search, base_value(base, name, model_defaults))
    return Space(dims)


def parse_space(entries: Any, base: TrainConfig, model_defaults: Mapping[str, Any], *,
                source: str = "the space") -> Space:
    """A space from a space file's object (see the module docstring); SpaceError naming the
    entry and `source` otherwise."""
    if not isinstance(entries, dict) or not entries:
        raise SpaceError(f"{source}: expected a JSON object naming at least one "
                         f"hyperparameter, got {entries!r}")
    dims: dict[str, Dimension] = {}
    fixed: dict[str, Any] = {}
    for name, entry in entries.items():
        try:
            spec = param_for(name)
            if isinstance(entry, (list, dict)) or entry is True and spec.kind != "bool":
                why = unused(base, name, model_defaults, searched=entries)
                if why is not None:
                    raise SpaceError(f"{name} would do nothing: {why}")
                dims[name] = _entry_dimension(name, spec, entry,
                                              base_value(base, name, model_defaults))
            else:
                fixed[name] = check(name, spec, entry)
        except (SpaceError, ConfigError) as exc:
            problem = exc.problem if isinstance(exc, ConfigError) else str(exc)
            raise SpaceError(f"{source}, entry {name!r}: {problem}") from None
    return Space(dims, fixed)


def load_space(path: str | os.PathLike, base: TrainConfig,
               model_defaults: Mapping[str, Any]) -> Space:
    """Read a space file (see the module docstring)."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpaceError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpaceError(f"{path} is not a JSON file: {exc}") from None
    return parse_space(entries, base, model_defaults, source=str(path))


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """One trial's values: each dimension sampled through Optuna's `trial.suggest_*`."""
    values: dict[str, Any] = {}
    for name, dim in space.dimensions.items():
        if dim.kind == "choice":
            values[name] = trial.suggest_categorical(name, list(dim.choices))
        elif dim.kind == "int":
            values[name] = trial.suggest_int(name, int(dim.low), int(dim.high),
                                             step=int(dim.step or 1), log=dim.log)
        else:
            values[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
    return values


def base_params(base: TrainConfig, space: Space, model_defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The base config's own values of the searched names (the first trial of a study runs
    them, so the sweep is measured against its starting point); names whose base value lies
    outside the range are left to the sampler."""
    params = {}
    for name, dim in space.dimensions.items():
        value = base_value(base, name, model_defaults)
        if dim.kind == "choice":
            if value in dim.choices:
                params[name] = value
        elif value is not None and dim.low <= value <= dim.high:
            params[name] = value
    return params


def apply(base: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """`base` with the space's `values` set (dotted names into model options and augment)."""
    changes: dict[str, Any] = {}
    options = copy.deepcopy(base.model_kwargs)
    augment = None if base.augment is None else copy.deepcopy(base.augment)
    for name, value in values.items():
        if name.startswith(MODEL_PREFIX):
            options[name[len(MODEL_PREFIX):]] = value
        elif name.startswith(AUGMENT_PREFIX):
            augment = {**(augment or {}), name[len(AUGMENT_PREFIX):]: value}
        else:
            changes[name] = value
    return base.replace(model_kwargs=options, augment=augment, **changes)


def _entry_dimension(name: str, spec: Param, entry: Any, base: Any) -> Dimension:
    if entry is True:
        if spec.search is None:
            raise SpaceError("has no declared range; give one as {\"low\": .., \"high\": ..} "
                             "or a list of choices")
        return dimension(name, spec.search, base)
    if isinstance(entry, list):
        if not entry:
            raise SpaceError("an empty list of choices")
        return _checked(name, spec, Dimension(name, "choice", choices=tuple(entry)))
    if spec.kind not in ("int", "float"):
        raise SpaceError(f"is a {spec.kind}: give a list of choices, not a range")
    unknown = sorted(set(entry) - {"low", "high", "log", "step"})
    if unknown or "low" not in entry or "high" not in entry:
        raise SpaceError(f"a range needs \"low\" and \"high\" (optional \"log\", \"step\"); "
                         f"got {sorted(entry)}")
    if not isinstance(entry.get("log", False), bool):
        raise SpaceError(f"\"log\" must be true or false, got {entry['log']!r}")
    kind = spec.kind
    step = entry.get("step", 1 if kind == "int" else None)
    return _checked(name, spec, Dimension(name, kind, low=entry["low"], high=entry["high"],
                                          log=entry.get("log", False), step=step))


def _checked(name: str, spec: Param, dim: Dimension) -> Dimension:
    """`dim` with every bound or choice valid for `spec`; SpaceError otherwise."""
    try:
        if dim.kind == "choice":
            choices = tuple(check(name, spec, c) for c in dim.choices)
            if len(set(map(json.dumps, choices))) != len(choices):
                raise SpaceError(f"repeated choices in {list(dim.choices)}")
            return Dimension(name, "choice", choices=choices)
        low, high = check(name, spec, dim.low), check(name, spec, dim.high)
    except ConfigError as exc:
        raise SpaceError(f"{exc.problem}") from None
    if not low < high:
        raise SpaceError(f"low ({low:g}) must be below high ({high:g}); a single value is a "
                         f"fixed entry, e.g. {json.dumps(low)}")
    if dim.log and low <= 0:
        raise SpaceError(f"a log-scale range needs low > 0, got {low:g}")
    step = dim.step
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0 \
                or not math.isfinite(step):
            raise SpaceError(f"step must be a positive number, got {step!r}")
        if dim.kind == "int":
            if not float(step).is_integer():
                raise SpaceError(f"step of an integer must be whole, got {step!r}")
            step = int(step)
            if dim.log and step != 1:
                raise SpaceError("a log-scale integer range takes no step")
        else:
            raise SpaceError("a step applies to integer ranges only; floats are sampled "
                             "continuously")
    return Dimension(name, dim.kind, low=low, high=high, log=dim.log, step=step)


# ---------------------------------------------------------------- the page's table

TABLE_COLUMNS: tuple[str, ...] = ("parameter", "search", "low", "high", "log", "step",
                                  "choices", "base value")


def space_table(base: TrainConfig, model_defaults: Mapping[str, Any],
                space: Space | None = None) -> list[dict[str, Any]]:
    """One row per parameter a sweep can search for `base` (see TABLE_COLUMNS): the
    declared range, or `space`'s where it searches the name, ticked when it does."""
    space = space or default_space(base, model_defaults)
    rows = []
    for name, spec in searchable().items():
        if unused(base, name, model_defaults) is not None and name not in space.dimensions:
            continue
        value = base_value(base, name, model_defaults)
        dim = space.dimensions.get(name)
        if dim is None:
            try:
                dim = dimension(name, spec.search, value)
            except SpaceError:
                continue
        rows.append({"parameter": name, "search": name in space.dimensions,
                     "low": dim.low, "high": dim.high, "log": dim.log, "step": dim.step,
                     "choices": ", ".join(json.dumps(c) for c in dim.choices),
                     "base value": json.dumps(value)})
    return rows


def space_from_table(rows: Iterable[Mapping[str, Any]], base: TrainConfig,
                     model_defaults: Mapping[str, Any]) -> Space:
    """The space the ticked rows of `space_table` describe; SpaceError naming the row."""
    entries: dict[str, Any] = {}
    for row in rows:
        if not row.get("search"):
            continue
        name = str(row.get("parameter"))
        choices = str(row.get("choices") or "").strip()
        if choices:
            try:
                entries[name] = json.loads(f"[{choices}]")
            except json.JSONDecodeError:
                raise SpaceError(f"entry {name!r}: choices must be values separated by commas, "
                                 f"like 16, 32 or \"sgd\", \"adam\"; got {choices!r}") from None
            continue
        entry = {"low": _number(row.get("low")), "high": _number(row.get("high")),
                 "log": bool(row.get("log"))}
        if _number(row.get("step")) is not None:
            entry["step"] = _number(row.get("step"))
        entries[name] = entry
    if not entries:
        raise SpaceError("tick at least one parameter to search")
    return parse_space(entries, base, model_defaults, source="the search table")


def _number(value: Any) -> Any:
    """A table cell as a JSON number (pandas hands NaN for an empty cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)  # an int parameter's bound; a float one takes it as well
    return value
