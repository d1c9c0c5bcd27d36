"""How a hyperparameter is declared: `Param` (kind, help, bounds, widget step, when it is
active) and the one validator that reads it.

`fer_core.config` declares every field of `TrainConfig` and `AugmentConfig` with `param(...)`
(a dataclass field whose metadata holds its `Param`); validation (`check`), the CLI's train
flags and the Train page's widgets are all read from those declarations, so a bound is
written once. No TensorFlow, no Streamlit.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS: tuple[str, ...] = ("str", "choice", "bool", "int", "float", "object")


class ConfigError(ValueError):
    """A config value is invalid; `field` names it, the message says what is wrong."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"TrainConfig.{field_name}: {problem}")
        self.field = field_name
        self.problem = problem


@dataclass(frozen=True)
class When:
    """When a parameter is used: `field`'s value is in `among` (None: any) and not in
    `unless`; otherwise it does nothing, and `why` says so (the form disables it)."""

    field: str
    why: str
    among: tuple[Any, ...] | None = None
    unless: tuple[Any, ...] = ()

    def holds(self, values: Mapping[str, Any]) -> bool:
        value = values.get(self.field)
        return (self.among is None or value in self.among) and value not in self.unless


@dataclass(frozen=True)
class Search:
    """How a hyperparameter sweep samples a parameter (`fer_core.sweep_space`).

    A range `low..high` (on a log scale when `log`; ints in multiples of `step`), or
    `choices`; with `factor`, the range is the base config's value divided and multiplied by
    it (a learning rate suits its optimizer: 0.05 for SGD, 1e-3 for Adam). `on`: part of
    the default search space; otherwise searched only when a space file names it.
    """

    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    factor: float | None = None
    on: bool = True


@dataclass(frozen=True)
class Param:
    """One hyperparameter: what it means, which values are valid, how a form draws it.

    Bounds are inclusive unless `low_open`/`high_open`; None is unbounded. A form offers the
    same bounds (a narrower widget would silently clamp a valid config loaded into it).
    """

    kind: str  # one of KINDS
    help: str  # one line: the CLI's --help, the widget's tooltip, the field's comment
    label: str = ""  # the widget's label ("" = the field name, capitalised)
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()  # kind "choice" (normalised to lower case)
    choice_labels: Mapping[str, str] | None = None  # how a form names a choice ("PublicTest")
    step: float | None = None  # widget increment
    fmt: str | None = None  # widget printf format, e.g. "%.2e" for learning rates
    active: When | None = None  # None: always used
    max_len: int | None = None  # kind "str"
    required: bool = False  # kind "str": must not be empty
    nullable: bool = False  # kind "object": None is allowed (and means "off")
    items: Mapping[str, Param] | None = None  # kind "object": keys checked by their own Param
    closed: bool = False  # kind "object": keys outside `items` are refused
    search: Search | None = None  # how a sweep samples it (None: never searched)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; known: {', '.join(KINDS)}")

    def label_for(self, name: str) -> str:
        return self.label or name.replace("_", " ").capitalize()

    def choice_label(self, choice: str) -> str:
        return (self.choice_labels or {}).get(choice, choice)

    def bounds(self) -> tuple[float | int | None, float | int | None]:
        """(min, max) for a number widget, of the widget's type (int or float)."""
        cast = int if self.kind == "int" else float
        return tuple(None if b is None else cast(b) for b in (self.low, self.high))  # type: ignore[return-value]

    def describe(self) -> str:
        """The valid values in a few words ("" when any value of the kind is): for --help."""
        if self.choices:
            return ", ".join(self.choices)
        low, high = (None if b is None else (f"{int(b)}" if self.kind == "int" else f"{b:g}")
                     for b in (self.low, self.high))
        if high is None:
            return "" if low is None else f"{'>' if self.low_open else '>='} {low}"
        if low is None:
            return f"{'<' if self.high_open else '<='} {high}"
        return f"{'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


def param(default: Any, help_text: str, **spec: Any) -> Any:
    """A dataclass field declaring one hyperparameter: its default, help and `Param` spec
    (the kind follows the default's type unless given; a default must itself be valid)."""
    kind = spec.pop("kind", None) or _kind_of(default, spec)
    spec_ = Param(kind=kind, help=help_text, **spec)
    check("default", spec_, default)
    metadata = {"param": spec_, "help": help_text}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def params_of(cls: type) -> dict[str, Param]:
    """Field name -> Param of a dataclass declared with `param(...)`, in declaration order."""
    return {f.name: f.metadata["param"] for f in dataclasses.fields(cls)}


def check_fields(instance: Any) -> None:
    """Validate and normalise every field of a frozen dataclass declared with `param`."""
    for name, spec in params_of(type(instance)).items():
        object.__setattr__(instance, name, check(name, spec, getattr(instance, name)))


def inactive(params: Mapping[str, Param], values: Mapping[str, Any]) -> dict[str, str]:
    """Names of the parameters that do nothing with these `values` -> why."""
    return {name: spec.active.why for name, spec in params.items()
            if spec.active is not None and not spec.active.holds(values)}


def check(name: str, spec: Param, value: Any) -> Any:
    """`value` validated and normalised for `spec`; ConfigError naming `name` otherwise."""
    if spec.kind == "str":
        return _text(name, spec, value)
    if spec.kind == "choice":
        return _choice(name, value, spec.choices)
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(name, f"must be true or false, got {value!r}")
        return value
    if spec.kind == "int":
        return _int(name, value, minimum=-math.inf if spec.low is None else int(spec.low),
                    maximum=None if spec.high is None else int(spec.high))
    if spec.kind == "float":
        return _float(name, value, low=-math.inf if spec.low is None else spec.low,
                      high=math.inf if spec.high is None else spec.high,
                      low_open=spec.low_open, high_open=spec.high_open)
    if value is None and spec.nullable:
        return None
    return _items(name, spec, _json_dict(name, value))


def _kind_of(default: Any, spec: Mapping[str, Any]) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "choice" if spec.get("choices") else "str"
    return "object"


def _text(name: str, spec: Param, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a string, got {value!r}")
    value = value.strip()
    if spec.required and not value:
        raise ConfigError(name, "must not be empty")
    if spec.max_len is not None and len(value) > spec.max_len:
        raise ConfigError(name, f"must be at most {spec.max_len} characters, got {len(value)}")
    return value


def _items(name: str, spec: Param, options: dict) -> dict:
    """Known keys checked by their own Param (a bool is not a number: {"width": true} would
    build width 1); unknown keys refused when `closed`, else left to whoever knows them."""
    items = spec.items or {}
    unknown = sorted(set(options) - set(items))
    if spec.closed and unknown:
        raise ConfigError(name, f"unknown option(s) {', '.join(unknown)}; "
                                f"known: {', '.join(items)}")
    for key in set(options) & set(items):
        try:
            options[key] = check(key, items[key], options[key])
        except ConfigError as exc:
            raise ConfigError(name, f"{key} {exc.problem}") from None
    return options


def _int(name: str, value: Any, *, minimum: float, maximum: int | None = None) -> int:
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
